//! Tests of the queue logs as the store uses them: adds and gets with no transaction, the
//! drain before every other operation, counts and numbers across restarts, a drain left
//! half done by a crash, the bound on open logs.

use std::path::Path;
use std::time::Duration;

use restmq_shared::{MessageKey, QueueName};
use rusqlite::Connection;

use super::{LOG_DIR, MAX_LOGS};
use crate::store::{EmbeddedStore, LeaseStore, Page, QueueStore, StoredMessage};

fn queue(name: &str) -> QueueName {
    QueueName::try_from(name).unwrap()
}

async fn values(store: &EmbeddedStore, q: &QueueName) -> Vec<String> {
    store.pop(q, usize::MAX).await.unwrap().into_iter().map(|m| m.value).collect()
}

async fn len(store: &EmbeddedStore, q: &QueueName) -> u64 {
    store.info(q).await.unwrap().map_or(0, |i| i.len)
}

fn logged(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(LOG_DIR)).unwrap().count()
}

/// After the add that registers a queue, plain adds and hard gets go through its log and
/// commit no transaction; numbers go on without a gap, before and after a restart.
#[tokio::test]
async fn plain_adds_and_gets_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("fast");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.add(&q, "first".to_owned(), None).await.unwrap().n, 1);
    let before = store.batcher.commits();
    for i in 2..=200u64 {
        assert_eq!(store.add(&q, format!("m{i}"), None).await.unwrap().n, i);
    }
    assert_eq!(len(&store, &q).await, 200);
    let got = store.pop(&q, 150).await.unwrap();
    assert_eq!((got[0].key.n, got[1].value.as_str(), got.len()), (1, "m2", 150));
    assert_eq!(
        store.batcher.commits() - before,
        1,
        "the first message is taken from SQLite, the rest from the log"
    );
    assert_eq!(logged(dir.path()), 1);
    store.close().await.unwrap();

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, 50, "the log's messages are counted at start-up");
    assert_eq!(store.add(&q, "after".to_owned(), None).await.unwrap().n, 201);
    let rest = values(&store, &q).await;
    assert_eq!((rest.len(), rest[0].as_str(), rest[50].as_str()), (51, "m151", "after"));
    store.close().await.unwrap();
}

/// Every other operation sees the logged messages, in number order with those in SQLite:
/// browse, recent keys, peek and delete by key (which read and mark the log in place), an add
/// with a ttl, leases, nack, purge (which drain it first).
#[tokio::test]
async fn other_operations_see_the_logged_messages() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("mixed");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["a", "b", "c", "d"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    let before = store.batcher.commits();
    let page = store.browse(&q, Page { after: 0, limit: 10, leased: false }).await.unwrap();
    assert_eq!(page.iter().map(|m| m.value.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    let page = store.browse(&q, Page { after: 2, limit: 1, leased: false }).await.unwrap();
    assert_eq!(page.iter().map(|m| m.value.as_str()).collect::<Vec<_>>(), ["c"]);
    store.add(&q, "e".to_owned(), None).await.unwrap();
    let recent = store.recent_keys(&q, 2).await.unwrap();
    assert_eq!(recent.iter().map(|k| k.n).collect::<Vec<_>>(), [5, 4]);
    let recent = store.recent_keys(&q, 10).await.unwrap();
    assert_eq!(recent.iter().map(|k| k.n).collect::<Vec<_>>(), [5, 4, 3, 2, 1]);
    assert_eq!(store.batcher.commits() - before, 0, "looking drains nothing");
    store.add(&q, "f".to_owned(), None).await.unwrap();
    assert_eq!(store.peek(&q).await.unwrap().unwrap().value, "a");
    store.add(&q, "g".to_owned(), None).await.unwrap();
    assert!(store.delete(&MessageKey::new(q.clone(), 2)).await.unwrap());
    store.add(&q, "h".to_owned(), Some(Duration::from_secs(600))).await.unwrap();
    store.add(&q, "i".to_owned(), None).await.unwrap();
    let leased = store.reserve(&q, 1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(leased[0].value, "a");
    store.add(&q, "j".to_owned(), None).await.unwrap();
    assert!(store.nack(&leased[0].key).await.unwrap());
    assert_eq!(len(&store, &q).await, 9);
    assert_eq!(values(&store, &q).await, ["a", "c", "d", "e", "f", "g", "h", "i", "j"]);

    store.add(&q, "k".to_owned(), None).await.unwrap();
    assert!(store.purge(&q).await.unwrap());
    assert_eq!(len(&store, &q).await, 0);
    store.add(&q, "l".to_owned(), None).await.unwrap();
    store.close().await.unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(values(&store, &q).await, ["l"], "purged messages stay gone after a restart");
    store.close().await.unwrap();
}

/// A crash after a drain was committed and before the log's head moved leaves the drained
/// messages on the log: at start-up they are dropped (SQLite has them), each counted once.
#[tokio::test]
async fn messages_of_a_committed_drain_are_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("twice");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["x", "y", "z"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    // What such a drain would have committed: messages 2 and 3 moved, its mark at 3.
    let conn = Connection::open(dir.path().join(crate::store::embedded::DB_FILE)).unwrap();
    conn.execute_batch(
        "INSERT INTO messages(queue, n, state, value) VALUES (1, 2, 0, 'y'), (1, 3, 0, 'z');
         INSERT INTO logs(queue, drained) VALUES (1, 3);",
    )
    .unwrap();
    drop(conn);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, 3);
    assert_eq!(values(&store, &q).await, ["x", "y", "z"]);
    assert_eq!(store.add(&q, "w".to_owned(), None).await.unwrap().n, 4);
    store.close().await.unwrap();
}

/// Past [`MAX_LOGS`] queues with a log, adds go through SQLite, in order with the rest.
#[tokio::test]
async fn queues_past_the_bound_on_logs_add_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..=MAX_LOGS {
        let q = queue(&format!("q{i}"));
        store.add(&q, "registers".to_owned(), None).await.unwrap();
        store.add(&q, "logged".to_owned(), None).await.unwrap();
    }
    assert_eq!(logged(dir.path()), MAX_LOGS);
    let last = queue(&format!("q{MAX_LOGS}"));
    let before = store.batcher.commits();
    store.add(&last, "third".to_owned(), None).await.unwrap();
    assert_eq!(store.batcher.commits() - before, 1, "an add past the bound is committed");
    assert_eq!(values(&store, &last).await, ["registers", "logged", "third"]);
    assert_eq!(values(&store, &queue("q0")).await, ["registers", "logged"]);
    store.close().await.unwrap();
}

/// Messages left on a log by a run under `everysec` are served by a store opened under
/// `always` (which adds and gets through SQLite only), in order.
#[tokio::test]
async fn a_store_under_fsync_always_serves_what_the_logs_hold() {
    use crate::config::Fsync;
    use crate::store::EmbeddedOptions;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("left");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["a", "b", "c"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    let always = EmbeddedOptions { fsync: Fsync::Always, ..Default::default() };
    let store = EmbeddedStore::open_with(dir.path(), always).unwrap();
    assert_eq!(len(&store, &q).await, 3);
    assert_eq!(store.pop(&q, 1).await.unwrap()[0].value, "a");
    assert_eq!(values(&store, &q).await, ["b", "c"]);
    store.add(&q, "d".to_owned(), None).await.unwrap();
    assert_eq!(values(&store, &q).await, ["d"]);
    store.close().await.unwrap();
}

/// A get that takes the last message of a segment and cannot open the next one (here its
/// file is moved away; in life, no file descriptor left) still delivers that message; gets
/// then find nothing and a browse fails cleanly (leaving no transaction open: a write to
/// another queue works) until the segment is back, then every message comes, once, in order.
#[tokio::test]
async fn a_segment_that_cannot_be_opened_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("stuck");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 1..=300u64 {
        store.add(&q, format!("{i:0>1000}"), None).await.unwrap();
    }
    let log = dir.path().join(LOG_DIR).join("1");
    let mut segments: Vec<_> = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().path()).collect();
    segments.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    segments.sort();
    assert_eq!(segments.len(), 3, "64, 128 and 256 KiB: the middle one is not mapped");
    let aside = dir.path().join("aside");
    std::fs::rename(&segments[1], &aside).unwrap();
    let mut got = Vec::new();
    loop {
        let popped = store.pop(&q, 1).await.unwrap();
        let Some(m) = popped.first() else { break };
        got.push(m.key.n);
    }
    assert!(got.len() > 1 && got.iter().copied().eq(1..=got.len() as u64), "in order: {got:?}");
    assert_eq!(len(&store, &q).await, 300 - got.len() as u64);
    assert!(store.browse(&q, Page { after: 0, limit: 10, leased: false }).await.is_err());
    store.add(&queue("bystander"), "ttl".to_owned(), Some(Duration::from_secs(60))).await.unwrap();

    std::fs::rename(&aside, &segments[1]).unwrap();
    got.extend(store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n));
    assert!(got.iter().copied().eq(1..=300), "every message once, in order");
    store.close().await.unwrap();
}

/// After a stop that was not clean (here: the mark of a clean one removed), a queue with a log
/// numbers on past a gap of `NUMBERS_AHEAD`: a power loss may have cut numbers consumers saw.
/// After a clean stop it numbers on without one.
#[tokio::test]
async fn numbers_skip_ahead_after_a_stop_that_was_not_clean() {
    use crate::store::embedded::catalog::NUMBERS_AHEAD;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("gap");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["a", "b", "c"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join(LOG_DIR).join(super::CLEAN)).unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.add(&q, "d".to_owned(), None).await.unwrap().n, 4 + NUMBERS_AHEAD);
    assert_eq!(values(&store, &q).await, ["a", "b", "c", "d"]);
    store.close().await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.add(&q, "e".to_owned(), None).await.unwrap().n, 5 + NUMBERS_AHEAD);
    store.close().await.unwrap();
}

/// An operation that drains a deep log moves it in chunks of `DRAIN_CHUNK`, each a batch of its
/// own, before its own batch; the messages stay in order, each once, across a restart.
#[tokio::test]
async fn a_deep_log_drains_in_chunks() {
    use crate::store::embedded::log_ops::DRAIN_CHUNK;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("deep");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let total = 2 * DRAIN_CHUNK + 100;
    for i in 1..=total {
        store.add(&q, format!("m{i}"), None).await.unwrap();
    }
    let before = store.batcher.commits();
    store.add(&q, "ttl".to_owned(), Some(Duration::from_secs(3600))).await.unwrap();
    assert_eq!(store.batcher.commits() - before, 3, "two chunks, then the add's own batch");
    store.add(&q, "after".to_owned(), None).await.unwrap();
    assert_eq!(store.pop(&q, 1).await.unwrap()[0].value, "m1");
    store.close().await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let rest = values(&store, &q).await;
    let want: Vec<String> =
        (2..=total).map(|i| format!("m{i}")).chain(["ttl".to_owned(), "after".to_owned()]).collect();
    assert_eq!(rest, want);
    store.close().await.unwrap();
}

/// Operations sent together on a queue whose log is deeper than a chunk (soft gets and a
/// delete by key, which read and mark the log in place, adds with a ttl and a lease, which
/// drain it): their drains meet in one transaction, and each message is still moved once — every one served once, the count right, nothing back
/// after a restart.
#[tokio::test]
async fn drains_that_meet_in_one_batch_move_each_message_once() {
    use crate::store::embedded::log_ops::DRAIN_CHUNK;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("meet");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let total = DRAIN_CHUNK as u64 + 904;
    for i in 1..=total {
        store.add(&q, format!("m{i}"), None).await.unwrap();
    }
    let ttl = Some(Duration::from_secs(3600));
    let peeks = futures_util::future::join_all((0..9).map(|_| store.peek(&q)));
    let adds = futures_util::future::join_all((0..3).map(|i| store.add(&q, format!("ttl{i}"), ttl)));
    let gone = MessageKey::new(q.clone(), total);
    let (peeks, adds, deleted, leased) =
        tokio::join!(peeks, adds, store.delete(&gone), store.reserve(&q, 2, Duration::from_secs(3600)));
    assert!(peeks.into_iter().all(|p| p.unwrap().unwrap().value == "m1"));
    assert!(deleted.unwrap());
    let leased: Vec<u64> = leased.unwrap().iter().map(|m| m.key.n).collect();
    assert_eq!(leased, [1, 2]);
    let added: Vec<u64> = adds.into_iter().map(|a| a.unwrap().n).collect();
    let want: Vec<u64> = (3..total).chain(added).collect();
    assert_eq!(len(&store, &q).await, want.len() as u64);
    let got: Vec<u64> = store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n).collect();
    assert_eq!(got, want, "every waiting message once, in order");
    assert_eq!(len(&store, &q).await, 0);
    assert!(store.pop(&q, 10).await.unwrap().is_empty());
    for n in leased {
        assert!(store.ack(&MessageKey::new(q.clone(), n)).await.unwrap());
    }
    store.close().await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let back = store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n).collect::<Vec<_>>();
    assert!(back.is_empty(), "nothing comes back after a restart: {} from {:?}", back.len(), back.first());
    assert_eq!(len(&store, &q).await, 0);
    store.close().await.unwrap();
}

/// A drain's head move waits for the syncer's fsync of the WAL (not the request): once that
/// is done, the next operation moves the head and the segments the drained messages filled
/// are removed.
#[tokio::test]
async fn a_drained_log_gives_its_segments_back_after_the_syncer_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("given");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let value = "x".repeat(1000);
    for _ in 0..400 {
        store.add(&q, value.clone(), None).await.unwrap();
    }
    let log = dir.path().join(LOG_DIR).join("1");
    let segments = || {
        std::fs::read_dir(&log)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
            .count()
    };
    assert!(segments() > 2, "the backlog fills several segments");
    store.add(&q, "ttl".to_owned(), Some(Duration::from_secs(3600))).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while segments() > 1 {
        assert!(std::time::Instant::now() < deadline, "the drained segments stay: {}", segments());
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.add(&q, "next".to_owned(), None).await.unwrap();
    }
    let got = store.pop(&q, usize::MAX).await.unwrap();
    assert_eq!(got.len(), 401 + got.iter().filter(|m| m.value == "next").count());
    store.close().await.unwrap();
}

/// What one operation of a round of `concurrent_operations_on_a_deep_log_serve_each_message_once` did.
enum Done {
    Added(u64, String),
    Served(Vec<(u64, String)>),
    Leased(Vec<(u64, String)>),
    Deleted(u64, bool),
    Acked(u64, bool),
    Nacked(u64, bool),
    Requeued,
    Looked,
}

/// Rounds of operations sent together on a queue whose log is deeper than a drain's chunk —
/// plain adds, adds with a ttl, hard gets, soft gets, deletes by key, leases, acks, nacks,
/// requeues — with a restart in the middle: every message added is served exactly once (or
/// deleted or acknowledged), none is served while leased or after it was deleted.
#[tokio::test]
async fn concurrent_operations_on_a_deep_log_serve_each_message_once() {
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::pin::Pin;

    use crate::store::embedded::log_ops::DRAIN_CHUNK;
    type Op = Pin<Box<dyn Future<Output = Done> + Send>>;

    let dir = tempfile::tempdir().unwrap();
    let q = queue("rounds");
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    let (mut waiting, mut leased) = (BTreeMap::<u64, String>::new(), BTreeMap::<u64, String>::new());
    let (mut served, mut gone) = (0u64, 0u64);
    let mut next = 0u64;
    for _ in 0..DRAIN_CHUNK + 900 {
        next += 1;
        let key = store.add(&q, format!("v{next}"), None).await.unwrap();
        waiting.insert(key.n, format!("v{next}"));
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for round in 0..40 {
        if round == 20 {
            store.close().await.unwrap();
            drop(store);
            store = EmbeddedStore::open(dir.path()).unwrap();
            // Leases do not outlive the process: their messages wait again.
            waiting.append(&mut leased);
        }
        if round % 10 == 5 {
            for _ in 0..DRAIN_CHUNK + 100 {
                next += 1;
                let key = store.add(&q, format!("v{next}"), None).await.unwrap();
                waiting.insert(key.n, format!("v{next}"));
            }
        }
        let mut ops: Vec<Op> = Vec::new();
        // Each key named by at most one operation of a round.
        let mut named = std::collections::HashSet::new();
        let mut pick = |map: &BTreeMap<u64, String>, r: u64| {
            map.keys().nth(r as usize % map.len().max(1)).copied().filter(|n| named.insert(*n))
        };
        for _ in 0..16 {
            let (s, q) = (store.clone(), q.clone());
            let op: Op = match random(9) {
                0 | 1 => {
                    next += 1;
                    let (value, ttl) =
                        (format!("v{next}"), (random(2) == 0).then(|| Duration::from_secs(3600)));
                    Box::pin(async move {
                        let n = s.add(&q, value.clone(), ttl).await.unwrap().n;
                        Done::Added(n, value)
                    })
                }
                2 => {
                    let max = 1 + random(40) as usize;
                    Box::pin(async move {
                        let got = s.pop(&q, max).await.unwrap();
                        Done::Served(got.into_iter().map(|m| (m.key.n, m.value)).collect())
                    })
                }
                3 => Box::pin(async move {
                    s.peek(&q).await.unwrap();
                    Done::Looked
                }),
                4 => match pick(&waiting, random(1 << 20)) {
                    Some(n) => Box::pin(async move {
                        let deleted = s.delete(&MessageKey::new(q, n)).await.unwrap();
                        Done::Deleted(n, deleted)
                    }),
                    None => continue,
                },
                5 => {
                    let max = 1 + random(3) as usize;
                    Box::pin(async move {
                        let got = s.reserve(&q, max, Duration::from_secs(3600)).await.unwrap();
                        Done::Leased(got.into_iter().map(|m| (m.key.n, m.value)).collect())
                    })
                }
                6 => match pick(&leased, random(1 << 20)) {
                    Some(n) => {
                        Box::pin(async move { Done::Acked(n, s.ack(&MessageKey::new(q, n)).await.unwrap()) })
                    }
                    None => continue,
                },
                7 => match pick(&leased, random(1 << 20)) {
                    Some(n) => {
                        Box::pin(
                            async move { Done::Nacked(n, s.nack(&MessageKey::new(q, n)).await.unwrap()) },
                        )
                    }
                    None => continue,
                },
                _ => Box::pin(async move {
                    let got = s.pop(&q, 2).await.unwrap();
                    let back: Vec<StoredMessage> = got.clone();
                    s.requeue(&q, back).await.unwrap();
                    Done::Requeued
                }),
            };
            ops.push(op);
        }
        let mut deletes = Vec::new();
        let mut results = futures_util::future::join_all(ops).await;
        // What puts messages in the queue first: an operation of the round may have taken them.
        results.sort_by_key(|done| !matches!(done, Done::Added(..) | Done::Nacked(..)));
        for done in results {
            match done {
                Done::Added(n, value) => {
                    assert!(waiting.insert(n, value).is_none(), "number {n} given twice")
                }
                Done::Served(got) => {
                    for (n, value) in got {
                        assert_eq!(
                            waiting.remove(&n).as_ref(),
                            Some(&value),
                            "round {round}: {n} served but not waiting"
                        );
                        served += 1;
                    }
                }
                Done::Leased(got) => {
                    for (n, value) in got {
                        assert_eq!(
                            waiting.remove(&n).as_ref(),
                            Some(&value),
                            "round {round}: {n} leased but not waiting"
                        );
                        leased.insert(n, value);
                    }
                }
                Done::Deleted(n, deleted) => deletes.push((n, deleted)),
                Done::Acked(n, acked) => {
                    assert!(acked, "round {round}: lease {n} not acknowledged");
                    leased.remove(&n);
                    gone += 1;
                }
                Done::Nacked(n, nacked) => {
                    assert!(nacked, "round {round}: lease {n} not given back");
                    waiting.insert(n, leased.remove(&n).unwrap());
                }
                Done::Requeued | Done::Looked => {}
            }
        }
        // A delete finds its message unless another operation of its round took it first.
        for (n, deleted) in deletes {
            if deleted {
                assert!(waiting.remove(&n).is_some(), "round {round}: {n} deleted but not waiting");
                gone += 1;
            }
        }
        assert_eq!(len(&store, &q).await, waiting.len() as u64, "round {round}: the count");
    }
    for n in leased.keys().copied().collect::<Vec<_>>() {
        assert!(store.ack(&MessageKey::new(q.clone(), n)).await.unwrap());
        leased.remove(&n);
    }
    let rest: Vec<(u64, String)> =
        store.pop(&q, usize::MAX).await.unwrap().into_iter().map(|m| (m.key.n, m.value)).collect();
    assert_eq!(rest, waiting.into_iter().collect::<Vec<_>>(), "what is left, in order");
    assert!(served + gone > 0);
    store.close().await.unwrap();
}

/// Soft gets and deletes by key on a deep log read and mark it in place: no message moves
/// into SQLite, a read count goes on across restarts, a deleted message is never served,
/// browsed or listed, and the count stays right.
#[tokio::test]
async fn soft_gets_and_deletes_work_on_the_log_without_draining_it() {
    use crate::store::embedded::log_ops::DRAIN_CHUNK;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("inplace");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let total = 2 * DRAIN_CHUNK as u64;
    for i in 1..=total {
        store.add(&q, format!("m{i}"), None).await.unwrap();
    }
    let before = store.batcher.commits();
    for count in 1..=3 {
        let peeked = store.peek(&q).await.unwrap().unwrap();
        assert_eq!((peeked.key.n, peeked.value.as_str(), peeked.count), (1, "m1", count));
    }
    for n in [1, 3, total] {
        assert!(store.delete(&MessageKey::new(q.clone(), n)).await.unwrap());
    }
    assert!(!store.delete(&MessageKey::new(q.clone(), 3)).await.unwrap(), "deleted once");
    assert!(!store.delete(&MessageKey::new(q.clone(), total + 1)).await.unwrap());
    assert_eq!(store.batcher.commits() - before, 8, "one small commit each, no drain");
    let rows: i64 = Connection::open(dir.path().join(super::super::DB_FILE))
        .unwrap()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "nothing moved into SQLite (the first add went there, and was deleted)");
    assert_eq!(len(&store, &q).await, total - 3);
    let peeked = store.peek(&q).await.unwrap().unwrap();
    assert_eq!((peeked.key.n, peeked.count), (2, 1));
    let page = store.browse(&q, Page { after: 0, limit: 3, leased: false }).await.unwrap();
    assert_eq!(page.iter().map(|m| (m.key.n, m.count)).collect::<Vec<_>>(), [(2, 1), (4, 0), (5, 0)]);
    let recent = store.recent_keys(&q, 2).await.unwrap();
    assert_eq!(recent.iter().map(|k| k.n).collect::<Vec<_>>(), [total - 1, total - 2]);
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, total - 3, "holes are kept across a restart");
    assert_eq!(store.peek(&q).await.unwrap().unwrap().count, 2, "and read counts");
    assert_eq!(store.pop(&q, 1).await.unwrap()[0].key.n, 2);
    assert!(store.delete(&MessageKey::new(q.clone(), 6)).await.unwrap());
    // A drain (an add with a ttl) moves what is left, holes left out, reads kept.
    assert_eq!(store.peek(&q).await.unwrap().unwrap().key.n, 4);
    store.add(&q, "ttl".to_owned(), Some(Duration::from_secs(3600))).await.unwrap();
    let page = store.browse(&q, Page { after: 0, limit: 2, leased: false }).await.unwrap();
    assert_eq!(page.iter().map(|m| (m.key.n, m.count)).collect::<Vec<_>>(), [(4, 1), (5, 0)]);
    let got: Vec<u64> = store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n).collect();
    let want: Vec<u64> = (4..total).filter(|n| *n != 6).chain([total + 1]).collect();
    assert_eq!(got, want);
    assert_eq!(len(&store, &q).await, 0);
    store.close().await.unwrap();
}
