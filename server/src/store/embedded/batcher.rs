//! How the embedded store's operations reach the engine without a hop to another thread:
//! a caller queues its operation, and the caller that found the queue empty yields once (so
//! the operations of every request ready now join it; twice if some did), then runs everything
//! queued as one batch — one transaction, one commit — on its own thread and answers it. The
//! operations of a batch were sent concurrently (each caller awaits its answer before sending
//! another), so any order is one they could have had: gets run last, so that a get takes the
//! adds of its own batch — which then need no write at all (see `ops::Db::add`). A
//! caller dropped while yielding still runs the batch. The engine is behind a mutex held only
//! by the running batch (or by `ping` and `close`), never across an `.await`.

use std::sync::{Mutex, MutexGuard};

use restmq_shared::QueueName;

use super::db::Db;
use super::engine::{Engine, Failure, Job};
use super::syncer::Syncer;
use crate::store::{StoreError, StoreResult};

/// The most operations in one transaction.
const MAX_BATCH: usize = 1024;

/// The engine and its syncer; `None` once closed.
struct Open {
    engine: Engine,
    syncer: Syncer,
}

/// What an operation does, for the batch it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    /// A write that takes waiting messages (a get, a lease): runs after the batch's others.
    Take,
}

/// The queue of operations in front of the engine.
pub struct Batcher {
    pending: Mutex<Vec<(Job, Kind)>>,
    open: Mutex<Option<Open>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed() -> StoreError {
    StoreError::Backend("the store is closed".to_owned())
}

/// Runs the queued batch when dropped: after the yield, or when the caller is dropped in it.
pub struct FlushOnDrop<'a>(pub &'a Batcher);

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl Batcher {
    pub fn new(engine: Engine, syncer: Syncer) -> Self {
        Self { pending: Mutex::new(Vec::new()), open: Mutex::new(Some(Open { engine, syncer })) }
    }

    /// Queues `job`. `true` when the queue was empty: this caller must then flush it.
    pub fn push(&self, job: Job, kind: Kind) -> bool {
        let mut pending = lock(&self.pending);
        pending.push((job, kind));
        pending.len() == 1
    }

    /// How many transactions the engine committed (for tests).
    #[cfg(test)]
    pub fn commits(&self) -> u64 {
        lock(&self.open).as_ref().map_or(0, |open| open.engine.commits)
    }

    /// `true` when nothing is queued or running and `queue` has no waiting message (and the
    /// disk takes writes): a get can answer "empty" at once, without waiting for a batch — so
    /// a consumer that emptied its queue is ready, not in a batch, when the next add comes.
    pub fn surely_empty(&self, queue: &QueueName) -> bool {
        let Ok(open) = self.open.try_lock() else { return false };
        let Some(Open { engine, .. }) = open.as_ref() else { return false };
        lock(&self.pending).is_empty()
            && engine.failure.is_none()
            && engine.db.catalog.queues.get(queue).is_none_or(|m| m.waiting == 0)
    }

    /// Runs `op` on the database now, outside any batch (an operation on a queue's log, which
    /// needs no transaction); `None` when the store is closed or the disk refuses writes. A
    /// log that finds the disk full makes the engine refuse writes, as a failed commit does.
    pub fn direct<T>(&self, op: impl FnOnce(&mut Db) -> Option<StoreResult<T>>) -> Option<StoreResult<T>> {
        let mut open = lock(&self.open);
        let Open { engine, .. } = open.as_mut()?;
        if engine.failure.is_some() || engine.broken.is_some() {
            return None;
        }
        engine.db.logs.settle();
        let out = op(&mut engine.db);
        if let Some(Err(StoreError::InsufficientStorage(reason))) = &out {
            tracing::error!(reason, "embedded store: a queue log found the disk full; refusing writes");
            engine.failure = Some(Failure { full: true, reason: reason.clone() });
        }
        out
    }

    /// How many operations are queued.
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Runs every queued operation, a batch at a time, and answers them. Once closed, the
    /// operations are dropped unrun, and their callers told the store is closed.
    pub fn flush(&self) {
        let mut open = lock(&self.open);
        loop {
            let mut jobs: Vec<(Job, Kind)> = {
                let mut pending = lock(&self.pending);
                let n = pending.len().min(MAX_BATCH);
                pending.drain(..n).collect()
            };
            jobs.sort_by_key(|(_, kind)| *kind == Kind::Take);
            let jobs = jobs.into_iter().map(|(job, kind)| (job, kind != Kind::Read)).collect::<Vec<_>>();
            if jobs.is_empty() {
                return;
            }
            let Some(Open { engine, syncer }) = open.as_mut() else { continue };
            let (replies, committed) = engine.batch(jobs);
            match committed {
                Some(Ok(())) => syncer.committed(replies),
                Some(Err(failure)) => replies.into_iter().for_each(|reply| reply(Err(failure.clone()))),
                None => replies.into_iter().for_each(|reply| reply(Ok(()))),
            }
        }
    }

    /// Fails while the disk refuses writes (probing it again when due).
    pub fn ping(&self) -> StoreResult<()> {
        let mut open = lock(&self.open);
        let Open { engine, .. } = open.as_mut().ok_or_else(closed)?;
        engine.retry_if_due();
        engine.failure.as_ref().map_or(Ok(()), |f| Err(f.to_error()))
    }

    /// Runs what is queued, then syncs and releases the database. Later operations fail;
    /// closing twice is a no-op.
    pub fn close(&self) -> StoreResult<()> {
        self.flush();
        let Some(Open { mut engine, syncer }) = lock(&self.open).take() else { return Ok(()) };
        // The rows get the exact counters: numbering goes on without a gap.
        let settle: Job = Box::new(|engine: &mut Engine| {
            engine.db.settle_counters();
            Box::new(drop)
        });
        let _ = engine.batch(vec![(settle, true)]);
        drop(syncer);
        engine.db.logs.closed_cleanly();
        // Closing the connection checkpoints the WAL into the database, synced.
        engine.sync_wal();
        engine.db.conn.close().map_err(|(_, e)| super::engine::Failure::of(&e).to_error())
    }
}

impl Drop for Batcher {
    /// Dropped unclosed (the last clone of the store gone): closes it.
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "embedded store: closing on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use restmq_shared::QueueName;

    use crate::config::Fsync;
    use crate::store::{EmbeddedOptions, EmbeddedStore, QueueStore, ON_QUEUED};

    /// A store whose adds and gets all go through batches (no queue logs under `always`).
    fn batched(dir: &std::path::Path) -> EmbeddedStore {
        EmbeddedStore::open_with(dir, EmbeddedOptions { fsync: Fsync::Always, ..Default::default() }).unwrap()
    }

    /// An add whose broker wakes a consumer's get when the add is queued (`ON_QUEUED`) runs in
    /// that get's batch: together they change nothing on disk, and commit no transaction,
    /// where the add and a later get take two. The numbers go on after a restart.
    #[tokio::test(flavor = "current_thread")]
    async fn a_get_woken_by_a_queued_add_commits_nothing_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let q = QueueName::try_from("joined").unwrap();
        let store = batched(dir.path());
        store.add(&q, "warm".to_owned(), None).await.unwrap();
        assert_eq!(store.pop(&q, 1).await.unwrap().len(), 1);

        let before = store.batcher.commits();
        store.add(&q, "apart".to_owned(), None).await.unwrap();
        assert_eq!(store.pop(&q, 1).await.unwrap()[0].value, "apart");
        assert_eq!(store.batcher.commits() - before, 2);

        let before = store.batcher.commits();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let (getter, queue) = (store.clone(), q.clone());
        let wake = Box::new(move || {
            let (getter, queue, tx) = (getter.clone(), queue.clone(), tx.lock().unwrap().take());
            tokio::spawn(async move {
                let got = getter.pop(&queue, 1).await.unwrap();
                let _ = tx.unwrap().send(got);
            });
        });
        ON_QUEUED.scope(wake, store.add(&q, "joined".to_owned(), None)).await.unwrap();
        let got = rx.await.unwrap();
        assert_eq!((got[0].value.as_str(), got[0].key.n), ("joined", 3));
        assert_eq!(store.batcher.commits() - before, 0);
        store.close().await.unwrap();
        let store = batched(dir.path());
        assert!(store.pop(&q, 10).await.unwrap().is_empty());
        assert_eq!(store.add(&q, "after".to_owned(), None).await.unwrap().n, 4);
        store.close().await.unwrap();
    }

    /// A get runs after the other operations of its batch: sent just before an add, in the
    /// same batch, it takes that add — and neither is written.
    #[tokio::test(flavor = "current_thread")]
    async fn a_get_runs_after_the_adds_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (q, other) = (QueueName::try_from("late").unwrap(), QueueName::try_from("other").unwrap());
        let store = batched(dir.path());
        store.add(&other, "warm".to_owned(), None).await.unwrap();
        let before = store.batcher.commits();
        let (first, got, added) = tokio::join!(
            store.add(&other, "first".to_owned(), None),
            store.pop(&q, 10),
            store.add(&q, "taken".to_owned(), None)
        );
        let (got, added) = (got.unwrap(), added.unwrap());
        assert_eq!(first.unwrap().n, 2);
        assert_eq!(got.iter().map(|m| (&m.key, m.value.as_str())).collect::<Vec<_>>(), [(&added, "taken")]);
        assert_eq!(store.batcher.commits() - before, 1, "only the add to {other} is written");
        store.close().await.unwrap();
    }
}
