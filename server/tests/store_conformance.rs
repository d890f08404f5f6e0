//! The store conformance suite: every case runs against each backend — memory, embedded and
//! a real Redis — so all keep the same semantics (leases, delays and redrive are in
//! `store_leases.rs`). Embedded-only reopen cases are at the end.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::store::{add, key, q};
use restmq_server::store::{EmbeddedStore, MemoryStore, QueueStore, RedisOptions, RedisStore, StoredMessage};
use restmq_shared::{Policy, QueueStatus};

fn values(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.value.as_str()).collect()
}

/// Keys count from 1, separately per queue.
async fn add_numbers_from_one_per_queue<S: QueueStore + Clone>(s: S) {
    assert_eq!(add(&s, "a", "1").await, key("a", 1));
    assert_eq!(add(&s, "a", "2").await, key("a", 2));
    assert_eq!(add(&s, "b", "1").await, key("b", 1));
    assert_eq!(add(&s, "a", "3").await, key("a", 3));
}

/// Pop returns the oldest message first and removes it; `max` bounds the batch.
async fn pop_oldest_first_and_removes<S: QueueStore + Clone>(s: S) {
    for v in ["m1", "m2", "m3", "m4"] {
        add(&s, "q", v).await;
    }
    let one = s.pop(&q("q"), 1).await.unwrap();
    assert_eq!(one, vec![StoredMessage { key: key("q", 1), value: "m1".to_owned() }]);
    assert_eq!(values(&s.pop(&q("q"), 2).await.unwrap()), ["m2", "m3"]);
    assert_eq!(values(&s.pop(&q("q"), 10).await.unwrap()), ["m4"]);
    assert!(s.pop(&q("q"), 10).await.unwrap().is_empty());
    assert!(s.pop(&q("unknown"), 10).await.unwrap().is_empty());
    assert_eq!(s.info(&q("q")).await.unwrap().unwrap().len, 0);
}

/// Peek counts soft reads 1, 2, 3 on the oldest message and never removes it.
async fn peek_counts_and_keeps<S: QueueStore + Clone>(s: S) {
    assert_eq!(s.peek(&q("q")).await.unwrap(), None);
    add(&s, "q", "first").await;
    add(&s, "q", "second").await;
    for count in 1..=3 {
        let m = s.peek(&q("q")).await.unwrap().unwrap();
        assert_eq!((m.key, m.value.as_str(), m.count), (key("q", 1), "first", count));
    }
    assert_eq!(s.info(&q("q")).await.unwrap().unwrap().len, 2);
    assert_eq!(values(&s.pop(&q("q"), 1).await.unwrap()), ["first"]);
    assert_eq!(s.peek(&q("q")).await.unwrap().unwrap().count, 1);
}

/// Delete removes one message by key and says whether it was there.
async fn delete_by_key<S: QueueStore + Clone>(s: S) {
    add(&s, "q", "m1").await;
    add(&s, "q", "m2").await;
    assert!(s.delete(&key("q", 1)).await.unwrap());
    assert!(!s.delete(&key("q", 1)).await.unwrap());
    assert!(!s.delete(&key("q", 99)).await.unwrap());
    assert!(!s.delete(&key("nope", 1)).await.unwrap());
    assert_eq!(values(&s.pop(&q("q"), 10).await.unwrap()), ["m2"]);
}

/// Requeued messages go back at the head, in key order, before newer messages.
async fn requeue_puts_back_at_head<S: QueueStore + Clone>(s: S) {
    for v in ["m1", "m2", "m3"] {
        add(&s, "q", v).await;
    }
    let mut popped = s.pop(&q("q"), 2).await.unwrap();
    add(&s, "q", "m4").await;
    popped.reverse();
    s.requeue(&q("q"), popped).await.unwrap();
    let all = s.pop(&q("q"), 10).await.unwrap();
    assert_eq!(values(&all), ["m1", "m2", "m3", "m4"]);
    assert_eq!(all[0].key, key("q", 1));
    assert_eq!(add(&s, "q", "m5").await, key("q", 5));
}

/// Purge removes every message and keeps the counter, policy and status, as RestMQ did: keys
/// are never reused, a paused queue stays paused; a second purge finds nothing to remove.
async fn purge_removes_everything<S: QueueStore + Clone>(s: S) {
    add(&s, "q", "m1").await;
    add(&s, "q", "m2").await;
    s.set_policy(&q("q"), Policy::Roundrobin).await.unwrap();
    s.set_status(&q("q"), QueueStatus::Paused).await.unwrap();
    assert!(s.purge(&q("q")).await.unwrap());
    assert!(!s.purge(&q("q")).await.unwrap());
    let info = s.info(&q("q")).await.unwrap().unwrap();
    assert_eq!(
        (info.len, info.policy, info.status, info.last),
        (0, Policy::Roundrobin, QueueStatus::Paused, 2)
    );
    assert_eq!(s.queues().await.unwrap(), [q("q")]);
    assert!(s.pop(&q("q"), 10).await.unwrap().is_empty());
    assert!(s.peek(&q("q")).await.unwrap().is_none());
    assert_eq!(add(&s, "q", "again").await, key("q", 3));
    assert!(!s.purge(&q("never")).await.unwrap());
    assert_eq!(s.info(&q("never")).await.unwrap(), None, "purging a queue that never was creates nothing");
}

/// Queue names come back sorted.
async fn queues_sorted<S: QueueStore + Clone>(s: S) {
    for name in ["zeta", "alpha", "mid", "alpha"] {
        add(&s, name, "x").await;
    }
    assert_eq!(s.queues().await.unwrap(), [q("alpha"), q("mid"), q("zeta")]);
}

/// Info reports length, policy and status, and `None` for an unknown queue.
async fn info_reports_queue<S: QueueStore + Clone>(s: S) {
    assert_eq!(s.info(&q("q")).await.unwrap(), None);
    add(&s, "q", "m1").await;
    add(&s, "q", "m2").await;
    let info = s.info(&q("q")).await.unwrap().unwrap();
    assert_eq!((info.len, info.policy, info.status), (2, Policy::Broadcast, QueueStatus::Started));
}

/// Setting a policy or status registers the queue and is reported by info.
async fn settings_register_queue<S: QueueStore + Clone>(s: S) {
    s.set_policy(&q("p"), Policy::Roundrobin).await.unwrap();
    s.set_status(&q("s"), QueueStatus::Paused).await.unwrap();
    assert_eq!(s.queues().await.unwrap(), [q("p"), q("s")]);
    let p = s.info(&q("p")).await.unwrap().unwrap();
    assert_eq!((p.len, p.policy, p.status), (0, Policy::Roundrobin, QueueStatus::Started));
    let st = s.info(&q("s")).await.unwrap().unwrap();
    assert_eq!((st.policy, st.status), (Policy::Broadcast, QueueStatus::Paused));
    s.set_status(&q("s"), QueueStatus::Started).await.unwrap();
    assert_eq!(s.info(&q("s")).await.unwrap().unwrap().status, QueueStatus::Started);
}

/// Recent keys are the newest first, at most `max`.
async fn recent_keys_newest_first<S: QueueStore + Clone>(s: S) {
    assert!(s.recent_keys(&q("q"), 10).await.unwrap().is_empty());
    for i in 1..=15 {
        add(&s, "q", &i.to_string()).await;
    }
    let expected: Vec<_> = (6..=15).rev().map(|n| key("q", n)).collect();
    assert_eq!(s.recent_keys(&q("q"), 10).await.unwrap(), expected);
    assert_eq!(s.recent_keys(&q("q"), 2).await.unwrap(), [key("q", 15), key("q", 14)]);
}

/// A message past its ttl is skipped by pop and peek. (Whole seconds: the HTTP API takes
/// ttls in seconds, and Redis keeps them so.)
async fn ttl_expires_messages<S: QueueStore + Clone>(s: S) {
    let ttl = Some(Duration::from_secs(1));
    s.add(&q("p"), "gone".to_owned(), ttl).await.unwrap();
    s.add(&q("p"), "kept".to_owned(), None).await.unwrap();
    s.add(&q("k"), "gone1".to_owned(), ttl).await.unwrap();
    s.add(&q("k"), "gone2".to_owned(), ttl).await.unwrap();
    s.add(&q("k"), "kept".to_owned(), Some(Duration::from_secs(3600))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(values(&s.pop(&q("p"), 10).await.unwrap()), ["kept"]);
    let peeked = s.peek(&q("k")).await.unwrap().unwrap();
    assert_eq!((peeked.key, peeked.value.as_str(), peeked.count), (key("k", 3), "kept", 1));
    assert_eq!(s.info(&q("k")).await.unwrap().unwrap().len, 1);
}

/// Concurrent adds get distinct keys and concurrent pops deliver each message exactly once.
async fn concurrent_adds_and_pops<S: QueueStore + Clone>(s: S) {
    let adders: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut keys = Vec::new();
                for i in 0..200 {
                    keys.push(s.add(&q("c"), format!("{t}-{i}"), None).await.unwrap());
                }
                keys
            })
        })
        .collect();
    let mut keys = HashSet::new();
    for adder in adders {
        let mine = adder.await.unwrap();
        assert!(mine.windows(2).all(|w| w[0].n < w[1].n), "one task's keys increase");
        keys.extend(mine);
    }
    assert_eq!(keys.len(), 1600);
    let poppers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = s.pop(&q("c"), 7).await.unwrap();
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch);
                }
            })
        })
        .collect();
    let mut popped = Vec::new();
    for popper in poppers {
        popped.extend(popper.await.unwrap());
    }
    assert_eq!(popped.len(), 1600);
    let popped_keys: HashSet<_> = popped.iter().map(|m| m.key.clone()).collect();
    assert_eq!(popped_keys, keys);
    let popped_values: HashSet<_> = popped.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(popped_values.len(), 1600);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                /// Runs the conformance case of this name on the memory backend.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(MemoryStore::new()).await;
                }
            )*
        }
        mod embedded {
            use super::*;
            $(
                /// Runs the conformance case of this name on the embedded backend.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = EmbeddedStore::open(dir.path()).unwrap();
                    super::$case(store.clone()).await;
                    store.close().await.unwrap();
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                /// Runs the conformance case of this name on a Redis of its own.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let redis = common::redis::RedisServer::start();
                    let options = RedisOptions { urls: vec![redis.url()], cluster: false, node_addr: "test".to_owned() };
                    let store = RedisStore::open(options).await.unwrap();
                    super::$case(store.clone()).await;
                    store.close().await.unwrap();
                }
            )*
        }
    };
}

conformance!(
    add_numbers_from_one_per_queue,
    pop_oldest_first_and_removes,
    peek_counts_and_keeps,
    delete_by_key,
    requeue_puts_back_at_head,
    purge_removes_everything,
    queues_sorted,
    info_reports_queue,
    settings_register_queue,
    recent_keys_newest_first,
    ttl_expires_messages,
    concurrent_adds_and_pops,
);

/// The embedded backend's state after closing and reopening from the same directory.
mod embedded_reopen {
    use super::*;

    /// Messages, order, counter, policy, status and soft-read counts survive a reopen.
    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        for i in 1..=6 {
            add(&s, "jobs", &format!("m{i}")).await;
        }
        add(&s, "drained", "x").await;
        add(&s, "drained", "y").await;
        assert_eq!(s.pop(&q("drained"), 10).await.unwrap().len(), 2);
        s.set_policy(&q("jobs"), Policy::Roundrobin).await.unwrap();
        s.set_status(&q("jobs"), QueueStatus::Paused).await.unwrap();
        s.set_status(&q("idle"), QueueStatus::Paused).await.unwrap();
        assert_eq!(values(&s.pop(&q("jobs"), 2).await.unwrap()), ["m1", "m2"]);
        assert!(s.delete(&key("jobs", 5)).await.unwrap());
        s.peek(&q("jobs")).await.unwrap();
        assert_eq!(s.peek(&q("jobs")).await.unwrap().unwrap().count, 2);
        add(&s, "gone", "soon").await;
        assert!(s.purge(&q("gone")).await.unwrap());
        s.close().await.unwrap();
        assert!(s.add(&q("jobs"), "late".to_owned(), None).await.is_err(), "closed store refuses writes");

        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.queues().await.unwrap(), [q("drained"), q("gone"), q("idle"), q("jobs")]);
        let jobs = s.info(&q("jobs")).await.unwrap().unwrap();
        assert_eq!((jobs.len, jobs.policy, jobs.status), (3, Policy::Roundrobin, QueueStatus::Paused));
        let idle = s.info(&q("idle")).await.unwrap().unwrap();
        assert_eq!((idle.len, idle.policy, idle.status), (0, Policy::Broadcast, QueueStatus::Paused));
        let peeked = s.peek(&q("jobs")).await.unwrap().unwrap();
        assert_eq!((peeked.key, peeked.count), (key("jobs", 3), 3));
        assert_eq!(add(&s, "jobs", "m7").await, key("jobs", 7));
        assert_eq!(add(&s, "drained", "z").await, key("drained", 3), "counter kept after draining");
        assert_eq!(add(&s, "gone", "new").await, key("gone", 2), "purge kept the counter");
        let rest = s.pop(&q("jobs"), 10).await.unwrap();
        let rest_keys: Vec<_> = rest.iter().map(|m| m.key.n).collect();
        assert_eq!((values(&rest), rest_keys), (vec!["m3", "m4", "m6", "m7"], vec![3, 4, 6, 7]));
        s.close().await.unwrap();
    }

    /// Requeued messages are persisted at the head; expired messages are dropped on reopen.
    #[tokio::test]
    async fn requeue_and_expiry_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        add(&s, "q", "m1").await;
        add(&s, "q", "m2").await;
        s.add(&q("q"), "short".to_owned(), Some(Duration::from_millis(50))).await.unwrap();
        let popped = s.pop(&q("q"), 1).await.unwrap();
        s.requeue(&q("q"), popped).await.unwrap();
        s.close().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;

        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.info(&q("q")).await.unwrap().unwrap().len, 2);
        assert_eq!(values(&s.pop(&q("q"), 10).await.unwrap()), ["m1", "m2"]);
        assert_eq!(add(&s, "q", "m4").await, key("q", 4));
        s.close().await.unwrap();
    }

    /// Dropping every handle without closing still keeps what was acknowledged.
    #[tokio::test]
    async fn drop_without_close_keeps_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        add(&s, "q", "kept").await;
        drop(s);
        // The writer thread releases the file once it has drained its channel.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let s = loop {
            match EmbeddedStore::open(dir.path()) {
                Ok(s) => break s,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("reopen failed: {e}"),
            }
        };
        assert_eq!(values(&s.pop(&q("q"), 10).await.unwrap()), ["kept"]);
        s.close().await.unwrap();
    }
}
