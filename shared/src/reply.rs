//! JSON bodies of the REST routes and of the streaming transports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{MessageKey, Policy, QueueName, QueueStatus};

/// One streamed message: a COMET line, a WebSocket frame, an SSE `data:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMessage {
    pub key: MessageKey,
    pub value: String,
}

/// The answer of a REST get: `count` is how many times the message was soft-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetReply {
    pub key: MessageKey,
    pub value: String,
    pub count: u64,
    /// With `reserve`: how many times the message has been handed out, this time included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
}

/// A message streamed to an `ack=1` consumer: it must be acknowledged by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasedStreamMessage {
    pub key: MessageKey,
    pub value: String,
    pub deliveries: u32,
}

/// `DELETE /q/<queue>/<key>` (ack) and `POST /q/<queue>/<key>` (nack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseReply {
    pub queue: QueueName,
    pub key: MessageKey,
    /// Whether the key was leased (and so is now acknowledged or given back).
    pub done: bool,
}

/// `POST /q/<queue>.dead/redrive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveReply {
    pub queue: QueueName,
    pub redriven: u64,
}

/// Sent to a streaming consumer just before the server closes its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseNotice {
    pub queue: QueueName,
    /// Why: `purged`, `slow_consumer` or `shutdown`.
    pub closed: String,
}

/// Sent first to a consumer resuming with `since` when the history no longer reaches back:
/// messages `from..=to` cannot be replayed. `{"gap":{"from":"q:5","to":"q:9"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapNotice {
    pub gap: GapRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapRange {
    pub from: MessageKey,
    pub to: MessageKey,
}

/// `GET /p/<queue>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReply {
    pub queue: QueueName,
    pub value: Policy,
}

/// `GET /control/<queue>`: RestMQ's `{"queue":"q","status":{"queue":"q","status":1}}`, and
/// the status as a word in `state` (added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub queue: QueueName,
    pub status: ControlStat,
    pub state: QueueStatus,
}

/// `GET /control/`: RestMQ's `{"queues":{"q":{"queue":"q","status":1}},"count":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReply {
    pub queues: BTreeMap<String, ControlStat>,
    pub count: u64,
}

/// `POST /control/<queue>`: `{"stat":{"queue":"q","status":1}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub stat: ControlStat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStat {
    pub queue: QueueName,
    /// 1 started, 0 stopped.
    pub status: u8,
}

/// `DELETE /q/<queue>`: `status` is 1 when the queue existed and was purged, else 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReply {
    pub queue: QueueName,
    pub status: u8,
}

/// `GET /j/<queue>`: the newest keys (newest first) and the length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentReply {
    pub queue: QueueName,
    pub len: u64,
    pub keys: Vec<MessageKey>,
}

/// One queue's figures in `/stats/` and `/stats/<queue>`: RestMQ's `queue` (of `/stats/<q>`),
/// `name`, `len`, `status` and `policy` (of `/stats/`, as RestMQ's raw values), then added ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: QueueName,
    pub name: QueueName,
    pub len: u64,
    /// RestMQ's value: `1` started, `0` stopped, `""` never set.
    #[serde(with = "restmq_code")]
    pub status: Option<u8>,
    /// RestMQ's value: `1` broadcast, `2` roundrobin, `""` never set.
    #[serde(with = "restmq_code")]
    pub policy: Option<u8>,
    /// The status as a word (added).
    pub state: QueueStatus,
    /// The policy as a word; never set reads as `broadcast` (added).
    pub policy_name: Policy,
    /// Streaming consumers connected now.
    pub consumers: u64,
    /// Messages added through this server since it started.
    pub added: u64,
    /// Messages removed by hard gets since the server started.
    pub taken: u64,
    /// Messages handed to streaming consumers since the server started (once per consumer).
    pub delivered: u64,
}

/// `GET /stats/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub count: u64,
    pub queues: BTreeMap<String, QueueStats>,
    /// The store backend: `memory`, `embedded` or `redis`.
    pub store: String,
    /// The feeders of this server by name, with their counters; absent when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds: BTreeMap<String, FeedStats>,
}

/// One feeder's figures in `/stats/` (`feeds`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStats {
    /// `system`, `url`, `file`, `syslog` or `collectd`.
    pub kind: String,
    /// The queue it publishes to (syslog: the prefix of `<prefix>:<host>`).
    pub queue: String,
    /// Messages published.
    pub published: u64,
    /// Messages dropped by the feed's filters.
    pub filtered: u64,
    /// Messages or connections that failed.
    pub errors: u64,
    /// Times the feed reconnected to its source.
    pub reconnects: u64,
}

/// A message of the `system` feed: one sample of the host's metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSample {
    pub host: String,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub ts: u64,
    pub cpu: CpuSample,
    pub memory: MemorySample,
    pub swap: MemorySample,
    pub net: NetSample,
    pub load: LoadSample,
    /// The busiest processes, by CPU.
    pub top: Vec<ProcessSample>,
}

/// CPU use in percent: all cores together and each core.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSample {
    pub total: f32,
    pub cores: Vec<f32>,
}

/// Memory or swap, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySample {
    pub total: u64,
    pub used: u64,
}

/// Network throughput over all interfaces but loopback, in bytes per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetSample {
    pub rx: f64,
    pub tx: f64,
}

/// Load averages over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSample {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// One process in [`SystemSample::top`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    pub pid: u32,
    pub name: String,
    /// Percent of one core (may exceed 100 on several cores).
    pub cpu: f32,
    /// Resident memory in bytes.
    pub memory: u64,
}

/// One server process in `GET /nodes` and `GET /nodes/pick`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReply {
    /// Unique per process.
    pub id: String,
    /// The address it serves on.
    pub addr: String,
    /// Open streaming connections.
    pub load: u64,
    /// Streaming consumers per queue.
    pub consumers: BTreeMap<String, u64>,
}

/// `GET /nodes`: every live process, least loaded first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodesReply {
    pub nodes: Vec<NodeReply>,
}

/// RestMQ's stored codes as its `/stats/` showed them: a number, or `""` when never set.
mod restmq_code {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(code: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
        match code {
            Some(n) => s.serialize_u8(*n),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
        struct Code;
        impl Visitor<'_> for Code {
            type Value = Option<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or an empty string")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<u8>, E> {
                u8::try_from(n).map(Some).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<u8>, E> {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse().map(Some).map_err(E::custom)
            }
        }
        d.deserialize_any(Code)
    }
}
