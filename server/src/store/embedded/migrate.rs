//! Upgrade: a data directory of the first format (`restmq.redb`) is copied into a new
//! SQLite database on first start, once: written beside it, renamed into place when complete,
//! then the redb file is renamed `restmq.redb.migrated` (kept, never read again).

use std::path::Path;

use redb::{ReadableTable, TableError};
use rusqlite::{params, Connection};

use super::catalog::{DELAYED, SCHEMA, WAITING};
use super::legacy::{self, MESSAGES, QUEUES, READS};

/// Migrates `data_dir`'s redb file into `target` if there is one to migrate.
pub fn from_redb(data_dir: &Path, target: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let old = data_dir.join(legacy::FILE);
    if !old.exists() {
        return Ok(());
    }
    let done = data_dir.join(format!("{}.migrated", legacy::FILE));
    if target.exists() {
        // Migrated, but stopped before the old file was set aside.
        std::fs::rename(&old, &done)?;
        return Ok(());
    }
    let partial = target.with_extension("migrating");
    let _ = std::fs::remove_file(&partial);
    let (queues, messages) = copy(&old, &partial)?;
    std::fs::rename(&partial, target)?;
    std::fs::rename(&old, &done)?;
    tracing::info!(queues, messages, from = %old.display(), to = %target.display(), "embedded store: migrated the redb data directory");
    Ok(())
}

/// Copies every queue and live message of the redb file `old` into a new database `new`, in
/// one transaction. Returns how many queues and messages.
fn copy(old: &Path, new: &Path) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let redb = redb::Database::open(old)?;
    let txn = redb.begin_read()?;
    let mut conn = Connection::open(new)?;
    conn.execute_batch(SCHEMA)?;
    let sql = conn.transaction()?;
    let now = crate::store::clock::now_ms();
    let (mut queues, mut messages) = (0, 0);
    let mut ids = std::collections::HashMap::new();
    {
        let mut insert_queue =
            sql.prepare("INSERT INTO queues(id, name, counter, policy, status) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for row in txn.open_table(QUEUES)?.iter()? {
            let (name, meta) = row?;
            let (counter, policy, status) = meta.value();
            queues += 1;
            ids.insert(name.value().to_owned(), queues as i64);
            insert_queue.execute(params![queues as i64, name.value(), counter as i64, policy, status])?;
        }
        let mut insert = sql.prepare(
            "INSERT INTO messages(queue, n, state, value, expires_at, visible_at, reads) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let delayed = optional(txn.open_table(legacy::DELAYED))?;
        let reads = optional(txn.open_table(READS))?;
        for row in txn.open_table(MESSAGES)?.iter()? {
            let (key, value) = row?;
            let ((name, n), (expires_at, value)) = (key.value(), value.value());
            let Some(id) = ids.get(name) else { continue };
            if expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let visible_at = match &delayed {
                Some(table) => table.get((name, n))?.map(|v| v.value()),
                None => None,
            };
            let count = match &reads {
                Some(table) => table.get((name, n))?.map_or(0, |v| v.value()),
                None => 0,
            };
            let state = if visible_at.is_some() { DELAYED } else { WAITING };
            let (expires_at, visible_at) = (expires_at.map(|t| t as i64), visible_at.map(|t| t as i64));
            insert.execute(params![id, n as i64, state, value, expires_at, visible_at, count as i64])?;
            messages += 1;
        }
    }
    sql.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    Ok((queues, messages))
}

/// A table that a database of the first format may not have yet.
fn optional<T>(table: Result<T, TableError>) -> Result<Option<T>, TableError> {
    match table {
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        other => other.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use restmq_shared::{Policy, QueueName, QueueStatus};

    use super::super::legacy::{DELAYED, FILE, MESSAGES, QUEUES, READS};
    use super::super::EmbeddedStore;
    use crate::store::QueueStore;

    /// A data directory written by the redb version opens: queues, counter, settings, soft-read
    /// counts and delayed messages are served, and the redb file is set aside, once.
    #[tokio::test]
    async fn a_redb_data_directory_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = redb::Database::create(dir.path().join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                txn.open_table(QUEUES).unwrap().insert("jobs", (3, 2, 0)).unwrap();
                let mut messages = txn.open_table(MESSAGES).unwrap();
                messages.insert(("jobs", 2), (None, "b")).unwrap();
                messages.insert(("jobs", 3), (None, "later")).unwrap();
                messages.insert(("jobs", 1), (Some(1), "expired")).unwrap();
                txn.open_table(READS).unwrap().insert(("jobs", 2), 4).unwrap();
                txn.open_table(DELAYED).unwrap().insert(("jobs", 3), u64::MAX / 2).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let jobs = QueueName::try_from("jobs").unwrap();
        let info = store.info(&jobs).await.unwrap().unwrap();
        assert_eq!(
            (info.len, info.last, info.policy, info.status),
            (1, 3, Policy::Roundrobin, QueueStatus::Paused)
        );
        let peeked = store.peek(&jobs).await.unwrap().unwrap();
        assert_eq!((peeked.key.n, peeked.value.as_str(), peeked.count), (2, "b", 5));
        assert_eq!(store.add(&jobs, "d".to_owned(), None).await.unwrap().n, 4);
        store.close().await.unwrap();
        assert!(!dir.path().join(FILE).exists());
        assert!(dir.path().join(format!("{FILE}.migrated")).exists());

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let values: Vec<_> = store.pop(&jobs, 10).await.unwrap().into_iter().map(|m| m.value).collect();
        assert_eq!(values, ["b", "d"], "the delayed message stays hidden, nothing migrated twice");
        store.close().await.unwrap();
    }
}
