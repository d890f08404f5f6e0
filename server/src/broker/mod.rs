//! The broker: RestMQ's queue semantics over a [`Store`], independent of any transport.
//! REST gets, the JSON protocol and streaming subscriptions all go through here.
//!
//! Each queue with streaming consumers in this process has a [`Hub`] and a dispatcher task
//! (see [`dispatch`]); an add wakes it at once. Messages popped for consumers but never
//! written to any go back to the head of their queue through the requeuer task. A sweep
//! (see [`sweep`]) ages replay history out and forgets the hubs of queues that are gone.

mod acked;
mod at_least_once;
mod cluster;
mod config;
mod dispatch;
mod history;
mod hub;
mod idempotency;
mod look;
mod observe;
mod publish;
mod remembered;
mod roster;
mod stats;
mod subscription;
mod sweep;
mod timeline;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use restmq_shared::{MessageKey, Policy, QueueName, QueueStatus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::store::LeasedMessage;
pub use acked::{AckedSubscription, ACK_WINDOW};
pub use config::BrokerConfig;
pub use history::Replay;
pub use hub::{CloseReason, Delivery, Hub};
use hub::{Consumer, Ending, Requeue};
pub use idempotency::MAX_KEY_BYTES as MAX_IDEMPOTENCY_KEY_BYTES;
pub use look::{DEFAULT_BROWSE_LIMIT, MAX_BROWSE_LIMIT};
pub use roster::{Enlisted, StreamInfo};
pub use subscription::{Mode, Streamed, Subscription};

use crate::metrics::Metrics;
use crate::store::{
    PeekedMessage, QueueInfo, QueueStore, Store, StoreError, StoreHealth, StoredMessage, ON_QUEUED,
};

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The store cannot be reached now; nothing happened.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request reached the store but no answer came back: it may have happened.
    #[error("store outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The store's disk is full; nothing happened.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The queue is at its length limit; nothing was added.
    #[error("queue is full ({0} messages)")]
    QueueFull(u64),
    /// The publish's idempotency claim was taken over meanwhile; nothing was added.
    #[error("the Idempotency-Key claim of this publish was lost")]
    ClaimLost,
    /// The store failed; nothing happened. Its cause is logged, never sent.
    #[error("store failure: {0}")]
    Internal(String),
    /// A key named in a request belongs to another queue.
    #[error("key {key} is not a key of queue {queue}")]
    ForeignKey { queue: QueueName, key: MessageKey },
    /// Redrive was asked of a queue that is not a dead-letter queue.
    #[error("{0} is not a dead-letter queue (<queue>.dead)")]
    NotDeadLetter(QueueName),
    /// A value over `--max-message-bytes`.
    #[error("message is {bytes} bytes; the limit is {max}")]
    TooLarge { bytes: usize, max: usize },
    /// A publish with the same `Idempotency-Key` is still running.
    #[error("a request with this Idempotency-Key is still being processed; retry when it is done")]
    IdempotencyKeyInUse,
    /// The first publish with this `Idempotency-Key` was interrupted while adding: whether it
    /// added is unknown, so the key adds nothing more within the window.
    #[error(
        "the first request with this Idempotency-Key was interrupted and may have added; \
         check the queue, or retry in {retry_after_secs} s when the key is forgotten"
    )]
    IdempotencyOutcomeUnknown { retry_after_secs: u64 },
    /// The memory for idempotency answers (`--idempotency-max-bytes`) is full of answers still
    /// inside their window.
    #[error(
        "too many Idempotency-Key publishes in the window to remember another; retry in {retry_after_secs} s"
    )]
    IdempotencyFull { retry_after_secs: u64 },
}

pub type BrokerResult<T> = Result<T, BrokerError>;

impl From<StoreError> for BrokerError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(why) => Self::Unavailable(why),
            StoreError::Unknown(why) => Self::OutcomeUnknown(why),
            StoreError::InsufficientStorage(why) => Self::InsufficientStorage(why),
            StoreError::QueueFull(max) => Self::QueueFull(max),
            StoreError::ClaimLost => Self::ClaimLost,
            StoreError::Backend(why) => Self::Internal(why),
        }
    }
}

/// The broker handle; cloning is shallow.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: BrokerConfig,
    hubs: Mutex<HashMap<QueueName, Arc<Hub>>>,
    requeue_tx: mpsc::UnboundedSender<Requeue>,
    requeue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Requeue>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    remembered: remembered::Remembered,
    /// Bytes of replay history in every hub (see [`history`]).
    history_bytes: AtomicUsize,
    /// The last hour of every queue's figures (see [`timeline`]).
    timeline: Mutex<timeline::Timeline>,
}

impl Broker {
    /// Starts a broker over `store`; its tasks stop when `shutdown` is cancelled.
    pub fn new(
        store: Store,
        config: BrokerConfig,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let (requeue_tx, requeue_rx) = mpsc::unbounded_channel();
        let broker = Self {
            inner: Arc::new(Inner {
                store,
                config,
                hubs: Mutex::default(),
                requeue_tx,
                requeue_rx: tokio::sync::Mutex::new(requeue_rx),
                shutdown,
                tracker,
                remembered: remembered::Remembered::default(),
                history_bytes: AtomicUsize::new(0),
                timeline: Mutex::default(),
            }),
        };
        let requeuer = broker.clone();
        broker.inner.tracker.spawn(async move { requeuer.run_requeuer().await });
        let expirer = broker.clone();
        broker.inner.tracker.spawn(async move { expirer.run_lease_expiry().await });
        let sweeper = broker.clone();
        broker.inner.tracker.spawn(async move { sweeper.run_sweeper().await });
        let sampler = broker.clone();
        broker.inner.tracker.spawn(async move { sampler.run_timeline().await });
        if let Some(shared) = broker.inner.store.shared() {
            broker.start_shared(shared.watch());
        }
        broker
    }

    /// The store; every call through it is timed for `/metrics`. Only the broker calls it:
    /// what the layers above need goes through the broker's own methods.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether the server can serve: the store answers (and takes writes; on Redis, its bus
    /// and every slot are up). The store's kind when it can.
    pub async fn ready(&self) -> BrokerResult<&'static str> {
        self.inner.store.ping().await.map_err(StoreError::read_only)?;
        Ok(self.inner.store.kind())
    }

    /// What the store found damaged and works around (quarantined queues, records lost).
    pub fn store_health(&self) -> StoreHealth {
        self.inner.store.health()
    }

    /// This server's process-wide figures.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.store.metrics()
    }

    /// Every queue with a hub in this process, for its counters and consumers.
    pub fn local_queues(&self) -> Vec<Arc<Hub>> {
        self.all_hubs()
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn tracker(&self) -> &TaskTracker {
        &self.inner.tracker
    }

    fn requeue_sender(&self) -> mpsc::UnboundedSender<Requeue> {
        self.inner.requeue_tx.clone()
    }

    /// The hub of `queue`, created on first use.
    fn hub(&self, queue: &QueueName) -> Arc<Hub> {
        let mut hubs = self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.entry(queue.clone()).or_insert_with(|| Arc::new(Hub::new(queue.clone()))).clone()
    }

    fn existing_hub(&self, queue: &QueueName) -> Option<Arc<Hub>> {
        self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner()).get(queue).cloned()
    }

    fn all_hubs(&self) -> Vec<Arc<Hub>> {
        self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Adds a message; streaming consumers of the queue get it at once.
    pub async fn add(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
    ) -> BrokerResult<MessageKey> {
        if self.inner.config.length_limit.is_some() {
            let keys = self.add_batch(queue, vec![value], ttl).await?;
            return keys
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Backend("no key for an add".to_owned()).into());
        }
        let copy = self.copy_for_observers(queue, std::slice::from_ref(&value));
        let hub = self.hub(queue);
        let key = ON_QUEUED.scope(hub.wake_dispatcher(), self.inner.store.add(queue, value, ttl)).await?;
        hub.counters.added.fetch_add(1, Ordering::Relaxed);
        hub.wake();
        self.show_observers(queue, std::slice::from_ref(&key), copy);
        Ok(key)
    }

    /// Hard get: removes and returns the oldest message.
    pub async fn take(&self, queue: &QueueName) -> BrokerResult<Option<StoredMessage>> {
        let message = self.inner.store.pop(queue, 1).await?.pop();
        if message.is_some() {
            self.hub(queue).counters.taken.fetch_add(1, Ordering::Relaxed);
        }
        Ok(message)
    }

    /// Soft get: the oldest message, left in place, with its read count.
    pub async fn peek(&self, queue: &QueueName) -> BrokerResult<Option<PeekedMessage>> {
        Ok(self.inner.store.peek(queue).await?)
    }

    /// Deletes `key`, which must be a key of `queue`.
    pub async fn delete(&self, queue: &QueueName, key: &MessageKey) -> BrokerResult<bool> {
        if &key.queue != queue {
            return Err(BrokerError::ForeignKey { queue: queue.clone(), key: key.clone() });
        }
        Ok(self.inner.store.delete(key).await?)
    }

    /// Removes the queue and all its messages; its streaming consumers are told and closed.
    pub async fn purge(&self, queue: &QueueName) -> BrokerResult<bool> {
        let existed = self.inner.store.purge(queue).await?;
        self.forget(queue);
        Ok(existed)
    }

    /// After a purge: closes the queue's consumers and forgets what was cached of it, its
    /// replay history included; the sweep forgets the hub itself once nothing holds it.
    fn forget(&self, queue: &QueueName) {
        if let Some(hub) = self.existing_hub(queue) {
            {
                let mut st = hub.lock();
                st.epoch += 1;
                st.policy = None;
                st.status = None;
                st.fanout_cursor = None;
                st.fanout_own.clear();
            }
            hub.history().clear(&self.inner.history_bytes);
            hub.close_all(CloseReason::Purged);
            hub.mark_maybe_gone();
            hub.wake();
        }
    }

    pub async fn queues(&self) -> BrokerResult<Vec<QueueName>> {
        Ok(self.inner.store.queues().await?)
    }

    /// A queue's length and settings, `None` when it does not exist.
    pub async fn info(&self, queue: &QueueName) -> BrokerResult<Option<QueueInfo>> {
        Ok(self.inner.store.info(queue).await?)
    }

    pub async fn set_policy(&self, queue: &QueueName, policy: Policy) -> BrokerResult<()> {
        self.inner.store.set_policy(queue, policy).await?;
        let hub = self.hub(queue);
        hub.lock().policy = Some(policy);
        hub.wake();
        Ok(())
    }

    pub async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> BrokerResult<()> {
        self.inner.store.set_status(queue, status).await?;
        let hub = self.hub(queue);
        hub.lock().status = Some(status);
        hub.wake();
        Ok(())
    }

    pub async fn recent_keys(&self, queue: &QueueName, max: usize) -> BrokerResult<Vec<MessageKey>> {
        Ok(self.inner.store.recent_keys(queue, max).await?)
    }

    /// Joins `queue` as a streaming consumer. The backlog drains to it, oldest first.
    pub fn subscribe(&self, queue: &QueueName) -> Subscription {
        let hub = self.hub(queue);
        let (tx, rx) = mpsc::channel(self.inner.config.consumer_buffer.max(1));
        let closed = Arc::new(Ending::new(hub.clock_ms()));
        let (id, start) = {
            let mut st = hub.lock();
            st.next_id += 1;
            let id = st.next_id;
            st.consumers.push(Consumer { id, tx, closed: closed.clone() });
            let start = !st.dispatching;
            st.dispatching = true;
            (id, start)
        };
        if start {
            let (broker, hub) = (self.clone(), hub.clone());
            self.inner.tracker.spawn(dispatch::run(broker, hub));
        } else {
            hub.wake();
        }
        Subscription::new(id, hub, rx, closed, false)
    }

    /// Puts undelivered messages back, batched per queue, until shutdown.
    async fn run_requeuer(&self) {
        let mut rx = self.inner.requeue_rx.lock().await;
        loop {
            let mut batch = Vec::new();
            tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => if n == 0 { return },
                () = self.inner.shutdown.cancelled() => return,
            }
            self.requeue(batch).await;
        }
    }

    /// Puts back whatever undelivered messages are waiting, those this process moved into a
    /// broadcast log and had not handed out included. Called at shutdown, after the
    /// transports have ended, before the store closes.
    pub async fn flush_requeues(&self) {
        self.take_back_fanout().await;
        let mut rx = self.inner.requeue_rx.lock().await;
        let mut batch = Vec::new();
        while let Ok(item) = rx.try_recv() {
            batch.push(item);
        }
        drop(rx);
        self.requeue(batch).await;
    }

    async fn requeue(&self, batch: Vec<Requeue>) {
        let mut by_queue: HashMap<QueueName, (Arc<Hub>, Vec<StoredMessage>)> = HashMap::new();
        for Requeue { hub, epoch, message } in batch {
            if hub.lock().epoch != epoch {
                continue; // purged since it was popped
            }
            by_queue.entry(hub.queue.clone()).or_insert_with(|| (hub, Vec::new())).1.push(message);
        }
        for (queue, (hub, mut messages)) in by_queue {
            messages.sort_by_key(|m| m.key.n);
            let count = messages.len();
            if let Err(err) = self.inner.store.requeue(&queue, messages).await {
                tracing::error!(%queue, count, %err, "could not put undelivered messages back");
            }
            hub.wake();
        }
    }
}
