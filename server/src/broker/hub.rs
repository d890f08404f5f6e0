//! One queue's live state in this process: its streaming consumers, cached settings,
//! counters, and the `Subscription` / `Delivery` handles the transports hold.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use restmq_shared::{Policy, QueueName, QueueStatus, StreamMessage};
use tokio::sync::{mpsc, Notify};

use crate::store::StoredMessage;

/// Why the server ended a streaming consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The queue was purged.
    Purged,
    /// The consumer did not drain its buffer in time.
    SlowConsumer,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purged => "purged",
            Self::SlowConsumer => "slow_consumer",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Per-queue counters since the server started.
#[derive(Debug, Default)]
pub struct Counters {
    pub added: AtomicU64,
    pub taken: AtomicU64,
    pub delivered: AtomicU64,
    /// Leased messages acknowledged.
    pub acked: AtomicU64,
    /// Leased messages back in the queue: lease expired, nacked, or their consumer left.
    pub redelivered: AtomicU64,
    /// Leased messages moved to the dead-letter queue.
    pub dead: AtomicU64,
    /// Messages written to observers (they take nothing; see [`super::observe`]).
    pub observed: AtomicU64,
}

/// A consumer as the dispatcher sees it.
pub(super) struct Consumer {
    pub id: u64,
    pub tx: mpsc::Sender<Arc<Delivery>>,
    pub closed: Arc<Ending>,
}

impl Consumer {
    pub fn close(&self, reason: CloseReason) {
        self.closed.end(reason);
    }
}

/// How the server ends one consumer: the reason, set once, and what to do at once when it
/// is cut as slow (its transport is stuck writing, so it cannot act by itself).
pub(super) struct Ending {
    reason: OnceLock<CloseReason>,
    on_slow: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// When (on the hub's clock) the consumer last left [`Subscription::recv`]; 0 while it
    /// waits there for more. A consumer away longer than the slow-consumer timeout is stuck
    /// writing to a client that does not read.
    pub(super) busy_since: AtomicU64,
}

impl Ending {
    /// A consumer joining at `now` (it counts as busy until it first asks for a message).
    pub fn new(now: u64) -> Self {
        Self { reason: OnceLock::new(), on_slow: Mutex::default(), busy_since: AtomicU64::new(now) }
    }

    /// Whether the consumer has been away from `recv` for longer than `timeout_ms`.
    fn stalled(&self, now: u64, timeout_ms: u64) -> bool {
        let since = self.busy_since.load(Ordering::Relaxed);
        since != 0 && now.saturating_sub(since) > timeout_ms
    }

    pub fn get(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }

    fn end(&self, reason: CloseReason) {
        if self.reason.set(reason).is_ok() && reason == CloseReason::SlowConsumer {
            let hook = self.on_slow.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(hook) = hook {
                hook();
            }
        }
    }

    /// Runs `hook` when the consumer is cut as slow (now, if it already was).
    pub(super) fn when_slow(&self, hook: Box<dyn FnOnce() + Send>) {
        let mut slot = self.on_slow.lock().unwrap_or_else(|p| p.into_inner());
        if self.get() == Some(CloseReason::SlowConsumer) {
            drop(slot);
            hook();
        } else {
            *slot = Some(hook);
        }
    }
}

/// What changes under the hub's lock.
#[derive(Default)]
pub(super) struct HubState {
    pub consumers: Vec<Consumer>,
    pub next_id: u64,
    /// Id of the consumer served last (roundrobin); the next turn is the one after it.
    pub cursor: u64,
    /// Settings cached from the store; `None` until loaded or set.
    pub policy: Option<Policy>,
    pub status: Option<QueueStatus>,
    /// Whether a dispatcher task runs for this queue.
    pub dispatching: bool,
    /// Bumped by purge, so messages popped before it are not put back after it.
    pub epoch: u64,
    /// Shared stores: how far this process has read the queue's broadcast log (see
    /// [`super::cluster`]); `None` until its first broadcast consumer.
    pub fanout_cursor: Option<String>,
    /// Shared stores: numbers of the messages this process moved into the broadcast log and
    /// has not read back yet; they go back to the queue if no consumer here writes them.
    pub fanout_own: std::collections::BTreeSet<u64>,
    /// Observers (see [`super::observe`]): they see adds and take nothing.
    pub observers: Vec<Consumer>,
    /// The key number observers see next; `None` until the first observer joins.
    pub observe_next: Option<u64>,
    /// Added messages waiting for a lower key to be shown first.
    pub observe_pending: std::collections::BTreeMap<u64, StoredMessage>,
    /// Since when the oldest pending message has waited.
    pub observe_waiting: Option<Instant>,
    /// Per observer, what did not fit its buffer, in order (see [`super::observe`]).
    pub observer_backlog: std::collections::HashMap<u64, std::collections::VecDeque<Arc<Delivery>>>,
}

/// One queue's in-process hub. Shared by the broker, its dispatcher and subscriptions.
pub struct Hub {
    pub queue: QueueName,
    /// Unique in this process: a queue's hub made again (after it was forgotten) counts
    /// from 0 under a new serial.
    pub serial: u64,
    pub counters: Counters,
    pub(super) notify: Notify,
    /// Wakes `ack=1` consumers, which reserve messages themselves.
    pub(super) ack_waiters: Arc<Notify>,
    /// `ack=1` consumers connected now.
    pub(super) ack_consumers: std::sync::atomic::AtomicUsize,
    /// Observers connected now (kept equal to the length of the hub's observer list).
    pub(super) observers: std::sync::atomic::AtomicUsize,
    /// Every streaming connection of the queue, for the consumers list.
    pub(super) roster: Arc<super::roster::Roster>,
    /// Shared stores: whether other processes read the queue's broadcast log (as of this
    /// process's last read of it).
    pub(super) consumed_elsewhere: AtomicBool,
    /// Recent broadcast messages, for `since` replay.
    pub(super) history: Mutex<super::history::History>,
    /// The start of the hub's clock (see [`Hub::clock_ms`]).
    born: Instant,
    /// Set when the queue may have ceased to exist (purged, a consumer left): the sweep then
    /// asks the store, and forgets the hub if the queue is gone and nothing holds it.
    pub(super) maybe_gone: AtomicBool,
    state: Mutex<HubState>,
}

impl Hub {
    pub(super) fn new(queue: QueueName) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        Self {
            queue,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            counters: Counters::default(),
            notify: Notify::new(),
            ack_waiters: Arc::new(Notify::new()),
            ack_consumers: std::sync::atomic::AtomicUsize::new(0),
            observers: std::sync::atomic::AtomicUsize::new(0),
            roster: Arc::default(),
            consumed_elsewhere: AtomicBool::new(false),
            history: Mutex::default(),
            born: Instant::now(),
            maybe_gone: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The queue's replay history, locked.
    pub(super) fn history(&self) -> MutexGuard<'_, super::history::History> {
        super::history::lock(&self.history)
    }

    /// Wakes the dispatcher (a permit is kept if it is not waiting).
    /// Wakes the dispatcher alone (see [`crate::store::ON_QUEUED`]): an add is on its way.
    pub(super) fn wake_dispatcher(self: &Arc<Self>) -> Box<dyn Fn() + Send + Sync> {
        let hub = self.clone();
        Box::new(move || hub.notify.notify_one())
    }

    pub(super) fn wake(&self) {
        self.notify.notify_one();
        self.ack_waiters.notify_waiters();
    }

    /// Milliseconds since the hub was made, plus one (so never 0).
    pub(super) fn clock_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Cuts, as slow, every consumer that took a message and has not come back for the next
    /// one within `timeout`: its transport is stuck writing to a client that does not read
    /// (even when its buffer is not full). Returns how many were cut.
    pub(super) fn cut_stalled(&self, timeout: Duration) -> usize {
        let (now, timeout_ms) = (self.clock_ms(), u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let mut st = self.lock();
        let before = st.consumers.len() + st.observers.len();
        let keep = |c: &Consumer| {
            let stalled = c.closed.stalled(now, timeout_ms);
            if stalled {
                c.close(CloseReason::SlowConsumer);
            }
            !stalled
        };
        st.consumers.retain(keep);
        st.observers.retain(keep);
        self.observers.store(st.observers.len(), Ordering::Relaxed);
        before - st.consumers.len() - st.observers.len()
    }

    /// Asks the sweep to check whether the queue still exists.
    pub(super) fn mark_maybe_gone(&self) {
        self.maybe_gone.store(true, Ordering::Relaxed);
    }

    /// Streaming consumers connected now, `ack=1` ones included.
    pub fn consumer_count(&self) -> usize {
        self.lock().consumers.len() + self.ack_consumers.load(Ordering::Relaxed)
    }

    /// Ends every consumer and observer with `reason`.
    pub(super) fn close_all(&self, reason: CloseReason) {
        let (consumers, observers) = {
            let mut st = self.lock();
            st.observe_next = None;
            st.observe_pending.clear();
            (std::mem::take(&mut st.consumers), std::mem::take(&mut st.observers))
        };
        self.observers.store(0, Ordering::Relaxed);
        for c in consumers.iter().chain(&observers) {
            c.close(reason);
        }
    }
}

/// Sends popped-but-undelivered messages back to the broker's requeuer.
pub(super) struct Requeue {
    pub hub: Arc<Hub>,
    pub epoch: u64,
    pub message: StoredMessage,
}

/// One message on its way to one or more consumers. Serialized once, shared by all of
/// them. If every holder drops it before any consumer wrote it, it goes back to the queue.
pub struct Delivery {
    pub message: StoredMessage,
    /// `{"key":"q:7","value":"…"}`.
    pub json: Bytes,
    delivered: AtomicBool,
    /// Shown to observers: writing it counts as observed, not delivered.
    observed: bool,
    hub: Arc<Hub>,
    /// Where it goes back if no consumer writes it, with the hub epoch it was popped in.
    requeue: Option<(mpsc::UnboundedSender<Requeue>, u64)>,
}

impl Delivery {
    /// A message to hand out; `requeue` is where it goes back if nobody writes it
    /// (`None` for broadcast copies that arrived over a shared store's bus).
    pub(super) fn new(
        message: StoredMessage,
        hub: Arc<Hub>,
        requeue: Option<(mpsc::UnboundedSender<Requeue>, u64)>,
    ) -> Self {
        let wire = StreamMessage { key: message.key.clone(), value: message.value.clone() };
        let json = Bytes::from(serde_json::to_vec(&wire).unwrap_or_default());
        Self { message, json, delivered: AtomicBool::new(false), observed: false, hub, requeue }
    }

    /// A message shown to observers: it never goes back anywhere.
    pub(super) fn observed(message: StoredMessage, hub: Arc<Hub>) -> Self {
        let mut delivery = Self::new(message, hub, None);
        delivery.observed = true;
        delivery
    }

    /// Call once the message was written to a consumer's connection.
    pub fn mark_delivered(&self) {
        self.delivered.store(true, Ordering::Release);
        let counter = if self.observed { &self.hub.counters.observed } else { &self.hub.counters.delivered };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let (false, Some((requeue, epoch))) = (self.delivered.load(Ordering::Acquire), self.requeue.take())
        {
            let message = StoredMessage {
                key: self.message.key.clone(),
                value: std::mem::take(&mut self.message.value),
            };
            let _ = requeue.send(Requeue { hub: self.hub.clone(), epoch, message });
        }
    }
}
