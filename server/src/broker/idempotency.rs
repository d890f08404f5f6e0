//! Idempotent publishing: a publish with an `Idempotency-Key` seen within the window gets the
//! first request's answer and adds nothing.
//!
//! On a shared store (Redis) the answers live in the store with an expiry, so a retry may
//! land on any process: the key is claimed there, and the add runs inside
//! [`PUBLISH_ONCE`]`.scope`, so the store adds only while the claim holds and records the
//! answer in the same step (a retry after a timed-out first try is added once). On a process-local store they live here, in memory bounded by bytes
//! (`--idempotency-max-bytes`), and every answer is kept for the whole window: none is
//! evicted early, so a retry within the window is always recognised. When the budget is full
//! of answers still inside their window, a new key is refused ([`BrokerError::IdempotencyFull`],
//! a `429` with `Retry-After`) before anything is added, rather than accepted and forgotten.
//! The key of a publish still running is claimed: a concurrent retry gets
//! [`BrokerError::IdempotencyKeyInUse`] (a `409`) instead of adding a second time. A publish
//! that fails releases its key; one interrupted while adding (its client went away, so the
//! handler was dropped) may or may not have added, so its key answers
//! [`BrokerError::IdempotencyOutcomeUnknown`] (also a `409`) until the window has passed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use restmq_shared::{MessageKey, QueueName};

use super::remembered::Retry;
use super::{Broker, BrokerError, BrokerResult};
use crate::store::{Claimed, IdempotencyClaim, QueueStore, PUBLISH_ONCE};

/// The longest `Idempotency-Key`, in bytes.
pub const MAX_KEY_BYTES: usize = 200;

/// What an idempotent publish should do.
enum Idempotent {
    /// A retry within the window: answer these keys, add nothing.
    Retry(Vec<MessageKey>),
    /// The first request with this key: add, then [`Claim::finish`] with the keys. Dropping
    /// the claim unfinished (the add failed) forgets the key.
    First(Claim),
}

/// An idempotency key claimed by the request that is adding.
struct Claim {
    broker: Broker,
    retry: Retry,
    finished: bool,
    /// On a shared store: the claim the store's add checks and answers.
    shared: Option<IdempotencyClaim>,
    /// On a local store: the claim under which a store that keeps answers across restarts
    /// (embedded) records this publish's answer with its add.
    durable: Option<IdempotencyClaim>,
}

impl Broker {
    /// Runs `add` (a publish of `messages` messages to `queue`) once per `idempotency_key`
    /// within the window: a retry gets the keys the first run got and runs nothing. Every
    /// way to add with an `Idempotency-Key` goes through here. Errors before `add` runs: the
    /// key is in use by a publish still running, or the memory for answers is full.
    pub async fn add_once<E, F, Fut>(
        &self,
        queue: &QueueName,
        idempotency_key: Option<&str>,
        messages: usize,
        add: F,
    ) -> Result<Vec<MessageKey>, E>
    where
        E: From<BrokerError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<MessageKey>, E>>,
    {
        let claim = match idempotency_key {
            None => None,
            Some(key) => match self.claim_idempotency(queue, key, messages).await? {
                Idempotent::Retry(keys) => return Ok(keys),
                Idempotent::First(claim) => Some(claim),
            },
        };
        let added = match claim.as_ref().and_then(|c| c.shared.clone().or_else(|| c.durable.clone())) {
            Some(shared) => PUBLISH_ONCE.scope(shared, add()).await,
            None => add().await,
        };
        match (added, claim) {
            (Ok(keys), Some(claim)) => {
                claim.finish(&keys).await?;
                Ok(keys)
            }
            (Err(err), Some(claim)) => {
                claim.release();
                Err(err)
            }
            (result, None) => result,
        }
    }

    /// Claims `idempotency_key` on `queue` for a publish of `messages` messages, or answers
    /// what the first publish with it got (both change nothing when they fail).
    async fn claim_idempotency(
        &self,
        queue: &QueueName,
        idempotency_key: &str,
        messages: usize,
    ) -> BrokerResult<Idempotent> {
        let retry = (queue.clone(), idempotency_key.to_owned());
        if self.store().shared().is_some() {
            let window = self.config().idempotency_window;
            let shared = IdempotencyClaim { key: idempotency_key.to_owned(), token: claim_token(), window };
            return match self.store().claim_idempotent(queue, &shared).await? {
                Claimed::Mine => Ok(Idempotent::First(Claim {
                    broker: self.clone(),
                    retry,
                    finished: false,
                    shared: Some(shared),
                    durable: None,
                })),
                Claimed::Answered(keys) => Ok(Idempotent::Retry(keys)),
                Claimed::InUse => Err(BrokerError::IdempotencyKeyInUse),
            };
        }
        let found = {
            let (window, budget) = (self.config().idempotency_window, self.config().idempotency_max_bytes);
            let claimed = self.inner.remembered.lock().claim(&retry, messages, window, budget);
            if let Err(BrokerError::IdempotencyFull { .. }) = claimed {
                self.inner.remembered.refused.fetch_add(1, Ordering::Relaxed);
            }
            let ns = claimed?;
            ns.map(|ns| ns.into_iter().map(|n| MessageKey { queue: queue.clone(), n }).collect())
        };
        if let Some(keys) = found {
            return Ok(Idempotent::Retry(keys));
        }
        // Claimed here; a store that keeps answers across restarts may know one from before.
        let window = self.config().idempotency_window;
        let durable = IdempotencyClaim { key: idempotency_key.to_owned(), token: claim_token(), window };
        let mut claim = Claim { broker: self.clone(), retry, finished: false, shared: None, durable: None };
        match self.store().claim_idempotent(queue, &durable).await {
            Ok(Claimed::Answered(keys)) => {
                claim.finish(&keys).await?;
                Ok(Idempotent::Retry(keys))
            }
            Ok(_) => {
                claim.durable = Some(durable);
                Ok(Idempotent::First(claim))
            }
            Err(err) => {
                claim.release();
                Err(err.into())
            }
        }
    }

    /// Bytes the remembered answers of this process take (0 on a shared store), and how
    /// many new keys were refused because they were at the limit.
    pub fn idempotency_figures(&self) -> (usize, u64) {
        let remembered = &self.inner.remembered;
        (remembered.lock().bytes, remembered.refused.load(Ordering::Relaxed))
    }
}

/// A token no other claim (of any process) holds.
fn claim_token() -> String {
    static PROCESS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        format!("{:x}-{nanos:x}", std::process::id())
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{:x}", *PROCESS, NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Claim {
    /// Remembers the keys the publish got, for the window (a shared store recorded them
    /// with the add).
    async fn finish(mut self, keys: &[MessageKey]) -> BrokerResult<()> {
        self.finished = true;
        if self.shared.is_some() {
            return Ok(());
        }
        let ns = keys.iter().map(|k| k.n).collect();
        self.broker.inner.remembered.lock().settle(&self.retry, Some(ns));
        Ok(())
    }

    /// Forgets the key: the publish failed and added nothing. (A shared store's claim expires
    /// by itself: the add may still be on its way to the store, and will then add nothing.)
    fn release(mut self) {
        self.finished = true;
        if self.shared.is_none() {
            self.broker.inner.remembered.lock().release(&self.retry);
        }
    }
}

impl Drop for Claim {
    /// Neither finished nor released: the publish was interrupted and may have added.
    fn drop(&mut self) {
        if !self.finished && self.shared.is_none() {
            self.broker.inner.remembered.lock().settle(&self.retry, None);
        }
    }
}
