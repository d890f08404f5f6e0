//! NATS JetStream as a durable peer of the embedded store: each queue is a stream of its own
//! (subject = queue name) with work-queue retention and file storage. `publish` sends from K
//! connections (one async-nats client each), each waiting for its publish ack before the next;
//! `pop` fills the stream, then K connections take from one durable pull consumer: each asks
//! for one message without waiting (`{"batch":1,"no_wait":true}`) on a reply subject of its
//! own, acks it (`+ACK`, sent before its next request, as a consumer does), and stops at the
//! server's `404 No Messages`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use async_nats::{Client, StatusCode, Subject};
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::task::JoinSet;

use crate::http_load::{closed_loop, join, PublishOpts, Publisher};
use crate::measure::{histogram, latencies, record, CpuMeter, Sample};
use crate::target::{payload, Target};

/// The durable pull consumer `pop` takes from.
const CONSUMER: &str = "pop";

/// One pull request: one message, answered at once (`404` when the stream has none ready).
const PULL_ONE: &[u8] = br#"{"batch":1,"no_wait":true}"#;

/// A client publishing one body to one subject, waiting for each publish ack.
struct Publish {
    js: jetstream::Context,
    subject: Subject,
    body: Bytes,
}

impl Publisher for Publish {
    async fn send(&mut self) -> anyhow::Result<()> {
        self.js.publish(self.subject.clone(), self.body.clone()).await?.await?;
        Ok(())
    }
}

/// Publishes `size`-byte messages to `queue` for a while from `opts.conns` connections, each
/// waiting for the publish ack of one message before it sends the next.
pub async fn publish(target: &Target, queue: &str, opts: &PublishOpts) -> anyhow::Result<Sample> {
    create_stream(&connect(target.addr).await?, queue).await?;
    let body = Bytes::from(payload(opts.size, 0));
    let subject = Subject::from(queue);
    let mut publishers = Vec::with_capacity(opts.conns);
    for _ in 0..opts.conns {
        let js = jetstream::new(connect(target.addr).await?);
        publishers.push(Publish { js, subject: subject.clone(), body: body.clone() });
    }
    closed_loop(target.pid, opts, publishers).await
}

/// Fills `queue`'s stream with `prefill` messages, then takes them with `conns` connections
/// from one durable pull consumer until it has none. The sample counts the messages taken.
pub async fn pop(
    target: &Target,
    queue: &str,
    conns: usize,
    size: usize,
    prefill: u64,
) -> anyhow::Result<Sample> {
    let stream = create_stream(&connect(target.addr).await?, queue).await?;
    fill(target.addr, queue, conns, size, prefill).await?;
    let config = consumer::pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ..Default::default()
    };
    stream.create_consumer(config).await?;
    let next = Subject::from(format!("$JS.API.CONSUMER.MSG.NEXT.{queue}.{CONSUMER}"));
    let meter = CpuMeter::start(target.pid);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        let (addr, next) = (target.addr, next.clone());
        tasks.spawn(async move {
            let client = connect(addr).await?;
            let inbox = Subject::from(client.new_inbox());
            let mut replies = client.subscribe(inbox.clone()).await?;
            let (mut hist, mut count) = (histogram(), 0u64);
            loop {
                let t0 = Instant::now();
                client.publish_with_reply(next.clone(), inbox.clone(), Bytes::from_static(PULL_ONE)).await?;
                let message = replies.next().await.context("the reply subscription ended")?;
                match message.status {
                    None => {}
                    Some(StatusCode::NOT_FOUND) => break, // no message ready: the stream is drained
                    Some(status) => bail!("pull request answered {status}: {:?}", message.description),
                }
                let reply = message.reply.context("a message without its ack subject")?;
                client.publish(reply, Bytes::from_static(b"+ACK")).await?;
                record(&mut hist, t0.elapsed().as_nanos() as u64);
                count += 1;
            }
            client.flush().await?; // the last ack is at the server before the CPU reading
            anyhow::Ok((hist, count))
        });
    }
    let (hist, count) = join(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let (load_cpu, server_cpu) = meter.shares();
    Ok(Sample {
        count,
        rate: count as f64 / elapsed,
        lat_us: latencies(&hist),
        load_cpu,
        server_cpu,
        extra: 0.0,
    })
}

/// Publishes exactly `total` messages to `queue` over `conns` connections, each waiting for
/// its acks.
async fn fill(addr: SocketAddr, queue: &str, conns: usize, size: usize, total: u64) -> anyhow::Result<()> {
    let body = Bytes::from(payload(size, 0));
    let subject = Subject::from(queue);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        let (subject, body, next) = (subject.clone(), body.clone(), next.clone());
        tasks.spawn(async move {
            let js = jetstream::new(connect(addr).await?);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                js.publish(subject.clone(), body.clone()).await?.await?;
            }
            anyhow::Ok((histogram(), 0))
        });
    }
    join(tasks).await.map(drop)
}

/// Creates the stream `queue` on subject `queue`: work-queue retention, file storage, one
/// replica (the server's defaults for everything else).
async fn create_stream(client: &Client, queue: &str) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: queue.to_owned(),
        subjects: vec![queue.to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let js = jetstream::new(client.clone());
    js.create_stream(config).await.with_context(|| format!("creating the stream {queue}"))
}

/// A client connection of its own (one TCP connection).
async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    let url = format!("nats://{addr}");
    async_nats::connect(url.as_str()).await.with_context(|| format!("connecting to {url}"))
}
