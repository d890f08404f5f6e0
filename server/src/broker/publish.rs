//! Publishing beyond one message: the size check, batches (all or nothing) and delayed
//! messages. Idempotent retries are in [`super::idempotency`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use restmq_shared::{MessageKey, QueueName};

use super::{Broker, BrokerError, BrokerResult};
use crate::store::{Batch, Delayed, QueueStore, ON_QUEUED};

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
        let copy = self.copy_for_observers(queue, &values);
        let batch = Batch { values, ttl, limit: self.config().length_limit };
        let hub = self.hub(queue);
        let keys = ON_QUEUED.scope(hub.wake_dispatcher(), self.store().add_batch(queue, batch)).await?;
        hub.counters.added.fetch_add(keys.len() as u64, Ordering::Relaxed);
        hub.wake();
        self.show_observers(queue, &keys, copy);
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
        let copy = self.copy_for_observers(queue, std::slice::from_ref(&value));
        let message = Delayed { value, ttl, delay, limit: self.config().length_limit };
        let key = self.store().add_delayed(queue, message).await?;
        self.hub(queue).counters.added.fetch_add(1, Ordering::Relaxed);
        self.show_observers(queue, std::slice::from_ref(&key), copy);
        Ok(key)
    }
}
