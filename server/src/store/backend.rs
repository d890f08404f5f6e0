//! [`Store`]: the configured backend behind one type, so handlers and the broker are not
//! generic; each operation is dispatched to the backend in use and timed into
//! `restmq_store_op_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};

use super::{
    Batch, Claimed, Delayed, ExpiredLeases, IdempotencyClaim, LeaseStore, Leases, LengthLimit, Page,
    PeekedMessage, QueueInfo, QueueStore, StoreError, StoreHealth, StoreResult, StoredMessage,
};
use super::{EmbeddedStore, MemoryStore, RedisStore};
use crate::metrics::Metrics;

/// The configured backend, with the figures its calls are timed into. Handlers hold this,
/// not a generic; cloning is shallow.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    Embedded(EmbeddedStore),
    Redis(RedisStore),
}

impl Store {
    fn new(backend: Backend) -> Self {
        Self { backend, metrics: Arc::default() }
    }

    /// The multi-process side of the store — its bus, broadcast logs, observed marks and
    /// presence — when other processes may share it (Redis); `None` for stores only this
    /// process uses.
    pub fn shared(&self) -> Option<&RedisStore> {
        match &self.backend {
            Backend::Redis(redis) => Some(redis),
            Backend::Memory(_) | Backend::Embedded(_) => None,
        }
    }

    /// Where this store's timings (and the server's other figures) go.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl From<MemoryStore> for Store {
    fn from(store: MemoryStore) -> Self {
        Self::new(Backend::Memory(store))
    }
}

impl From<EmbeddedStore> for Store {
    fn from(store: EmbeddedStore) -> Self {
        Self::new(Backend::Embedded(store))
    }
}

impl From<RedisStore> for Store {
    fn from(store: RedisStore) -> Self {
        Self::new(Backend::Redis(store))
    }
}

/// Calls the backend in use; with an operation name, times the call under it.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Memory($store) => $call,
            Backend::Embedded($store) => $call,
            Backend::Redis($store) => $call,
        }
    };
    ($self:ident, $op:literal, $store:ident => $call:expr) => {{
        let start = Instant::now();
        let out = dispatch!($self, $store => $call);
        $self.metrics.observe_store($op, start.elapsed());
        out
    }};
}

impl QueueStore for Store {
    fn kind(&self) -> &'static str {
        dispatch!(self, s => s.kind())
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        dispatch!(self, "add", s => s.add(queue, value, ttl).await)
    }

    async fn add_batch(&self, queue: &QueueName, batch: Batch) -> StoreResult<Vec<MessageKey>> {
        dispatch!(self, "add", s => s.add_batch(queue, batch).await)
    }

    async fn add_delayed(&self, queue: &QueueName, message: Delayed) -> StoreResult<MessageKey> {
        dispatch!(self, "add", s => s.add_delayed(queue, message).await)
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        dispatch!(self, s => s.promote_delayed().await)
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        dispatch!(self, s => s.sweep_expired().await)
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        dispatch!(self, "pop", s => s.pop(queue, max).await)
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        dispatch!(self, "peek", s => s.peek(queue).await)
    }

    async fn browse(&self, queue: &QueueName, page: Page) -> StoreResult<Vec<BrowsedMessage>> {
        dispatch!(self, "browse", s => s.browse(queue, page).await).map_err(StoreError::read_only)
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, "delete", s => s.delete(key).await)
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        dispatch!(self, "requeue", s => s.requeue(queue, messages).await)
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        dispatch!(self, "purge", s => s.purge(queue).await)
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        dispatch!(self, "queues", s => s.queues().await).map_err(StoreError::read_only)
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        dispatch!(self, "info", s => s.info(queue).await).map_err(StoreError::read_only)
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        dispatch!(self, "set_policy", s => s.set_policy(queue, policy).await)
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        dispatch!(self, "set_status", s => s.set_status(queue, status).await)
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        dispatch!(self, "recent_keys", s => s.recent_keys(queue, max).await).map_err(StoreError::read_only)
    }

    async fn close(&self) -> StoreResult<()> {
        dispatch!(self, "close", s => s.close().await)
    }

    async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, "ping", s => s.ping().await)
    }

    fn health(&self) -> StoreHealth {
        dispatch!(self, s => s.health())
    }

    async fn claim_idempotent(&self, queue: &QueueName, claim: &IdempotencyClaim) -> StoreResult<Claimed> {
        dispatch!(self, s => s.claim_idempotent(queue, claim).await)
    }
}

impl LeaseStore for Store {
    async fn reserve(&self, queue: &QueueName, max: usize, lease: Duration) -> StoreResult<Leases> {
        dispatch!(self, "reserve", s => s.reserve(queue, max, lease).await)
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, "ack", s => s.ack(key).await)
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, "nack", s => s.nack(key).await)
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        dispatch!(self, "release", s => s.release(queue, ns).await)
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        dispatch!(self, "expire_leases", s => s.expire_leases(max_deliveries).await)
    }

    async fn redrive(&self, from: &QueueName, to: &QueueName, cap: Option<LengthLimit>) -> StoreResult<u64> {
        dispatch!(self, "redrive", s => s.redrive(from, to, cap).await)
    }
}
