//! The JSON protocol of `POST /queue`: `{"cmd":"add"|"get"|"take"|"del", …}` and its replies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{MessageKey, QueueName};

/// One request of the JSON protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// Add `value` to `queue`.
    Add {
        queue: QueueName,
        #[serde(deserialize_with = "value_text")]
        value: String,
    },
    /// Soft get: peek at the oldest message and count the read.
    Get { queue: QueueName },
    /// Hard get: remove and return the oldest message.
    Take { queue: QueueName },
    /// Delete one message of `queue` by key.
    Del { queue: QueueName, key: MessageKey },
    /// Hard get under a lease of `lease` seconds (default 30): ack it, or it comes back.
    Reserve {
        queue: QueueName,
        #[serde(default)]
        lease: Option<u64>,
    },
    /// Acknowledge a reserved message.
    Ack { queue: QueueName, key: MessageKey },
    /// Give a reserved message back to the head of its queue.
    Nack { queue: QueueName, key: MessageKey },
}

/// The `cmd` names [`Command`] accepts, read from its own `Deserialize`, so that no second list
/// can fall behind it.
pub fn command_names() -> &'static [&'static str] {
    tag_names::<Command>("cmd")
}

/// The variant names of an internally tagged enum (`#[serde(tag = "…")]`): its `Deserialize`
/// is handed an unknown tag and reports, through `unknown_variant`, the names it expected.
pub fn tag_names<T: serde::de::DeserializeOwned>(tag: &'static str) -> &'static [&'static str] {
    #[derive(Debug)]
    struct Expected(&'static [&'static str]);
    impl std::fmt::Display for Expected {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "expected one of {:?}", self.0)
        }
    }
    impl std::error::Error for Expected {}
    impl serde::de::Error for Expected {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Self(&[])
        }
        fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
            Self(expected)
        }
    }
    let probe = serde::de::value::MapDeserializer::<_, Expected>::new(std::iter::once((tag, "")));
    T::deserialize(probe).err().map_or(&[], |Expected(names)| names)
}

/// Values are opaque text: a JSON string is taken as is, anything else as its compact JSON.
fn value_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(value_to_text(Value::deserialize(d)?))
}

/// A JSON value as message text: strings unquoted, everything else as compact JSON.
pub fn value_to_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// One answer of the JSON protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandReply {
    /// `get`: the message and how many times it was soft-read.
    Peeked { queue: QueueName, key: MessageKey, value: String, count: u64 },
    /// `del`: whether the key existed.
    Deleted { queue: QueueName, key: MessageKey, deleted: bool },
    /// `reserve`: the message and how many times it has been handed out.
    Leased { queue: QueueName, key: MessageKey, value: String, deliveries: u32 },
    /// `ack`: whether the key was leased.
    Acked { queue: QueueName, key: MessageKey, acked: bool },
    /// `nack`: whether the key was leased.
    Nacked { queue: QueueName, key: MessageKey, nacked: bool },
    /// `add` and `take`.
    Message { queue: QueueName, key: MessageKey, value: String },
    /// `get` / `take` on an empty queue: `{"error":"empty queue"}` (RestMQ's answer).
    Empty { error: String },
}

impl CommandReply {
    pub fn empty() -> Self {
        Self::Empty { error: "empty queue".to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command names come from the enum: every variant, and each one parses as a `cmd`.
    #[test]
    fn command_names_are_the_variants() {
        assert_eq!(command_names(), ["add", "get", "take", "del", "reserve", "ack", "nack"]);
        for name in command_names() {
            let doc = serde_json::json!({"cmd": name, "queue": "q", "key": "q:1", "value": "v"});
            assert!(serde_json::from_value::<Command>(doc).is_ok(), "{name}");
        }
    }

    /// Object values become compact JSON text; strings stay strings; numbers stay text.
    #[test]
    fn add_values_are_text() {
        let cmd: Command =
            serde_json::from_str(r#"{"cmd":"add","queue":"q","value":{"a": [1, 2]}}"#).unwrap();
        assert_eq!(cmd, Command::Add { queue: "q".parse().unwrap(), value: r#"{"a":[1,2]}"#.to_owned() });
        let cmd: Command = serde_json::from_str(r#"{"cmd":"add","queue":"q","value":"123"}"#).unwrap();
        assert!(matches!(cmd, Command::Add { value, .. } if value == "123"));
    }

    /// Replies serialize to RestMQ's shapes.
    #[test]
    fn reply_shapes() {
        let q: QueueName = "q".parse().unwrap();
        let reply =
            CommandReply::Message { queue: q.clone(), key: MessageKey::new(q, 1), value: "v".to_owned() };
        assert_eq!(serde_json::to_string(&reply).unwrap(), r#"{"queue":"q","key":"q:1","value":"v"}"#);
        assert_eq!(serde_json::to_string(&CommandReply::empty()).unwrap(), r#"{"error":"empty queue"}"#);
    }
}
