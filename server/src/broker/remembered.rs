//! The answers of this process's idempotent publishes (on a process-local store): kept for the
//! whole window in memory bounded by bytes (`--idempotency-max-bytes`), never evicted early.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use restmq_shared::QueueName;

use super::{BrokerError, BrokerResult};

/// Bytes charged per remembered answer besides its queue name, key and message numbers: the
/// map slot, the expiry-order slot, and four heap blocks with the allocator's own overhead.
/// Measured: 200,000 answers (10-byte keys, one message each) grew the server's resident
/// memory by 39 MB (195 bytes each) and were charged 52.7 MB (262 bytes each).
const ENTRY_OVERHEAD: usize = 240;

/// A queue and an idempotency key.
pub(super) type Retry = (QueueName, String);

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
    pub(super) refused: AtomicU64,
}

#[derive(Default)]
pub(super) struct Memory {
    answers: HashMap<Arc<Retry>, Answer>,
    /// Finished answers in the order they were remembered, which is the order they expire.
    order: VecDeque<(Instant, Arc<Retry>)>,
    /// Bytes charged for `answers` and `order`.
    pub(super) bytes: usize,
}

impl Remembered {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bytes charged for an answer of `messages` message numbers.
fn cost(retry: &Retry, messages: usize) -> usize {
    ENTRY_OVERHEAD + retry.0.as_str().len() + retry.1.len() + messages * size_of::<u64>()
}

impl Memory {
    /// The first answer to `retry`, or `None` after reserving room for a new one.
    pub(super) fn claim(
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
    pub(super) fn settle(&mut self, retry: &Retry, ns: Option<Vec<u64>>) {
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
    pub(super) fn release(&mut self, retry: &Retry) {
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
