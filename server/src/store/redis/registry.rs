//! Queue registration in the server-wide sets: `QUEUESET` (RestMQ's list of queues) and the
//! sets the once-a-second passes walk (`restmq|ttl`, `restmq|delayed`, `restmq|leased`).
//!
//! On a single Redis they are written as before, in or beside each operation. In a cluster
//! each set lives in one slot, on one master, while a queue's messages live on another: so
//! that losing the set's master does not fail adds to every queue, a registration there is
//! best effort — remembered once done, and when it fails, owed and retried each second until
//! it lands (the passes reach that queue a little later; nothing is lost).

use std::collections::HashSet;
use std::sync::Mutex;

use redis::AsyncCommands;
use restmq_shared::QueueName;

use super::conn::error;
use super::RedisStore;
use crate::store::StoreResult;

/// Registrations remembered (done) or owed at most; past it the memory starts over (a
/// registration done twice is harmless).
const MAX_REMEMBERED: usize = 100_000;

/// What this process registered in a cluster, and what it still owes.
#[derive(Default)]
pub(super) struct Registry {
    done: Mutex<HashSet<(&'static str, QueueName)>>,
    owed: Mutex<HashSet<(&'static str, QueueName)>>,
}

impl RedisStore {
    /// Adds `queue` to the server-wide set `set`: at once on a single Redis (an error fails
    /// the operation); in a cluster once per process, best effort (see the module notes).
    pub(super) async fn register(&self, set: &'static str, queue: &QueueName) -> StoreResult<()> {
        if !self.inner.cluster {
            let () = self.conn().sadd(set, queue.as_str()).await.map_err(error)?;
            return Ok(());
        }
        let entry = (set, queue.clone());
        if lock(&self.inner.registry.done).contains(&entry) {
            return Ok(());
        }
        match self.conn().sadd::<_, _, ()>(set, queue.as_str()).await {
            Ok(()) => remember(&self.inner.registry.done, entry),
            Err(err) => {
                tracing::warn!(%queue, set, %err, "queue registration owed; retrying each second");
                remember(&self.inner.registry.owed, entry);
            }
        }
        Ok(())
    }

    /// Retries the registrations still owed (cluster only; the passes call it each second).
    pub(super) async fn repay_registrations(&self) {
        let owed: Vec<_> = lock(&self.inner.registry.owed).iter().cloned().collect();
        for (set, queue) in owed {
            if self.conn().sadd::<_, _, ()>(set, queue.as_str()).await.is_ok() {
                lock(&self.inner.registry.owed).remove(&(set, queue.clone()));
                remember(&self.inner.registry.done, (set, queue));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remember(set: &Mutex<HashSet<(&'static str, QueueName)>>, entry: (&'static str, QueueName)) {
    let mut set = lock(set);
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(entry);
}
