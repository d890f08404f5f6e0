//! Working as one server with the other processes on a shared store (Redis): applies their
//! changes from the bus, delivers broadcast messages from each queue's broadcast log (which
//! any process with consumers fills from the queue, and every one reads from its own
//! cursor), and keeps this process's presence (load, consumers per queue, streams, counts)
//! published for `/stats/`, `/nodes`, `/consumers/` and `/history/`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use restmq_shared::QueueStats;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::dispatch::{backoff, broadcast, wait, Sender};
use super::hub::{Delivery, Hub};
use super::{Broker, BrokerResult};
use crate::store::{FanoutRead, NodePresence, StoreEvent};

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
                () = self.shutdown_token().cancelled() => return,
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
                Ok(StoreEvent::Observed(message)) => self.observed_elsewhere(message),
                // Events were missed: re-read every queue's settings, wake every dispatcher.
                Ok(StoreEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    for hub in self.all_hubs() {
                        forget_settings(&hub);
                        if hub.observer_count() > 0 {
                            self.catch_up_observers(&hub.queue).await;
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// One broadcast step on a shared store: hands this process's consumers what the
    /// queue's broadcast log holds past its cursor; when it holds nothing new, moves up to
    /// `n` messages from the queue into the log (read back on the next step, here and in
    /// every process with consumers). A message this process moved goes back to the queue
    /// if none of its own consumers writes it (its consumers left meanwhile).
    pub(super) async fn fan_out(&self, hub: &Arc<Hub>, targets: &[(u64, Sender)], n: usize, epoch: u64) {
        let cursor = hub.lock().fanout_cursor.clone();
        let Some(shared) = self.store().shared() else { return };
        let read = shared.read_fanout(&hub.queue, cursor.as_deref(), n);
        let FanoutRead { cursor: next, messages, others_reading } =
            match self.metrics().time_store("read_fanout", read).await {
                Ok(read) => read,
                Err(err) => {
                    tracing::warn!(queue = %hub.queue, %err, "reading the broadcast log failed");
                    return backoff(self).await;
                }
            };
        // Other processes reading the log hand its entries to their consumers: then what this
        // process moved is not put back when no consumer here writes it (a repeat for them).
        hub.consumed_elsewhere.store(others_reading, std::sync::atomic::Ordering::Relaxed);
        let own: Vec<bool> = {
            let mut st = hub.lock();
            if st.epoch != epoch {
                return; // purged meanwhile: start again from the log's end
            }
            st.fanout_cursor = Some(next);
            let own = messages.iter().map(|m| st.fanout_own.remove(&m.key.n)).collect();
            // Moved here but trimmed from the log before being read: nothing to put back.
            if let Some(last) = messages.last() {
                let n = last.key.n;
                st.fanout_own.retain(|own| *own > n);
            }
            own
        };
        if cursor.is_none() {
            return; // the cursor is set: what is moved from now on is read
        }
        if !messages.is_empty() {
            let requeue = self.requeue_sender();
            let deliveries: Vec<_> = messages
                .into_iter()
                .zip(own)
                .map(|(message, own)| {
                    let back = (own && !others_reading).then(|| (requeue.clone(), epoch));
                    let delivery = Arc::new(Delivery::new(message, hub.clone(), back));
                    self.record(&hub.history, delivery.message.key.n, &delivery.json);
                    delivery
                })
                .collect();
            broadcast(deliveries.into_iter(), targets);
            return;
        }
        match self.metrics().time_store("move_to_fanout", shared.move_to_fanout(&hub.queue, n)).await {
            Ok(moved) if moved.is_empty() => wait(self, hub).await,
            Ok(moved) => hub.lock().fanout_own.extend(moved),
            Err(err) => {
                tracing::warn!(queue = %hub.queue, %err, "moving to the broadcast log failed");
                backoff(self).await;
            }
        }
    }

    /// At shutdown: the messages this process moved into broadcast logs and has not read
    /// back yet go back to their queues (its consumers are gone; without this, no process
    /// that has no cursor before them would ever hand them out).
    pub(super) async fn take_back_fanout(&self) {
        for hub in self.all_hubs() {
            let (cursor, mut own, epoch) = {
                let st = hub.lock();
                (st.fanout_cursor.clone(), st.fanout_own.clone(), st.epoch)
            };
            let Some(mut cursor) = cursor else { continue };
            if hub.consumed_elsewhere.load(std::sync::atomic::Ordering::Relaxed) {
                continue; // the other processes' consumers read them from the log
            }
            while !own.is_empty() {
                let Some(shared) = self.store().shared() else { return };
                let Ok(FanoutRead { cursor: next, messages, .. }) =
                    shared.read_fanout(&hub.queue, Some(&cursor), 512).await
                else {
                    break;
                };
                if messages.is_empty() {
                    break;
                }
                cursor = next;
                for message in messages.into_iter().filter(|m| own.remove(&m.key.n)) {
                    let _ =
                        self.requeue_sender().send(super::hub::Requeue { hub: hub.clone(), epoch, message });
                }
            }
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
            let [added, taken, delivered] =
                [&c.added, &c.taken, &c.delivered].map(|c| c.load(std::sync::atomic::Ordering::Relaxed));
            if [added, taken, delivered] != [0; 3] {
                presence.counters.insert(hub.queue.to_string(), [added, taken, delivered, hub.serial]);
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
            let Some(shared) = self.store().shared() else { return };
            if let Err(err) = shared.report_presence(presence).await {
                tracing::debug!(%err, "could not publish presence");
            }
        }
    }

    /// Every live process, least loaded first; just this one on a local store.
    pub async fn nodes(&self) -> BrokerResult<Vec<NodePresence>> {
        let mut local = self.local_presence();
        local.addr.clone_from(&self.config().node_addr);
        let Some(shared) = self.store().shared() else {
            local.id.clone_from(&local.addr);
            return Ok(vec![local]);
        };
        let mut nodes = shared.nodes().await.map_err(crate::store::StoreError::read_only)?;
        // This process's own entry may be a second old: use what it knows now.
        if let Some(me) = nodes.iter_mut().find(|n| n.is_self) {
            (me.load, me.consumers) = (local.load, local.consumers);
        }
        nodes.sort_by_key(|n| n.load);
        Ok(nodes)
    }

    /// Every other live process sharing the store (none on a local store).
    pub(super) async fn other_nodes(&self) -> BrokerResult<Vec<NodePresence>> {
        let Some(shared) = self.store().shared() else { return Ok(Vec::new()) };
        let nodes = shared.nodes().await.map_err(crate::store::StoreError::read_only)?;
        Ok(nodes.into_iter().filter(|n| !n.is_self).collect())
    }

    /// Adds the consumers other processes have on these queues (shared stores only).
    pub(super) async fn add_remote_consumers(
        &self,
        queues: &mut BTreeMap<String, QueueStats>,
    ) -> BrokerResult<()> {
        for node in self.other_nodes().await? {
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
