//! The Redis key namespace: RestMQ's layout, exactly, and the keys restmq adds, laid out so
//! that no two (queue, purpose) pairs, and no queue and the server, can ever share a key,
//! whatever the names.
//!
//! RestMQ's own keys (kept as they are, so a server can serve an existing RestMQ Redis):
//!
//! | key | holds |
//! |---|---|
//! | `QUEUESET` | set of queue names |
//! | `<q>:UUID` | the message counter |
//! | `<q>:<n>` | a message value (optional TTL) |
//! | `<q>:queue` | list of message keys, LPUSH in, RPOP out |
//! | `<q>:queuepolicy` | `"1"` broadcast, `"2"` roundrobin |
//! | `queuestat::<q>` | `"1"` started, `"0"` stopped |
//! | `<q>:<n>:refcount` | soft-read count |
//!
//! These can only collide through `queuestat::<q>`, which is message `<q>` of a queue named
//! `queuestat:`: names starting `queuestat:` are refused ([`QueueName`]).
//!
//! Every key restmq adds holds `|`, which no queue name may contain, and what stands before
//! the first `|` names its owner: `restmq` the server, `<q>:` a queue, `<q>:<n>` a message.
//! Two owners never write the same text there (a queue's ends with `:`, a message's holds a
//! `:` but does not end with one, the server's holds none), and each owner's purposes are
//! fixed words, the idempotency key last and verbatim, so the mapping is one-to-one.
//!
//! | key | holds |
//! |---|---|
//! | `restmq\|delayed`, `restmq\|ttl`, `restmq\|leased` | sets of queues to visit in the passes |
//! | `restmq\|nodes`, `restmq\|node\|<id>` | processes and their presence |
//! | `<q>:\|delayed` | delayed message keys, scored by when they become visible |
//! | `<q>:\|ttl` | keys of messages with a ttl, scored by expiry |
//! | `<q>:\|leased` | leased message keys, scored by lease deadline |
//! | `<q>:\|idem\|<key>` | what a publish with that `Idempotency-Key` answered |
//! | `<q>:\|observed` | present while some process has observers of the queue |
//! | `<q>:\|fanout` | the broadcast log: messages moved out of the list for every process |
//! | `<q>:\|readers` | processes reading the broadcast log, scored by when they last did |
//! | `<q>:<n>\|deliveries` | how often a message was leased (written by the scripts) |
//!
//! In cluster mode `<q>` is written `{<q>}` in every key (so `{jobs}:7`), which Redis hashes
//! by the braces' content; clients still see `jobs:7`.

use restmq_shared::{MessageKey, QueueName};

/// The set of every queue name.
pub const QUEUESET: &str = "QUEUESET";

/// The set of queues that have had delayed messages, for the promotion pass.
pub const DELAYED_QUEUES: &str = "restmq|delayed";

/// The set of queues that have had messages with a ttl, for the sweep.
pub const TTL_QUEUES: &str = "restmq|ttl";

/// The set of queues that have had leases, for the expiry pass.
pub const LEASED_QUEUES: &str = "restmq|leased";

/// The sorted set of processes, scored by load.
pub const NODES: &str = "restmq|nodes";

/// What a process reports of itself (a hash that expires unless refreshed).
pub fn node(id: &str) -> String {
    format!("restmq|node|{id}")
}

/// The pub/sub channel all restmq processes on one Redis share (a channel, not a key: the
/// two never meet).
pub const BUS: &str = "restmq:bus";

/// Names of one queue's keys.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    /// `<q>` or `{<q>}`: how the queue is written inside key names.
    base: String,
}

impl QueueKeys {
    /// In a cluster, `<q>.dead` shares the slot of `<q>` (`{q}.dead`), so that moving a
    /// message to its dead-letter queue stays one script.
    pub fn new(queue: &QueueName, cluster: bool) -> Self {
        let base = match (cluster, queue.as_str().strip_suffix(".dead")) {
            (false, _) => queue.to_string(),
            (true, Some(live)) if !live.is_empty() => format!("{{{live}}}.dead"),
            (true, _) => format!("{{{queue}}}"),
        };
        Self { base }
    }

    /// The sorted set of delayed message keys, scored by when they become visible (Unix ms).
    pub fn delayed(&self) -> String {
        format!("{}:|delayed", self.base)
    }

    /// What a publish with this `Idempotency-Key` answered (expires with the window).
    pub fn idempotency(&self, key: &str) -> String {
        format!("{}:|idem|{key}", self.base)
    }

    /// The sorted set of keys of messages added with a ttl, scored by expiry (Unix ms).
    pub fn expiring(&self) -> String {
        format!("{}:|ttl", self.base)
    }

    /// The stream of broadcast messages every process reads (see `fanout.rs`).
    pub fn fanout(&self) -> String {
        format!("{}:|fanout", self.base)
    }

    /// The processes reading the broadcast log, scored by when they last read it.
    pub fn readers(&self) -> String {
        format!("{}:|readers", self.base)
    }

    /// Present (with an expiry) while some process has observers of the queue: adds then
    /// announce their messages on the bus.
    pub fn observed(&self) -> String {
        format!("{}:|observed", self.base)
    }

    /// The sorted set of leased message keys, scored by lease deadline (Unix ms).
    pub fn leased(&self) -> String {
        format!("{}:|leased", self.base)
    }

    pub fn counter(&self) -> String {
        format!("{}:UUID", self.base)
    }

    pub fn list(&self) -> String {
        format!("{}:queue", self.base)
    }

    pub fn policy(&self) -> String {
        format!("{}:queuepolicy", self.base)
    }

    pub fn status(&self) -> String {
        format!("queuestat::{}", self.base)
    }

    /// The prefix of message keys: `<q>:`.
    pub fn message_prefix(&self) -> String {
        format!("{}:", self.base)
    }

    /// The Redis key of one message.
    pub fn message(&self, n: u64) -> String {
        format!("{}:{n}", self.base)
    }
}

/// The `n` of a stored message key (`q:7`, `{q}:7` → 7).
pub fn number(stored: &str) -> Option<u64> {
    stored.rsplit_once(':').and_then(|(_, n)| n.parse().ok())
}

/// The client-facing key of message `n` of `queue`.
pub fn client_key(queue: &QueueName, n: u64) -> MessageKey {
    MessageKey::new(queue.clone(), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain names are RestMQ's; cluster names share one hash tag per queue.
    #[test]
    fn layout() {
        let q: QueueName = "jobs".parse().unwrap();
        let plain = QueueKeys::new(&q, false);
        assert_eq!(
            [plain.counter(), plain.list(), plain.policy(), plain.status(), plain.message(7)],
            ["jobs:UUID", "jobs:queue", "jobs:queuepolicy", "queuestat::jobs", "jobs:7"]
        );
        let tagged = QueueKeys::new(&q, true);
        assert_eq!(
            [tagged.list(), tagged.status(), tagged.message(7)],
            ["{jobs}:queue", "queuestat::{jobs}", "{jobs}:7"]
        );
        assert_eq!(
            [plain.delayed(), plain.expiring(), plain.leased(), plain.idempotency("x:queue")],
            ["jobs:|delayed", "jobs:|ttl", "jobs:|leased", "jobs:|idem|x:queue"]
        );
        assert_eq!(number("{jobs}:7"), Some(7));
        assert_eq!(number("syslogd:host:12"), Some(12));
    }
}
