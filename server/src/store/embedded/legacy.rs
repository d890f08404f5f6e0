//! The redb tables of the embedded store's first format (`restmq.redb`), read once by
//! `migrate` to bring such a data directory over.

use redb::TableDefinition;

/// The redb file of the first format.
pub const FILE: &str = "restmq.redb";

/// Every message: `(queue, n)` → `(expires_at, value)`.
pub const MESSAGES: TableDefinition<'_, (&str, u64), (Option<u64>, &str)> = TableDefinition::new("messages");

/// Soft-read counts: `(queue, n)` → count.
pub const READS: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("reads");

/// Delayed messages: `(queue, n)` → visible-at (Unix ms); the message is in [`MESSAGES`].
pub const DELAYED: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("delayed");

/// Every queue: name → `(counter, policy, status)`, RestMQ's numbers (policy `0` never set).
pub const QUEUES: TableDefinition<'_, &str, (u64, u8, u8)> = TableDefinition::new("queues");
