//! What is measured: a server at an address, speaking restmq's, nchan's or a ceiling's routes
//! (or, for the durable peers, NATS or beanstalkd's own protocol), and the stamped payloads
//! every scenario sends.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;

/// The routes a server under test speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// restmq: `POST /q/<q>` (form `value=`), `GET /q/<q>`, `/ws/<q>`, `/stats/<q>`.
    Restmq,
    /// nchan: `POST /pub/<q>` (raw body), WebSocket `/sub/<q>`, channel info on `GET /pub/<q>`.
    Nchan,
    /// The ceiling example's `POST /hello/<q>` (axum alone).
    Hello,
    /// The ceiling example's `POST /lpush/<q>` (axum + one Redis LPUSH).
    Lpush,
    /// NATS JetStream (no HTTP): a file-stored work-queue stream per queue ([`crate::jetstream`]).
    Jetstream,
    /// beanstalkd's text protocol (no HTTP): a tube per queue ([`crate::beanstalk`]).
    Beanstalkd,
}

impl Flavor {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "restmq" => Some(Self::Restmq),
            "nchan" => Some(Self::Nchan),
            "hello" => Some(Self::Hello),
            "lpush" => Some(Self::Lpush),
            "jetstream" => Some(Self::Jetstream),
            "beanstalkd" => Some(Self::Beanstalkd),
            _ => None,
        }
    }
}

/// A server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Shown in reports, e.g. `restmq-memory`.
    pub name: String,
    pub flavor: Flavor,
    pub addr: SocketAddr,
    /// The server's process, for RSS and CPU readings (`None` when unknown).
    pub pid: Option<u32>,
}

impl Target {
    /// The path a message for `queue` is published to (the subject or tube for the peers
    /// that speak no HTTP).
    pub fn publish_path(&self, queue: &str) -> String {
        match self.flavor {
            Flavor::Restmq => format!("/q/{queue}"),
            Flavor::Nchan => format!("/pub/{queue}"),
            Flavor::Hello => format!("/hello/{queue}"),
            Flavor::Lpush => format!("/lpush/{queue}"),
            Flavor::Jetstream | Flavor::Beanstalkd => queue.to_owned(),
        }
    }

    /// The request body and content type that publish `payload`.
    pub fn publish_body(&self, payload: &[u8]) -> (Bytes, &'static str) {
        match self.flavor {
            Flavor::Nchan | Flavor::Jetstream | Flavor::Beanstalkd => {
                (Bytes::copy_from_slice(payload), "text/plain")
            }
            // Payloads are alphanumeric and `-`: no form escaping needed.
            _ => {
                let mut body = Vec::with_capacity(payload.len() + 6);
                body.extend_from_slice(b"value=");
                body.extend_from_slice(payload);
                (Bytes::from(body), "application/x-www-form-urlencoded")
            }
        }
    }

    /// The WebSocket path of a consumer of `queue`, if this flavor streams.
    pub fn subscribe_path(&self, queue: &str) -> Option<String> {
        match self.flavor {
            Flavor::Restmq => Some(format!("/ws/{queue}")),
            Flavor::Nchan => Some(format!("/sub/{queue}")),
            _ => None,
        }
    }

    /// The path that reports `queue`'s consumers, and the JSON field that counts them.
    pub fn consumers_query(&self, queue: &str) -> Option<(String, &'static str)> {
        match self.flavor {
            Flavor::Restmq => Some((format!("/stats/{queue}"), "\"consumers\"")),
            Flavor::Nchan => Some((format!("/pub/{queue}"), "\"subscribers\"")),
            _ => None,
        }
    }

    /// Whether `GET` on the publish path takes a message (a consuming get).
    pub fn can_pop(&self) -> bool {
        self.flavor == Flavor::Restmq
    }
}

/// The instant every stamp counts from (one per process).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Width of a stamp: `T` and 16 digits of nanoseconds, then `-`.
const STAMP_LEN: usize = 18;

/// A payload of `size` bytes (at least the stamp) carrying `stamp_ns`: `T<16 digits>-xxx…`.
pub fn payload(size: usize, stamp_ns: u64) -> Vec<u8> {
    let mut out = format!("T{stamp_ns:016}-").into_bytes();
    out.resize(size.max(STAMP_LEN), b'x');
    out
}

/// The stamp in a received frame: the 16 digits after its first `T`.
pub fn find_stamp(frame: &[u8]) -> Option<u64> {
    let at = frame.iter().position(|&b| b == b'T')?;
    let digits = frame.get(at + 1..at + 17)?;
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// The number after `"field":` in a JSON document (enough for the consumer counts).
pub fn json_number(doc: &[u8], field: &str) -> Option<u64> {
    let text = std::str::from_utf8(doc).ok()?;
    let rest = text[text.find(field)? + field.len()..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp survives the trip through restmq's JSON frame and nchan's raw frame.
    #[test]
    fn stamp_round_trip() {
        let p = payload(64, 1_234_567);
        assert_eq!(p.len(), 64);
        assert_eq!(find_stamp(&p), Some(1_234_567));
        let frame = format!("{{\"key\":\"e2e:7\",\"value\":\"{}\"}}", String::from_utf8(p).unwrap());
        assert_eq!(find_stamp(frame.as_bytes()), Some(1_234_567));
        assert_eq!(find_stamp(b"no stamp"), None);
    }

    /// Consumer counts are read from restmq's stats and nchan's channel info.
    #[test]
    fn reads_counts() {
        assert_eq!(json_number(br#"{"name":"q","consumers": 12,"len":0}"#, "\"consumers\""), Some(12));
        assert_eq!(json_number(br#"{"messages": 0, "subscribers": 5000}"#, "\"subscribers\""), Some(5000));
        assert_eq!(json_number(b"{}", "\"subscribers\""), None);
    }
}
