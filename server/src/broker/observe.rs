//! Observers: streaming connections that see every message added to a queue, in key order,
//! and take none. They are not consumers: no pop, no policy turn, no lease, no delivery
//! count, and a paused queue is still observed (observers see adds, not deliveries).
//!
//! On the local stores the broker shows each add to the queue's observers once the store
//! has it. On a shared store the add itself announces it to every process (the store does
//! so only for queues marked observed, a mark the processes with observers keep fresh), so
//! an observer sees adds made through any process.
//!
//! Adds finish in any order, so the hub holds a message that arrives before a lower key
//! until the lower one comes or [`GAP_WAIT`] passes (an add that failed after taking its
//! number leaves a hole for good).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use restmq_shared::{MessageKey, QueueName};
use tokio::sync::mpsc;

use super::hub::{CloseReason, Consumer, Delivery, Ending, Hub, HubState};
use super::subscription::Subscription;
use super::{Broker, BrokerResult};
use crate::store::{Page, QueueStore, StoredMessage};

/// How long a message waits for a lower key still being added before it is shown anyway.
const GAP_WAIT: Duration = Duration::from_millis(50);

/// Messages an observer may have waiting beyond its buffer before it is cut as slow.
const MAX_BACKLOG: usize = 16_384;

/// How long a shared store keeps a queue marked observed; the mark is renewed well before.
pub(super) const OBSERVED_MARK: Duration = Duration::from_secs(30);

impl Broker {
    /// Joins `queue` as an observer: from now on every message added to it arrives here, and
    /// nothing is taken from it.
    pub async fn observe(&self, queue: &QueueName) -> BrokerResult<Subscription> {
        if let Some(shared) = self.store().shared() {
            shared.mark_observed(queue, OBSERVED_MARK).await?;
        }
        let last = self.store().info(queue).await?.map_or(0, |i| i.last);
        let hub = self.hub(queue);
        let (tx, rx) = mpsc::channel(self.config().consumer_buffer.max(1));
        let closed = Arc::new(Ending::new(hub.clock_ms()));
        let id = {
            let mut st = hub.lock();
            st.next_id += 1;
            let id = st.next_id;
            st.observers.push(Consumer { id, tx, closed: closed.clone() });
            if st.observe_next.is_none() {
                st.observe_next = Some(last + 1);
            }
            hub.observers.store(st.observers.len(), Ordering::Relaxed);
            id
        };
        Ok(Subscription::new(id, hub, rx, closed, true))
    }

    /// Before an add on a local store: a copy of the values for the queue's observers, if
    /// it has any in this process.
    pub(super) fn copy_for_observers(&self, queue: &QueueName, values: &[String]) -> Option<Vec<String>> {
        let observed = self.store().shared().is_none()
            && self.existing_hub(queue).is_some_and(|h| h.observer_count() > 0);
        observed.then(|| values.to_vec())
    }

    /// After an add: shows the added messages to the queue's observers.
    pub(super) fn show_observers(&self, queue: &QueueName, keys: &[MessageKey], values: Option<Vec<String>>) {
        let (Some(values), Some(hub)) = (values, self.existing_hub(queue)) else { return };
        let messages = keys.iter().zip(values).map(|(key, value)| StoredMessage { key: key.clone(), value });
        hub.observed(messages.collect());
    }

    /// Shows `queue`'s observers what waits in it past what they saw, read back from the
    /// store: after messages came in other than by an add on a local store (moved to a
    /// dead-letter queue, redriven; a shared store announces those itself), and on a shared
    /// store after the bus was down (its announcements were lost).
    pub(super) async fn catch_up_observers(&self, queue: &QueueName) {
        let Some(hub) = self.existing_hub(queue) else { return };
        let Some(next) = hub.lock().observe_next else { return };
        let page = Page { after: next.saturating_sub(1), limit: 1000, leased: false };
        if let Ok(page) = self.store().browse(queue, page).await {
            hub.observed(page.into_iter().map(|m| StoredMessage { key: m.key, value: m.value }).collect());
        }
    }

    /// Messages a shared store announced as added: shown to this process's observers.
    pub(super) fn observed_elsewhere(&self, message: StoredMessage) {
        if let Some(hub) = self.existing_hub(&message.key.queue) {
            hub.observed(vec![message]);
        }
    }

    /// Renews the observed mark of every queue with observers here (shared stores), and
    /// shows messages that waited long enough for a lower key.
    pub(super) async fn sweep_observers(&self) {
        for hub in self.all_hubs().into_iter().filter(|h| h.observer_count() > 0) {
            hub.observed(Vec::new());
            if let Some(shared) = self.store().shared() {
                if let Err(err) = shared.mark_observed(&hub.queue, OBSERVED_MARK).await {
                    tracing::warn!(queue = %hub.queue, %err, "could not renew the observed mark");
                }
            }
        }
    }
}

impl Hub {
    /// Observers connected now.
    pub fn observer_count(&self) -> usize {
        self.observers.load(Ordering::Relaxed)
    }

    /// Shows `messages` to the observers, in key order (see the module notes).
    pub(super) fn observed(self: &Arc<Self>, messages: Vec<StoredMessage>) {
        if self.observer_count() == 0 {
            return;
        }
        let mut st = self.lock();
        let Some(mut next) = st.observe_next else { return };
        for m in messages.into_iter().filter(|m| m.key.n >= next) {
            st.observe_pending.insert(m.key.n, m);
        }
        let mut ready = Vec::new();
        loop {
            while let Some(m) = st.observe_pending.remove(&next) {
                ready.push(m);
                next += 1;
            }
            let Some((&first, _)) = st.observe_pending.first_key_value() else {
                st.observe_waiting = None;
                break;
            };
            let since = *st.observe_waiting.get_or_insert_with(Instant::now);
            if since.elapsed() < GAP_WAIT {
                break;
            }
            next = first; // the keys below it are not coming
            st.observe_waiting = None;
        }
        st.observe_next = Some(next);
        self.send_to_observers(&mut st, ready);
    }

    /// Hands each message to every observer: into its buffer, or when that is full (or
    /// something already waits behind it), onto its backlog; an observer whose backlog passes
    /// [`MAX_BACKLOG`] is cut as slow (one that stops reading is cut by the stall check).
    fn send_to_observers(self: &Arc<Self>, st: &mut HubState, ready: Vec<StoredMessage>) {
        let HubState { observers, observer_backlog, .. } = st;
        for message in ready {
            let delivery = Arc::new(Delivery::observed(message, self.clone()));
            observers.retain(|o| {
                let backlog = observer_backlog.entry(o.id).or_default();
                if backlog.is_empty() {
                    match o.tx.try_send(delivery.clone()) {
                        Ok(()) => return true,
                        Err(mpsc::error::TrySendError::Closed(_)) => return false,
                        Err(mpsc::error::TrySendError::Full(_)) => {}
                    }
                }
                backlog.push_back(delivery.clone());
                if backlog.len() > MAX_BACKLOG {
                    o.close(CloseReason::SlowConsumer);
                    observer_backlog.remove(&o.id);
                    return false;
                }
                true
            });
        }
        self.observers.store(observers.len(), Ordering::Relaxed);
    }
}
