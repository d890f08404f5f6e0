//! Browsing the embedded store: a page of a queue's waiting or leased messages after a
//! number, oldest first, read through the `(queue, state, n)` index and then the queue's log,
//! without changing a row or draining the log.

use restmq_shared::{BrowsedMessage, MessageKey, QueueName};
use rusqlite::params;

use super::db::{Db, Sql};
use crate::store::Page;

/// Message states as the `messages` table keeps them.
const WAITING: i64 = 0;
const LEASED: i64 = 2;

impl Db {
    /// The `page` of `queue` (see [`Page`]), oldest first, expired ones left out.
    pub fn browse(&self, queue: &QueueName, page: Page, now: u64) -> Sql<Vec<BrowsedMessage>> {
        let Page { after, limit, leased } = page;
        let Some(meta) = self.catalog.queues.get(queue) else { return Ok(Vec::new()) };
        let mut stmt = self.sql()?.prepare_cached(
            "SELECT n, value, expires_at, reads, deliveries, visible_at FROM messages \
             WHERE queue = ?1 AND state = ?2 AND n > ?3 AND (expires_at IS NULL OR expires_at > ?4) \
             ORDER BY n",
        )?;
        let state = if leased { LEASED } else { WAITING };
        let rows = stmt.query_map(
            params![meta.id, state, i64::try_from(after).unwrap_or(i64::MAX), now as i64],
            |r| {
                let deadline: Option<i64> = r.get(5)?;
                Ok(BrowsedMessage {
                    key: MessageKey::new(queue.clone(), r.get::<_, i64>(0)? as u64),
                    value: r.get(1)?,
                    expires: r.get::<_, Option<i64>>(2)?.map(|at| at as u64),
                    count: r.get::<_, i64>(3)? as u64,
                    deadline: leased.then(|| deadline.map(|d| d as u64)).flatten(),
                    deliveries: leased.then(|| r.get::<_, i64>(4).map(|d| d as u32)).transpose()?,
                })
            },
        )?;
        // No `LIMIT ?`: see `ops::HEAD`.
        let mut page: Vec<BrowsedMessage> = rows.take(limit).collect::<Sql<_>>()?;
        if leased || page.len() >= limit {
            return Ok(page);
        }
        // Then the log's, read in place (SQLite's waiting messages are the older).
        let after = page.last().map_or(after, |m| m.key.n);
        let logged = self.logged_after(queue, after, limit - page.len())?;
        let reads = match (logged.first(), logged.last()) {
            (Some(first), Some(last)) => self.log_reads(queue, first.0, last.0)?,
            _ => Default::default(),
        };
        page.extend(logged.into_iter().map(|(n, value)| BrowsedMessage {
            key: MessageKey::new(queue.clone(), n),
            value,
            count: reads.get(&n).copied().unwrap_or(0),
            expires: None,
            deadline: None,
            deliveries: None,
        }));
        Ok(page)
    }
}
