//! The embedded store's tail cache: a queue's waiting messages kept in memory too, while they
//! are few and small, so that a get takes them without reading SQLite — the common case of a
//! consumer keeping up with its producers, where every message is got soon after its add.
//!
//! A queue's tail is either unknown (`None`: gets read SQLite) or holds exactly its waiting
//! messages, oldest first. It is known from the moment a get finds the queue empty; adds then
//! append to it and gets take from it; any other change to the waiting messages (a peek, a
//! nack, a requeue, a delete by key, promotion, expiry, purge) or an add past the bounds
//! forgets it until the queue is empty again. It is only a copy: every add and every get
//! still writes SQLite in the batch's transaction, and a failed batch reloads the catalog,
//! tails unknown. Bounded per queue ([`TAIL_MAX`], [`TAIL_VALUE_MAX`]) and in all
//! ([`TAIL_BYTES`]), so memory does not grow with the backlog.

use std::collections::VecDeque;

use restmq_shared::QueueName;

use super::db::Db;
use super::ops::Row;

/// The most messages in one queue's tail.
pub const TAIL_MAX: usize = 64;
/// The largest message kept in a tail, in bytes.
pub const TAIL_VALUE_MAX: usize = 4096;
/// The bytes of every tail together.
pub const TAIL_BYTES: usize = 4 << 20;

/// The cached waiting messages of one queue.
pub type Tail = VecDeque<Row>;

impl Db {
    /// Forgets `queue`'s tail: its waiting messages changed other than by an add or a get.
    pub(super) fn forget_tail(&mut self, queue: &QueueName) {
        let Some(meta) = self.catalog.queues.get_mut(queue) else { return };
        if let Some(tail) = meta.tail.take() {
            let bytes = tail.iter().map(|r| r.value.len()).sum::<usize>();
            self.catalog.tail_bytes = self.catalog.tail_bytes.saturating_sub(bytes);
        }
    }

    /// `queue` holds no waiting message: its tail is known (empty) from now on.
    pub(super) fn tail_empty(&mut self, queue: &QueueName) {
        if let Some(meta) = self.catalog.queues.get_mut(queue).filter(|m| m.stored() == 0) {
            if meta.tail.is_none() {
                meta.tail = Some(Tail::new());
            }
        }
    }

    /// Appends the waiting message just inserted to `queue`'s tail, or forgets the tail if the
    /// message does not fit.
    pub(super) fn remember(&mut self, queue: &QueueName, row: impl FnOnce() -> Row, len: usize) {
        let budget = self.catalog.tail_bytes + len <= TAIL_BYTES;
        let Some(meta) = self.catalog.queues.get_mut(queue) else { return };
        match meta.tail.as_mut() {
            None => {}
            Some(tail) if tail.len() < TAIL_MAX && len <= TAIL_VALUE_MAX && budget => {
                tail.push_back(row());
                self.catalog.tail_bytes += len;
            }
            Some(_) => self.forget_tail(queue),
        }
    }

    /// Takes up to `max` of the oldest waiting messages from `queue`'s tail; `None` when the
    /// tail is unknown (or, defensively, does not match the count of waiting messages).
    pub(super) fn tail_take(&mut self, queue: &QueueName, max: usize) -> Option<Vec<Row>> {
        let meta = self.catalog.queues.get_mut(queue)?;
        let stored = meta.stored();
        let tail = meta.tail.as_mut()?;
        if tail.len() as u64 != stored {
            self.forget_tail(queue);
            return None;
        }
        let rows: Vec<Row> = tail.drain(..max.min(tail.len())).collect();
        let bytes = rows.iter().map(|r| r.value.len()).sum::<usize>();
        self.catalog.tail_bytes = self.catalog.tail_bytes.saturating_sub(bytes);
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use restmq_shared::{MessageKey, QueueName};

    use super::TAIL_MAX;
    use crate::store::{EmbeddedStore, LeaseStore, QueueStore, StoredMessage};

    async fn pop_values(store: &EmbeddedStore, q: &QueueName, max: usize) -> Vec<String> {
        store.pop(q, max).await.unwrap().into_iter().map(|m| m.value).collect()
    }

    async fn add_all(store: &EmbeddedStore, q: &QueueName, values: &[&str]) -> Vec<MessageKey> {
        let mut keys = Vec::new();
        for v in values {
            keys.push(store.add(q, (*v).to_owned(), None).await.unwrap());
        }
        keys
    }

    /// Gets served from the tail give what SQLite holds, in order, through every change that
    /// forgets the tail (peek, delete by key, nack, requeue) and past its bounds.
    #[tokio::test]
    async fn gets_from_the_tail_match_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let q = QueueName::try_from("tail").unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(pop_values(&store, &q, 10).await.is_empty()); // the tail is known: empty
        add_all(&store, &q, &["a", "b", "c"]).await;
        assert_eq!(pop_values(&store, &q, 1).await, ["a"]);
        assert_eq!(store.peek(&q).await.unwrap().unwrap().value, "b");
        assert_eq!(pop_values(&store, &q, 10).await, ["b", "c"]);

        let keys = add_all(&store, &q, &["d", "e", "f"]).await;
        assert!(store.delete(&keys[1]).await.unwrap());
        assert_eq!(pop_values(&store, &q, 10).await, ["d", "f"]);

        add_all(&store, &q, &["g", "h"]).await;
        let leased = store.reserve(&q, 1, Duration::from_secs(60)).await.unwrap();
        assert_eq!(leased[0].value, "g");
        add_all(&store, &q, &["i"]).await;
        assert!(store.nack(&leased[0].key).await.unwrap());
        assert_eq!(pop_values(&store, &q, 10).await, ["g", "h", "i"]);

        add_all(&store, &q, &["j"]).await;
        let back = StoredMessage { key: MessageKey::new(q.clone(), 1), value: "a again".to_owned() };
        store.requeue(&q, vec![back]).await.unwrap();
        assert_eq!(pop_values(&store, &q, 10).await, ["a again", "j"]);

        let many: Vec<String> = (0..TAIL_MAX * 2).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        add_all(&store, &q, &refs).await;
        assert_eq!(pop_values(&store, &q, 3).await, ["m0", "m1", "m2"]);
        drop(store);
        // What the tail served is gone from the database too.
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(pop_values(&store, &q, usize::MAX).await, many[3..]);
        store.close().await.unwrap();
    }
}
