//! The `embedded` backend's operations on its SQLite connection and catalog, run by the
//! engine thread inside the transaction of their batch. Each returns `Err` only for an SQLite
//! failure (which rolls the whole batch back); refusals (a full queue) are in the `Ok` value.
//! Leases and redrive are in `leases`, idempotency answers in `answers`.

use std::collections::BTreeSet;

use restmq_shared::{MessageKey, QueueName};
use rusqlite::params;

use super::catalog::{QueueMeta, DELAYED, WAITING};
use super::db::{Db, Sql, Unwritten};
use crate::store::{LengthLimit, PeekedMessage, StoreError, StoreResult, StoredMessage};

/// One waiting message as a get reads it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub n: u64,
    pub value: String,
    pub expires_at: Option<i64>,
    pub reads: i64,
    pub deliveries: i64,
}

/// No `LIMIT ?` in a cached statement: SQLite re-prepares a statement whose `LIMIT` parameter
/// is bound anew each run; the rows are taken from the cursor instead, which stops there.
pub const HEAD: &str = "SELECT id, n, value, expires_at, reads, deliveries FROM messages \
                    WHERE queue = ?1 AND state = 0 ORDER BY n";

impl Db {
    pub(super) fn meta(&self, queue: &QueueName) -> Option<&QueueMeta> {
        self.catalog.queues.get(queue)
    }

    /// The oldest `max` waiting rows of queue `id`.
    fn head(&self, id: i64, max: usize) -> Sql<Vec<Row>> {
        let mut stmt = self.sql()?.prepare_cached(HEAD)?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(Row {
                id: r.get(0)?,
                n: r.get::<_, i64>(1)? as u64,
                value: r.get(2)?,
                expires_at: r.get(3)?,
                reads: r.get(4)?,
                deliveries: r.get(5)?,
            })
        })?;
        rows.take(max).collect()
    }

    /// Appends waiting messages; returns their numbers. Their rows are written before the
    /// batch's next statement, or not at all if a get of the batch takes them first.
    pub fn add(&mut self, queue: &QueueName, values: &[String], expires_at: Option<u64>) -> Sql<Vec<u64>> {
        self.drain(queue)?;
        let (meta, first) = self.number(queue, values.len() as u64);
        meta.waiting += values.len() as u64;
        let id = meta.id;
        let expires_at = expires_at.map(|t| t as i64);
        for (i, value) in values.iter().enumerate() {
            let (n, rowid) = (first + i as u64, self.next_row());
            let row = || Row { id: rowid, n, value: value.clone(), expires_at, reads: 0, deliveries: 0 };
            self.remember(queue, row, value.len());
            let value = value.clone();
            self.unwritten.get_mut().push(Unwritten { id: rowid, queue: id, n, value, expires_at });
        }
        Ok((first..first + values.len() as u64).collect())
    }

    /// How many more messages `queue` may hold under `max` (waiting and delayed count).
    pub(super) fn room(&self, queue: &QueueName, max: u64) -> u64 {
        max.saturating_sub(self.meta(queue).map_or(0, |m| m.waiting + m.delayed))
    }

    pub fn add_batch(
        &mut self,
        queue: &QueueName,
        values: &[String],
        expires_at: Option<u64>,
        limit: Option<LengthLimit>,
        now: u64,
    ) -> Sql<StoreResult<Vec<u64>>> {
        if let Some(limit) = limit {
            let wanted = self.meta(queue).map_or(0, |m| m.waiting) + values.len() as u64;
            if wanted > limit.max {
                if !limit.drop_oldest || values.len() as u64 > limit.max {
                    return Ok(Err(StoreError::QueueFull(limit.max)));
                }
                self.take(queue, (wanted - limit.max) as usize, now, |db, (_, _, id, _, _)| {
                    db.delete_row(id)
                })?;
            }
        }
        self.add(queue, values, expires_at).map(Ok)
    }

    pub fn add_delayed(
        &mut self,
        queue: &QueueName,
        value: &str,
        expires_at: Option<u64>,
        visible_at: u64,
        limit: Option<LengthLimit>,
    ) -> Sql<StoreResult<u64>> {
        self.drain(queue)?;
        if let Some(limit) = limit.filter(|l| self.room(queue, l.max) == 0) {
            return Ok(Err(StoreError::QueueFull(limit.max)));
        }
        let (meta, n) = self.number(queue, 1);
        meta.delayed += 1;
        let id = meta.id;
        self.insert(id, n, DELAYED, value, expires_at, Some(visible_at))?;
        Ok(Ok(n))
    }

    /// Takes up to `max` of the oldest live waiting messages off `queue`, calling `each` with
    /// every one (expired ones are deleted on the way, unseen). Returns how many were taken.
    pub(super) fn take(
        &mut self,
        queue: &QueueName,
        max: usize,
        now: u64,
        each: impl FnMut(&Self, (u64, String, i64, i64, i64)) -> Sql<()>,
    ) -> Sql<usize> {
        self.drain(queue)?;
        self.take_stored(queue, max, now, each)
    }

    /// As `take`, from the messages in SQLite only (older than any on the queue's log: every
    /// operation that puts a waiting message in SQLite drains the log first).
    fn take_stored(
        &mut self,
        queue: &QueueName,
        max: usize,
        now: u64,
        mut each: impl FnMut(&Self, (u64, String, i64, i64, i64)) -> Sql<()>,
    ) -> Sql<usize> {
        // Nothing waits (the count includes expired messages not yet swept): no read at all.
        let Some(id) = self.meta(queue).filter(|m| m.stored() > 0).map(|m| m.id) else {
            self.tail_empty(queue);
            return Ok(0);
        };
        let mut taken = 0;
        while taken < max {
            let rows = match self.tail_take(queue, max - taken) {
                Some(rows) => rows,
                None => self.head(id, max - taken)?,
            };
            if rows.is_empty() {
                break;
            }
            for row in rows {
                if row.expires_at.is_some_and(|at| at as u64 <= now) {
                    self.delete_row(row.id)?;
                } else {
                    each(self, (row.n, row.value, row.id, row.reads, row.deliveries))?;
                    taken += 1;
                }
                if let Some(meta) = self.catalog.queues.get_mut(queue) {
                    meta.waiting = meta.waiting.saturating_sub(1);
                }
            }
        }
        self.tail_empty(queue);
        Ok(taken)
    }

    /// Takes up to `max` of the messages in SQLite (the log's come after: see `log_pop`), the
    /// log's drained first with `drain` (when the logs are not read: `--fsync always`).
    pub fn pop(&mut self, queue: &QueueName, max: usize, now: u64, drain: bool) -> Sql<Vec<StoredMessage>> {
        if drain {
            self.drain(queue)?;
        }
        let mut out = Vec::new();
        self.take_stored(queue, max, now, |db, (n, value, id, _, _)| {
            db.delete_row(id)?;
            out.push(StoredMessage { key: MessageKey::new(queue.clone(), n), value });
            Ok(())
        })?;
        Ok(out)
    }

    /// The oldest waiting message, its read counted: SQLite's (the older), else its log's.
    pub fn peek(&mut self, queue: &QueueName, now: u64) -> Sql<Option<PeekedMessage>> {
        let Some(meta) = self.meta(queue) else { return Ok(None) };
        if meta.stored() == 0 {
            return self.log_peek(queue);
        }
        let id = meta.id;
        // A read count changes, or an expired message goes.
        self.forget_tail(queue);
        loop {
            let Some(row) = self.head(id, 1)?.pop() else { return self.log_peek(queue) };
            if row.expires_at.is_some_and(|at| at as u64 <= now) {
                self.delete_row(row.id)?;
                if let Some(meta) = self.catalog.queues.get_mut(queue) {
                    meta.waiting = meta.waiting.saturating_sub(1);
                }
                continue;
            }
            self.sql()?
                .prepare_cached("UPDATE messages SET reads = reads + 1 WHERE id = ?1")?
                .execute(params![row.id])?;
            let key = MessageKey::new(queue.clone(), row.n);
            return Ok(Some(PeekedMessage { key, value: row.value, count: row.reads as u64 + 1 }));
        }
    }

    /// Deletes waiting message `key`; `true` when there was one.
    pub fn delete(&mut self, key: &MessageKey) -> Sql<bool> {
        self.delete_in(key, WAITING)
    }

    pub(super) fn delete_in(&mut self, key: &MessageKey, state: i64) -> Sql<bool> {
        if state == WAITING && self.log_delete(key)? {
            return Ok(true);
        }
        let Some(id) = self.meta(&key.queue).map(|m| m.id) else { return Ok(false) };
        let mut stmt =
            self.sql()?.prepare_cached("DELETE FROM messages WHERE queue = ?1 AND state = ?2 AND n = ?3")?;
        let found = stmt.execute(params![id, state, key.n as i64])? > 0;
        drop(stmt);
        if found && state == WAITING {
            self.forget_tail(&key.queue);
            let meta = self.catalog.queues.get_mut(&key.queue).expect("has an id");
            meta.waiting = meta.waiting.saturating_sub(1);
        }
        Ok(found)
    }

    /// Puts messages back as waiting, with no expiry and no reads.
    pub fn requeue(&mut self, queue: &QueueName, messages: &[StoredMessage]) -> Sql<()> {
        self.drain(queue)?;
        self.forget_tail(queue);
        let meta = self.register(queue);
        let id = meta.id;
        for m in messages {
            meta.counter = meta.counter.max(m.key.n);
        }
        meta.waiting += messages.len() as u64;
        self.keep_ahead(queue);
        for m in messages {
            self.insert(id, m.key.n, WAITING, &m.value, None, None)?;
        }
        Ok(())
    }

    /// Removes every message of the queue (waiting, leased, delayed), keeping its counter and
    /// settings. `true` when it held any.
    pub fn purge(&mut self, queue: &QueueName) -> Sql<bool> {
        let logged = self.meta(queue).is_some_and(|m| m.logged > 0);
        self.discard_logged(queue)?;
        self.forget_tail(queue);
        let Some(meta) = self.catalog.queues.get_mut(queue) else { return Ok(false) };
        let held = logged || meta.waiting + meta.delayed > 0 || !meta.leases.is_empty();
        (meta.waiting, meta.delayed) = (0, 0);
        meta.leases.clear();
        meta.holes.clear();
        let id = meta.id;
        self.sql()?.prepare_cached("DELETE FROM messages WHERE queue = ?1")?.execute(params![id])?;
        self.sql()?.prepare_cached("DELETE FROM holes WHERE queue = ?1")?.execute(params![id])?;
        self.sql()?.prepare_cached("DELETE FROM log_reads WHERE queue = ?1")?.execute(params![id])?;
        Ok(held)
    }

    /// Changes a queue's settings, registering it.
    pub fn settings(&mut self, queue: &QueueName, change: impl FnOnce(&mut QueueMeta)) -> StoreResult<()> {
        change(self.register(queue));
        self.touch(queue);
        Ok(())
    }

    /// The keys of the newest `max` waiting messages, newest first: the log's (the newest),
    /// then SQLite's; nothing is drained.
    pub fn recent_keys(&self, queue: &QueueName, max: usize) -> Sql<Vec<MessageKey>> {
        let Some(id) = self.meta(queue).map(|m| m.id) else { return Ok(Vec::new()) };
        let mut keys: Vec<MessageKey> =
            self.newest_logged(queue, max)?.into_iter().map(|n| MessageKey::new(queue.clone(), n)).collect();
        let mut stmt = self
            .sql()?
            .prepare_cached("SELECT n FROM messages WHERE queue = ?1 AND state = 0 ORDER BY n DESC")?;
        let rows = stmt.query_map(params![id], |r| r.get::<_, i64>(0))?;
        for n in rows.take(max - keys.len()) {
            keys.push(MessageKey::new(queue.clone(), n? as u64));
        }
        Ok(keys)
    }

    /// Makes delayed messages due by `now` wait; returns the queues that got some.
    pub fn promote_delayed(&mut self, now: u64) -> Sql<Vec<QueueName>> {
        let mut stmt = self.sql()?.prepare_cached(
            "UPDATE messages SET state = 0, visible_at = NULL WHERE state = 1 AND visible_at <= ?1 RETURNING queue",
        )?;
        let ids: Vec<i64> = stmt.query_map(params![now as i64], |r| r.get(0))?.collect::<Sql<_>>()?;
        drop(stmt);
        let mut queues = BTreeSet::new();
        for id in ids {
            if let Some((name, meta)) = self.catalog.queues.iter_mut().find(|(_, m)| m.id == id) {
                meta.delayed = meta.delayed.saturating_sub(1);
                meta.waiting += 1;
                queues.insert(name.clone());
            }
        }
        for queue in &queues {
            self.forget_tail(queue);
        }
        Ok(queues.into_iter().collect())
    }

    /// Deletes waiting messages whose ttl ran out, and idempotency answers past their window.
    pub fn sweep_expired(&mut self, now: u64) -> Sql<u64> {
        self.sql()?
            .prepare_cached("DELETE FROM idempotency WHERE until <= ?1")?
            .execute(params![now as i64])?;
        let mut stmt = self.sql()?.prepare_cached(
            "DELETE FROM messages WHERE expires_at <= ?1 AND expires_at IS NOT NULL AND state = 0 RETURNING queue",
        )?;
        let ids: Vec<i64> = stmt.query_map(params![now as i64], |r| r.get(0))?.collect::<Sql<_>>()?;
        drop(stmt);
        let mut swept = BTreeSet::new();
        for id in &ids {
            if let Some((queue, meta)) = self.catalog.queues.iter_mut().find(|(_, m)| m.id == *id) {
                meta.waiting = meta.waiting.saturating_sub(1);
                swept.insert(queue.clone());
            }
        }
        for queue in &swept {
            self.forget_tail(queue);
        }
        Ok(ids.len() as u64)
    }
}
