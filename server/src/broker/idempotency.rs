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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use restmq_shared::{MessageKey, QueueName};

use super::{Broker, BrokerError, BrokerResult};
use crate::store::{Claimed, IdempotencyClaim, QueueStore, PUBLISH_ONCE};

/// The longest `Idempotency-Key`, in bytes.
pub const MAX_KEY_BYTES: usize = 200;

/// Bytes charged per remembered answer besides its queue name, key and message numbers: the
/// map slot, the expiry-order slot, and four heap blocks with the allocator's own overhead.
/// Measured: 200,000 answers (10-byte keys, one message each) grew the server's resident
/// memory by 39 MB (195 bytes each) and were charged 52.7 MB (262 bytes each).
const ENTRY_OVERHEAD: usize = 240;

/// A queue and an idempotency key.
type Retry = (QueueName, String);

/// The first answer to an idempotent publish.
enum Answer {
    /// The first request is still adding; `cost` bytes are reserved for its answer.
    Pending { cost: usize },
    /// The message numbers it got (all in the retry's queue), and when.
    Done { ns: Vec<u64>, at: Instant, cost: usize },
    /// The first request was interrupted while adding, at `at`: whether it added is unknown.
    Unknown { at: Instant, cost: usize },
}

impl Answer {
    fn cost(&self) -> usize {
        match self {
            Self::Pending { cost } | Self::Done { cost, .. } | Self::Unknown { cost, .. } => *cost,
        }
    }

    fn at(&self) -> Option<Instant> {
        match self {
            Self::Pending { .. } => None,
            Self::Done { at, .. } | Self::Unknown { at, .. } => Some(*at),
        }
    }
}

/// The answers of this process (on a process-local store).
#[derive(Default)]
pub struct Remembered {
    memory: Mutex<Memory>,
    /// New keys refused because the memory was full.
    refused: AtomicU64,
}

#[derive(Default)]
struct Memory {
    answers: HashMap<Arc<Retry>, Answer>,
    /// Finished answers in the order they were remembered, which is the order they expire.
    order: VecDeque<(Instant, Arc<Retry>)>,
    /// Bytes charged for `answers` and `order`.
    bytes: usize,
}

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

impl Remembered {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bytes charged for an answer of `messages` message numbers.
fn cost(retry: &Retry, messages: usize) -> usize {
    ENTRY_OVERHEAD + retry.0.as_str().len() + retry.1.len() + messages * size_of::<u64>()
}

impl Memory {
    /// The first answer to `retry`, or `None` after reserving room for a new one.
    fn claim(
        &mut self,
        retry: &Retry,
        messages: usize,
        window: Duration,
        budget: usize,
    ) -> BrokerResult<Option<Vec<u64>>> {
        let now = Instant::now();
        self.expire(now, window);
        match self.answers.get(retry) {
            Some(Answer::Done { ns, .. }) => return Ok(Some(ns.clone())),
            Some(Answer::Pending { .. }) => return Err(BrokerError::IdempotencyKeyInUse),
            Some(Answer::Unknown { at, .. }) => {
                let wait = (*at + window).saturating_duration_since(now);
                return Err(BrokerError::IdempotencyOutcomeUnknown { retry_after_secs: wait.as_secs() + 1 });
            }
            None => {}
        }
        let cost = cost(retry, messages);
        if self.bytes + cost > budget {
            // The oldest answer frees its room when it leaves the window.
            let wait =
                self.order.front().map_or(window, |(at, _)| (*at + window).saturating_duration_since(now));
            return Err(BrokerError::IdempotencyFull { retry_after_secs: wait.as_secs() + 1 });
        }
        self.bytes += cost;
        self.answers.insert(Arc::new(retry.clone()), Answer::Pending { cost });
        Ok(None)
    }

    /// Records the outcome of a claimed key: the message numbers it got, or `None` when it
    /// is unknown. Either is kept for the window from now.
    fn settle(&mut self, retry: &Retry, ns: Option<Vec<u64>>) {
        let now = Instant::now();
        let cost = cost(retry, ns.as_ref().map_or(0, Vec::len));
        let answer = match ns {
            Some(ns) => Answer::Done { ns, at: now, cost },
            None => Answer::Unknown { at: now, cost },
        };
        // The map and the expiry order share one copy of the queue name and key.
        let shared = match self.answers.get_key_value(retry) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(retry.clone()),
        };
        if let Some(replaced) = self.answers.insert(shared.clone(), answer) {
            self.bytes -= replaced.cost();
        }
        self.bytes += cost;
        self.order.push_back((now, shared));
    }

    /// Forgets a claim whose publish failed.
    fn release(&mut self, retry: &Retry) {
        if let Some(&Answer::Pending { cost }) = self.answers.get(retry) {
            self.answers.remove(retry);
            self.bytes -= cost;
        }
    }

    /// Drops the answers whose window has passed (they are at the front of `order`).
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < window {
                return;
            }
            let Some((at, retry)) = self.order.pop_front() else { return };
            if self.answers.get(&*retry).and_then(Answer::at) == Some(at) {
                if let Some(answer) = self.answers.remove(&*retry) {
                    self.bytes -= answer.cost();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(key: &str) -> Retry {
        (QueueName::try_from("q").unwrap(), key.to_owned())
    }

    const WINDOW: Duration = Duration::from_secs(60);

    /// A key claimed by a running publish is in use; once finished it answers the first
    /// keys; a failed publish's claim is released.
    #[test]
    fn claims_answer_or_wait() {
        let mut memory = Memory::default();
        assert_eq!(memory.claim(&retry("a"), 1, WINDOW, 1 << 20).unwrap(), None);
        assert!(matches!(
            memory.claim(&retry("a"), 1, WINDOW, 1 << 20),
            Err(BrokerError::IdempotencyKeyInUse)
        ));
        memory.settle(&retry("a"), Some(vec![7]));
        assert_eq!(memory.claim(&retry("a"), 1, WINDOW, 1 << 20).unwrap(), Some(vec![7]));
        assert_eq!(memory.claim(&retry("b"), 3, WINDOW, 1 << 20).unwrap(), None);
        memory.release(&retry("b"));
        assert_eq!(memory.bytes, cost(&retry("a"), 1), "only a is charged");
        assert_eq!(memory.claim(&retry("b"), 3, WINDOW, 1 << 20).unwrap(), None, "b is free again");
    }

    /// A publish interrupted while adding leaves its key refused (outcome unknown) for the
    /// window, never free for a second add.
    #[test]
    fn an_interrupted_claim_is_not_forgotten() {
        let mut memory = Memory::default();
        assert_eq!(memory.claim(&retry("a"), 1, WINDOW, 1 << 20).unwrap(), None);
        memory.settle(&retry("a"), None);
        assert!(matches!(
            memory.claim(&retry("a"), 1, WINDOW, 1 << 20),
            Err(BrokerError::IdempotencyOutcomeUnknown { retry_after_secs: 1..=61 })
        ));
        memory.expire(Instant::now() + WINDOW, WINDOW);
        assert_eq!((memory.answers.len(), memory.bytes), (0, 0));
        assert_eq!(memory.claim(&retry("a"), 1, WINDOW, 1 << 20).unwrap(), None);
    }

    /// A full budget refuses new keys (saying when room frees up) and keeps every answer;
    /// answers leave only when their window has passed.
    #[test]
    fn a_full_budget_refuses_and_forgets_nothing() {
        let mut memory = Memory::default();
        let budget = 3 * cost(&retry("k0"), 1);
        for i in 0..3 {
            let key = retry(&format!("k{i}"));
            assert_eq!(memory.claim(&key, 1, WINDOW, budget).unwrap(), None);
            memory.settle(&key, Some(vec![i]));
        }
        match memory.claim(&retry("k3"), 1, WINDOW, budget) {
            Err(BrokerError::IdempotencyFull { retry_after_secs }) => {
                assert!((1..=61).contains(&retry_after_secs))
            }
            other => panic!("expected full, got {:?}", other.map(|_| ())),
        }
        for i in 0..3 {
            assert_eq!(memory.claim(&retry(&format!("k{i}")), 1, WINDOW, budget).unwrap(), Some(vec![i]));
        }
        memory.expire(Instant::now() + WINDOW, WINDOW);
        assert_eq!((memory.answers.len(), memory.order.len(), memory.bytes), (0, 0, 0));
        assert_eq!(memory.claim(&retry("k3"), 1, WINDOW, budget).unwrap(), None, "room again");
    }
}
