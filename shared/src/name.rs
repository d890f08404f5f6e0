//! Queue names and message keys: the one place where their syntax is checked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest queue name accepted, in bytes; a name ending `.dead` may be longer by that
/// suffix, so that every queue has its dead-letter queue `<queue>.dead`.
pub const MAX_QUEUE_NAME_LEN: usize = 128;

/// The suffix of a dead-letter queue's name.
pub const DEAD_SUFFIX: &str = ".dead";

/// No queue name starts with this: RestMQ's status key of queue `q` is `queuestat::q`, which a
/// queue named `queuestat:` would own as its message `q`.
pub const RESERVED_PREFIX: &str = "queuestat:";

/// Why a queue name or message key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    BadChar(char),
    Reserved,
    BadKey,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("queue name is empty"),
            Self::TooLong => write!(f, "queue name is longer than {MAX_QUEUE_NAME_LEN} bytes"),
            Self::BadChar(c) => write!(f, "queue name has {c:?}; allowed are letters, digits and . _ - : @"),
            Self::Reserved => write!(
                f,
                "queue names starting {RESERVED_PREFIX:?} are reserved: RestMQ keeps queue status in keys of that form"
            ),
            Self::BadKey => f.write_str("message key must be <queue>:<n> with n a positive integer"),
        }
    }
}

impl std::error::Error for NameError {}

/// A validated queue name: 1 to 128 bytes of ASCII letters, digits and `.` `_` `-` `:` `@`,
/// not starting `queuestat:` ([`RESERVED_PREFIX`]).
///
/// The colon is allowed so that RestMQ's `syslogd:<host>` queues keep their names; keys are
/// parsed from the right, so `a:b:7` is message 7 of queue `a:b`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

impl QueueName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let limit = MAX_QUEUE_NAME_LEN + if name.ends_with(DEAD_SUFFIX) { DEAD_SUFFIX.len() } else { 0 };
        if name.len() > limit {
            return Err(NameError::TooLong);
        }
        if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
            return Err(NameError::BadChar(c));
        }
        if name.starts_with(RESERVED_PREFIX) {
            return Err(NameError::Reserved);
        }
        Ok(())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')
}

impl TryFrom<String> for QueueName {
    type Error = NameError;
    fn try_from(name: String) -> Result<Self, NameError> {
        Self::check(&name)?;
        Ok(Self(name))
    }
}

impl TryFrom<&str> for QueueName {
    type Error = NameError;
    fn try_from(name: &str) -> Result<Self, NameError> {
        Self::check(name)?;
        Ok(Self(name.to_owned()))
    }
}

impl std::str::FromStr for QueueName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::try_from(s)
    }
}

impl From<QueueName> for String {
    fn from(name: QueueName) -> String {
        name.0
    }
}

impl AsRef<str> for QueueName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message key `<queue>:<n>`: `n` counts from 1 per queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageKey {
    pub queue: QueueName,
    pub n: u64,
}

impl MessageKey {
    pub fn new(queue: QueueName, n: u64) -> Self {
        Self { queue, n }
    }
}

impl TryFrom<&str> for MessageKey {
    type Error = NameError;
    fn try_from(key: &str) -> Result<Self, NameError> {
        let (queue, n) = key.rsplit_once(':').ok_or(NameError::BadKey)?;
        let n: u64 = n.parse().map_err(|_| NameError::BadKey)?;
        if n == 0 || !key[queue.len() + 1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::BadKey);
        }
        Ok(Self { queue: QueueName::try_from(queue)?, n })
    }
}

impl TryFrom<String> for MessageKey {
    type Error = NameError;
    fn try_from(key: String) -> Result<Self, NameError> {
        Self::try_from(key.as_str())
    }
}

impl std::str::FromStr for MessageKey {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::try_from(s)
    }
}

impl From<MessageKey> for String {
    fn from(key: MessageKey) -> String {
        key.to_string()
    }
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.queue, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names accept RestMQ's `syslogd:<host>` form and refuse path and space characters.
    #[test]
    fn queue_names() {
        assert!(QueueName::try_from("syslogd:web-1.example").is_ok());
        assert!(QueueName::try_from("jobs.dead").is_ok());
        assert_eq!(QueueName::try_from(""), Err(NameError::Empty));
        assert_eq!(QueueName::try_from("a/b"), Err(NameError::BadChar('/')));
        assert_eq!(QueueName::try_from("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(QueueName::try_from("x".repeat(129)), Err(NameError::TooLong));
        assert!(
            QueueName::try_from(format!("{}.dead", "x".repeat(128))).is_ok(),
            "every queue has its .dead"
        );
        assert_eq!(QueueName::try_from(format!("{}.dead.dead", "x".repeat(128))), Err(NameError::TooLong));
    }

    /// Names that RestMQ's `queuestat::<q>` status keys would own are refused; near misses are not.
    #[test]
    fn reserved_names() {
        for name in ["queuestat:", "queuestat::7", "queuestat:jobs"] {
            assert_eq!(QueueName::try_from(name), Err(NameError::Reserved), "{name}");
        }
        for name in ["queuestat", "queuestat.x", "xqueuestat:", "QUEUESTAT:", "restmq"] {
            assert!(QueueName::try_from(name).is_ok(), "{name}");
        }
        assert!(MessageKey::try_from("queuestat::7").is_err());
    }

    /// Keys parse from the right, so queue names with colons keep working.
    #[test]
    fn message_keys() {
        let key = MessageKey::try_from("syslogd:host:42").unwrap();
        assert_eq!(key.queue.as_str(), "syslogd:host");
        assert_eq!(key.n, 42);
        assert_eq!(key.to_string(), "syslogd:host:42");
        for bad in ["q", "q:", "q:0", "q:-1", "q:+1", ":1", "q:1x"] {
            assert!(MessageKey::try_from(bad).is_err(), "{bad}");
        }
    }
}
