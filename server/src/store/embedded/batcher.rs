//! How the embedded store's operations reach the engine without a hop to another thread:
//! a caller queues its operation, and the caller that found the queue empty yields once (so
//! the operations of every request ready now join it; twice if some did), then runs everything
//! queued as one batch — one transaction, one commit — on its own thread and answers it. A
//! caller dropped while yielding still runs the batch. The engine is behind a mutex held only
//! by the running batch (or by `ping` and `close`), never across an `.await`.

use std::sync::{Mutex, MutexGuard};

use super::engine::{Engine, Job};
use super::syncer::Syncer;
use crate::store::{StoreError, StoreResult};

/// The most operations in one transaction.
const MAX_BATCH: usize = 1024;

/// The engine and its syncer; `None` once closed.
struct Open {
    engine: Engine,
    syncer: Syncer,
}

/// The queue of operations in front of the engine.
pub struct Batcher {
    pending: Mutex<Vec<(Job, bool)>>,
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

    /// Queues `job` (`write` when it changes the store). `true` when the queue was empty:
    /// this caller must then flush it.
    pub fn push(&self, job: Job, write: bool) -> bool {
        let mut pending = lock(&self.pending);
        pending.push((job, write));
        pending.len() == 1
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
            let jobs: Vec<(Job, bool)> = {
                let mut pending = lock(&self.pending);
                let n = pending.len().min(MAX_BATCH);
                pending.drain(..n).collect()
            };
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
        let Some(Open { engine, syncer }) = lock(&self.open).take() else { return Ok(()) };
        drop(syncer);
        // Closing the connection checkpoints the WAL into the database, synced.
        engine.sync_wal();
        engine.db.conn.close().map_err(|(_, e)| super::engine::Failure::of(&e).to_error())
    }
}
