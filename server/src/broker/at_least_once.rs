//! At-least-once delivery in the broker: reserve, ack and nack (HTTP, JSON protocol and
//! `ack=1` streams), the lease-expiry task, and redriving a dead-letter queue.

use std::sync::atomic::Ordering;
use std::time::Duration;

use restmq_shared::{MessageKey, QueueName};

use super::{Broker, BrokerError, BrokerResult};
use crate::store::{LeaseStore, LeasedMessage, QueueStore};

/// How often expired leases are looked for.
const EXPIRY_EVERY: Duration = Duration::from_millis(200);

impl Broker {
    /// Hard get under a lease: unless acknowledged within `lease`, the message comes back.
    pub async fn reserve(&self, queue: &QueueName, lease: Duration) -> BrokerResult<Option<LeasedMessage>> {
        Ok(self.reserve_many(queue, 1, lease).await?.pop())
    }

    /// Up to `max` messages under one lease each.
    pub async fn reserve_many(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> BrokerResult<Vec<LeasedMessage>> {
        Ok(self.store().reserve(queue, max, lease).await?)
    }

    /// Acknowledges a reserved message of `queue`; `false` when it was not leased.
    pub async fn ack(&self, queue: &QueueName, key: &MessageKey) -> BrokerResult<bool> {
        own_key(queue, key)?;
        let acked = self.store().ack(key).await?;
        if acked {
            self.hub(queue).counters.acked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(acked)
    }

    /// Gives a reserved message back to the head of `queue`.
    pub async fn nack(&self, queue: &QueueName, key: &MessageKey) -> BrokerResult<bool> {
        own_key(queue, key)?;
        let back = self.store().nack(key).await?;
        if back {
            let hub = self.hub(queue);
            hub.counters.redelivered.fetch_add(1, Ordering::Relaxed);
            hub.wake();
        }
        Ok(back)
    }

    /// Moves every message of a dead-letter queue `<q>.dead` back to `<q>`.
    pub async fn redrive(&self, dead: &QueueName) -> BrokerResult<(QueueName, u64)> {
        let live = dead
            .as_str()
            .strip_suffix(".dead")
            .and_then(|q| QueueName::try_from(q).ok())
            .ok_or_else(|| BrokerError::NotDeadLetter(dead.clone()))?;
        let moved = self.store().redrive(dead, &live, self.config().length_limit).await?;
        let hub = self.hub(&live);
        hub.mark_maybe_gone(); // nothing may have moved to a queue that does not exist
        hub.wake();
        if moved > 0 && self.store().shared().is_none() {
            self.catch_up_observers(&live).await;
        }
        Ok((live, moved))
    }

    /// Ends expired leases every 200 ms until shutdown, waking consumers of the queues
    /// that got messages back.
    pub(super) async fn run_lease_expiry(&self) {
        let mut tick = tokio::time::interval(EXPIRY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown_token().cancelled() => return,
            }
            match self.store().expire_leases(self.config().max_deliveries).await {
                Ok(expired) => {
                    for e in expired {
                        let hub = self.hub(&e.queue);
                        hub.counters.redelivered.fetch_add(e.returned, Ordering::Relaxed);
                        hub.counters.dead.fetch_add(e.dead, Ordering::Relaxed);
                        hub.wake();
                        if e.dead > 0 && self.store().shared().is_none() {
                            self.catch_up_observers(&crate::store::dead_letter_queue(&e.queue)).await;
                        }
                    }
                }
                Err(err) => tracing::debug!(%err, "lease expiry pass failed"),
            }
            match self.store().promote_delayed().await {
                Ok(queues) => {
                    for queue in queues {
                        self.hub(&queue).wake();
                    }
                }
                Err(err) => tracing::debug!(%err, "delayed-message pass failed"),
            }
            if let Err(err) = self.store().sweep_expired().await {
                tracing::debug!(%err, "expired-message sweep failed");
            }
        }
    }
}

fn own_key(queue: &QueueName, key: &MessageKey) -> BrokerResult<()> {
    if &key.queue == queue {
        Ok(())
    } else {
        Err(BrokerError::ForeignKey { queue: queue.clone(), key: key.clone() })
    }
}
