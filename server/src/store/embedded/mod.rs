//! The `embedded` backend: every message on disk in `<data_dir>/restmq.sqlite` (SQLite in WAL
//! mode) or on its queue's log in `<data_dir>/log/<queue id>/` (see `logs`), memory holding
//! only a catalog per queue (counter, settings, counts, leases), SQLite's page cache
//! (`--cache-mib`), the bounded `tail` cache and the mapped windows of the open logs. One
//! connection runs the operations; a second one, on the `syncer` thread, checkpoints the WAL
//! into the database off the request path. Both use SQLite's `unix-excl` file system (the WAL
//! index in the heap, no system call per transaction), and the lock file
//! `<data_dir>/restmq.lock` keeps one store per data directory (see `lock`).
//!
//! The hot path: a plain add (no ttl, idempotency key or length limit) to a queue already
//! written is a copy into its log's shared map, and a hard get a copy out of it while SQLite
//! holds none of the queue's waiting messages — no transaction, no system call, no wait (see
//! `log_ops`); both are in the kernel before they are answered. Soft gets, deletes by key and
//! looking read and mark the log in place; every other operation on a queue first drains its
//! log into SQLite, so that SQLite's operations see every message (see `logs`).
//!
//! The other operations run in the order they were sent, those of the requests ready together
//! in one transaction (see `batcher`), on the caller's thread, and are answered once it is
//! committed. Once an add is queued the broker may wake the queue's dispatcher
//! (`store::ON_QUEUED`), so that a waiting consumer's get runs in the same batch, after its adds
//! (see `batcher`): an add that a get of its batch takes is never written (see `db`), and a get
//! that finds its queue empty with no batch pending answers at once.
//!
//! # The durability contract
//!
//! This is the one statement of what the embedded store promises; the README links here.
//!
//! - **Every answered write survives `kill -9`**, in every `--fsync` mode: a log's record and
//!   marks are stores into a shared map of a preallocated file, and a SQLite commit is written to
//!   its WAL, before the answer — both are then in the kernel's page cache, which outlives the
//!   process. A hard get, a soft read, a lease, an ack are answered after the same; a hard get
//!   in flight when the process dies may lose its one message (taken, never answered: at most
//!   once), any other write in flight happened whole or not at all.
//! - **A power loss or a kernel crash** loses what was not yet fsynced, by `--fsync`:
//!
//!   | `--fsync` | the fsyncs | a power loss loses |
//!   |---|---|---|
//!   | `always` | the WAL before each answer, one fsync per group of concurrent writes (adds go through SQLite, not the logs) | nothing answered |
//!   | `everysec` (default) | the WAL, then each log written (its state page and segments), within 50 ms, on the `syncer` thread | at most the last second of answered writes |
//!   | `never` | none: the OS writes back, and checkpoints copy the WAL (every 50 ms while writes come in) | whatever the OS had not written back |
//!
//!   In every mode what survives is consistent: SQLite's WAL keeps whole transactions, a log's
//!   records past its last fsync are checked against their checksums at start-up, and a drain's
//!   head move waits for the fsync of the WAL holding what it moved (see `logs`).
//! - **No request waits on the disk** but under `always` (its group's fsync): the fsyncs of the
//!   WAL and the logs run on the `syncer` thread, and so does every other file operation of the
//!   logs' plain adds and hard gets — a segment made ahead, renamed into place, fdatasynced once
//!   the tail leaves it, unlinked once the head has and the state page is synced (see
//!   `queue_log`) — but for a rollover in a burst faster than that thread (it makes its segment
//!   inline) and a queue's first plain add (it creates the queue's log: once per queue).
//! - **A crash at any instant leaves a store that starts**: every file operation of the logs is
//!   ordered so (see `queue_log`'s "Crash safety"), proved by the crash-point test
//!   (`crash_tests.rs`, `queue_log_crash_tests.rs`: a process stopped at each write, fsync,
//!   rename and unlink, then opened and checked).
//! - **Damage loses only what is damaged, and says so**: a record that fails its checksum is
//!   skipped alone (a torn final write cuts the log's tail), logged at WARN with its file and
//!   offset and counted in `restmq_store_damaged_records_total`; a queue whose log cannot be
//!   read is quarantined (moved aside, logged at ERROR, counted by `/readyz`, listed by `/stats/`) and
//!   every other queue is served (see `logs`).
//! - **A number is never given twice**: a queue's counter is written ahead of the numbers
//!   handed out (see `catalog::NUMBERS_AHEAD`), a log's last number is never read below one it
//!   held; after a stop that was not clean numbering goes on past one gap of at most 1,024
//!   (after a quarantine, past a larger one); after a clean stop, without a gap. Known limit:
//!   after a *power loss* under `everysec` or `never`, the numbers of a log's adds answered
//!   after its last fsync are not known, and more than 1,024 of them may be given again.
//!
//! A batch the disk refuses (full) is rolled back whole: nothing of it is ever visible; a log
//! that needs a segment the disk has no room for refuses its add. Writes then answer `507` and
//! `ping` fails until the disk takes writes again; reads go on. A data directory of the earlier
//! redb format is migrated on first start (see `migrate`).

mod answers;
mod batcher;
mod browse;
mod catalog;
mod crash;
mod db;
mod engine;
mod lease_store;
mod leases;
mod legacy;
mod lock;
mod log_ops;
mod logs;
mod migrate;
mod ops;
mod queue_log;
mod segment;
mod syncer;
mod tail;

#[cfg(test)]
mod crash_tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};
use rusqlite::Connection;
use tokio::sync::oneshot;

use self::batcher::{Batcher, FlushOnDrop, Kind};
use self::catalog::{Catalog, SCHEMA};
use self::db::{Db, Sql};
use self::engine::{Engine, Job, Reply};
use self::logs::{Logs, Quarantined, DAMAGED_RECORDS};
use self::syncer::Syncer;
use super::clock::{after, expiry, now_ms};
use super::{
    Batch, Claimed, Delayed, IdempotencyClaim, Page, PeekedMessage, QuarantinedQueue, QueueInfo, QueueStore,
    StoreError, StoreHealth, StoreResult, StoredMessage, ON_QUEUED, PUBLISH_ONCE,
};
pub use crate::config::Fsync;

/// The database file inside the data directory.
pub const DB_FILE: &str = "restmq.sqlite";

/// How the embedded store keeps its data.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedOptions {
    pub fsync: Fsync,
    /// SQLite's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self { fsync: Fsync::Everysec, cache_bytes: 64 << 20 }
    }
}

/// A durable store; cloning is shallow.
#[derive(Clone)]
pub struct EmbeddedStore {
    batcher: Arc<Batcher>,
    /// Plain adds and hard gets go through the queues' logs (not under `--fsync always`).
    logs: bool,
    /// The queues whose log was quarantined (see `logs::Quarantined`), as found at start-up.
    quarantined: Arc<[QuarantinedQueue]>,
}

fn backend(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {error}"))
}

impl EmbeddedStore {
    /// Opens or creates the store in `data_dir` with the default options.
    pub fn open(data_dir: &Path) -> Result<EmbeddedStore, StoreError> {
        Self::open_with(data_dir, EmbeddedOptions::default())
    }

    /// Opens or creates the store in `data_dir`: reads the catalog (no message body), makes
    /// messages left leased by the last run wait again, migrates a redb data directory.
    pub fn open_with(data_dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| backend("cannot create the data directory", e))?;
        let lock =
            lock::DirLock::acquire(data_dir).map_err(|e| backend("cannot lock the data directory", e))?;
        let path = data_dir.join(DB_FILE);
        migrate::from_redb(data_dir, &path).map_err(|e| backend("cannot migrate the redb data", e))?;
        let conn = connect(&path, options).map_err(|e| backend("cannot open the database", e))?;
        let mut catalog = Catalog::load(&conn, true).map_err(|e| backend("cannot load the catalog", e))?;
        tracing::info!(path = %path.display(), queues = catalog.queues.len(), fsync = ?options.fsync, "embedded store opened");
        let mut logs = Logs::open(data_dir, &conn, &mut catalog, options.fsync)
            .map_err(|e| backend("cannot open the queue logs", e))?;
        let quarantined = logs.quarantined().iter().map(Quarantined::shown).collect();
        let dirty = catalog.bring_ahead();
        let syncer = Syncer::start(path.clone(), options.fsync, logs.unsynced.clone())
            .map_err(|e| backend("cannot start the syncer thread", e))?;
        let db = Db {
            conn,
            catalog,
            dirty,
            begin: Default::default(),
            unwritten: Default::default(),
            passed_holes: std::mem::take(&mut logs.stale_holes),
            logs,
        };
        let engine = Engine::new(db, path, lock);
        let logs = options.fsync != Fsync::Always;
        let store = Self { batcher: Arc::new(Batcher::new(engine, syncer)), logs, quarantined };
        store.sweep_at_start();
        Ok(store)
    }

    /// Messages that expired while closed go now (through the expiry index), in the first
    /// batch — which also writes the queue rows found behind their messages, so that the
    /// number of a deleted message is never given again. On a full disk they stay until a
    /// sweep can delete them.
    fn sweep_at_start(&self) {
        let sweep: Job = Box::new(|engine: &mut Engine| -> Reply {
            if let Err(error) = engine.db.sweep_expired(now_ms()) {
                engine.broken = Some(error);
            }
            Box::new(|swept: Result<(), engine::Failure>| {
                if let Err(failure) = swept {
                    tracing::warn!(
                        reason = failure.reason,
                        "embedded store: cannot delete expired messages yet"
                    );
                }
            })
        });
        self.batcher.push(sweep, Kind::Write);
        self.batcher.flush();
    }

    /// Runs `op` in the next batch; answers once that is committed. Writes are refused while
    /// the disk refuses writes.
    async fn call<T: Send + 'static>(
        &self,
        kind: Kind,
        op: impl FnOnce(&mut Db) -> Sql<StoreResult<T>> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine: &mut Engine| -> Reply {
            let out = match engine.refused(kind != Kind::Read) {
                Some(refused) => Err(refused),
                None => op(&mut engine.db).unwrap_or_else(|error| {
                    let refused = engine::Failure::of(&error).to_error();
                    engine.broken = Some(error);
                    Err(refused)
                }),
            };
            Box::new(move |committed| {
                let _ = tx.send(committed.map_err(|f| f.to_error()).and(out));
            })
        });
        let first = self.batcher.push(job, kind);
        // An add: the broker may wake the queue's dispatcher now, so that its get joins.
        let _ = ON_QUEUED.try_with(|queued| queued());
        if first {
            let flush = FlushOnDrop(&self.batcher);
            tokio::task::yield_now().await;
            // Others joined meanwhile: under load, one more round lets the rest of the
            // requests in flight join too (bigger batches, fewer commits); alone, no wait.
            if self.batcher.pending() > 1 {
                tokio::task::yield_now().await;
            }
            drop(flush);
        }
        rx.await.map_err(|_| StoreError::Backend("the store is closed".to_owned()))?
    }

    /// Runs `op`, which takes waiting messages of `queue` (a get, a lease), last in its batch;
    /// at once, taking nothing, when the queue is surely empty (see `Batcher::surely_empty`).
    async fn take<T: Default + Send + 'static>(
        &self,
        queue: &QueueName,
        op: impl FnOnce(&mut Db, &QueueName) -> Sql<T> + Send + 'static,
    ) -> StoreResult<T> {
        if self.batcher.surely_empty(queue) {
            return Ok(T::default());
        }
        let q = queue.clone();
        self.call(Kind::Take, move |db| op(db, &q).map(Ok)).await
    }
}

/// Opens the database: WAL, the fsync mode's `synchronous`, a page cache of `cache_bytes`, no
/// checkpoint on commit (the syncer checkpoints), the schema.
fn connect(path: &Path, options: EmbeddedOptions) -> Sql<Connection> {
    let conn = open_connection(path)?;
    let synchronous = if options.fsync == Fsync::Always { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0;
         PRAGMA cache_size = -{}; PRAGMA journal_size_limit = 67108864; PRAGMA temp_store = MEMORY;",
        (options.cache_bytes / 1024).max(64)
    ))?;
    conn.execute_batch(SCHEMA)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A connection to the database through SQLite's `unix-excl` file system: the first one takes
/// the database file's lock for the process and keeps it, and the connections of this process
/// (the engine's and the syncer's) coordinate in memory — the WAL index is in the heap, not in
/// a `-shm` file, and taking a transaction's locks costs no system call.
pub(crate) fn open_connection(path: &Path) -> Sql<Connection> {
    Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), "unix-excl")
}

/// The idempotency claim of the publish this add is part of, if any.
fn publish_once() -> Option<IdempotencyClaim> {
    PUBLISH_ONCE.try_with(Clone::clone).ok()
}

/// Records `ns` as the answer of `once`, in the add's transaction.
fn record(db: &Db, queue: &QueueName, once: Option<&IdempotencyClaim>, ns: &[u64]) -> Sql<()> {
    match once {
        Some(once) => db.record_answer(queue, &once.key, ns, after(once.window)),
        None => Ok(()),
    }
}

fn keys(queue: &QueueName, ns: Vec<u64>) -> Vec<MessageKey> {
    ns.into_iter().map(|n| MessageKey::new(queue.clone(), n)).collect()
}

impl QueueStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        let (q, once, expires_at) = (queue.clone(), publish_once(), expiry(ttl));
        if ttl.is_none() && once.is_none() {
            if let Some(added) = self.log_add(queue, &value).await {
                return added.map(|n| MessageKey::new(queue.clone(), n));
            }
        }
        self.predrain(queue).await?;
        let ns = self
            .call(Kind::Write, move |db| {
                let ns = db.add(&q, &[value], expires_at)?;
                record(db, &q, once.as_ref(), &ns)?;
                Ok(Ok(ns))
            })
            .await?;
        Ok(MessageKey::new(queue.clone(), ns[0]))
    }

    async fn add_batch(&self, queue: &QueueName, batch: Batch) -> StoreResult<Vec<MessageKey>> {
        let Batch { values, ttl, limit } = batch;
        let (q, once, expires_at) = (queue.clone(), publish_once(), expiry(ttl));
        if let ([value], None, None, None) = (&values[..], ttl, limit, &once) {
            if let Some(added) = self.log_add(queue, value).await {
                return added.map(|n| vec![MessageKey::new(queue.clone(), n)]);
            }
        }
        self.predrain(queue).await?;
        let ns = self
            .call(Kind::Write, move |db| {
                let added = db.add_batch(&q, &values, expires_at, limit, now_ms())?;
                if let Ok(ns) = &added {
                    record(db, &q, once.as_ref(), ns)?;
                }
                Ok(added)
            })
            .await?;
        Ok(keys(queue, ns))
    }

    async fn add_delayed(&self, queue: &QueueName, message: Delayed) -> StoreResult<MessageKey> {
        let Delayed { value, ttl, delay, limit } = message;
        let (q, once, expires_at, visible_at) = (queue.clone(), publish_once(), expiry(ttl), after(delay));
        self.predrain(queue).await?;
        let n = self
            .call(Kind::Write, move |db| {
                let added = db.add_delayed(&q, &value, expires_at, visible_at, limit)?;
                if let Ok(n) = &added {
                    record(db, &q, once.as_ref(), &[*n])?;
                }
                Ok(added)
            })
            .await?;
        Ok(MessageKey::new(queue.clone(), n))
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        self.call(Kind::Write, |db| db.promote_delayed(now_ms()).map(Ok)).await
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        self.call(Kind::Write, |db| db.sweep_expired(now_ms()).map(Ok)).await
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        if self.logs {
            tokio::task::coop::consume_budget().await;
            if let Some(popped) = self.batcher.direct(|db| db.log_pop(queue, max)) {
                return popped;
            }
        }
        let logs = self.logs;
        let mut got = self.take(queue, move |db, q| db.pop(q, max, now_ms(), !logs)).await?;
        // SQLite held fewer: the rest from the log, whose messages come after.
        if self.logs && got.len() < max {
            if let Some(Ok(more)) = self.batcher.direct(|db| db.log_pop(queue, max - got.len())) {
                got.extend(more);
            }
        }
        Ok(got)
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        let q = queue.clone();
        self.call(Kind::Write, move |db| db.peek(&q, now_ms()).map(Ok)).await
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        let key = key.clone();
        self.call(Kind::Write, move |db| db.delete(&key).map(Ok)).await
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        self.predrain(queue).await?;
        let q = queue.clone();
        self.call(Kind::Write, move |db| db.requeue(&q, &messages).map(Ok)).await
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        let q = queue.clone();
        self.call(Kind::Write, move |db| db.purge(&q).map(Ok)).await
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        self.call(Kind::Read, |db| Ok(Ok(db.catalog.queues.keys().cloned().collect()))).await
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        let q = queue.clone();
        self.call(Kind::Read, move |db| {
            Ok(Ok(db.catalog.queues.get(&q).map(|m| QueueInfo {
                len: m.waiting,
                policy: m.policy.unwrap_or_default(),
                status: m.status,
                policy_set: m.policy.is_some(),
                status_set: true,
                last: m.counter,
            })))
        })
        .await
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        let q = queue.clone();
        self.call(Kind::Write, move |db| Ok(db.settings(&q, |m| m.policy = Some(policy)))).await
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        let q = queue.clone();
        self.call(Kind::Write, move |db| Ok(db.settings(&q, |m| m.status = status))).await
    }

    async fn browse(&self, queue: &QueueName, page: Page) -> StoreResult<Vec<BrowsedMessage>> {
        let q = queue.clone();
        self.call(Kind::Read, move |db| db.browse(&q, page, now_ms()).map(Ok)).await
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        let q = queue.clone();
        self.call(Kind::Read, move |db| db.recent_keys(&q, max).map(Ok)).await
    }

    /// An answer recorded by an earlier publish (of this run or one before), within its window.
    async fn claim_idempotent(&self, queue: &QueueName, claim: &IdempotencyClaim) -> StoreResult<Claimed> {
        let (q, key) = (queue.clone(), claim.key.clone());
        let found = self.call(Kind::Read, move |db| db.answered(&q, &key, now_ms()).map(Ok)).await?;
        Ok(found.map_or(Claimed::Mine, Claimed::Answered))
    }

    /// Fails while the disk refuses writes, so that `/readyz` says so.
    async fn ping(&self) -> StoreResult<()> {
        self.batcher.ping()
    }

    /// The queues whose log was quarantined at start-up, and the log records lost to damage.
    fn health(&self) -> StoreHealth {
        let damaged_records = DAMAGED_RECORDS.load(std::sync::atomic::Ordering::Relaxed);
        let inline_segments = queue_log::INLINE_SEGMENTS.load(std::sync::atomic::Ordering::Relaxed);
        StoreHealth { quarantined: self.quarantined.to_vec(), damaged_records, inline_segments }
    }

    /// Waits until everything sent so far is committed, synced and the database released;
    /// later operations fail. Closing twice is a no-op.
    async fn close(&self) -> StoreResult<()> {
        self.batcher.close()
    }
}
