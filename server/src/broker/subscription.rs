//! A streaming connection's end of a queue ([`Subscription`]): joined with
//! [`Broker::subscribe_from`] as a consumer or an observer, it gives what a resuming client
//! missed (the replay), then what the dispatcher (or, for observers, the hub) sends it, in
//! key order, until the server ends it or it leaves.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use restmq_shared::{MessageKey, QueueName};
use tokio::sync::mpsc;

use super::hub::{CloseReason, Delivery, Ending, Hub};
use super::{Broker, BrokerResult, Replay};

/// How a stream joins a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Takes messages (by the queue's policy).
    Consume,
    /// Sees every add and takes nothing (see [`super::observe`]).
    Observe,
}

/// What a stream gets next.
pub enum Streamed {
    /// Missed before it joined, from the queue's history (or a gap notice).
    Replayed(Replay),
    Live(Arc<Delivery>),
}

impl Broker {
    /// Joins `queue` in `mode`; with `since` (the last key the client saw), what it missed
    /// comes first: [`Subscription::next`] gives that replay, then the live messages, skipping
    /// live copies of replayed ones (keys are never reused, so a key names one message).
    pub async fn subscribe_from(
        &self,
        queue: &QueueName,
        since: Option<&MessageKey>,
        mode: Mode,
    ) -> BrokerResult<Subscription> {
        let mut sub = match mode {
            Mode::Consume => self.subscribe(queue),
            Mode::Observe => self.observe(queue).await?,
        };
        if let Some(since) = since {
            let replay = self.replay(queue, since);
            let keys = replay.iter().filter_map(|r| match r {
                Replay::Message { key, .. } => Some(key.n),
                Replay::Gap { .. } => None,
            });
            sub.replayed.extend(keys);
            sub.replay = replay.into();
        }
        Ok(sub)
    }
}

/// A streaming consumer's end: messages arrive here in key order until the queue is purged,
/// the consumer is too slow, or the server stops. Dropping it leaves the queue.
pub struct Subscription {
    pub(super) id: u64,
    pub(super) hub: Arc<Hub>,
    pub(super) rx: mpsc::Receiver<Arc<Delivery>>,
    pub(super) closed: Arc<Ending>,
    /// Messages replayed from history that have not come by live yet: skip them live. Only
    /// these: a message below the replayed ones that was never sent (delayed, back from a
    /// lease) is delivered. At most one replay's worth (the history is bounded).
    pub(super) replayed: std::collections::BTreeSet<u64>,
    /// An observer (see [`super::observe`]), not a consumer.
    pub(super) observer: bool,
    /// Its entry in the consumers list, once its transport described it.
    pub(super) listed: Option<super::roster::Enlisted>,
    /// What a resuming client missed, still to give (see [`Broker::subscribe_from`]).
    replay: VecDeque<Replay>,
}

impl Subscription {
    pub(super) fn new(
        id: u64,
        hub: Arc<Hub>,
        rx: mpsc::Receiver<Arc<Delivery>>,
        closed: Arc<Ending>,
        observer: bool,
    ) -> Self {
        let (replayed, replay) = (Default::default(), VecDeque::new());
        Self { id, hub, rx, closed, replayed, observer, listed: None, replay }
    }

    /// The replay first, then the live messages ([`Subscription::recv`]); `None` once the
    /// server ended this stream.
    pub async fn next(&mut self) -> Option<Streamed> {
        match self.replay.pop_front() {
            Some(missed) => Some(Streamed::Replayed(missed)),
            None => self.recv().await.map(Streamed::Live),
        }
    }

    pub fn queue(&self) -> &QueueName {
        &self.hub.queue
    }

    /// The next message, or `None` once the server ended this consumer (see
    /// [`Subscription::close_reason`]).
    pub async fn recv(&mut self) -> Option<Arc<Delivery>> {
        if self.closed.get().is_some() {
            return None;
        }
        let _waiting = Waiting::start(&self.closed, &self.hub);
        loop {
            let delivery = if self.observer {
                next_observed(&mut self.rx, &self.hub, self.id).await?
            } else {
                self.rx.recv().await?
            };
            // Closed while this one was buffered: leave it for the queue.
            if self.closed.get().is_some() {
                return None;
            }
            if !self.replayed.remove(&delivery.message.key.n) {
                if let Some(listed) = &self.listed {
                    listed.handed(1);
                }
                return Some(delivery);
            }
            delivery.mark_delivered(); // this consumer already got it from the history
        }
    }

    /// Puts this connection in the queue's consumers list (`/consumers/<q>`) while it lasts.
    pub fn list_as(&mut self, info: super::roster::StreamInfo) {
        self.listed = Some(super::roster::Enlisted::new(self.hub.roster.clone(), info));
    }

    /// Why the server ended the consumer, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed.get()
    }

    /// Runs `hook` the moment the server cuts this consumer as slow, from the task that
    /// decides it: a transport blocked writing to a client that does not read passes what
    /// aborts its connection, so the socket closes and what it held goes back to the queue.
    pub fn when_slow(&self, hook: impl FnOnce() + Send + 'static) {
        self.closed.when_slow(Box::new(hook));
    }
}

/// Marks a consumer as waiting in `recv`, and busy again from when it leaves (returning or
/// cancelled).
struct Waiting<'a>(&'a Ending, &'a Hub);

impl<'a> Waiting<'a> {
    fn start(ending: &'a Ending, hub: &'a Hub) -> Self {
        ending.busy_since.store(0, Ordering::Relaxed);
        Self(ending, hub)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.busy_since.store(self.1.clock_ms(), Ordering::Relaxed);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.observer {
            let mut st = self.hub.lock();
            st.observers.retain(|c| c.id != self.id);
            st.observer_backlog.remove(&self.id);
            self.hub.observers.store(st.observers.len(), Ordering::Relaxed);
            if st.observers.is_empty() {
                // The next observer starts from the queue as it is then.
                st.observe_next = None;
                st.observe_pending.clear();
            }
        } else {
            self.hub.lock().consumers.retain(|c| c.id != self.id);
        }
        // Undelivered messages still buffered go back to the queue as `rx` drops them.
        self.rx.close();
        self.hub.mark_maybe_gone();
        self.hub.wake();
    }
}

/// Observer `id`'s next message: its buffer first, then its backlog (what did not fit the
/// buffer, see [`super::observe`]), then wait.
async fn next_observed(rx: &mut mpsc::Receiver<Arc<Delivery>>, hub: &Hub, id: u64) -> Option<Arc<Delivery>> {
    match rx.try_recv() {
        Ok(delivery) => Some(delivery),
        Err(mpsc::error::TryRecvError::Disconnected) => None,
        Err(mpsc::error::TryRecvError::Empty) => {
            let backlogged = hub.lock().observer_backlog.get_mut(&id).and_then(|b| b.pop_front());
            match backlogged {
                Some(delivery) => Some(delivery),
                None => rx.recv().await,
            }
        }
    }
}
