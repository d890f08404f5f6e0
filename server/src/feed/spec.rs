//! The `--feed SPEC` syntax, parsed once at startup into a typed [`FeedSpec`].
//!
//! `KIND[:OPTION,OPTION,…]` where an option is `key=value` or a bare flag (`loop`). A comma
//! inside a value is written `\,`. Bare words after `map=` continue its field list, so
//! `map=host,cpu.total` keeps two fields. Every kind takes `queue=`, `name=` (its key in
//! `/stats/`), `ttl=` (seconds), `filter=` (repeatable) and `map=`; see the README.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use restmq_shared::QueueName;

use super::filter::{FieldPath, Filter, Pipeline};

/// One feed, as given on the command line.
#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// Its key in `/stats/`: `name=`, or `<kind>:<queue>`.
    pub name: String,
    pub source: Source,
    pub pipeline: Pipeline,
    /// Expiry of the messages it publishes.
    pub ttl: Option<Duration>,
}

/// Where a feed's messages come from, with the kind's own options.
#[derive(Debug, Clone)]
pub enum Source {
    /// Host metrics every `interval`, into `queue` (default `system`).
    System { queue: QueueName, interval: Duration, top: usize },
    /// An SSE or NDJSON stream.
    Url { queue: QueueName, url: String, format: Format, max_backoff: Duration },
    /// A file's lines, `rate` per second (0: as fast as the queue takes them).
    File { queue: QueueName, path: PathBuf, format: Format, rate: f64, looping: bool },
    /// A syslog listener; each message goes to `<prefix>:<host>`, or to `queue` when set.
    Syslog { udp: Option<SocketAddr>, tcp: Option<SocketAddr>, prefix: String, queue: Option<QueueName> },
    /// `POST /collectd/data` and `/collectd/event` of `restmq serve`.
    Collectd { data: QueueName, event: QueueName },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::System { .. } => "system",
            Self::Url { .. } => "url",
            Self::File { .. } => "file",
            Self::Syslog { .. } => "syslog",
            Self::Collectd { .. } => "collectd",
        }
    }

    /// The queue named in `/stats/`.
    pub fn queue_label(&self) -> String {
        match self {
            Self::System { queue, .. } | Self::Url { queue, .. } | Self::File { queue, .. } => {
                queue.to_string()
            }
            Self::Syslog { queue: Some(queue), .. } => queue.to_string(),
            Self::Syslog { prefix, .. } => prefix.clone(),
            Self::Collectd { data, .. } => data.to_string(),
        }
    }
}

/// How a stream or file is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// By content type (url) or by line: a line holding a JSON object or array is JSON.
    Auto,
    /// Server-sent events: one message per event's `data`.
    Sse,
    /// One JSON document per line; a line that is not JSON is an error.
    Ndjson,
    /// One text message per line.
    Lines,
}

impl FromStr for FeedSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse(text).map_err(|e| format!("feed {text:?}: {e}"))
    }
}

fn parse(text: &str) -> Result<FeedSpec, String> {
    let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
    let mut opts = Options::split(kind, rest)?;
    let filters = opts.take_all("filter").iter().map(|f| Filter::parse(f)).collect::<Result<_, _>>()?;
    let map = opts.take("map").map(|_| opts.map_fields.iter().map(|f| FieldPath::parse(f)).collect());
    let ttl = opts.take("ttl").map(|t| seconds(&t, "ttl")).transpose()?;
    let name = opts.take("name");
    let source = match kind {
        "system" => Source::System {
            queue: queue(opts.take("queue").as_deref().unwrap_or("system"))?,
            interval: opts.take("interval").map(|i| seconds(&i, "interval")).transpose()?.unwrap_or(SECOND),
            top: opts.take("top").map(|t| number(&t, "top")).transpose()?.unwrap_or(5.0) as usize,
        },
        "url" => Source::Url {
            queue: queue(&opts.require("queue")?)?,
            url: opts.require("url")?,
            format: format(opts.take("format"), &[Format::Auto, Format::Sse, Format::Ndjson])?,
            max_backoff: opts
                .take("max_backoff")
                .map(|b| seconds(&b, "max_backoff"))
                .transpose()?
                .unwrap_or(Duration::from_secs(30)),
        },
        "file" => Source::File {
            queue: queue(&opts.require("queue")?)?,
            path: PathBuf::from(opts.require("path")?),
            format: format(opts.take("format"), &[Format::Auto, Format::Lines, Format::Ndjson])?,
            rate: opts.take("rate").map(|r| number(&r, "rate")).transpose()?.unwrap_or(10.0),
            looping: opts.flag("loop"),
        },
        "syslog" => {
            let udp = opts.take("udp").map(|a| address(&a)).transpose()?;
            let tcp = opts.take("tcp").map(|a| address(&a)).transpose()?;
            let default = || address("127.0.0.1:5514");
            let (udp, tcp) = if udp.is_none() && tcp.is_none() {
                (Some(default()?), Some(default()?))
            } else {
                (udp, tcp)
            };
            let prefix = opts.take("prefix").unwrap_or_else(|| "syslogd".to_owned());
            queue(&format!("{prefix}:host"))?;
            Source::Syslog { udp, tcp, prefix, queue: opts.take("queue").map(|q| queue(&q)).transpose()? }
        }
        "collectd" => Source::Collectd {
            data: queue(opts.take("data").as_deref().unwrap_or("collectd_data"))?,
            event: queue(opts.take("event").as_deref().unwrap_or("collectd_event"))?,
        },
        other => {
            return Err(format!("unknown feed kind {other:?}; known are system, url, file, syslog, collectd"))
        }
    };
    opts.finish()?;
    let name = name.unwrap_or_else(|| format!("{}:{}", source.kind(), source.queue_label()));
    Ok(FeedSpec { name, source, pipeline: Pipeline { filters, map }, ttl })
}

const SECOND: Duration = Duration::from_secs(1);

/// The options of one spec, consumed as the kind's parser asks for them.
struct Options {
    pairs: Vec<(String, String)>,
    flags: Vec<String>,
    map_fields: Vec<String>,
}

impl Options {
    fn split(kind: &str, rest: &str) -> Result<Self, String> {
        let mut opts = Self { pairs: Vec::new(), flags: Vec::new(), map_fields: Vec::new() };
        let mut in_map = false;
        for token in split_unescaped(rest) {
            if token.is_empty() {
                continue;
            }
            match token.split_once('=') {
                Some((key, value)) => {
                    in_map = key == "map";
                    if in_map {
                        opts.map_fields.push(value.to_owned());
                    }
                    opts.pairs.push((key.to_owned(), value.to_owned()));
                }
                None if FLAGS.contains(&(kind, token.as_str())) => opts.flags.push(token),
                None if in_map => opts.map_fields.push(token),
                None => return Err(format!("{token:?} is neither key=value nor a flag of {kind}")),
            }
        }
        opts.map_fields.retain(|f| !f.is_empty());
        Ok(opts)
    }

    /// The value of a single-valued option.
    /// A repeat is put back, so that [`Options::finish`] refuses it.
    fn take(&mut self, key: &str) -> Option<String> {
        let mut found = self.take_all(key);
        let last = found.pop();
        self.pairs.extend(found.into_iter().map(|v| (key.to_owned(), v)));
        last
    }

    fn take_all(&mut self, key: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.pairs).into_iter().partition(|(k, _)| k == key);
        self.pairs = kept;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    fn require(&mut self, key: &'static str) -> Result<String, String> {
        self.take(key).filter(|v| !v.is_empty()).ok_or_else(|| format!("missing {key}="))
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.flags.len();
        self.flags.retain(|f| f != name);
        self.flags.len() != before
    }

    /// Fails on any option the kind did not take.
    fn finish(self) -> Result<(), String> {
        match self.pairs.first().map(|(k, _)| k).or(self.flags.first()) {
            Some(key) => Err(format!("unknown or repeated option {key:?}")),
            None => Ok(()),
        }
    }
}

/// Bare flags, per kind.
const FLAGS: &[(&str, &str)] = &[("file", "loop")];

/// Splits on commas not preceded by a backslash; `\,` becomes `,`.
fn split_unescaped(text: &str) -> Vec<String> {
    let mut tokens = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => tokens.last_mut().unwrap().push(chars.next().unwrap()),
            ',' => tokens.push(String::new()),
            c => tokens.last_mut().unwrap().push(c),
        }
    }
    tokens
}

fn queue(name: &str) -> Result<QueueName, String> {
    QueueName::try_from(name).map_err(|e| format!("queue {name:?}: {e}"))
}

fn number(text: &str, what: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("{what} must be a number ≥ 0, not {text:?}")),
    }
}

/// `2`, `1.5`, `2s` or `500ms`.
fn seconds(text: &str, what: &str) -> Result<Duration, String> {
    let (digits, scale) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let secs = number(digits, what)? * scale;
    if secs <= 0.0 {
        return Err(format!("{what} must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("{text:?} is not an address like 127.0.0.1:5514"))
}

fn format(given: Option<String>, allowed: &[Format]) -> Result<Format, String> {
    let format = match given.as_deref() {
        None | Some("auto") => Format::Auto,
        Some("sse") => Format::Sse,
        Some("ndjson") => Format::Ndjson,
        Some("lines") => Format::Lines,
        Some(other) => return Err(format!("unknown format {other:?}")),
    };
    if allowed.contains(&format) {
        Ok(format)
    } else {
        Err(format!("format {format:?} does not apply here"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> FeedSpec {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A file spec reads its path, queue, rate and the bare `loop` flag; names default to kind:queue.
    #[test]
    fn file_spec() {
        let s = spec("file:path=demo/text.txt,queue=text,rate=5,loop");
        assert_eq!(s.name, "file:text");
        let Source::File { queue, path, rate, looping, format } = s.source else { panic!() };
        assert_eq!(
            (queue.as_str(), path.to_str().unwrap(), rate, looping),
            ("text", "demo/text.txt", 5.0, true)
        );
        assert_eq!(format, Format::Auto);
    }

    /// Defaults: `system` publishes to queue `system` once a second; syslog listens on 5514.
    #[test]
    fn defaults() {
        let s = spec("system");
        let Source::System { queue, interval, top } = s.source else { panic!() };
        assert_eq!((queue.as_str(), interval, top), ("system", SECOND, 5));
        let Source::Syslog { udp, tcp, prefix, queue } = spec("syslog").source else { panic!() };
        assert_eq!(udp, tcp);
        assert_eq!((udp.unwrap().port(), prefix.as_str(), queue), (5514, "syslogd", None));
    }

    /// `map=` takes the bare words after it; `filter=` repeats; `\,` is a literal comma.
    #[test]
    fn map_filter_and_escapes() {
        let s =
            spec(r"url:url=http://x/y,queue=q,map=host,cpu.total,filter=host~^a{1\,3}$,filter=n=2,ttl=30");
        let map = s.pipeline.map.unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(s.pipeline.filters.len(), 2);
        assert_eq!(s.ttl, Some(Duration::from_secs(30)));
    }

    /// Mistakes are named: unknown kind, missing option, unknown option, bad number, bad regex.
    #[test]
    fn errors() {
        for (text, says) in [
            ("nope:queue=q", "unknown feed kind"),
            ("file:queue=q", "missing path="),
            ("file:path=x", "missing queue="),
            ("system:colour=red", "unknown or repeated option \"colour\""),
            ("system:queue=a,queue=b", "unknown or repeated"),
            ("system:fast", "neither key=value nor a flag"),
            ("file:path=x,queue=q,rate=-1", "rate must be"),
            ("system:interval=0", "more than zero"),
            ("system:filter=a~(", "regex"),
            ("system:queue=a/b", "queue \"a/b\""),
            ("url:url=http://x,queue=q,format=lines", "does not apply"),
        ] {
            let err = text.parse::<FeedSpec>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
