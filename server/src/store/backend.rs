//! [`Store`]: the configured backend behind one type, so handlers and the broker are not
//! generic; each operation is dispatched to the backend in use and timed into
//! `restmq_store_op_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};

use super::{
    Claimed, ExpiredLeases, IdempotencyClaim, LeasedMessage, LengthLimit, NodePresence, PeekedMessage,
    QueueInfo, QueueStore, StoreError, StoreEvent, StoreResult, StoredMessage,
};
use super::{EmbeddedStore, MemoryStore, RedisStore};
use crate::metrics::{Metrics, StoreOp};

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

/// Calls the backend in use; with a [`StoreOp`], times the call.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            Backend::Memory($store) => $call,
            Backend::Embedded($store) => $call,
            Backend::Redis($store) => $call,
        }
    };
    ($self:ident, $op:expr, $store:ident => $call:expr) => {{
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
        dispatch!(self, StoreOp::Add, s => s.add(queue, value, ttl).await)
    }

    async fn add_batch(
        &self,
        queue: &QueueName,
        values: Vec<String>,
        ttl: Option<Duration>,
        limit: Option<LengthLimit>,
    ) -> StoreResult<Vec<MessageKey>> {
        dispatch!(self, StoreOp::Add, s => s.add_batch(queue, values, ttl, limit).await)
    }

    async fn add_delayed(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
        delay: Duration,
        limit: Option<LengthLimit>,
    ) -> StoreResult<MessageKey> {
        dispatch!(self, StoreOp::Add, s => s.add_delayed(queue, value, ttl, delay, limit).await)
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        dispatch!(self, s => s.promote_delayed().await)
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        dispatch!(self, s => s.sweep_expired().await)
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        dispatch!(self, StoreOp::Pop, s => s.pop(queue, max).await)
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        dispatch!(self, StoreOp::Peek, s => s.peek(queue).await)
    }

    async fn browse(
        &self,
        queue: &QueueName,
        after: u64,
        limit: usize,
        leased: bool,
    ) -> StoreResult<Vec<BrowsedMessage>> {
        dispatch!(self, StoreOp::Browse, s => s.browse(queue, after, limit, leased).await)
            .map_err(StoreError::read_only)
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, StoreOp::Delete, s => s.delete(key).await)
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        dispatch!(self, StoreOp::Requeue, s => s.requeue(queue, messages).await)
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        dispatch!(self, StoreOp::Purge, s => s.purge(queue).await)
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        dispatch!(self, StoreOp::Queues, s => s.queues().await).map_err(StoreError::read_only)
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        dispatch!(self, StoreOp::Info, s => s.info(queue).await).map_err(StoreError::read_only)
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        dispatch!(self, StoreOp::SetPolicy, s => s.set_policy(queue, policy).await)
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        dispatch!(self, StoreOp::SetStatus, s => s.set_status(queue, status).await)
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        dispatch!(self, StoreOp::RecentKeys, s => s.recent_keys(queue, max).await)
            .map_err(StoreError::read_only)
    }

    async fn close(&self) -> StoreResult<()> {
        dispatch!(self, StoreOp::Close, s => s.close().await)
    }

    async fn reserve(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        dispatch!(self, StoreOp::Reserve, s => s.reserve(queue, max, lease).await)
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, StoreOp::Ack, s => s.ack(key).await)
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        dispatch!(self, StoreOp::Nack, s => s.nack(key).await)
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        dispatch!(self, StoreOp::Release, s => s.release(queue, ns).await)
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        dispatch!(self, StoreOp::ExpireLeases, s => s.expire_leases(max_deliveries).await)
    }

    async fn redrive(
        &self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<LengthLimit>,
    ) -> StoreResult<u64> {
        dispatch!(self, StoreOp::Redrive, s => s.redrive(from, to, limit).await)
    }

    fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        dispatch!(self, s => s.watch())
    }

    fn is_shared(&self) -> bool {
        dispatch!(self, s => s.is_shared())
    }

    async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, StoreOp::Ping, s => s.ping().await)
    }

    async fn claim_idempotent(&self, queue: &QueueName, claim: &IdempotencyClaim) -> StoreResult<Claimed> {
        dispatch!(self, s => s.claim_idempotent(queue, claim).await)
    }

    async fn move_to_fanout(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<u64>> {
        dispatch!(self, StoreOp::MoveToFanout, s => s.move_to_fanout(queue, max).await)
    }

    async fn read_fanout(
        &self,
        queue: &QueueName,
        cursor: Option<&str>,
        max: usize,
    ) -> StoreResult<(String, Vec<StoredMessage>)> {
        dispatch!(self, StoreOp::ReadFanout, s => s.read_fanout(queue, cursor, max).await)
            .map_err(StoreError::read_only)
    }

    async fn mark_observed(&self, queue: &QueueName, ttl: Duration) -> StoreResult<()> {
        dispatch!(self, StoreOp::MarkObserved, s => s.mark_observed(queue, ttl).await)
    }

    async fn report_presence(&self, presence: NodePresence) -> StoreResult<()> {
        dispatch!(self, StoreOp::ReportPresence, s => s.report_presence(presence).await)
    }

    async fn nodes(&self) -> StoreResult<Vec<NodePresence>> {
        dispatch!(self, StoreOp::Nodes, s => s.nodes().await).map_err(StoreError::read_only)
    }
}
