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
}

/// Sent to a streaming consumer just before the server closes its stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseNotice {
    pub queue: QueueName,
    /// Why: `purged`, `slow_consumer` or `shutdown`.
    pub closed: String,
}

/// `GET /p/<queue>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReply {
    pub queue: QueueName,
    pub value: Policy,
}

/// `GET /control/<queue>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub queue: QueueName,
    pub status: QueueStatus,
}

/// `GET /control/`: every queue's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReply {
    pub queues: BTreeMap<String, QueueStatus>,
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

/// One queue's figures in `/stats/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub name: QueueName,
    pub len: u64,
    pub status: QueueStatus,
    pub policy: Policy,
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
}
