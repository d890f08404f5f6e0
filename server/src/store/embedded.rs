//! The `embedded` backend: durable in a data directory. (Being written.)

use std::time::Duration;

use restmq_shared::{MessageKey, Policy, QueueName, QueueStatus};

use super::memory::MemoryStore;
use super::{PeekedMessage, QueueInfo, QueueStore, StoreResult, StoredMessage};

/// Placeholder: delegates to memory until the redb persistence lands.
#[derive(Clone, Default)]
pub struct EmbeddedStore {
    mem: MemoryStore,
}

impl QueueStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }
    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        self.mem.add(queue, value, ttl).await
    }
    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        self.mem.pop(queue, max).await
    }
    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        self.mem.peek(queue).await
    }
    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        self.mem.delete(key).await
    }
    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        self.mem.requeue(queue, messages).await
    }
    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        self.mem.purge(queue).await
    }
    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        self.mem.queues().await
    }
    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        self.mem.info(queue).await
    }
    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        self.mem.set_policy(queue, policy).await
    }
    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        self.mem.set_status(queue, status).await
    }
    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        self.mem.recent_keys(queue, max).await
    }
    async fn close(&self) -> StoreResult<()> {
        Ok(())
    }
}
