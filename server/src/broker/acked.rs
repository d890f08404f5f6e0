//! `ack=1` streaming consumers: each reserves its own messages under a lease, a window at a
//! time, and acknowledges them by key. Whatever it still holds when it leaves goes back to
//! the head of the queue at once.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use restmq_shared::{MessageKey, QueueName, QueueStatus};

use super::hub::Hub;
use super::{Broker, BrokerResult};
use crate::store::LeaseStore;
use crate::store::LeasedMessage;

/// Messages one `ack=1` consumer holds unacknowledged at most.
pub const ACK_WINDOW: usize = 32;

/// How long a waiting consumer sleeps before looking again, should a wake-up be missed.
const RECHECK: Duration = Duration::from_millis(500);

/// One `ack=1` consumer's end.
pub struct AckedSubscription {
    broker: Broker,
    hub: Arc<Hub>,
    /// Message numbers held, with when their lease ends.
    held: BTreeMap<u64, Instant>,
    /// Its entry in the consumers list, once its transport described it.
    listed: Option<super::roster::Enlisted>,
}

impl Broker {
    /// Joins `queue` as an `ack=1` consumer.
    pub fn subscribe_acked(&self, queue: &QueueName) -> AckedSubscription {
        let hub = self.hub(queue);
        hub.ack_consumers.fetch_add(1, Ordering::Relaxed);
        AckedSubscription { broker: self.clone(), hub, held: BTreeMap::new(), listed: None }
    }
}

impl AckedSubscription {
    pub fn queue(&self) -> &QueueName {
        &self.hub.queue
    }

    /// Puts this connection in the queue's consumers list while it lasts.
    pub fn list_as(&mut self, info: super::roster::StreamInfo) {
        self.listed = Some(super::roster::Enlisted::new(self.hub.roster.clone(), info));
    }

    /// A wake-up for when messages may be there to reserve. Take it *before*
    /// [`AckedSubscription::try_reserve`], so that nothing added in between is missed; it
    /// also fires after a short recheck delay. Cancel-safe.
    pub fn waiter(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut notified = Box::pin(self.hub.ack_waiters.clone().notified_owned());
        notified.as_mut().enable();
        async move {
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Leases as many messages as the window has room for, now; empty when there are none,
    /// the window is full, or the queue is paused. Let it finish: what it leases is
    /// recorded as held only at its end (do not race it in a `select!`).
    pub async fn try_reserve(&mut self) -> BrokerResult<Vec<LeasedMessage>> {
        let now = Instant::now();
        self.held.retain(|_, until| *until > now);
        let room = ACK_WINDOW.saturating_sub(self.held.len());
        if room == 0 || self.paused().await? {
            return Ok(Vec::new());
        }
        let lease = self.broker.config().lease;
        let batch = self.broker.reserve_many(&self.hub.queue, room, lease).await?;
        let until = Instant::now() + lease;
        self.held.extend(batch.iter().map(|m| (m.key.n, until)));
        if let Some(listed) = &self.listed {
            listed.handed(batch.len());
        }
        Ok(batch)
    }

    async fn paused(&self) -> BrokerResult<bool> {
        let cached = self.hub.lock().status;
        let status = match cached {
            Some(status) => status,
            None => self.broker.info(&self.hub.queue).await?.map(|i| i.status).unwrap_or_default(),
        };
        Ok(status == QueueStatus::Paused)
    }

    /// Acknowledges a message this consumer holds.
    pub async fn ack(&mut self, key: &MessageKey) -> BrokerResult<bool> {
        self.held.remove(&key.n);
        let acked = self.broker.ack(&self.hub.queue, key).await?;
        if acked {
            self.hub.counters.delivered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(acked)
    }

    /// Gives a message back to the head of the queue.
    pub async fn nack(&mut self, key: &MessageKey) -> BrokerResult<bool> {
        self.held.remove(&key.n);
        self.broker.nack(&self.hub.queue, key).await
    }
}

impl Drop for AckedSubscription {
    /// Gives back everything still held, in one step, so it is the next out in key order.
    fn drop(&mut self) {
        self.hub.ack_consumers.fetch_sub(1, Ordering::Relaxed);
        self.hub.mark_maybe_gone();
        let held: Vec<u64> = std::mem::take(&mut self.held).into_keys().collect();
        if held.is_empty() {
            return;
        }
        let (broker, hub) = (self.broker.clone(), self.hub.clone());
        self.broker.tracker().spawn(async move {
            match broker.store().release(&hub.queue, &held).await {
                Ok(back) => {
                    hub.counters.redelivered.fetch_add(back as u64, Ordering::Relaxed);
                    hub.wake();
                }
                Err(err) => tracing::warn!(queue = %hub.queue, %err, "could not give messages back"),
            }
        });
    }
}
