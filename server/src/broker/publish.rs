//! Publishing beyond one message: batches (all or nothing), per-queue length limits, and
//! idempotent retries (an `Idempotency-Key` seen within the window returns the first keys).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use restmq_shared::{MessageKey, QueueName};

use super::{Broker, BrokerError, BrokerResult};
use crate::store::QueueStore;

/// Idempotency keys remembered at most, per process.
const MAX_REMEMBERED: usize = 100_000;

/// A queue and an idempotency key.
type Retry = (QueueName, String);

/// What an idempotent publish answered the first time, and when.
#[derive(Default)]
pub struct Remembered {
    answers: Mutex<HashMap<Retry, (Vec<MessageKey>, Instant)>>,
}

impl Broker {
    /// Refuses a value over `--max-message-bytes`: every way to add checks it here.
    pub fn check_size(&self, value: &str) -> BrokerResult<()> {
        let max = self.config().max_message_bytes;
        if value.len() > max {
            return Err(BrokerError::TooLarge { bytes: value.len(), max });
        }
        Ok(())
    }

    /// Adds every value, or none: a refused batch (queue full) changes nothing.
    pub async fn add_batch(
        &self,
        queue: &QueueName,
        values: Vec<String>,
        ttl: Option<Duration>,
    ) -> BrokerResult<Vec<MessageKey>> {
        let keys = self.store().add_batch(queue, values, ttl, self.config().length_limit).await?;
        let hub = self.hub(queue);
        hub.counters.added.fetch_add(keys.len() as u64, Ordering::Relaxed);
        hub.wake();
        Ok(keys)
    }

    /// Adds a message that becomes visible after `delay` (it survives restarts).
    pub async fn add_delayed(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
        delay: Duration,
    ) -> BrokerResult<MessageKey> {
        let key = self.store().add_delayed(queue, value, ttl, delay).await?;
        self.hub(queue).counters.added.fetch_add(1, Ordering::Relaxed);
        Ok(key)
    }

    /// The keys a publish with `idempotency_key` got within the window, if any: from the
    /// store when it is shared (so a retry may land on any process), else from this process.
    pub async fn idempotent_answer(
        &self,
        queue: &QueueName,
        idempotency_key: &str,
    ) -> BrokerResult<Option<Vec<MessageKey>>> {
        if self.store().is_shared() {
            return Ok(self.store().idempotent_keys(queue, idempotency_key).await?);
        }
        Ok(self.local_answer(queue, idempotency_key))
    }

    /// Remembers what a publish with `idempotency_key` answered.
    pub async fn remember_answer(
        &self,
        queue: &QueueName,
        idempotency_key: &str,
        keys: &[MessageKey],
    ) -> BrokerResult<()> {
        if self.store().is_shared() {
            let window = self.config().idempotency_window;
            return Ok(self.store().remember_idempotent(queue, idempotency_key, keys, window).await?);
        }
        self.remember_locally(queue, idempotency_key, keys);
        Ok(())
    }

    fn local_answer(&self, queue: &QueueName, idempotency_key: &str) -> Option<Vec<MessageKey>> {
        let window = self.config().idempotency_window;
        let answers = self.inner.remembered.answers.lock().unwrap_or_else(|p| p.into_inner());
        let (keys, at) = answers.get(&(queue.clone(), idempotency_key.to_owned()))?;
        (at.elapsed() < window).then(|| keys.clone())
    }

    fn remember_locally(&self, queue: &QueueName, idempotency_key: &str, keys: &[MessageKey]) {
        let window = self.config().idempotency_window;
        let mut answers = self.inner.remembered.answers.lock().unwrap_or_else(|p| p.into_inner());
        if answers.len() >= MAX_REMEMBERED {
            answers.retain(|_, (_, at)| at.elapsed() < window);
        }
        if answers.len() < MAX_REMEMBERED {
            answers.insert((queue.clone(), idempotency_key.to_owned()), (keys.to_vec(), Instant::now()));
        }
    }
}
