//! The embedded store's operations on the queue logs (see `logs`): a plain add and a hard get
//! that run without a transaction — copies into and out of the log's shared maps —, a soft get
//! and a delete by key in place (a read count, a hole), and the drain that moves a queue's log
//! into SQLite before any other operation on it that writes.

use std::collections::HashMap;
use std::io;

use restmq_shared::{MessageKey, QueueName};
use rusqlite::params;

use super::batcher::Kind;
use super::catalog::WAITING;
use super::db::{Db, Sql};
use super::logs::{sql_error, write_drained};
use super::EmbeddedStore;
use crate::store::{PeekedMessage, StoreError, StoreResult, StoredMessage};

/// The largest message added through a log; larger ones go through SQLite.
pub const LOG_VALUE_MAX: usize = 1 << 20;
/// The most holes (messages deleted by key on a log) the store keeps, over all queues: about
/// 40 MiB of memory at most (a number in a set, a row in SQLite). Past it, a delete by key on a
/// log drains the queue's log into SQLite first (its holes go with it).
pub const MAX_HOLES: usize = if cfg!(test) { 64 } else { 1 << 20 };
/// The most messages one batch moves from a log into SQLite ahead of an operation (see
/// `EmbeddedStore::predrain`).
pub const DRAIN_CHUNK: usize = 4096;

fn log_failure(error: &io::Error) -> StoreError {
    if error.kind() == io::ErrorKind::StorageFull {
        StoreError::InsufficientStorage(format!("the queue's log: {error}"))
    } else {
        StoreError::Unavailable(format!("the queue's log: {error}"))
    }
}

/// What an add does when its log fails: a full disk refuses it (`507`), as SQLite would;
/// any other failure (no file descriptor left, a damaged log) sends it through SQLite.
fn refused<T>(error: &io::Error) -> Option<StoreResult<T>> {
    if error.kind() == io::ErrorKind::StorageFull {
        return Some(Err(log_failure(error)));
    }
    tracing::warn!(%error, "embedded store: a queue's log failed; the add goes through SQLite");
    None
}

impl Db {
    /// Adds `value` through `queue`'s log; `None` when it must go through SQLite instead: a
    /// queue not committed yet (its row must be on disk before its log is), a queue past the
    /// bound on logs, a large value.
    pub fn log_add(&mut self, queue: &QueueName, value: &str) -> Option<StoreResult<u64>> {
        if value.len() > LOG_VALUE_MAX || self.dirty.contains(queue) {
            return None;
        }
        let meta = self.catalog.queues.get_mut(queue)?;
        let log = match self.logs.get_or_open(meta.id, meta.counter) {
            Ok(log) => log?,
            Err(error) => return refused(&error),
        };
        let n = meta.counter + 1;
        if let Err(error) = log.log.append(n, value.as_bytes()) {
            return refused(&error);
        }
        log.written();
        meta.counter = n;
        meta.waiting += 1;
        meta.logged += 1;
        // The tail cache holds SQLite's waiting messages only.
        self.forget_tail(queue);
        Some(Ok(n))
    }

    /// Takes up to `max` messages off `queue`'s log when SQLite holds none of its waiting
    /// messages (`None` otherwise: the get goes through SQLite).
    pub fn log_pop(&mut self, queue: &QueueName, max: usize) -> Option<StoreResult<Vec<StoredMessage>>> {
        let meta = self.catalog.queues.get_mut(queue)?;
        if meta.logged == 0 || meta.waiting != meta.logged {
            return None;
        }
        let log = self.logs.open.get_mut(&meta.id)?;
        let mut out = Vec::new();
        while out.len() < max && meta.logged > 0 {
            let Some((n, payload)) = log.log.head() else { break };
            let value = String::from_utf8_lossy(payload).into_owned();
            if let Err(error) = log.log.take() {
                if out.is_empty() {
                    return Some(Err(log_failure(&error)));
                }
                break;
            }
            // Left by a drain whose head move failed: SQLite has it.
            if n <= log.drained {
                continue;
            }
            // Deleted by key: its row goes with the next write batch.
            if meta.holes.remove(&n) {
                self.passed_holes.push((meta.id, n));
                continue;
            }
            (meta.waiting, meta.logged) = (meta.waiting - 1, meta.logged - 1);
            out.push(StoredMessage { key: MessageKey::new(queue.clone(), n), value });
        }
        // An empty log waits with nothing: what is still counted was lost to damage found on
        // the way (skipped by the log, out of its count), holes on such records included.
        if log.log.is_empty() {
            meta.waiting = meta.waiting.saturating_sub(meta.logged);
            meta.logged = 0;
            let id = meta.id;
            self.passed_holes.extend(std::mem::take(&mut meta.holes).into_iter().map(|n| (id, n)));
        }
        log.written();
        self.tail_empty(queue);
        Some(Ok(out))
    }

    /// Up to `max` of `queue`'s logged messages numbered above `after`, oldest first, read in
    /// place: nothing is drained or taken (a page of a browse).
    pub(super) fn logged_after(&self, queue: &QueueName, after: u64, max: usize) -> Sql<Vec<(u64, String)>> {
        let Some(meta) = self.catalog.queues.get(queue).filter(|m| m.logged > 0) else {
            return Ok(Vec::new());
        };
        let Some(log) = self.logs.open.get(&meta.id) else { return Ok(Vec::new()) };
        // Those a drain of this transaction moved are SQLite's (read there).
        let floor = after.max(log.draining);
        let mut out = Vec::new();
        let visited = log.log.visit(usize::MAX, |n, payload| {
            if n > floor && !meta.holes.contains(&n) {
                out.push((n, String::from_utf8_lossy(payload).into_owned()));
            }
            Ok(out.len() < max)
        });
        visited.map_err(sql_error)?;
        Ok(out)
    }

    /// The numbers of `queue`'s newest `max` logged messages, newest first, read from its
    /// log's tail (they may skip: a gap after a restart), holes left out.
    pub(super) fn newest_logged(&self, queue: &QueueName, max: usize) -> Sql<Vec<u64>> {
        let Some(meta) = self.catalog.queues.get(queue) else { return Ok(Vec::new()) };
        let Some(log) = self.logs.open.get(&meta.id) else { return Ok(Vec::new()) };
        let max = usize::try_from(meta.logged).unwrap_or(usize::MAX).min(max);
        let mut newest = log.log.newest(max.saturating_add(meta.holes.len())).map_err(sql_error)?;
        // Left by a drain whose head move failed (or by this transaction's): SQLite has them.
        newest.retain(|&n| n > log.draining && !meta.holes.contains(&n));
        newest.truncate(max);
        Ok(newest)
    }

    /// Deletes message `key` if it waits on its queue's log: a hole, its row in the batch's
    /// transaction (no message moves); `false` when the log does not hold it.
    pub(super) fn log_delete(&mut self, key: &MessageKey) -> Sql<bool> {
        let Some(meta) = self.catalog.queues.get(&key.queue).filter(|m| m.logged > 0) else {
            return Ok(false);
        };
        let Some(log) = self.logs.open.get(&meta.id) else { return Ok(false) };
        if key.n <= log.draining || key.n > log.log.last_number() || meta.holes.contains(&key.n) {
            return Ok(false);
        }
        let mut found = false;
        let visited = log.log.visit(usize::MAX, |n, _| {
            found |= n == key.n;
            Ok(n < key.n)
        });
        visited.map_err(sql_error)?;
        if !found {
            return Ok(false);
        }
        let id = meta.id;
        if self.catalog.queues.values().map(|m| m.holes.len()).sum::<usize>() >= MAX_HOLES {
            // Past the bound on holes: the queue's log moves into SQLite (its holes with it),
            // where the message is deleted.
            self.drain(&key.queue)?;
            return Ok(false);
        }
        self.sql()?
            .prepare_cached("INSERT OR IGNORE INTO holes(queue, n) VALUES (?1, ?2)")?
            .execute(params![id, key.n as i64])?;
        let meta = self.catalog.queues.get_mut(&key.queue).expect("looked up above");
        meta.holes.insert(key.n);
        meta.waiting = meta.waiting.saturating_sub(1);
        meta.logged = meta.logged.saturating_sub(1);
        Ok(true)
    }

    /// The oldest message waiting on `queue`'s log, read in place, its read counted (a row of
    /// `log_reads`, which goes with the message if a drain moves it). Older reads' rows go.
    pub(super) fn log_peek(&mut self, queue: &QueueName) -> Sql<Option<PeekedMessage>> {
        let Some(meta) = self.catalog.queues.get(queue).filter(|m| m.logged > 0) else { return Ok(None) };
        let Some(log) = self.logs.open.get(&meta.id) else { return Ok(None) };
        let (floor, id) = (log.draining, meta.id);
        let mut first = None;
        let visited = log.log.visit(usize::MAX, |n, payload| {
            if n > floor && !meta.holes.contains(&n) {
                first = Some((n, String::from_utf8_lossy(payload).into_owned()));
                return Ok(false);
            }
            Ok(true)
        });
        visited.map_err(sql_error)?;
        let Some((n, value)) = first else { return Ok(None) };
        let conn = self.sql()?;
        conn.prepare_cached("DELETE FROM log_reads WHERE queue = ?1 AND n < ?2")?
            .execute(params![id, n as i64])?;
        let count: i64 = conn
            .prepare_cached(
                "INSERT INTO log_reads(queue, n, count) VALUES (?1, ?2, 1) \
                 ON CONFLICT(queue, n) DO UPDATE SET count = count + 1 RETURNING count",
            )?
            .query_row(params![id, n as i64], |r| r.get(0))?;
        Ok(Some(PeekedMessage { key: MessageKey::new(queue.clone(), n), value, count: count as u64 }))
    }

    /// The soft reads of `queue`'s logged messages numbered `from..=to`.
    pub(super) fn log_reads(&self, queue: &QueueName, from: u64, to: u64) -> Sql<HashMap<u64, u64>> {
        let Some(meta) = self.catalog.queues.get(queue) else { return Ok(HashMap::new()) };
        let mut stmt = self
            .sql()?
            .prepare_cached("SELECT n, count FROM log_reads WHERE queue = ?1 AND n >= ?2 AND n <= ?3")?;
        let rows = stmt.query_map(params![meta.id, from as i64, to as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?;
        rows.collect()
    }

    /// Moves `queue`'s logged messages into SQLite, in the batch's transaction (their log's
    /// head moves once it is committed and fsynced). Each message is read from the log's map
    /// as it is inserted: no copy.
    pub(super) fn drain(&mut self, queue: &QueueName) -> Sql<()> {
        self.drain_some(queue, usize::MAX).map(drop)
    }

    /// As `drain`, the oldest `max` logged messages at most; how many moved. Only operations
    /// that write drain (they run in a transaction, which the moved rows and mark join).
    pub(super) fn drain_some(&mut self, queue: &QueueName, max: usize) -> Sql<usize> {
        let Some(meta) = self.catalog.queues.get(queue).filter(|m| m.logged > 0) else { return Ok(0) };
        let id = meta.id;
        debug_assert!(self.begin.get() || !self.conn.is_autocommit(), "a drain outside a write batch");
        // Out of the map while its messages are inserted (the insert needs the whole `Db`).
        let Some(mut log) = self.logs.open.remove(&id) else { return Ok(0) };
        let (mut first, mut last, mut moved) = (None, None, 0);
        // Past what this transaction's drains moved already (their head moves at the commit).
        let floor = log.draining;
        let mut holes =
            self.catalog.queues.get_mut(queue).map(|m| std::mem::take(&mut m.holes)).unwrap_or_default();
        let mut passed = Vec::new();
        let visited = log.log.visit(usize::MAX, |n, payload| {
            if n > floor {
                first.get_or_insert(n);
                if holes.remove(&n) {
                    passed.push((id, n));
                } else {
                    let value = String::from_utf8_lossy(payload);
                    self.insert(id, n, WAITING, &value, None, None).map_err(io::Error::other)?;
                    moved += 1;
                }
                last = Some(n);
            }
            Ok(moved < max)
        });
        if let Some(meta) = self.catalog.queues.get_mut(queue) {
            meta.holes = holes;
        }
        self.passed_holes.extend(passed);
        let moved_through = last.filter(|_| visited.is_ok());
        if let Some(last) = moved_through {
            log.draining = last;
            self.logs.pending.push(id);
        }
        self.logs.open.insert(id, log);
        visited.map_err(sql_error)?;
        let Some(last) = moved_through else { return Ok(0) };
        write_drained(self.sql()?, id, last)?;
        // Soft reads of the moved messages go with them (only theirs: a row left by a message
        // a hard get took off the log, requeued into SQLite since, is stale).
        let first = first.unwrap_or(last);
        self.sql()?
            .prepare_cached(
                "UPDATE messages SET reads = r.count FROM log_reads r \
                 WHERE r.queue = ?1 AND r.n >= ?3 AND r.n <= ?2 AND messages.queue = r.queue AND messages.n = r.n AND messages.state = 0",
            )?
            .execute(params![id, last as i64, first as i64])?;
        self.sql()?
            .prepare_cached("DELETE FROM log_reads WHERE queue = ?1 AND n <= ?2")?
            .execute(params![id, last as i64])?;
        if let Some(meta) = self.catalog.queues.get_mut(queue) {
            meta.logged = meta.logged.saturating_sub(moved as u64);
        }
        self.forget_tail(queue);
        Ok(moved)
    }

    /// Drops `queue`'s logged messages without moving them (a purge): its `drained` mark
    /// goes past them, in the batch's transaction.
    pub(super) fn discard_logged(&mut self, queue: &QueueName) -> Sql<()> {
        // A log of holes only holds records too: they go with the holes.
        let Some(meta) = self.catalog.queues.get_mut(queue).filter(|m| m.logged > 0 || !m.holes.is_empty())
        else {
            return Ok(());
        };
        let Some(log) = self.logs.open.get_mut(&meta.id) else { return Ok(()) };
        let (id, last) = (meta.id, log.log.last_number());
        meta.waiting = meta.waiting.saturating_sub(meta.logged);
        meta.logged = 0;
        log.draining = last;
        write_drained(self.sql()?, id, last)?;
        self.logs.pending.push(id);
        Ok(())
    }
}

impl EmbeddedStore {
    /// A plain add through `queue`'s log (see `Db::log_add`); `None` when it goes through
    /// SQLite instead, as every add does under `--fsync always`.
    pub(super) async fn log_add(&self, queue: &QueueName, value: &str) -> Option<StoreResult<u64>> {
        if !self.logs {
            return None;
        }
        // An operation that never waits: yield when the task's budget is spent.
        tokio::task::coop::consume_budget().await;
        self.batcher.direct(|db| db.log_add(queue, value))
    }

    /// Before an operation that drains `queue`'s log: moves all but its newest
    /// [`DRAIN_CHUNK`] (or fewer) messages into SQLite a chunk at a time, each chunk a batch
    /// of its own, so that no batch holds the engine for a whole deep log. Bounded: no more
    /// chunks than the log held when it began, however fast adds come meanwhile.
    pub(super) async fn predrain(&self, queue: &QueueName) -> StoreResult<()> {
        let logged = self.batcher.direct(|db| Some(Ok(db.catalog.queues.get(queue).map_or(0, |m| m.logged))));
        let Some(Ok(logged)) = logged else { return Ok(()) };
        for _ in 0..logged / DRAIN_CHUNK as u64 {
            let q = queue.clone();
            let moved = self.call(Kind::Write, move |db| db.drain_some(&q, DRAIN_CHUNK).map(Ok)).await?;
            if moved < DRAIN_CHUNK {
                break;
            }
        }
        Ok(())
    }
}
