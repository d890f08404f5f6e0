//! The embedded store's idempotency answers: recorded in the transaction of the add they
//! answer, read back by a retry within the window (of this run or one before).

use restmq_shared::{MessageKey, QueueName};
use rusqlite::{params, OptionalExtension};

use super::db::{Db, Sql};

impl Db {
    /// The answer recorded for an idempotency key of `queue`, while inside its window.
    pub fn answered(&self, queue: &QueueName, key: &str, now: u64) -> Sql<Option<Vec<MessageKey>>> {
        let mut stmt = self
            .sql()?
            .prepare_cached("SELECT ns FROM idempotency WHERE queue = ?1 AND key = ?2 AND until > ?3")?;
        let ns: Option<String> =
            stmt.query_row(params![queue.as_str(), key, now as i64], |r| r.get(0)).optional()?;
        Ok(ns.map(|ns| {
            ns.split(',').filter_map(|n| n.parse().ok()).map(|n| MessageKey::new(queue.clone(), n)).collect()
        }))
    }

    /// Records the answer of an idempotent publish, in the transaction of its add.
    pub fn record_answer(&self, queue: &QueueName, key: &str, ns: &[u64], until: u64) -> Sql<()> {
        let ns = ns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        self.sql()?
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency(queue, key, ns, until) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![queue.as_str(), key, ns, until as i64])?;
        Ok(())
    }
}
