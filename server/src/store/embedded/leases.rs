//! The embedded store's leases and redrive, run inside the batch's transaction: reserve
//! (the row's state and deadline), ack, nack, expiry back to the head or to `<queue>.dead`,
//! and moving waiting messages from one queue to another.

use restmq_shared::{MessageKey, QueueName};
use rusqlite::{params, OptionalExtension};

use super::catalog::LEASED;
use super::db::{Db, Sql};
use crate::store::{dead_letter_queue, ExpiredLeases, LeasedMessage, LengthLimit};

impl Db {
    /// Leases up to `max` of the oldest live waiting messages until `deadline`.
    pub fn reserve(
        &mut self,
        queue: &QueueName,
        max: usize,
        now: u64,
        deadline: u64,
    ) -> Sql<Vec<LeasedMessage>> {
        let mut out = Vec::new();
        self.take(queue, max, now, |db, (n, value, id, _, deliveries)| {
            db.sql()?
                .prepare_cached("UPDATE messages SET state = 2, visible_at = ?2, deliveries = deliveries + 1 WHERE id = ?1")?
                .execute(params![id, deadline as i64])?;
            out.push(LeasedMessage { key: MessageKey::new(queue.clone(), n), value, deliveries: deliveries as u32 + 1 });
            Ok(())
        })?;
        if let Some(meta) = self.catalog.queues.get_mut(queue) {
            meta.leases.extend(out.iter().map(|m| (m.key.n, deadline)));
        }
        Ok(out)
    }

    /// Acknowledges a leased message: it is gone.
    pub fn ack(&mut self, key: &MessageKey) -> Sql<bool> {
        let leased =
            self.catalog.queues.get_mut(&key.queue).is_some_and(|m| m.leases.remove(&key.n).is_some());
        if leased {
            self.delete_in(key, LEASED)?;
        }
        Ok(leased)
    }

    /// Gives a leased message back to the head of its queue, its delivery count kept.
    pub fn nack(&mut self, key: &MessageKey) -> Sql<bool> {
        let Some(meta) = self.catalog.queues.get_mut(&key.queue) else { return Ok(false) };
        if meta.leases.remove(&key.n).is_none() {
            return Ok(false);
        }
        meta.waiting += 1;
        let id = meta.id;
        self.forget_tail(&key.queue);
        self.sql()?
            .prepare_cached(
                "UPDATE messages SET state = 0, visible_at = NULL WHERE queue = ?1 AND state = 2 AND n = ?2",
            )?
            .execute(params![id, key.n as i64])?;
        Ok(true)
    }

    /// Ends leases past their deadline: back to the head, or to `<queue>.dead` after
    /// `max_deliveries` deliveries.
    pub fn expire_leases(&mut self, now: u64, max_deliveries: u32) -> Sql<Vec<ExpiredLeases>> {
        let due: Vec<(QueueName, Vec<u64>)> = self
            .catalog
            .queues
            .iter()
            .map(|(q, m)| (q.clone(), m.leases.iter().filter(|(_, d)| **d <= now).map(|(n, _)| *n).collect()))
            .filter(|(_, ns): &(QueueName, Vec<u64>)| !ns.is_empty())
            .collect();
        let mut out = Vec::new();
        for (queue, ns) in due {
            let mut done = ExpiredLeases { queue: queue.clone(), returned: 0, dead: 0 };
            let id = self.catalog.queues[&queue].id;
            for n in ns {
                let row: Option<(i64, String, i64)> = self
                    .sql()?
                    .prepare_cached("SELECT id, value, deliveries FROM messages WHERE queue = ?1 AND state = 2 AND n = ?2")?
                    .query_row(params![id, n as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let key = MessageKey::new(queue.clone(), n);
                match row {
                    Some((row, value, deliveries)) if deliveries as u32 >= max_deliveries => {
                        self.catalog.queues.get_mut(&queue).map(|m| m.leases.remove(&n));
                        self.delete_row(row)?;
                        self.add(&dead_letter_queue(&queue), &[value], None)?;
                        done.dead += 1;
                    }
                    Some(_) => {
                        self.nack(&key)?;
                        done.returned += 1;
                    }
                    None => drop(self.catalog.queues.get_mut(&queue).map(|m| m.leases.remove(&n))),
                }
            }
            out.push(done);
        }
        Ok(out)
    }

    /// Moves waiting messages of `from` to the end of `to`, as many as `to` has room for.
    pub fn redrive(
        &mut self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<LengthLimit>,
        now: u64,
    ) -> Sql<u64> {
        let room = limit.map_or(usize::MAX, |l| usize::try_from(self.room(to, l.max)).unwrap_or(usize::MAX));
        let mut moved = 0u64;
        while (moved as usize) < room {
            let mut values = Vec::new();
            let chunk = (room - moved as usize).min(512);
            self.take(from, chunk, now, |db, (_, value, id, _, _)| {
                db.delete_row(id)?;
                values.push(value);
                Ok(())
            })?;
            if values.is_empty() {
                break;
            }
            moved += values.len() as u64;
            self.add(to, &values, None)?;
        }
        Ok(moved)
    }
}
