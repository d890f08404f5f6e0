//! A `kill -9` at every crash point (see `crash`) of a scenario on the whole embedded store:
//! opening, plain adds (through the queue's log, rolling over its segments), hard gets
//! (`pop`, from SQLite and from the log), a soft get (`peek`, read in place), an add with a
//! ttl (which drains the log into SQLite), a purge, a close and a reopen. Under `--fsync
//! never`, so that a drain's head move is not left to the syncer's timing. SQLite's own writes have no points (its journal is
//! its own); every file operation of the logs has — those of the logs' background (spares,
//! their renames, deferred syncs and unlinks) on the syncer's thread, so the k-th point of a
//! run is not always the same operation: each is still a crash the store must survive.
//!
//! What must hold after each crash, once the store is opened again (it must open), as in
//! `queue_log_crash_tests.rs`: every acknowledged add is waiting exactly once, in order,
//! unless a pop or a purge was acknowledged after it; an acknowledged pop's message never
//! comes back; the step in flight happened or not (an add in flight may be waiting; a pop in
//! flight may have lost its message, taken but never answered, or kept it; a purge in flight
//! removed all or nothing); the store goes on (an add and a pop work).

use restmq_shared::QueueName;

use super::crash;
use crate::config::Fsync;
use crate::store::{EmbeddedOptions, EmbeddedStore, QueueStore};

/// Enough that the log's 64 KiB first segment holds two, the next four.
const VALUE: usize = 30_000;

#[derive(Debug, Clone, Copy)]
enum Step {
    Open,
    Add(u64),
    /// A hard get of one message, message n.
    Pop(u64),
    /// A soft get, message n (stays).
    Peek(u64),
    /// An add with a ttl, message n: it drains the log into SQLite first.
    Drain(u64),
    Purge,
    Close,
}

fn scenario() -> Vec<Step> {
    use Step::*;
    let mut steps = vec![Open];
    // 1 through SQLite (it registers the queue), 2 to 7 through the log, filling its first
    // two segments exactly.
    steps.extend((1..=7).map(Add));
    // From SQLite, then from the log, leaving its first segment; the add with a ttl drains
    // the rest, emptying the log at the end of its full segment: the next add opens a segment.
    steps.extend([Pop(1), Pop(2), Pop(3), Peek(4), Drain(8)]);
    steps.extend((9..=12).map(Add));
    steps.extend([Pop(4), Pop(5), Purge]);
    steps.extend((13..=15).map(Add));
    steps.extend([Pop(13), Close, Open, Pop(14), Close]);
    steps
}

fn queue() -> QueueName {
    QueueName::try_from("crash").unwrap()
}

fn value(n: u64) -> String {
    let mut v = format!("m{n}:");
    v.extend(std::iter::repeat_n('x', VALUE));
    v
}

/// The message number a value says.
fn number(value: &str) -> u64 {
    let (n, rest) = value.strip_prefix('m').and_then(|v| v.split_once(':')).expect("a value of the scenario");
    assert_eq!(rest.len(), VALUE, "message {n}'s value");
    n.parse().unwrap()
}

fn options() -> EmbeddedOptions {
    EmbeddedOptions { fsync: Fsync::Never, ..Default::default() }
}

fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open_with(dir, options()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The scenario, in the child process: each step acknowledged once it returned.
#[test]
fn child() {
    let Some(dir) = crash::child_dir() else { return };
    let q = queue();
    runtime().block_on(async {
        let mut store = None;
        for (i, step) in scenario().into_iter().enumerate() {
            match step {
                Step::Open => store = Some(open(&dir)),
                Step::Add(n) => drop(store.as_ref().unwrap().add(&q, value(n), None).await.unwrap()),
                Step::Pop(n) => {
                    let got = store.as_ref().unwrap().pop(&q, 1).await.unwrap();
                    assert_eq!(got.iter().map(|m| number(&m.value)).collect::<Vec<_>>(), [n]);
                }
                Step::Peek(n) => {
                    let got = store.as_ref().unwrap().peek(&q).await.unwrap().expect("a message");
                    assert_eq!(number(&got.value), n);
                }
                Step::Drain(n) => {
                    let ttl = Some(std::time::Duration::from_secs(3600));
                    drop(store.as_ref().unwrap().add(&q, value(n), ttl).await.unwrap());
                }
                Step::Purge => assert!(store.as_ref().unwrap().purge(&q).await.unwrap()),
                Step::Close => store.take().unwrap().close().await.unwrap(),
            }
            crash::ack(i);
        }
    });
    crash::finish();
}

/// What may be waiting after a crash with the first `acked` steps acknowledged.
fn allowed(acked: usize) -> Vec<Vec<u64>> {
    let steps = scenario();
    let mut waiting = std::collections::VecDeque::new();
    for step in &steps[..acked] {
        match *step {
            Step::Add(n) | Step::Drain(n) => waiting.push_back(n),
            Step::Pop(n) => assert_eq!(waiting.pop_front(), Some(n), "the scenario pops in order"),
            Step::Purge => waiting.clear(),
            Step::Open | Step::Peek(_) | Step::Close => {}
        }
    }
    let waiting = Vec::from(waiting);
    let mut allowed = vec![waiting.clone()];
    match steps.get(acked) {
        Some(Step::Add(n) | Step::Drain(n)) => allowed.push([&waiting[..], &[*n]].concat()),
        Some(Step::Pop(_)) => allowed.push(waiting[1..].to_vec()),
        Some(Step::Purge) => allowed.push(Vec::new()),
        _ => {}
    }
    allowed
}

/// After a crash at any point of the scenario the store opens with every acknowledged add
/// waiting once and in order, no acknowledged pop back, and goes on (see the module's doc).
#[test]
fn a_crash_at_any_point_keeps_every_acknowledged_step() {
    let test = format!("{}::child", module_path!().split_once("::").unwrap().1);
    let q = queue();
    let points = crash::each_crash(&test, |k, dir, acked| {
        runtime().block_on(async {
            let store = EmbeddedStore::open_with(dir, options()).unwrap_or_else(|e| {
                panic!("crash point {k} (after {acked} steps): the store does not open: {e}")
            });
            let found: Vec<u64> =
                store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| number(&m.value)).collect();
            let allowed = allowed(acked);
            assert!(
                allowed.contains(&found),
                "crash point {k} (after {acked} steps): found {found:?}, expected one of {allowed:?}"
            );
            store.add(&q, value(100), None).await.unwrap();
            store.add(&q, value(101), None).await.unwrap();
            let after: Vec<u64> =
                store.pop(&q, usize::MAX).await.unwrap().iter().map(|m| number(&m.value)).collect();
            assert_eq!(after, [100, 101], "crash point {k}: the store goes on");
            store.close().await.unwrap();
        });
    });
    assert!(points > 100, "every step crossed its points: {points}");
}
