//! The per-queue dispatcher: a task that pops messages as consumers have room and hands
//! them out by policy — to every consumer (broadcast) or to one in turn (roundrobin).
//!
//! It runs while the queue has streaming consumers in this process. Messages are popped
//! only when a consumer's buffer has room, so none sit in limbo; a consumer whose buffer
//! stays full past the slow-consumer timeout is disconnected.

use std::sync::Arc;

use restmq_shared::{Policy, QueueStatus};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::hub::{CloseReason, Delivery, Hub};
use super::Broker;
use crate::store::QueueStore;

pub(super) type Sender = mpsc::Sender<Arc<Delivery>>;

/// What the dispatcher does next, decided under the hub's lock.
enum Step {
    /// No consumers are left: the task ends.
    Exit,
    /// Settings must be read from the store first.
    Load,
    /// Paused, or nothing to do until woken.
    Wait,
    /// Every buffer that matters is full: wait for this consumer to make room.
    Full { id: u64, tx: Sender },
    /// Pop up to `n` messages and send them to `targets` (in turn order for roundrobin).
    Send { policy: Policy, targets: Vec<(u64, Sender)>, n: usize, epoch: u64 },
}

pub(super) async fn run(broker: Broker, hub: Arc<Hub>) {
    let shutdown = broker.shutdown_token();
    loop {
        if shutdown.is_cancelled() {
            hub.lock().dispatching = false;
            return;
        }
        match plan(&hub, broker.config().batch) {
            Step::Exit => return,
            Step::Load => load_settings(&broker, &hub).await,
            Step::Wait => wait(&broker, &hub).await,
            Step::Full { id, tx } => wait_for_room(&broker, &hub, id, tx).await,
            Step::Send { policy: Policy::Broadcast, targets, n, epoch }
                if broker.store().shared().is_some() =>
            {
                broker.fan_out(&hub, &targets, n, epoch).await;
            }
            Step::Send { policy, targets, n, epoch } => {
                let messages = match broker.store().pop(&hub.queue, n).await {
                    Ok(messages) => messages,
                    Err(err) => {
                        tracing::warn!(queue = %hub.queue, %err, "dispatch pop failed");
                        backoff(&broker).await;
                        continue;
                    }
                };
                if messages.is_empty() {
                    wait(&broker, &hub).await;
                    continue;
                }
                let requeue = broker.requeue_sender();
                let deliveries = messages
                    .into_iter()
                    .map(|m| Arc::new(Delivery::new(m, hub.clone(), Some((requeue.clone(), epoch)))));
                match policy {
                    Policy::Broadcast => {
                        let deliveries: Vec<_> = deliveries.collect();
                        for d in &deliveries {
                            broker.record(&hub.history, d.message.key.n, &d.json);
                        }
                        broadcast(deliveries.into_iter(), &targets);
                    }
                    Policy::Roundrobin => {
                        if let Some(last) = roundrobin(deliveries, &targets) {
                            hub.lock().cursor = last;
                        }
                    }
                }
            }
        }
    }
}

fn plan(hub: &Hub, batch: usize) -> Step {
    let mut st = hub.lock();
    st.consumers.retain(|c| !c.tx.is_closed() && c.closed.get().is_none());
    if st.consumers.is_empty() {
        st.dispatching = false;
        return Step::Exit;
    }
    let (Some(policy), Some(status)) = (st.policy, st.status) else { return Step::Load };
    if status == QueueStatus::Paused {
        return Step::Wait;
    }
    let targets: Vec<(u64, Sender)> = match policy {
        Policy::Broadcast => st.consumers.iter().map(|c| (c.id, c.tx.clone())).collect(),
        Policy::Roundrobin => {
            // Turn order: the consumers after the last one served, then the rest.
            let split = st.consumers.iter().position(|c| c.id > st.cursor).unwrap_or(0);
            let (before, after) = st.consumers.split_at(split);
            after.iter().chain(before).map(|c| (c.id, c.tx.clone())).collect()
        }
    };
    let capacities = targets.iter().map(|(_, tx)| tx.capacity());
    let room = match policy {
        Policy::Broadcast => capacities.min().unwrap_or(0),
        Policy::Roundrobin => capacities.sum(),
    };
    if room == 0 {
        let (id, tx) =
            targets.iter().find(|(_, tx)| tx.capacity() == 0).cloned().unwrap_or_else(|| targets[0].clone());
        return Step::Full { id, tx };
    }
    Step::Send { policy, targets, n: room.min(batch), epoch: st.epoch }
}

/// Every target gets every message. A target that left just drops its copy; if all left,
/// the last drop puts the message back.
pub(super) fn broadcast(deliveries: impl Iterator<Item = Arc<Delivery>>, targets: &[(u64, Sender)]) {
    for delivery in deliveries {
        for (_, tx) in targets {
            let _ = tx.try_send(delivery.clone());
        }
    }
}

/// Each message goes to the next target in turn that has room. Returns the id of the last
/// consumer served. Messages no target could take are dropped here and so go back.
fn roundrobin(deliveries: impl Iterator<Item = Arc<Delivery>>, targets: &[(u64, Sender)]) -> Option<u64> {
    let mut turn = 0;
    let mut last = None;
    'messages: for mut delivery in deliveries {
        for _ in 0..targets.len() {
            let (id, tx) = &targets[turn % targets.len()];
            turn += 1;
            match tx.try_send(delivery) {
                Ok(()) => {
                    last = Some(*id);
                    continue 'messages;
                }
                Err(TrySendError::Full(d) | TrySendError::Closed(d)) => delivery = d,
            }
        }
        break;
    }
    last
}

async fn load_settings(broker: &Broker, hub: &Hub) {
    match broker.store().info(&hub.queue).await {
        Ok(info) => {
            let info = info.unwrap_or_default();
            let mut st = hub.lock();
            st.policy.get_or_insert(info.policy);
            st.status.get_or_insert(info.status);
        }
        Err(err) => {
            tracing::warn!(queue = %hub.queue, %err, "loading queue settings failed");
            backoff(broker).await;
        }
    }
}

pub(super) async fn wait(broker: &Broker, hub: &Hub) {
    tokio::select! {
        () = hub.notify.notified() => {}
        () = broker.shutdown_token().cancelled() => {}
    }
}

pub(super) async fn backoff(broker: &Broker) {
    tokio::select! {
        () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        () = broker.shutdown_token().cancelled() => {}
    }
}

/// Waits until `tx` has room; past the slow-consumer timeout, disconnects that consumer.
async fn wait_for_room(broker: &Broker, hub: &Hub, id: u64, tx: Sender) {
    let timeout = broker.config().slow_consumer_timeout;
    tokio::select! {
        res = tokio::time::timeout(timeout, tx.reserve()) => {
            if res.is_err() {
                tracing::info!(queue = %hub.queue, consumer = id, "disconnecting slow consumer");
                let mut st = hub.lock();
                if let Some(c) = st.consumers.iter().find(|c| c.id == id) {
                    c.close(CloseReason::SlowConsumer);
                }
                st.consumers.retain(|c| c.id != id);
            }
        }
        () = broker.shutdown_token().cancelled() => {}
    }
}
