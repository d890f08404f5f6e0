//! The `embedded` backend's redb tables, their row encodings, and loading them into [`State`].

use std::fmt;
use std::ops::RangeInclusive;

use redb::{Database, TableDefinition};
use restmq_shared::{Policy, QueueName, QueueStatus};

use crate::store::state::{Entry, QueueState, State};

/// Every message: `(queue, n)` → `(expires_at, value)`. Tuple keys keep a queue's rows
/// together and ordered by `n`.
pub const MESSAGES: TableDefinition<'_, (&str, u64), (Option<u64>, &str)> = TableDefinition::new("messages");

/// Soft-read counts, only for messages read at least once: `(queue, n)` → count.
pub const READS: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("reads");

/// Delayed messages, until they become visible: `(queue, n)` → visible-at (Unix ms). The
/// message itself is in [`MESSAGES`].
pub const DELAYED: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("delayed");

/// Every registered queue: name → `(counter, policy, status)`. The counter is the last `n`
/// handed out, kept after its message is gone so that `n` is never reused (purge excepted).
pub const QUEUES: TableDefinition<'_, &str, (u64, u8, u8)> = TableDefinition::new("queues");

/// The number of the last batch committed, under key 0. A commit that reports a failure may
/// still have landed; after reopening, this tells whether it did.
pub const BATCHES: TableDefinition<'_, u8, u64> = TableDefinition::new("batches");

/// The number of the last batch committed (0 before the first).
pub fn last_batch(db: &Database) -> Result<u64, DbError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(BATCHES) {
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        table => table?,
    };
    let last = redb::ReadableTable::get(&table, 0)?.map_or(0, |n| n.value());
    Ok(last)
}

/// A row written and deleted to check that the disk takes writes again after a failure.
pub const PROBE: TableDefinition<'_, u8, &[u8]> = TableDefinition::new("probe");

/// The keys of every row of `queue` in [`MESSAGES`] or [`READS`].
pub fn rows(queue: &str) -> RangeInclusive<(&str, u64)> {
    (queue, 0)..=(queue, u64::MAX)
}

/// A redb failure, boxed because `redb::Error` is large.
#[derive(Debug)]
pub struct DbError(Box<redb::Error>);

macro_rules! db_error_from {
    ($($from:ty),*) => {$(
        impl From<$from> for DbError {
            fn from(error: $from) -> Self {
                Self(Box::new(error.into()))
            }
        }
    )*};
}
db_error_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

impl DbError {
    /// Whether the failure is a full disk (or quota), which freeing space cures.
    pub fn is_full(&self) -> bool {
        use std::io::ErrorKind;
        matches!(&*self.0, redb::Error::Io(e) if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A queue's row in [`QUEUES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub counter: u64,
    /// `None` when never set.
    pub policy: Option<Policy>,
    pub status: QueueStatus,
}

impl Meta {
    pub fn of(q: &QueueState) -> Self {
        Self { counter: q.counter, policy: q.policy_set.then_some(q.policy), status: q.status }
    }

    /// Policy and status use RestMQ's numbers: `1` broadcast, `2` roundrobin (`0` never set);
    /// `1` started, `0` paused.
    pub fn to_row(self) -> (u64, u8, u8) {
        let policy = self.policy.map_or(0, Policy::as_number);
        (self.counter, policy, self.status.as_number())
    }

    pub fn from_row((counter, policy, status): (u64, u8, u8)) -> Self {
        let policy = match policy {
            0 => None,
            2 => Some(Policy::Roundrobin),
            _ => Some(Policy::Broadcast),
        };
        let status = if status == 0 { QueueStatus::Paused } else { QueueStatus::Started };
        Self { counter, policy, status }
    }
}

/// Reads every queue into memory, skipping messages expired by `now` and stray rows; with
/// `clean`, also deletes them from the database (which needs room to write).
pub fn load(db: &Database, now: u64, clean: bool) -> Result<State, DbError> {
    let mut state = State::default();
    let txn = db.begin_write()?;
    {
        let queues = txn.open_table(QUEUES)?;
        let mut messages = txn.open_table(MESSAGES)?;
        let mut reads = txn.open_table(READS)?;
        for row in redb::ReadableTable::iter(&queues)? {
            let (name, meta) = row?;
            let Ok(queue) = QueueName::try_from(name.value()) else {
                tracing::warn!(queue = name.value(), "embedded store: skipping a queue with an invalid name");
                continue;
            };
            let meta = Meta::from_row(meta.value());
            let q = QueueState {
                counter: meta.counter,
                policy: meta.policy.unwrap_or_default(),
                policy_set: meta.policy.is_some(),
                status: meta.status,
                ..Default::default()
            };
            state.queues.insert(queue, q);
        }
        messages.retain(|(name, n), (expires_at, value)| {
            if expires_at.is_some_and(|at| at <= now) {
                return false;
            }
            let Some(q) = QueueName::try_from(name).ok().and_then(|queue| state.queues.get_mut(&queue))
            else {
                tracing::warn!(queue = name, n, "embedded store: dropping a message of no registered queue");
                return false;
            };
            q.counter = q.counter.max(n);
            q.messages.insert(n, Entry::new(value.to_owned(), expires_at));
            if let Some(at) = expires_at {
                q.expiring.insert((at, n));
            }
            true
        })?;
        let mut delayed = txn.open_table(DELAYED)?;
        delayed.retain(|(name, n), visible_at| {
            let q = QueueName::try_from(name).ok().and_then(|queue| state.queues.get_mut(&queue));
            let Some(entry) = q.as_ref().and_then(|q| q.messages.get(&n)).cloned() else { return false };
            if let Some(q) = q {
                q.messages.remove(&n);
                q.delayed.insert((visible_at, n), entry);
            }
            true
        })?;
        reads.retain(|(name, n), count| {
            let entry = QueueName::try_from(name)
                .ok()
                .and_then(|queue| state.queues.get_mut(&queue))
                .and_then(|q| q.messages.get_mut(&n));
            entry.map(|entry| entry.reads = count).is_some()
        })?;
    }
    for q in state.queues.values_mut() {
        q.committed = q.counter;
    }
    state.hide_uncommitted = true;
    if clean {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queue rows round-trip through RestMQ's numeric policy and status codes.
    #[test]
    fn meta_rows_round_trip() {
        for policy in [None, Some(Policy::Broadcast), Some(Policy::Roundrobin)] {
            for status in [QueueStatus::Started, QueueStatus::Paused] {
                let meta = Meta { counter: 42, policy, status };
                assert_eq!(Meta::from_row(meta.to_row()), meta);
            }
        }
        assert_eq!(
            Meta { counter: 1, policy: Some(Policy::Roundrobin), status: QueueStatus::Paused }.to_row(),
            (1, 2, 0)
        );
        assert_eq!(Meta { counter: 1, policy: None, status: QueueStatus::Started }.to_row(), (1, 0, 1));
    }
}
