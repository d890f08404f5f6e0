//! Feeds (SPEC §6): data sources relayed into queues, inside `restmq serve --feed SPEC` or
//! standalone as `restmq feed SPEC --server URL`. Each feed filters and maps its messages
//! before publishing and counts what it did; the counters show in `/stats/` under `feeds`.
//! Every feed loop stops on the shutdown token and runs on the task tracker.
//!
//! # Layout
//! - [`spec`]: the `KIND:key=value,…` syntax.
//! - [`filter`]: `filter=` and `map=`.
//! - [`sink`]: publishing to the broker or to a server over HTTP.
//! - [`system`]: host metrics once a second.
//! - [`url`]: an SSE or NDJSON stream, reconnecting with back-off and `Last-Event-ID`.
//! - [`file`]: a file's lines at a rate, optionally looping.
//! - [`syslog`]: the UDP and TCP listener; [`syslog_parse`] reads RFC 3164 and 5424.
//! - [`collectd`]: the bodies of `POST /collectd/data` and `/collectd/event`.

pub mod collectd;
pub mod file;
pub mod filter;
pub mod sink;
pub mod spec;
pub mod syslog;
pub mod syslog_parse;
pub mod system;
pub mod url;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use restmq_shared::{FeedStats, MessageKey, QueueName};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use sink::{Sink, SinkError};
pub use spec::{FeedSpec, Format, Source};

use crate::broker::Broker;
use filter::Pipeline;

/// What one feed has done since it started.
#[derive(Debug, Default)]
pub struct FeedCounters {
    pub published: AtomicU64,
    pub filtered: AtomicU64,
    pub errors: AtomicU64,
    pub reconnects: AtomicU64,
}

impl FeedCounters {
    /// Counts an error; true when it should be logged (the 1st, 2nd, 4th, 8th …).
    pub fn error(&self) -> bool {
        (self.errors.fetch_add(1, Ordering::Relaxed) + 1).is_power_of_two()
    }
}

/// The feeds of a process and their counters; cloning is shallow.
#[derive(Clone, Default)]
pub struct FeedRegistry {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    feeds: BTreeMap<String, (&'static str, String, Arc<FeedCounters>)>,
    collectd: Option<CollectdFeed>,
}

/// The collectd endpoint's queues and publisher.
#[derive(Clone)]
pub struct CollectdFeed {
    pub data: QueueName,
    pub event: QueueName,
    pub publisher: Publisher,
}

impl FeedRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a feed under `name` (made unique with `#2`, `#3` …) and returns its counters.
    fn register(&self, name: &str, kind: &'static str, queue: String) -> Arc<FeedCounters> {
        let mut registry = self.lock();
        let mut unique = name.to_owned();
        for n in 2.. {
            if !registry.feeds.contains_key(&unique) {
                break;
            }
            unique = format!("{name}#{n}");
        }
        let counters = Arc::new(FeedCounters::default());
        registry.feeds.insert(unique, (kind, queue, counters.clone()));
        counters
    }

    /// Every feed's figures, by name.
    pub fn snapshot(&self) -> BTreeMap<String, FeedStats> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        self.lock()
            .feeds
            .iter()
            .map(|(name, (kind, queue, c))| {
                let stats = FeedStats {
                    kind: (*kind).to_owned(),
                    queue: queue.clone(),
                    published: load(&c.published),
                    filtered: load(&c.filtered),
                    errors: load(&c.errors),
                    reconnects: load(&c.reconnects),
                };
                (name.clone(), stats)
            })
            .collect()
    }

    /// The collectd endpoint: as a `collectd:` spec set it up, or with the default queues,
    /// registered on first use so that `/stats/` lists it only once it has been used.
    pub fn collectd(&self, broker: &Broker) -> CollectdFeed {
        if let Some(feed) = self.lock().collectd.clone() {
            return feed;
        }
        let spec: FeedSpec = "collectd".parse().expect("the default collectd spec parses");
        let Source::Collectd { data, event } = spec.source else { unreachable!("a collectd spec") };
        let counters = self.register(&spec.name, "collectd", data.to_string());
        let publisher = Publisher::new(Sink::Broker(broker.clone()), spec.pipeline, None, counters);
        let mut registry = self.lock();
        registry.collectd.get_or_insert(CollectdFeed { data, event, publisher }).clone()
    }
}

/// Filters, maps and publishes one feed's messages, counting as it goes; cloning is shallow.
#[derive(Clone)]
pub struct Publisher {
    sink: Sink,
    pipeline: Arc<Pipeline>,
    ttl: Option<Duration>,
    pub counters: Arc<FeedCounters>,
}

impl Publisher {
    pub fn new(sink: Sink, pipeline: Pipeline, ttl: Option<Duration>, counters: Arc<FeedCounters>) -> Self {
        Self { sink, pipeline: Arc::new(pipeline), ttl, counters }
    }

    /// Publishes `message` unless a filter drops it (then `Ok(None)`). A string is published
    /// as it is; any other JSON value as its compact text.
    pub async fn publish(&self, queue: &QueueName, message: Value) -> Result<Option<MessageKey>, SinkError> {
        let Some(message) = self.pipeline.apply(message) else {
            self.counters.filtered.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        let text = match message {
            Value::String(text) => text,
            other => other.to_string(),
        };
        match self.sink.publish(queue, text, self.ttl).await {
            Ok(key) => {
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(Some(key))
            }
            Err(err) => {
                if self.counters.error() {
                    tracing::warn!(%queue, %err, "feed: could not publish");
                }
                Err(err)
            }
        }
    }

    /// Counts a message that could not be read from the source, logging with back-off.
    pub fn source_error(&self, feed: &str, err: &dyn std::fmt::Display) {
        if self.counters.error() {
            tracing::warn!(feed, %err, "feed: bad input");
        }
    }
}

/// A text line or event as a message: with [`Format::Auto`], text holding a JSON object or
/// array is that document and anything else a string; with [`Format::Ndjson`] it must be JSON.
pub fn message_from_text(text: &str, format: Format) -> Result<Value, serde_json::Error> {
    match format {
        Format::Ndjson => serde_json::from_str(text),
        Format::Lines => Ok(Value::String(text.to_owned())),
        Format::Auto | Format::Sse => {
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                if let Ok(value) = serde_json::from_str(text) {
                    return Ok(value);
                }
            }
            Ok(Value::String(text.to_owned()))
        }
    }
}

/// Starts `specs` publishing into `sink`; listeners are bound before this returns, so a
/// busy port fails here. The feeds stop when `shutdown` is cancelled.
pub async fn start(
    specs: &[FeedSpec],
    sink: Sink,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<FeedRegistry> {
    let registry = FeedRegistry::default();
    for spec in specs {
        let source = &spec.source;
        let counters = registry.register(&spec.name, source.kind(), source.queue_label());
        let publisher = Publisher::new(sink.clone(), spec.pipeline.clone(), spec.ttl, counters);
        let (name, stop) = (spec.name.clone(), shutdown.clone());
        match source.clone() {
            Source::System { queue, interval, top } => {
                tracker.spawn(system::run(queue, interval, top, publisher, stop));
            }
            Source::Url { queue, url, format, max_backoff } => {
                let feed = url::UrlFeed { name, queue, url, format, max_backoff };
                tracker.spawn(feed.run(publisher, stop));
            }
            Source::File { queue, path, format, rate, looping } => {
                let feed = file::FileFeed { name, queue, path, format, rate, looping };
                tracker.spawn(feed.run(publisher, stop));
            }
            Source::Syslog { udp, tcp, prefix, queue } => {
                let feed = syslog::SyslogFeed { prefix, queue };
                feed.start(udp, tcp, publisher, stop, tracker).await?;
            }
            Source::Collectd { data, event } => {
                anyhow::ensure!(matches!(sink, Sink::Broker(_)), "collectd is an endpoint of `restmq serve`");
                registry.lock().collectd = Some(CollectdFeed { data, event, publisher });
            }
        }
        tracing::info!(feed = %spec.name, kind = source.kind(), "feed started");
    }
    Ok(registry)
}

/// Settings of `restmq feed`.
#[derive(Debug, Clone, clap::Args)]
pub struct FeedConfig {
    /// Feeds to run, e.g. `file:path=log.txt,queue=log,rate=0` (syntax in the README).
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<FeedSpec>,

    #[command(flatten)]
    pub server: crate::remote::ServerArg,
}

/// `restmq feed`: runs the feeds against a server until they end or `shutdown` is cancelled,
/// then logs their counters.
pub async fn run_standalone(config: FeedConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let registry = start(&config.specs, Sink::http(&config.server.server), &shutdown, &tracker).await?;
    tracker.close();
    tracker.wait().await;
    for (name, s) in registry.snapshot() {
        tracing::info!(
            feed = %name, published = s.published, filtered = s.filtered, errors = s.errors,
            reconnects = s.reconnects, "feed ended"
        );
    }
    Ok(())
}
