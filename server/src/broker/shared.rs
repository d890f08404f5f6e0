//! Working as one server with the other processes on a shared store (Redis): applies their
//! changes from the bus, delivers broadcast messages that any process popped, and keeps
//! this process's presence (load, consumers per queue) published for `/stats/` and
//! `/nodes`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use restmq_shared::QueueStats;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::sync::mpsc::error::TrySendError;

use super::hub::{CloseReason, Delivery, Hub};
use super::{Broker, BrokerResult};
use crate::store::{NodePresence, QueueStore, StoreEvent, StoredMessage};

/// How often this process republishes its presence.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);

impl Broker {
    pub(super) fn start_shared(&self, events: Receiver<StoreEvent>) {
        let watcher = self.clone();
        self.tracker().spawn(async move { watcher.run_watcher(events).await });
        let reporter = self.clone();
        self.tracker().spawn(async move { reporter.run_presence().await });
    }

    /// Applies bus events until shutdown; then keeps taking this process's own broadcasts
    /// still on their way back (for at most a second), so that they go back to the queue
    /// instead of being lost with the bus.
    async fn run_watcher(&self, mut events: Receiver<StoreEvent>) {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = self.shutdown_token().cancelled() => {
                    self.drain_own_broadcasts(&mut events).await;
                    return;
                }
            };
            match event {
                Ok(StoreEvent::Added(queue)) => {
                    if let Some(hub) = self.existing_hub(&queue) {
                        hub.wake();
                    }
                }
                Ok(StoreEvent::Settings(queue)) => {
                    if let Some(hub) = self.existing_hub(&queue) {
                        forget_settings(&hub);
                    }
                }
                Ok(StoreEvent::Purged(queue)) => self.forget(&queue),
                Ok(StoreEvent::Broadcast { message, own }) => self.deliver_broadcast(message, own),
                Ok(StoreEvent::Observed(message)) => self.observed_elsewhere(message),
                // Events were missed: re-read every queue's settings, wake every dispatcher.
                Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    for hub in self.all_hubs() {
                        hub.lock().in_flight = 0;
                        forget_settings(&hub);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Until a second has passed, or the bus has been quiet for 100 ms with nothing of
    /// ours in flight (a pop may still be publishing when shutdown begins).
    async fn drain_own_broadcasts(&self, events: &mut Receiver<StoreEvent>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let quiet = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            match tokio::time::timeout_at(quiet, events.recv()).await {
                Ok(Ok(StoreEvent::Broadcast { message, own: true })) => self.deliver_broadcast(message, true),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    let waiting = self.all_hubs().iter().any(|h| h.lock().in_flight > 0);
                    if !waiting || tokio::time::Instant::now() >= deadline {
                        return;
                    }
                }
            }
        }
    }

    /// Hands a broadcast message, popped by any process, to every local consumer. A
    /// consumer whose buffer is full is cut off: the bus does not wait. The process that
    /// popped it puts it back if no consumer of its own writes it (so a message is not lost
    /// when its consumers leave, at the price of a possible repeat on other processes).
    fn deliver_broadcast(&self, message: StoredMessage, own: bool) {
        let Some(hub) = self.existing_hub(&message.key.queue) else { return };
        let (targets, epoch): (Vec<_>, u64) = {
            let mut st = hub.lock();
            if own {
                st.in_flight -= 1;
            }
            (st.consumers.iter().map(|c| (c.id, c.tx.clone())).collect(), st.epoch)
        };
        let requeue = own.then(|| (self.requeue_sender(), epoch));
        let delivery = Arc::new(Delivery::new(message, hub.clone(), requeue));
        self.record(&hub, &delivery);
        for (id, tx) in targets {
            if let Err(TrySendError::Full(_)) = tx.try_send(delivery.clone()) {
                tracing::info!(queue = %hub.queue, consumer = id, "disconnecting slow consumer");
                let mut st = hub.lock();
                if let Some(c) = st.consumers.iter().find(|c| c.id == id) {
                    c.close(CloseReason::SlowConsumer);
                }
                st.consumers.retain(|c| c.id != id);
            }
        }
        if own {
            hub.wake();
        }
    }

    /// This process's load and consumers per queue.
    pub(super) fn local_presence(&self) -> NodePresence {
        let mut presence = NodePresence { is_self: true, ..NodePresence::default() };
        for hub in self.all_hubs() {
            let n = hub.consumer_count() as u64;
            if n > 0 {
                presence.load += n;
                presence.consumers.insert(hub.queue.to_string(), n);
            }
            let c = &hub.counters;
            let counts =
                [&c.added, &c.taken, &c.delivered].map(|c| c.load(std::sync::atomic::Ordering::Relaxed));
            if counts != [0; 3] {
                presence.counters.insert(hub.queue.to_string(), counts);
            }
        }
        presence.connections =
            self.local_connections().into_iter().map(|(queue, who)| (queue.to_string(), who)).collect();
        presence
    }

    /// Publishes presence now and then every second, until shutdown.
    async fn run_presence(&self) {
        let mut tick = tokio::time::interval(PRESENCE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown_token().cancelled() => return,
            }
            let mut presence = self.local_presence();
            presence.addr.clone_from(&self.config().node_addr);
            if let Err(err) = self.store().report_presence(presence).await {
                tracing::debug!(%err, "could not publish presence");
            }
        }
    }

    /// Every live process, least loaded first; just this one on a local store.
    pub async fn nodes(&self) -> BrokerResult<Vec<NodePresence>> {
        let mut local = self.local_presence();
        local.addr.clone_from(&self.config().node_addr);
        if !self.store().is_shared() {
            local.id.clone_from(&local.addr);
            return Ok(vec![local]);
        }
        let mut nodes = self.store().nodes().await?;
        // This process's own entry may be a second old: use what it knows now.
        if let Some(me) = nodes.iter_mut().find(|n| n.is_self) {
            (me.load, me.consumers) = (local.load, local.consumers);
        }
        nodes.sort_by_key(|n| n.load);
        Ok(nodes)
    }

    /// Adds the consumers other processes have on these queues (shared stores only).
    pub(super) async fn add_remote_consumers(
        &self,
        queues: &mut BTreeMap<String, QueueStats>,
    ) -> BrokerResult<()> {
        if !self.store().is_shared() {
            return Ok(());
        }
        for node in self.store().nodes().await?.into_iter().filter(|n| !n.is_self) {
            for (queue, n) in node.consumers {
                if let Some(stats) = queues.get_mut(&queue) {
                    stats.consumers += n;
                }
            }
        }
        Ok(())
    }
}

fn forget_settings(hub: &Hub) {
    let mut st = hub.lock();
    (st.policy, st.status) = (None, None);
    drop(st);
    hub.wake();
}
