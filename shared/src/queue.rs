//! Per-queue delivery settings: the policy and the started/paused status.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How streaming consumers of a queue share its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Every consumer gets every message (RestMQ's default).
    #[default]
    Broadcast,
    /// Each message goes to exactly one consumer, in turn.
    Roundrobin,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Broadcast => "broadcast",
            Self::Roundrobin => "roundrobin",
        }
    }

    /// RestMQ's stored code: 1 broadcast, 2 roundrobin.
    pub fn as_number(self) -> u8 {
        match self {
            Self::Broadcast => 1,
            Self::Roundrobin => 2,
        }
    }

    /// Parses the `policy` argument of `POST /p/<queue>`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "broadcast" => Some(Self::Broadcast),
            "roundrobin" => Some(Self::Roundrobin),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether streaming delivery of a queue runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    #[default]
    Started,
    Paused,
}

impl QueueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Paused => "paused",
        }
    }

    /// RestMQ's numeric form: 1 started, 0 stopped.
    pub fn as_number(self) -> u8 {
        match self {
            Self::Started => 1,
            Self::Paused => 0,
        }
    }

    /// Parses the `status` argument of `POST /control/<queue>` (`start` / `stop`).
    pub fn parse_command(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Self::Started),
            "stop" => Some(Self::Paused),
            _ => None,
        }
    }
}

impl fmt::Display for QueueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
