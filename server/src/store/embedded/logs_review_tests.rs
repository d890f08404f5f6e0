//! Attacks on the queue logs' in-place operations (holes, soft reads) and their drains: each
//! test is a defect found in review, failing on the code before its fix.

use std::time::Duration;

use restmq_shared::QueueName;

use crate::store::{EmbeddedStore, QueueStore, StoredMessage};

fn queue(name: &str) -> QueueName {
    QueueName::try_from(name).unwrap()
}

async fn numbers(store: &EmbeddedStore, q: &QueueName) -> Vec<u64> {
    store.pop(q, usize::MAX).await.unwrap().into_iter().map(|m| m.key.n).collect()
}

async fn len(store: &EmbeddedStore, q: &QueueName) -> u64 {
    store.info(q).await.unwrap().map_or(0, |i| i.len)
}

/// A store whose queue `q` is committed (its first add went through SQLite) and empty: the
/// next plain adds go through its log.
async fn warmed(dir: &std::path::Path, q: &QueueName) -> EmbeddedStore {
    let store = EmbeddedStore::open(dir).unwrap();
    store.add(q, "warm".to_owned(), None).await.unwrap();
    assert_eq!(store.pop(q, 1).await.unwrap().len(), 1);
    store
}

/// A purge of a queue whose logged messages were all deleted by key (its log holds only
/// holes) drops them for good: no later get serves a deleted, purged message, before or after
/// a restart.
#[tokio::test]
async fn a_purge_of_a_log_of_holes_only_serves_none_of_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("holes-purged");
    let store = warmed(dir.path(), &q).await;
    let gone = store.add(&q, "deleted".to_owned(), None).await.unwrap();
    assert!(store.delete(&gone).await.unwrap());
    store.purge(&q).await.unwrap();
    assert_eq!(len(&store, &q).await, 0);
    let kept = store.add(&q, "kept".to_owned(), None).await.unwrap();
    assert_eq!(numbers(&store, &q).await, [kept.n], "the deleted message is not served");
    assert_eq!(len(&store, &q).await, 0);
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, 0, "nothing comes back at a restart");
    assert!(numbers(&store, &q).await.is_empty());
    store.close().await.unwrap();
}

/// The same purge, then a restart before any other add: the deleted message is not counted
/// or served again.
#[tokio::test]
async fn a_purge_of_a_log_of_holes_only_stays_purged_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("holes-restart");
    let store = warmed(dir.path(), &q).await;
    let gone = store.add(&q, "deleted".to_owned(), None).await.unwrap();
    assert!(store.delete(&gone).await.unwrap());
    store.purge(&q).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, 0);
    assert!(numbers(&store, &q).await.is_empty(), "a deleted, purged message is not served");
    store.close().await.unwrap();
}

/// A message soft-read on the log, taken by a hard get and requeued waits again with no reads
/// (as `requeue` says): a later drain does not give it the count of its old soft reads.
#[tokio::test]
async fn a_requeued_message_does_not_get_its_old_soft_reads_back_from_a_drain() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("reads-requeued");
    let store = warmed(dir.path(), &q).await;
    store.add(&q, "a".to_owned(), None).await.unwrap();
    for count in 1..=3 {
        assert_eq!(store.peek(&q).await.unwrap().unwrap().count, count);
    }
    let taken: Vec<StoredMessage> = store.pop(&q, 1).await.unwrap();
    store.requeue(&q, taken).await.unwrap();
    assert_eq!(store.peek(&q).await.unwrap().unwrap().count, 1, "requeued with no reads");
    store.add(&q, "b".to_owned(), None).await.unwrap();
    // An add with a ttl drains the log (message b) into SQLite.
    store.add(&q, "c".to_owned(), Some(Duration::from_secs(600))).await.unwrap();
    let peeked = store.peek(&q).await.unwrap().unwrap();
    assert_eq!((peeked.value.as_str(), peeked.count), ("a", 2), "its own two reads, not three");
    store.close().await.unwrap();
}

/// Flips a byte of the payload `needle` in the segments of every log under `dir`: its record
/// fails its checksum at the next open.
fn damage_payload(dir: &std::path::Path, needle: &[u8]) {
    let logs = dir.join(super::LOG_DIR);
    for entry in std::fs::read_dir(&logs).unwrap() {
        let log = entry.unwrap().path();
        if !log.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&log).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|e| e != "seg") {
                continue;
            }
            let mut bytes = std::fs::read(&file).unwrap();
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                bytes[at] ^= 0xff;
                std::fs::write(&file, bytes).unwrap();
                return;
            }
        }
    }
    panic!("no record holds {needle:?}");
}

/// A message deleted by key (a hole) whose record is then lost to damage: the other messages
/// are counted and served, none stuck behind a hole that no record holds.
#[tokio::test]
async fn a_hole_whose_record_is_damaged_does_not_hide_another_message() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("hole-damaged");
    let store = warmed(dir.path(), &q).await;
    let mut keys = Vec::new();
    for value in ["first-kept", "second-deleted", "third-kept"] {
        keys.push(store.add(&q, value.to_owned(), None).await.unwrap());
    }
    assert!(store.delete(&keys[1]).await.unwrap());
    store.close().await.unwrap();
    drop(store);
    damage_payload(dir.path(), b"second-deleted");

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(len(&store, &q).await, 2, "the two kept messages wait");
    assert_eq!(numbers(&store, &q).await, [keys[0].n, keys[2].n]);
    assert_eq!(len(&store, &q).await, 0);
    store.close().await.unwrap();
}

/// Flips, in place (the file stays mapped by the open store), a byte of the payload `needle`
/// in the segments of the logs under `dir`.
fn damage_payload_in_place(dir: &std::path::Path, needle: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    for log in std::fs::read_dir(dir.join(super::LOG_DIR)).unwrap() {
        let log = log.unwrap().path();
        if !log.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&log).unwrap() {
            let file = file.unwrap().path();
            let bytes = std::fs::read(&file).unwrap();
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                f.seek(SeekFrom::Start(at as u64)).unwrap();
                f.write_all(&[bytes[at] ^ 0xff]).unwrap();
                return;
            }
        }
    }
    panic!("no record holds {needle:?}");
}

/// A record damaged while the store runs (found by a hard get) is out of the queue's count:
/// once its other messages are taken, the queue's length is 0 and no get is promised more.
#[tokio::test]
async fn damage_found_by_a_hard_get_leaves_the_count_right() {
    let dir = tempfile::tempdir().unwrap();
    let q = queue("damaged-live");
    let store = warmed(dir.path(), &q).await;
    let mut keys = Vec::new();
    for value in ["first-kept", "second-damaged", "third-kept"] {
        keys.push(store.add(&q, value.to_owned(), None).await.unwrap().n);
    }
    damage_payload_in_place(dir.path(), b"second-damaged");
    assert_eq!(numbers(&store, &q).await, [keys[0], keys[2]]);
    assert_eq!(len(&store, &q).await, 0, "the damaged record is not counted as waiting");
    store.close().await.unwrap();
}
