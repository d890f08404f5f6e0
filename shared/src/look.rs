//! Wire types of looking without taking: `/browse/<q>`, `/history/<q>` and `/consumers/<q>`.
//! (Observers, `?observe=1` on a stream, receive ordinary [`crate::StreamMessage`]s.)

use serde::{Deserialize, Serialize};

use crate::{MessageKey, QueueName};

/// `GET /browse/<queue>?limit=N&after=<key>[&leased=1]`: a page of the waiting (or, with
/// `leased=1`, the leased) messages, oldest first. Browsing changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseReply {
    pub queue: QueueName,
    /// Messages waiting in the queue (leased and delayed ones not included).
    pub len: u64,
    pub messages: Vec<BrowsedMessage>,
    /// The key to pass as `after` for the next page; `null` on the last page.
    pub next: Option<MessageKey>,
}

/// One message of a browse page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowsedMessage {
    pub key: MessageKey,
    pub value: String,
    /// How many times it was soft-read (`GET /q/<q>?soft=1`, RestMQ's peek).
    pub count: u64,
    /// When it vanishes unread (ttl), in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Leased messages only: when the lease ends, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// Leased messages only: deliveries so far, this lease included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
}

/// `GET /history/<queue>`: the last hour of a queue's figures, one point per `step` seconds,
/// oldest first. On Redis the figures are summed over every process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReply {
    pub queue: QueueName,
    /// Seconds between points.
    pub step: u64,
    pub points: Vec<HistoryPoint>,
}

/// A queue's figures over one step: `len` and `consumers` as at its end, the counters as
/// how many happened within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HistoryPoint {
    /// The end of the step, in seconds since the Unix epoch.
    pub t: u64,
    pub len: u64,
    pub added: u64,
    pub taken: u64,
    pub delivered: u64,
    pub consumers: u64,
}

/// `GET /consumers/<queue>`: who streams from the queue, on every process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumersReply {
    pub queue: QueueName,
    pub consumers: Vec<ConsumerInfo>,
}

/// One streaming connection on a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    /// `consumer` (takes messages) or `observer` (looks only).
    pub mode: String,
    /// `ws`, `sse` or `comet`.
    pub transport: String,
    /// The client's address as the server saw it.
    pub addr: String,
    /// When it connected, in seconds since the Unix epoch.
    pub since: u64,
    /// Messages written to it so far.
    pub delivered: u64,
    /// Whether it acknowledges each message (`ack=1`).
    pub ack: bool,
    /// The process it is connected to (its node id).
    pub node: String,
}
