//! The store interface: atomic per-queue operations on messages, policy and status, with
//! one implementation per backend held in the [`Store`] enum.
//!
//! Every operation is one atomic step against its backend. Keys are `<queue>:<n>` with `n`
//! counting from 1 per queue; the oldest message of a queue is the one with the smallest `n`
//! still present.

mod backend;
pub(crate) mod clock;
mod embedded;
mod memory;
mod redis;

use std::future::Future;
use std::time::Duration;

use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};

pub use self::redis::{FanoutRead, RedisOptions, RedisStore};
pub use backend::Store;
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use memory::MemoryStore;

/// The dead-letter queue of `queue`: `<queue>.dead`, which every valid name has. Only a
/// dead-letter queue whose own `.dead` would be too long keeps its dead letters itself (never
/// another queue's).
pub fn dead_letter_queue(queue: &QueueName) -> QueueName {
    QueueName::try_from(format!("{queue}{}", restmq_shared::name::DEAD_SUFFIX))
        .unwrap_or_else(|_| queue.clone())
}

/// A message as kept by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub key: MessageKey,
    pub value: String,
}

/// A soft-read message and how many times it has been soft-read, this read included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedMessage {
    pub key: MessageKey,
    pub value: String,
    pub count: u64,
}

/// A message handed out under a lease, and how many times it has been (this time included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedMessage {
    pub key: MessageKey,
    pub value: String,
    pub deliveries: u32,
}

/// What one lease-expiry pass did to one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredLeases {
    pub queue: QueueName,
    /// Messages back at the head of the queue.
    pub returned: u64,
    /// Messages moved to the dead-letter queue.
    pub dead: u64,
}

/// A queue's length and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueInfo {
    pub len: u64,
    pub policy: Policy,
    pub status: QueueStatus,
    /// Whether the policy was ever set (RestMQ's `/stats/` shows `""` when not).
    pub policy_set: bool,
    /// Whether the status was ever set (on Redis, other programs may create queues without).
    pub status_set: bool,
    /// The last message number handed out (0 when none since the queue was created).
    pub last: u64,
}

/// Why a store operation failed. Never caused by user input: that is checked before.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached now (Redis down); the operation did not happen.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request went out but no answer came back (a timeout, a connection lost while
    /// waiting): the operation may or may not have happened.
    #[error("store outcome unknown: {0}")]
    Unknown(String),
    /// The disk is full: the operation did not happen, and writes are refused until space
    /// returns.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The backend failed; the operation did not happen.
    #[error("store failure: {0}")]
    Backend(String),
    /// The publish's idempotency claim was no longer its own when it came to add (it expired,
    /// another publish took the key): nothing was added.
    #[error("the Idempotency-Key claim of this publish was lost")]
    ClaimLost,
    /// The queue is at its length limit and refuses new messages; nothing was added.
    #[error("queue is full ({0} messages)")]
    QueueFull(u64),
}

/// An idempotency key claimed for one publish on a shared store.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// Who holds the claim: an add runs only while the claim still holds this token.
    pub token: String,
    /// How long the answer is kept.
    pub window: Duration,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is this publish's: add.
    Mine,
    /// A publish with this key got these keys: answer them, add nothing.
    Answered(Vec<MessageKey>),
    /// Another publish holds the key and has not finished (or may still finish).
    InUse,
}

tokio::task_local! {
    /// The idempotency claim of the publish running in this task, for a shared store's adds.
    pub static PUBLISH_ONCE: IdempotencyClaim;
    /// Called by a store that commits operations in batches (embedded) once this task's add is
    /// queued for the next batch, before that commits: the broker wakes the queue's dispatcher
    /// then, so that its get can join the same batch — one commit for a message and its
    /// delivery, both answered only once it is committed. Other stores do not call it.
    pub static ON_QUEUED: Box<dyn Fn() + Send + Sync>;
}

impl StoreError {
    /// For an operation that changes nothing: not hearing back cannot leave anything half
    /// done, so an unknown outcome is simply unavailable (503, not 504).
    pub fn read_only(self) -> Self {
        match self {
            Self::Unknown(why) => Self::Unavailable(why),
            other => other,
        }
    }
}

/// Messages added in one step ([`QueueStore::add_batch`]).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub values: Vec<String>,
    /// Each vanishes unread after this time.
    pub ttl: Option<Duration>,
    /// The queue's length limit, if any.
    pub limit: Option<LengthLimit>,
}

/// A message that becomes visible later ([`QueueStore::add_delayed`]).
#[derive(Debug, Clone)]
pub struct Delayed {
    pub value: String,
    pub ttl: Option<Duration>,
    /// How long it stays out of sight.
    pub delay: Duration,
    pub limit: Option<LengthLimit>,
}

/// Which messages a browse returns ([`QueueStore::browse`]).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Only those numbered above this (0: from the oldest).
    pub after: u64,
    pub limit: usize,
    /// Those out on a lease instead of the waiting ones.
    pub leased: bool,
}

/// Messages handed out under a lease, as [`QueueStore::reserve`] returns them.
pub type Leases = Vec<LeasedMessage>;

/// A per-queue length limit and what to do at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthLimit {
    pub max: u64,
    /// Drop the oldest messages to make room, instead of refusing the add.
    pub drop_oldest: bool,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A queue whose files the store could not read at start-up (`/stats/` lists them): they
/// were moved aside, never deleted, and the queue is served from what else the store holds,
/// numbering on past any key they may have answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuarantinedQueue {
    pub queue: String,
    /// Where the files are now.
    pub path: String,
    /// When they were set aside (Unix seconds).
    pub since: u64,
    /// Why they could not be read.
    pub error: String,
}

/// What a store found damaged and works around, for `/readyz`, `/stats/` and `/metrics`
/// (nothing, for a store that keeps no files of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Queues whose files could not be read at start-up, set aside; each is still served.
    pub quarantined: Vec<QuarantinedQueue>,
    /// Records lost to damage since the process started (each also logged).
    pub damaged_records: u64,
    /// Segments a burst made on the request path since the process started (no spare was
    /// ready: the store's file work is otherwise off it).
    pub inline_segments: u64,
}

/// The operations a backend provides. Each is atomic: it happens whole or not at all.
pub trait QueueStore: Send + Sync + 'static {
    /// The backend's name in `/stats/`: `memory`, `embedded` or `redis`.
    fn kind(&self) -> &'static str;

    /// Appends a message; registers the queue if new. Durable when it returns, where the
    /// backend is durable. `ttl` makes the message vanish unread after that time.
    fn add(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
    ) -> impl Future<Output = StoreResult<MessageKey>> + Send;

    /// Appends the batch's messages in one step: all are added, or none. With a `limit`, a
    /// queue at its maximum length refuses them ([`StoreError::QueueFull`]) or drops its oldest.
    fn add_batch(
        &self,
        queue: &QueueName,
        batch: Batch,
    ) -> impl Future<Output = StoreResult<Vec<MessageKey>>> + Send;

    /// Adds a message that becomes visible only after its `delay`. Durable where the backend
    /// is: a delayed message survives a restart.
    /// A queue at its `limit` refuses it ([`StoreError::QueueFull`]): delayed messages count
    /// toward the limit, whatever `drop_oldest` says (nothing is dropped for a later message).
    fn add_delayed(
        &self,
        queue: &QueueName,
        message: Delayed,
    ) -> impl Future<Output = StoreResult<MessageKey>> + Send;

    /// Makes delayed messages that are due visible; returns the queues that got some.
    fn promote_delayed(&self) -> impl Future<Output = StoreResult<Vec<QueueName>>> + Send;

    /// Removes messages whose ttl ran out, so no expired entry stays counted in a queue.
    /// Returns how many were removed.
    fn sweep_expired(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Removes and returns up to `max` of the oldest messages, oldest first.
    fn pop(
        &self,
        queue: &QueueName,
        max: usize,
    ) -> impl Future<Output = StoreResult<Vec<StoredMessage>>> + Send;

    /// Returns the oldest message without removing it, counting the read.
    fn peek(&self, queue: &QueueName) -> impl Future<Output = StoreResult<Option<PeekedMessage>>> + Send;

    /// Up to `page.limit` of `queue`'s messages numbered above `page.after`, oldest first: the
    /// waiting ones, or with `page.leased` those out on a lease (with deadline and deliveries). Changes
    /// nothing, soft-read counts included.
    fn browse(
        &self,
        queue: &QueueName,
        page: Page,
    ) -> impl Future<Output = StoreResult<Vec<BrowsedMessage>>> + Send;

    /// Deletes one message by key; `false` when there was none.
    fn delete(&self, key: &MessageKey) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Puts popped messages back at the head of their queue, in key order, so they are the
    /// next ones out. Used when a consumer left before a message reached it.
    fn requeue(
        &self,
        queue: &QueueName,
        messages: Vec<StoredMessage>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes the queue and every key of it; `false` when it did not exist.
    fn purge(&self, queue: &QueueName) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The names of every queue, sorted.
    fn queues(&self) -> impl Future<Output = StoreResult<Vec<QueueName>>> + Send;

    /// A queue's length and settings; `None` when the queue does not exist.
    fn info(&self, queue: &QueueName) -> impl Future<Output = StoreResult<Option<QueueInfo>>> + Send;

    /// Sets the policy; registers the queue if new.
    fn set_policy(&self, queue: &QueueName, policy: Policy) -> impl Future<Output = StoreResult<()>> + Send;

    /// Sets the status; registers the queue if new.
    fn set_status(
        &self,
        queue: &QueueName,
        status: QueueStatus,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The keys of the newest `max` messages, newest first.
    fn recent_keys(
        &self,
        queue: &QueueName,
        max: usize,
    ) -> impl Future<Output = StoreResult<Vec<MessageKey>>> + Send;

    /// Makes everything acknowledged so far durable and releases the backend.
    fn close(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Shared stores only: claims an idempotency key for one publish (by any process), or
    /// says what the publish that holds it got. The publish then runs inside
    /// [`PUBLISH_ONCE`]`.scope(claim, …)`, and the store adds only while the claim is still
    /// its own, recording the answer in the same atomic step. Local stores answer `Mine`;
    /// the broker remembers for them.
    fn claim_idempotent(
        &self,
        _queue: &QueueName,
        _claim: &IdempotencyClaim,
    ) -> impl Future<Output = StoreResult<Claimed>> + Send {
        async { Ok(Claimed::Mine) }
    }

    /// Checks that the store answers (for `/readyz`).
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send {
        async { Ok(()) }
    }

    /// What the store works around (see [`StoreHealth`]); known without asking the backend.
    fn health(&self) -> StoreHealth {
        StoreHealth::default()
    }
}

/// At-least-once delivery, which every backend has: leases, their expiry, dead letters and
/// redrive.
pub trait LeaseStore: QueueStore {
    /// Hands out up to `max` of the oldest messages under a lease of `lease`: unless
    /// acknowledged by then, they come back (see [`LeaseStore::expire_leases`]).
    fn reserve(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> impl Future<Output = StoreResult<Leases>> + Send;

    /// Acknowledges a leased message: it is gone. `false` when it was not leased.
    fn ack(&self, key: &MessageKey) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Gives a leased message back to the head of its queue, its delivery count kept.
    fn nack(&self, key: &MessageKey) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Gives several leased messages of one queue back in one step, so that they are the
    /// next ones out in key order. Returns how many were leased.
    fn release(&self, queue: &QueueName, ns: &[u64]) -> impl Future<Output = StoreResult<usize>> + Send;

    /// Ends leases past their deadline: each message goes back to the head of its queue, or
    /// after `max_deliveries` deliveries to `<queue>.dead`. Returns what changed, per queue.
    fn expire_leases(
        &self,
        max_deliveries: u32,
    ) -> impl Future<Output = StoreResult<Vec<ExpiredLeases>>> + Send;

    /// Moves every message of `from` to the end of `to`, as new messages; returns how many.
    /// Moves no more than `to`'s `limit` has room for (waiting and delayed messages count); the
    /// rest stay in `from`.
    fn redrive(
        &self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<LengthLimit>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// One server process as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePresence {
    /// Unique per process.
    pub id: String,
    /// The address it serves on.
    pub addr: String,
    /// Open streaming connections.
    pub load: u64,
    /// Streaming consumers per queue.
    pub consumers: std::collections::BTreeMap<String, u64>,
    /// Whether this entry is the process asking.
    pub is_self: bool,
    /// Its streaming connections (queue, who), at most a bounded number.
    pub connections: Vec<(String, restmq_shared::ConsumerInfo)>,
    /// Per queue, its counts since its state there was made: added, taken, delivered, and
    /// the serial of that state (counts under a new serial start again from 0).
    pub counters: std::collections::BTreeMap<String, [u64; 4]>,
}

/// A change made to a shared store, announced to every process using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// Messages were added (or put back).
    Added(QueueName),
    /// Policy or status changed.
    Settings(QueueName),
    /// The queue was purged.
    Purged(QueueName),
    /// A message was added to a queue marked observed (see [`RedisStore::mark_observed`]).
    Observed(StoredMessage),
    /// Events may have been missed (the connection dropped): re-read everything.
    Resync,
}
