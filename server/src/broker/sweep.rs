//! The broker's once-a-second sweep: replay history that has aged out is dropped (a queue
//! that goes quiet frees it too), consumers stuck writing to a client that does not read are
//! cut as slow, the in-process state of queues that are gone is forgotten, and, on a shared
//! store, queues with consumers here look once for messages that other programs pushed in
//! RestMQ's layout (as RestMQ's once-a-second dispatcher did; queues without consumers are
//! never polled).
//!
//! A queue is idle when the store holds no message of it (`info` is `None`, never created,
//! e.g. a consumer that came and left; or its length is 0, e.g. after a purge, which keeps a
//! queue's counter and settings in the store, as RestMQ did). Its hub — consumers, cached
//! settings, counters, history — is then dropped, and with it every `/metrics` series of the
//! queue, as soon as nothing in the process holds it (no consumer, dispatcher or message on
//! its way); the store still has its settings, so a paused or roundrobin queue stays so, and
//! its counters start again at 0 if it comes back. Only hubs marked as possibly idle (purge,
//! a consumer leaving, a redrive) are looked up, so a sweep asks the store nothing while
//! queues merely live.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use restmq_shared::QueueName;

use super::Broker;
use crate::store::QueueStore;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Broker {
    /// Sweeps every second until shutdown.
    pub(super) async fn run_sweeper(&self) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown_token().cancelled() => return,
            }
            self.sweep_history();
            self.cut_stalled_consumers();
            self.look_for_foreign_pushes();
            self.sweep_observers().await;
            self.forget_gone_queues().await;
        }
    }

    /// Cuts the consumers that hold a message and have not come back for more within the
    /// slow-consumer timeout (see [`super::hub::Hub::cut_stalled`]).
    fn cut_stalled_consumers(&self) {
        let timeout = self.config().slow_consumer_timeout;
        for hub in self.all_hubs() {
            let cut = hub.cut_stalled(timeout);
            if cut > 0 {
                tracing::info!(queue = %hub.queue, cut, "disconnecting stalled consumers");
                hub.wake();
            }
        }
    }

    /// On a shared store, wakes the dispatcher of every queue with consumers in this process,
    /// so a message another program pushed (not through restmq, so without a bus notice) is
    /// delivered within a second: one pop attempt a second per such queue.
    fn look_for_foreign_pushes(&self) {
        if self.store().shared().is_none() {
            return;
        }
        for hub in self.all_hubs() {
            if hub.consumer_count() > 0 {
                hub.wake();
            }
        }
    }

    fn holds_history(&self, queue: &QueueName) -> bool {
        self.existing_hub(queue).is_some_and(|hub| !hub.history().is_empty())
    }

    /// Queues with in-process state (a hub) now.
    pub fn tracked_queues(&self) -> usize {
        self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Drops the hubs of queues the store no longer knows, when nothing holds them; the
    /// others marked are looked at again next time if still held, else left alone.
    pub(super) async fn forget_gone_queues(&self) {
        let marked: Vec<QueueName> = {
            let hubs = self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner());
            hubs.iter()
                .filter(|(_, hub)| hub.maybe_gone.swap(false, Ordering::Relaxed))
                .map(|(q, _)| q.clone())
                .collect()
        };
        for queue in marked {
            match self.store().info(&queue).await {
                // It holds messages, or history to replay: its state stays.
                Ok(Some(info)) if info.len > 0 || self.holds_history(&queue) => {}
                Ok(_) => self.drop_hub_if_unheld(&queue),
                Err(err) => {
                    tracing::debug!(%queue, %err, "sweep could not look the queue up");
                    self.existing_hub(&queue).inspect(|hub| hub.mark_maybe_gone());
                }
            }
        }
    }

    /// Removes `queue`'s hub if only the map holds it (nothing can take a new hold while
    /// the map is locked); else marks it to be looked at again.
    fn drop_hub_if_unheld(&self, queue: &QueueName) {
        let removed = {
            let mut hubs = self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner());
            match hubs.get(queue) {
                Some(hub) if Arc::strong_count(hub) == 1 => hubs.remove(queue),
                Some(hub) => {
                    hub.mark_maybe_gone();
                    None
                }
                None => None,
            }
        };
        if let Some(hub) = removed {
            hub.history().clear(&self.inner.history_bytes);
        }
    }
}
