//! [`TimedStore`]: the broker's store, each call timed into `restmq_store_op_seconds`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use restmq_shared::{MessageKey, Policy, QueueName, QueueStatus};

use super::{Metrics, StoreOp};
use crate::store::{
    ExpiredLeases, LeasedMessage, LengthLimit, NodePresence, PeekedMessage, QueueInfo, QueueStore, Store,
    StoreEvent, StoreResult, StoredMessage,
};

/// A [`Store`] whose every call is timed. Cloning is shallow.
#[derive(Clone)]
pub struct TimedStore {
    store: Store,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }

    /// The store itself, untimed.
    pub fn inner(&self) -> &Store {
        &self.store
    }

    /// Where the timings go.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    async fn timed<T>(&self, op: StoreOp, call: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = call.await;
        self.metrics.observe_store(op, start.elapsed());
        out
    }
}

impl QueueStore for TimedStore {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        self.timed(StoreOp::Add, self.store.add(queue, value, ttl)).await
    }

    async fn add_batch(
        &self,
        queue: &QueueName,
        values: Vec<String>,
        ttl: Option<Duration>,
        limit: Option<LengthLimit>,
    ) -> StoreResult<Vec<MessageKey>> {
        self.timed(StoreOp::Add, self.store.add_batch(queue, values, ttl, limit)).await
    }

    async fn add_delayed(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
        delay: Duration,
    ) -> StoreResult<MessageKey> {
        self.timed(StoreOp::Add, self.store.add_delayed(queue, value, ttl, delay)).await
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        self.store.promote_delayed().await
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        self.store.sweep_expired().await
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        self.timed(StoreOp::Pop, self.store.pop(queue, max)).await
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        self.timed(StoreOp::Peek, self.store.peek(queue)).await
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        self.timed(StoreOp::Delete, self.store.delete(key)).await
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        self.timed(StoreOp::Requeue, self.store.requeue(queue, messages)).await
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        self.timed(StoreOp::Purge, self.store.purge(queue)).await
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        self.timed(StoreOp::Queues, self.store.queues()).await
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        self.timed(StoreOp::Info, self.store.info(queue)).await
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        self.timed(StoreOp::SetPolicy, self.store.set_policy(queue, policy)).await
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        self.timed(StoreOp::SetStatus, self.store.set_status(queue, status)).await
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        self.timed(StoreOp::RecentKeys, self.store.recent_keys(queue, max)).await
    }

    async fn close(&self) -> StoreResult<()> {
        self.timed(StoreOp::Close, self.store.close()).await
    }

    async fn reserve(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        self.timed(StoreOp::Reserve, self.store.reserve(queue, max, lease)).await
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        self.timed(StoreOp::Ack, self.store.ack(key)).await
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        self.timed(StoreOp::Nack, self.store.nack(key)).await
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        self.timed(StoreOp::Release, self.store.release(queue, ns)).await
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        self.timed(StoreOp::ExpireLeases, self.store.expire_leases(max_deliveries)).await
    }

    async fn redrive(&self, from: &QueueName, to: &QueueName) -> StoreResult<u64> {
        self.timed(StoreOp::Redrive, self.store.redrive(from, to)).await
    }

    fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        self.store.watch()
    }

    fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    async fn idempotent_keys(
        &self,
        queue: &QueueName,
        idempotency_key: &str,
    ) -> StoreResult<Option<Vec<MessageKey>>> {
        self.store.idempotent_keys(queue, idempotency_key).await
    }

    async fn remember_idempotent(
        &self,
        queue: &QueueName,
        idempotency_key: &str,
        keys: &[MessageKey],
        window: Duration,
    ) -> StoreResult<()> {
        self.store.remember_idempotent(queue, idempotency_key, keys, window).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.timed(StoreOp::Ping, self.store.ping()).await
    }

    async fn pop_broadcast(&self, queue: &QueueName, max: usize) -> StoreResult<(usize, usize)> {
        self.timed(StoreOp::PopBroadcast, self.store.pop_broadcast(queue, max)).await
    }

    async fn report_presence(&self, presence: NodePresence) -> StoreResult<()> {
        self.timed(StoreOp::ReportPresence, self.store.report_presence(presence)).await
    }

    async fn nodes(&self) -> StoreResult<Vec<NodePresence>> {
        self.timed(StoreOp::Nodes, self.store.nodes()).await
    }
}
