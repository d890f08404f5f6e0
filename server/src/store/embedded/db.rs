//! The embedded store's connection and catalog as a batch uses them (`Db`), and how writes
//! reach the batch's transaction: begun by its first statement, the batch's adds kept
//! unwritten until then (or taken by its gets and never written), message rows inserted with
//! ids given here, and the queues' rows — a queue's counter written `catalog::NUMBERS_AHEAD` ahead,
//! so that taking a message writes no row. The operations themselves are in `ops`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use restmq_shared::QueueName;
use rusqlite::{params, Connection};

use super::catalog::{Catalog, QueueMeta, WAITING};
use super::logs::Logs;

pub type Sql<T> = rusqlite::Result<T>;

/// The connection and the catalog, owned by the thread running the batch.
pub struct Db {
    pub conn: Connection,
    pub catalog: Catalog,
    /// Queues whose row (counter, settings) changed in the open transaction.
    pub dirty: BTreeSet<QueueName>,
    /// The batch writes and its transaction is not begun yet: the first statement begins it,
    /// so a batch that finds nothing to do (a get on an empty queue) costs no transaction.
    pub begin: Cell<bool>,
    /// Waiting messages added in this batch and not inserted yet: inserted before the batch's
    /// next statement or its commit, or never if a get of the same batch takes them first —
    /// an add and the get that takes it, together, change nothing on disk.
    pub unwritten: RefCell<Vec<Unwritten>>,
    /// The queues' logs (see `logs`).
    pub logs: Logs,
    /// Holes (queue id, number) the log's head has passed: their rows are deleted with the
    /// next write batch.
    pub passed_holes: Vec<(i64, u64)>,
}

/// A waiting message added in the open batch, its row not written yet.
#[derive(Debug)]
pub struct Unwritten {
    pub id: i64,
    pub queue: i64,
    pub n: u64,
    pub value: String,
    pub expires_at: Option<i64>,
}

const INSERT: &str = "INSERT INTO messages(id, queue, n, state, value, expires_at, visible_at) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl Db {
    /// The queue's meta, registering it (a new queue's row is written before the commit).
    pub(super) fn register(&mut self, queue: &QueueName) -> &mut QueueMeta {
        let (_, new) = self.catalog.register(queue);
        if new {
            self.dirty.insert(queue.clone());
        }
        self.catalog.queues.get_mut(queue).expect("registered above")
    }

    /// Marks `queue`'s row for writing: its settings or saved counter changed.
    pub(super) fn touch(&mut self, queue: &QueueName) {
        if !self.dirty.contains(queue) {
            self.dirty.insert(queue.clone());
        }
    }

    /// At close: every queue's row is to hold its exact counter (the numbers written ahead
    /// were not used).
    pub fn settle_counters(&mut self) {
        for (queue, meta) in &mut self.catalog.queues {
            if meta.saved > meta.counter {
                meta.saved = meta.counter;
                self.dirty.insert(queue.clone());
            }
        }
    }

    /// Runs a statement without parameters, prepared once (`BEGIN`, `COMMIT`).
    pub fn run_cached(&self, sql: &str) -> Sql<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// The connection for an operation's statements, inside the batch's transaction (begun
    /// here by the batch's first statement), the batch's unwritten adds inserted first.
    pub fn sql(&self) -> Sql<&Connection> {
        if self.begin.replace(false) {
            self.run_cached("BEGIN IMMEDIATE")?;
        }
        if !self.unwritten.borrow().is_empty() {
            let unwritten = self.unwritten.take();
            let mut stmt = self.conn.prepare_cached(INSERT)?;
            for m in unwritten {
                stmt.execute(params![
                    m.id,
                    m.queue,
                    m.n as i64,
                    WAITING,
                    m.value,
                    m.expires_at,
                    None::<i64>
                ])?;
            }
        }
        Ok(&self.conn)
    }

    /// Before the commit: inserts the batch's unwritten adds, writes the rows of the queues
    /// changed in this transaction.
    pub fn finish(&mut self) -> Sql<()> {
        if !self.passed_holes.is_empty() {
            let passed = std::mem::take(&mut self.passed_holes);
            let mut stmt = self.sql()?.prepare_cached("DELETE FROM holes WHERE queue = ?1 AND n = ?2")?;
            for (queue, n) in passed {
                stmt.execute(params![queue, n as i64])?;
            }
        }
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() {
            // Nothing else to write: no statement, so a batch whose adds were all taken by
            // its gets begins no transaction.
            return if self.unwritten.get_mut().is_empty() { Ok(()) } else { self.sql().map(drop) };
        }
        let mut stmt = self.sql()?.prepare_cached(
            "INSERT INTO queues(id, name, counter, policy, status) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(id) DO UPDATE SET counter = excluded.counter, policy = excluded.policy, \
             status = excluded.status",
        )?;
        for queue in dirty {
            let Some(meta) = self.catalog.queues.get(&queue) else { continue };
            let (policy, status) = meta.row();
            stmt.execute(params![meta.id, queue.as_str(), meta.saved as i64, policy, status])?;
        }
        Ok(())
    }

    /// Deletes message row `id` (an unwritten one is just dropped).
    pub(super) fn delete_row(&self, id: i64) -> Sql<()> {
        let mut unwritten = self.unwritten.borrow_mut();
        if let Some(i) = unwritten.iter().position(|m| m.id == id) {
            unwritten.remove(i);
            return Ok(());
        }
        drop(unwritten);
        self.sql()?.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute(params![id])?;
        Ok(())
    }

    /// Inserts message `n` of queue `id`.
    pub(super) fn insert(
        &mut self,
        id: i64,
        n: u64,
        state: i64,
        value: &str,
        expires_at: Option<u64>,
        visible_at: Option<u64>,
    ) -> Sql<()> {
        let row = self.next_row();
        let mut stmt = self.sql()?.prepare_cached(INSERT)?;
        let (expires_at, visible_at) = (expires_at.map(|t| t as i64), visible_at.map(|t| t as i64));
        stmt.execute(params![row, id, n as i64, state, value, expires_at, visible_at])?;
        Ok(())
    }

    pub(super) fn next_row(&mut self) -> i64 {
        self.catalog.next_row += 1;
        self.catalog.next_row - 1
    }

    /// Hands out the next `count` numbers of `queue` (registering it); returns its meta and
    /// the first. The row's counter is written `catalog::NUMBERS_AHEAD` ahead, so that a removal
    /// need not write it: the counter read back at start-up is never below a number given.
    pub(super) fn number(&mut self, queue: &QueueName, count: u64) -> (&mut QueueMeta, u64) {
        let meta = self.register(queue);
        let first = meta.counter + 1;
        meta.counter += count;
        self.keep_ahead(queue);
        (self.catalog.queues.get_mut(queue).expect("registered above"), first)
    }

    /// Once `queue`'s counter passes the one its row holds, the row is written with a counter
    /// `catalog::NUMBERS_AHEAD` further.
    pub(super) fn keep_ahead(&mut self, queue: &QueueName) {
        if self.catalog.queues.get_mut(queue).is_some_and(QueueMeta::keep_ahead) {
            self.touch(queue);
        }
    }
}
