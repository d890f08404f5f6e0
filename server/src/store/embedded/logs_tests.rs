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
/// (The segment after the head's stays mapped, and the syncer maps the one after that ahead
/// when the head moves: the third one is moved away.)
#[tokio::test]
async fn a_segment_that_cannot_be_opened_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("stuck");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 1..=500u64 {
        store.add(&q, format!("{i:0>1000}"), None).await.unwrap();
    }
    let log = dir.path().join(LOG_DIR).join("1");
    let listed = || {
        let mut segments: Vec<_> = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().path()).collect();
        segments.retain(|p| p.extension().is_some_and(|e| e == "seg"));
        segments.sort();
        segments
    };
    // The newest is placed under its name by the syncer, after the add that began it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listed().len() < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let segments = listed();
    assert_eq!(segments.len(), 4, "64, 128, 256 and 512 KiB: the third one is not mapped");
    let aside = dir.path().join("aside");
    std::fs::rename(&segments[2], &aside).unwrap();
    let mut got = Vec::new();
    loop {
        let popped = store.pop(&q, 1).await.unwrap();
        let Some(m) = popped.first() else { break };
        got.push(m.key.n);
    }
    assert!(got.len() > 1 && got.iter().copied().eq(1..=got.len() as u64), "in order: {got:?}");
    assert_eq!(len(&store, &q).await, 500 - got.len() as u64);
    assert!(store.browse(&q, Page { after: 0, limit: 10, leased: false }).await.is_err());
    store.add(&queue("bystander"), "ttl".to_owned(), Some(Duration::from_secs(60))).await.unwrap();

    std::fs::rename(&aside, &segments[2]).unwrap();
    got.extend(store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n));
    assert!(got.iter().copied().eq(1..=500), "every message once, in order");
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
/// drain it): their drains meet in one transaction, and each message is still moved once —
/// every one served once, the count right, nothing back after a restart.
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
    // The newest is placed under its name by the syncer, after the add that began it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while segments() <= 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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

/// A copy of the data directory `from` as a `kill -9` of its open store would leave it: what
/// the store wrote is in the page cache (its maps, SQLite's WAL); the lock file is left out.
fn copy_as_killed(from: &Path, to: &Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        if entry.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if entry.file_name().is_some_and(|name| name != "restmq.lock") {
            std::fs::copy(&entry, &target).unwrap();
        }
    }
}

/// Every path under `dir`, each directory before what it holds.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// Runs `f` with its log lines (of this thread) written to a string, which it returns too.
fn with_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    (out, text)
}

/// Overwrites every file in `dir` with garbage of its own length.
fn garble(dir: &Path) {
    for path in walk(dir) {
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, (0..len).map(|i| (i * 7 + 13) as u8).collect::<Vec<u8>>()).unwrap();
    }
}

/// One queue whose log is garbage (its `state` page and segments overwritten) among healthy
/// ones: the store opens, the healthy queues serve every message, the damaged one is
/// quarantined (moved aside, reported by `health`, also by the next run), serves its messages
/// in SQLite and numbers on past any number its log answered.
#[tokio::test]
async fn one_damaged_log_is_quarantined_and_the_others_are_served() {
    use super::QUARANTINE;
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (queue("a"), queue("b"), queue("c"));
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for q in [&a, &b, &c] {
        for i in 1..=5 {
            store.add(q, format!("{q}{i}"), None).await.unwrap();
        }
    }
    store.close().await.unwrap();
    drop(store);
    let damaged = dir.path().join(LOG_DIR).join("3");
    garble(&damaged);

    let (store, logged) = with_log(|| EmbeddedStore::open(dir.path()).unwrap());
    assert!(
        logged.contains("ERROR") && logged.contains("quarantined") && logged.contains("queue=c id=3"),
        "reported at ERROR with the queue: {logged}"
    );
    assert!(logged.contains(&damaged.display().to_string()), "with its path: {logged}");
    let health = store.health();
    assert_eq!(health.quarantined.len(), 1, "{health:?}");
    let quarantined = &health.quarantined[0];
    assert_eq!(quarantined.queue, "c");
    let aside = Path::new(&quarantined.path);
    assert!(aside.starts_with(dir.path().join(LOG_DIR).join(QUARANTINE)), "{aside:?}");
    assert!(aside.join("state").exists() && !damaged.exists(), "moved aside, never deleted");
    for q in [&a, &b] {
        assert_eq!(values(&store, q).await, (1..=5).map(|i| format!("{q}{i}")).collect::<Vec<_>>());
    }
    assert_eq!(values(&store, &c).await, ["c1"], "its message in SQLite is served");
    let n = store.add(&c, "after".to_owned(), None).await.unwrap().n;
    assert!(n > 5, "numbers on past those its log answered: {n}");
    assert_eq!(values(&store, &c).await, ["after"]);
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.health().quarantined.len(), 1, "still reported while its files are aside");
    assert!(store.add(&c, "later".to_owned(), None).await.unwrap().n > n);
    assert_eq!(values(&store, &c).await, ["later"]);
    store.close().await.unwrap();
}

/// A log whose segments are gone (its `state` page left) is quarantined: its numbers, named
/// only by its marks, are never given again.
#[tokio::test]
async fn a_log_without_its_segments_is_quarantined_and_its_numbers_never_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let (q, other) = (queue("lost"), queue("other"));
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 1..=300u64 {
        store.add(&q, format!("{i}"), None).await.unwrap();
    }
    store.add(&other, "o".to_owned(), None).await.unwrap();
    assert_eq!(store.pop(&q, 299).await.unwrap().len(), 299);
    store.close().await.unwrap();
    drop(store);
    for path in walk(&dir.path().join(LOG_DIR).join("1")) {
        if path.extension().is_some_and(|e| e == "seg") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.health().quarantined.len(), 1);
    assert_eq!(values(&store, &other).await, ["o"]);
    assert!(store.add(&q, "new".to_owned(), None).await.unwrap().n > 300);
    store.close().await.unwrap();
}

/// After a `kill -9` a queue with a log numbers on past a gap of exactly `NUMBERS_AHEAD`
/// after the last number answered (not that plus the counter its row holds ahead), and its
/// newest keys (`/j`) are the real ones, across the gap.
#[tokio::test]
async fn a_kill_9_skips_numbers_by_one_gap_and_recent_keys_are_the_real_ones() {
    use crate::store::embedded::catalog::NUMBERS_AHEAD;
    let (dir, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let q = queue("killed");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["a", "b", "c"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    copy_as_killed(dir.path(), killed.path());
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(killed.path()).unwrap();
    let first = store.add(&q, "d".to_owned(), None).await.unwrap().n;
    assert_eq!(first, 3 + NUMBERS_AHEAD + 1, "one gap of NUMBERS_AHEAD");
    store.add(&q, "e".to_owned(), None).await.unwrap();
    let recent: Vec<u64> = store.recent_keys(&q, 10).await.unwrap().iter().map(|k| k.n).collect();
    assert_eq!(recent, [first + 1, first, 3, 2, 1]);
    let recent: Vec<u64> = store.recent_keys(&q, 3).await.unwrap().iter().map(|k| k.n).collect();
    assert_eq!(recent, [first + 1, first, 3]);
    assert_eq!(values(&store, &q).await, ["a", "b", "c", "d", "e"]);
    store.close().await.unwrap();
}

/// After a gap (a stop that was not clean) the log holds numbers that skip: the newest keys
/// (`/j`) are the ones its messages have, not a run ending at its last.
#[tokio::test]
async fn recent_keys_after_a_gap_are_the_real_ones() {
    use crate::store::embedded::catalog::NUMBERS_AHEAD;
    let dir = tempfile::tempdir().unwrap();
    let q = queue("skips");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for v in ["a", "b", "c"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    std::fs::remove_file(dir.path().join(LOG_DIR).join(super::CLEAN)).unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let after = 3 + NUMBERS_AHEAD + 1;
    assert_eq!(store.add(&q, "d".to_owned(), None).await.unwrap().n, after);
    let recent: Vec<u64> = store.recent_keys(&q, 10).await.unwrap().iter().map(|k| k.n).collect();
    assert_eq!(recent, [after, 3, 2, 1]);
    store.close().await.unwrap();
}

/// A log whose `state` page is lost after a `kill -9` is read back from its segments: every
/// message is there and numbering goes on one gap past its last record.
#[tokio::test]
async fn a_log_that_lost_its_state_page_numbers_on_past_its_records() {
    use crate::store::embedded::catalog::NUMBERS_AHEAD;
    let (dir, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let q = queue("stateless");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 1..=300u64 {
        store.add(&q, format!("{i:0>500}"), None).await.unwrap();
    }
    copy_as_killed(dir.path(), killed.path());
    store.close().await.unwrap();
    drop(store);
    std::fs::remove_file(killed.path().join(LOG_DIR).join("1").join("state")).unwrap();

    let store = EmbeddedStore::open(killed.path()).unwrap();
    assert!(store.health().quarantined.is_empty());
    assert_eq!(store.add(&q, "next".to_owned(), None).await.unwrap().n, 300 + NUMBERS_AHEAD + 1);
    let got: Vec<u64> = store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n).collect();
    assert_eq!(got, (1..=300).chain([300 + NUMBERS_AHEAD + 1]).collect::<Vec<_>>());
    store.close().await.unwrap();
}

/// A log that fails to open for a reason other than damage (here its segment is a directory)
/// is quarantined in place, never moved: its queue goes on through SQLite past its numbers,
/// and once the log reads again at a later start its messages are served too, each once.
#[tokio::test]
async fn a_log_failing_without_damage_stays_in_place_and_is_read_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("held");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 1..=5 {
        store.add(&q, format!("held{i}"), None).await.unwrap();
    }
    store.close().await.unwrap();
    drop(store);
    let log = dir.path().join(LOG_DIR).join("1");
    let segment = log.join(format!("{:020}.seg", 0));
    let aside = dir.path().join("aside.seg");
    std::fs::rename(&segment, &aside).unwrap();
    std::fs::create_dir(&segment).unwrap();

    let store = EmbeddedStore::open(dir.path()).unwrap();
    let quarantined = store.health().quarantined;
    assert_eq!(quarantined.len(), 1);
    assert_eq!(Path::new(&quarantined[0].path), log, "left in place");
    let n = store.add(&q, "meanwhile".to_owned(), None).await.unwrap().n;
    assert!(n > 5, "{n}");
    assert_eq!(store.pop(&q, 1).await.unwrap()[0].value, "held1", "its message in SQLite");
    store.close().await.unwrap();
    drop(store);
    std::fs::remove_dir(&segment).unwrap();
    std::fs::rename(&aside, &segment).unwrap();

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert!(store.health().quarantined.is_empty());
    let mut got = values(&store, &q).await;
    got.sort();
    assert_eq!(got, ["held2", "held3", "held4", "held5", "meanwhile"]);
    assert!(store.add(&q, "later".to_owned(), None).await.unwrap().n > n);
    store.close().await.unwrap();
}

/// Two `kill -9` in a row, with no add between them, skip one gap, not one per start: the
/// row a start writes holds the counter, not that plus `NUMBERS_AHEAD`.
#[tokio::test]
async fn starts_killed_in_a_row_skip_one_gap() {
    use crate::store::embedded::catalog::NUMBERS_AHEAD;
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let q = queue("again");
    let store = EmbeddedStore::open(dirs[0].path()).unwrap();
    for v in ["a", "b", "c"] {
        store.add(&q, v.to_owned(), None).await.unwrap();
    }
    copy_as_killed(dirs[0].path(), dirs[1].path());
    store.close().await.unwrap();
    drop(store);
    let store = EmbeddedStore::open(dirs[1].path()).unwrap();
    // Batches run in order: the start's (which writes the rows) is committed.
    assert_eq!(len(&store, &q).await, 3);
    copy_as_killed(dirs[1].path(), dirs[2].path());
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dirs[2].path()).unwrap();
    assert_eq!(store.add(&q, "d".to_owned(), None).await.unwrap().n, 3 + NUMBERS_AHEAD + 1);
    assert_eq!(values(&store, &q).await, ["a", "b", "c", "d"]);
    store.close().await.unwrap();
}

/// Waits up to 10 s for `what`.
async fn wait_for(what: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if what() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The store's syncer thread does the logs' file work: it makes a log's spare segment once the
/// tail's passes half full, and the rollover puts it in use — renamed to its name by the
/// syncer; a segment the head left is removed by it.
#[tokio::test]
async fn the_syncer_makes_the_next_segment_ahead_and_removes_the_left_one() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("ahead");
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let log = dir.path().join(LOG_DIR).join("1");
    let segments = || {
        let mut names: Vec<String> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".seg") || n.ends_with(".new"))
            .collect();
        names.sort();
        names
    };
    for i in 1..=40u64 {
        store.add(&q, format!("{i:0>1000}"), None).await.unwrap();
    }
    assert!(wait_for(|| log.join("spare").exists()).await, "a spare once the first segment is half full");
    assert_eq!(segments().len(), 1);
    for i in 41..=80u64 {
        store.add(&q, format!("{i:0>1000}"), None).await.unwrap();
    }
    assert!(wait_for(|| segments().len() == 2).await, "the spare renamed into place: {:?}", segments());
    assert!(segments().iter().all(|n| n.ends_with(".seg")));
    let got: Vec<u64> = store.pop(&q, 70).await.unwrap().iter().map(|m| m.key.n).collect();
    assert_eq!(got, (1..=70).collect::<Vec<_>>());
    assert!(wait_for(|| segments().len() == 1).await, "the left segment removed: {:?}", segments());
    store.close().await.unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let got: Vec<u64> = store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| m.key.n).collect();
    assert_eq!(got, (71..=80).collect::<Vec<_>>());
    store.close().await.unwrap();
}
