//! The `memory` backend: every queue in process memory, gone at exit. For tests and demos.
//!
//! - [`queues`]: the queues' data; [`leases`]: leases and dead letters; [`browse`]: paging.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};

mod browse;
mod leases;
mod queues;

use self::queues::Queues;
use crate::store::clock::{after, expiry, millis, now_ms};
use crate::store::{
    Batch, Delayed, ExpiredLeases, LeaseStore, Leases, LengthLimit, Page, PeekedMessage, QueueInfo,
    QueueStore, StoreResult, StoredMessage,
};

/// An ephemeral store; cloning is shallow.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<Queues>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, Queues> {
        // A panic while holding the lock cannot leave `Queues` half-changed in a way that
        // matters more than stopping service, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl QueueStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        let n = self.state().add(queue, value, expiry(ttl));
        Ok(MessageKey::new(queue.clone(), n))
    }

    async fn add_batch(&self, queue: &QueueName, batch: Batch) -> StoreResult<Vec<MessageKey>> {
        let (added, _) = self.state().add_batch(queue, batch.values, expiry(batch.ttl), batch.limit)?;
        Ok(added.into_iter().map(|n| MessageKey::new(queue.clone(), n)).collect())
    }

    async fn add_delayed(&self, queue: &QueueName, message: Delayed) -> StoreResult<MessageKey> {
        let Delayed { value, ttl, delay, limit } = message;
        let n = self.state().add_delayed(queue, value, expiry(ttl), after(delay), limit)?;
        Ok(MessageKey::new(queue.clone(), n))
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        let mut queues: Vec<QueueName> =
            self.state().promote_delayed(now_ms()).into_iter().map(|(q, _)| q).collect();
        queues.dedup();
        Ok(queues)
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        Ok(self.state().sweep_expired(now_ms()).len() as u64)
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        Ok(self.state().pop(queue, max, now_ms(), &mut Vec::new()))
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        Ok(self.state().peek(queue, now_ms(), &mut Vec::new()))
    }

    async fn browse(&self, queue: &QueueName, page: Page) -> StoreResult<Vec<BrowsedMessage>> {
        Ok(self.state().browse(queue, page, now_ms()))
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        Ok(self.state().delete(key))
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        self.state().requeue(queue, messages);
        Ok(())
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        Ok(self.state().purge(queue))
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        Ok(self.state().names())
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        Ok(self.state().info(queue))
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        self.state().set_policy(queue, policy);
        Ok(())
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        self.state().set_status(queue, status);
        Ok(())
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        Ok(self.state().recent_keys(queue, max))
    }

    async fn close(&self) -> StoreResult<()> {
        Ok(())
    }
}

impl LeaseStore for MemoryStore {
    async fn reserve(&self, queue: &QueueName, max: usize, lease: Duration) -> StoreResult<Leases> {
        let lease_ms = millis(lease);
        Ok(self.state().reserve(queue, max, now_ms(), lease_ms, &mut Vec::new()))
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        Ok(self.state().ack(key))
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        Ok(self.state().nack(key))
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        let mut state = self.state();
        Ok(ns.iter().filter(|n| state.nack(&MessageKey::new(queue.clone(), **n))).count())
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        Ok(self.state().expire_leases(now_ms(), max_deliveries).into_iter().map(Into::into).collect())
    }

    async fn redrive(&self, from: &QueueName, to: &QueueName, cap: Option<LengthLimit>) -> StoreResult<u64> {
        Ok(self.state().redrive(from, to, cap).len() as u64)
    }
}
