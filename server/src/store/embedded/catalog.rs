//! The `embedded` backend's SQLite schema and its in-memory catalog: per queue, the counter,
//! settings, how many messages wait or are delayed, the leases out, and the bounded tail cache
//! of a queue whose consumers keep up (see `tail`). The catalog is O(queues + leases) plus at
//! most `tail::TAIL_BYTES` of bodies, whatever the backlog.

use std::collections::{BTreeMap, BTreeSet};

use restmq_shared::{Policy, QueueName, QueueStatus};
use rusqlite::{params, Connection};

use super::tail::Tail;

/// How far ahead of the last number handed out a queue's row counter is written: one row
/// write per this many adds, and after a crash numbering goes on past a gap of at most this.
pub const NUMBERS_AHEAD: u64 = 1024;

/// A message's `state` column.
pub const WAITING: i64 = 0;
/// Delayed: `visible_at` says when it joins the waiting ones.
pub const DELAYED: i64 = 1;
/// Out on a lease: `visible_at` holds the lease's deadline.
pub const LEASED: i64 = 2;

/// The tables. `messages_order` serves gets (oldest waiting first), counts at start-up (it
/// covers them: no message body is read) and lookups by key.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    counter INTEGER NOT NULL, policy INTEGER NOT NULL, status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages(
    id INTEGER PRIMARY KEY, queue INTEGER NOT NULL, n INTEGER NOT NULL, state INTEGER NOT NULL,
    value TEXT NOT NULL, expires_at INTEGER, visible_at INTEGER,
    reads INTEGER NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_order ON messages(queue, state, n);
CREATE INDEX IF NOT EXISTS messages_due ON messages(visible_at) WHERE state = 1;
CREATE INDEX IF NOT EXISTS messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL AND state = 0;
CREATE TABLE IF NOT EXISTS idempotency(
    queue TEXT NOT NULL, key TEXT NOT NULL, ns TEXT NOT NULL, until INTEGER NOT NULL,
    PRIMARY KEY(queue, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_until ON idempotency(until);
CREATE TABLE IF NOT EXISTS logs(queue INTEGER PRIMARY KEY, drained INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holes(queue INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(queue, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_reads(
    queue INTEGER NOT NULL, n INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(queue, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probe(id INTEGER PRIMARY KEY, room BLOB NOT NULL);
";

/// One queue as the catalog keeps it.
#[derive(Debug, Clone, Default)]
pub struct QueueMeta {
    /// Its row in `queues`, and the `queue` column of its messages.
    pub id: i64,
    /// The last `n` handed out; kept after its message is gone, so `n` is never reused.
    pub counter: u64,
    /// The counter as the queue's row holds it: never below `counter` (see `Db::number`).
    pub saved: u64,
    /// `None` when never set.
    pub policy: Option<Policy>,
    pub status: QueueStatus,
    /// Messages that a get would take (expired ones not yet swept included), those on the
    /// queue's log (`logged`) included.
    pub waiting: u64,
    /// Waiting messages on the queue's log, not in SQLite (see `logs`).
    pub logged: u64,
    /// Numbers of messages on the queue's log deleted by key (rows of `holes`): gets and
    /// reads skip them, and they leave as the log's head passes them (see `log_ops`).
    pub holes: BTreeSet<u64>,
    pub delayed: u64,
    /// Leased message numbers and their deadlines (Unix ms).
    pub leases: BTreeMap<u64, u64>,
    /// The waiting messages, when known and few (see `tail`).
    pub tail: Option<Tail>,
}

impl QueueMeta {
    /// Waiting messages in SQLite (not on the queue's log).
    pub fn stored(&self) -> u64 {
        self.waiting.saturating_sub(self.logged)
    }

    /// Once the counter has passed the one the row holds, moves the row's [`NUMBERS_AHEAD`]
    /// further; `true` when the row must then be written.
    pub fn keep_ahead(&mut self) -> bool {
        let behind = self.counter > self.saved;
        if behind {
            self.saved = self.counter + NUMBERS_AHEAD;
        }
        behind
    }

    /// Policy and status as RestMQ numbers them: `1` broadcast, `2` roundrobin (`0` never
    /// set); `1` started, `0` paused.
    pub fn row(&self) -> (i64, i64) {
        (self.policy.map_or(0, |p| i64::from(p.as_number())), i64::from(self.status.as_number()))
    }

    pub fn from_row(id: i64, counter: i64, policy: i64, status: i64) -> Self {
        let policy = match policy {
            0 => None,
            2 => Some(Policy::Roundrobin),
            _ => Some(Policy::Broadcast),
        };
        let status = if status == 0 { QueueStatus::Paused } else { QueueStatus::Started };
        let counter = counter as u64;
        Self { id, counter, saved: counter, policy, status, ..Default::default() }
    }
}

/// Every queue, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    pub queues: BTreeMap<QueueName, QueueMeta>,
    next_id: i64,
    /// The rowid the next message inserted gets (messages are numbered here, not by SQLite,
    /// so an add known in memory has its row's id before the row is written).
    pub next_row: i64,
    /// The bytes of every queue's tail.
    pub tail_bytes: usize,
}

impl Catalog {
    /// The queue, registered (with a new id) if new; `true` when it was new.
    pub fn register(&mut self, queue: &QueueName) -> (&mut QueueMeta, bool) {
        let new = !self.queues.contains_key(queue);
        if new {
            self.next_id += 1;
            let meta = QueueMeta { id: self.next_id, ..Default::default() };
            self.queues.insert(queue.clone(), meta);
        }
        (self.queues.get_mut(queue).expect("registered above"), new)
    }

    /// The queues whose row holds a counter below their counter as read back (their highest
    /// message, written by a version whose adds left the row behind; their log's last number
    /// and the gap after an unclean stop, see `Logs::open`), to be written with the next
    /// commit — which any removal needs — holding that counter: not [`NUMBERS_AHEAD`] more,
    /// so that starts killed in a row skip one gap, not one each (the next number given through
    /// SQLite writes the row ahead, see `Db::number`).
    pub fn bring_ahead(&mut self) -> std::collections::BTreeSet<QueueName> {
        let behind = self.queues.iter_mut().filter(|(_, meta)| meta.counter > meta.saved);
        behind.map(|(queue, meta)| (meta.saved = meta.counter, queue.clone()).1).collect()
    }

    /// Reads the catalog: queue rows, and counts of messages per queue and state from the
    /// `messages_order` index alone. With `reset_leases` (at start-up), messages left leased
    /// by the last run wait again; otherwise their leases are read back.
    pub fn load(conn: &Connection, reset_leases: bool) -> rusqlite::Result<Self> {
        let mut catalog = Self::default();
        let mut by_id = BTreeMap::new();
        let mut stmt = conn.prepare("SELECT id, name, counter, policy, status FROM queues")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        for row in rows {
            let (id, name, counter, policy, status) = row?;
            catalog.next_id = catalog.next_id.max(id);
            let Ok(queue) = QueueName::try_from(name.as_str()) else {
                tracing::warn!(queue = name, "embedded store: skipping a queue with an invalid name");
                continue;
            };
            by_id.insert(id, queue.clone());
            catalog.queues.insert(queue, QueueMeta::from_row(id, counter, policy, status));
        }
        catalog.next_row = conn.query_row("SELECT ifnull(max(id), 0) + 1 FROM messages", [], |r| r.get(0))?;
        // The queue's row holds a counter at least the highest number handed out (see
        // `Db::number`); the highest message number is read too, for files where adds did not
        // write the row.
        let mut stmt =
            conn.prepare("SELECT queue, state, count(*), max(n) FROM messages GROUP BY queue, state")?;
        let counts = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut leased = Vec::new();
        for row in counts {
            let (id, state, count, last) = row?;
            let Some(meta) = by_id.get(&id).and_then(|q| catalog.queues.get_mut(q)) else { continue };
            meta.counter = meta.counter.max(last as u64);
            match state {
                WAITING => meta.waiting += count as u64,
                DELAYED => meta.delayed += count as u64,
                _ => leased.push((id, count as u64)),
            }
        }
        let mut stmt = conn.prepare("SELECT queue, n FROM holes")?;
        let holes = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in holes {
            let (id, n) = row?;
            let Some(meta) = by_id.get(&id).and_then(|q| catalog.queues.get_mut(q)) else { continue };
            meta.holes.insert(n as u64);
        }
        for (id, count) in leased {
            let Some(meta) = by_id.get(&id).and_then(|q| catalog.queues.get_mut(q)) else { continue };
            if reset_leases {
                conn.execute(
                    "UPDATE messages SET state = 0, visible_at = NULL WHERE queue = ?1 AND state = 2",
                    params![id],
                )?;
                meta.waiting += count;
                continue;
            }
            let mut stmt =
                conn.prepare("SELECT n, visible_at FROM messages WHERE queue = ?1 AND state = 2")?;
            let rows =
                stmt.query_map(params![id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)))?;
            for row in rows {
                let (n, deadline) = row?;
                meta.leases.insert(n as u64, deadline.unwrap_or(0) as u64);
            }
        }
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use restmq_shared::QueueName;
    use rusqlite::Connection;

    use super::{Catalog, SCHEMA};
    use crate::store::{EmbeddedStore, QueueStore};

    /// A row whose counter is behind its messages (an older version's adds did not write it)
    /// is brought up to them, and marked to be written with the next commit.
    #[test]
    fn a_row_behind_its_messages_is_brought_ahead() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO queues(id, name, counter, policy, status) VALUES (1, 'old', 0, 0, 1), (2, 'fine', 9, 0, 1);
             INSERT INTO messages(queue, n, state, value) VALUES (1, 1, 0, 'a'), (1, 3, 0, 'c'), (2, 4, 0, 'd');",
        )
        .unwrap();
        let mut catalog = Catalog::load(&conn, true).unwrap();
        let (old, fine) = (QueueName::try_from("old").unwrap(), QueueName::try_from("fine").unwrap());
        assert_eq!(catalog.bring_ahead().into_iter().collect::<Vec<_>>(), std::slice::from_ref(&old));
        let (old, fine) = (&catalog.queues[&old], &catalog.queues[&fine]);
        assert_eq!((old.counter, old.saved, old.waiting), (3, 3, 2));
        assert_eq!((fine.counter, fine.saved), (9, 9));
    }

    /// A file of the earlier format (adds did not write the queue's row), whose newest message
    /// expired while closed: the number of that message is not given again.
    #[tokio::test]
    async fn a_number_of_a_message_expired_while_closed_is_not_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let q = QueueName::try_from("old").unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.add(&q, "made".to_owned(), None).await.unwrap();
        store.close().await.unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join(crate::store::embedded::DB_FILE)).unwrap();
        conn.execute_batch(
            "DELETE FROM messages; UPDATE queues SET counter = 5;
             INSERT INTO messages(queue, n, state, value, expires_at) VALUES (1, 6, 0, 'live', NULL), (1, 7, 0, 'gone', 1);",
        )
        .unwrap();
        drop(conn);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.info(&q).await.unwrap().unwrap().len, 1);
        assert_eq!(store.add(&q, "new".to_owned(), None).await.unwrap().n, 8);
        store.close().await.unwrap();
    }

    /// Adds leave the queue's row behind, yet a reopened store numbers on from the highest
    /// message, and after a get emptied the queue, from the counter written with it.
    #[tokio::test]
    async fn numbers_go_on_after_a_restart_whether_the_queue_holds_messages_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let q = QueueName::try_from("numbers").unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for value in ["a", "b", "c"] {
            store.add(&q, value.to_owned(), None).await.unwrap();
        }
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.add(&q, "d".to_owned(), None).await.unwrap().n, 4);
        assert_eq!(store.pop(&q, usize::MAX).await.unwrap().len(), 4);
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.add(&q, "e".to_owned(), None).await.unwrap().n, 5);
        store.close().await.unwrap();
    }
}
