//! The embedded store's at-least-once delivery (`LeaseStore`): leases, acks, nacks, expiry and
//! redrive, each run in a batch through SQLite (a reserve drains the queue's log first).

use std::time::Duration;

use restmq_shared::{MessageKey, QueueName};

use super::batcher::Kind;
use super::EmbeddedStore;
use crate::store::clock::{millis, now_ms};
use crate::store::{ExpiredLeases, LeaseStore, Leases, LengthLimit, StoreResult};

impl LeaseStore for EmbeddedStore {
    /// A lease is written with the message (state and deadline); after a restart, a message
    /// still leased waits again.
    async fn reserve(&self, queue: &QueueName, max: usize, lease: Duration) -> StoreResult<Leases> {
        self.predrain(queue).await?;
        self.take(queue, move |db, q| {
            let now = now_ms();
            db.reserve(q, max, now, now.saturating_add(millis(lease)))
        })
        .await
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        let key = key.clone();
        self.call(Kind::Write, move |db| db.ack(&key).map(Ok)).await
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        let key = key.clone();
        self.call(Kind::Write, move |db| db.nack(&key).map(Ok)).await
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        let (q, ns) = (queue.clone(), ns.to_vec());
        self.call(Kind::Write, move |db| {
            let mut count = 0;
            for n in ns {
                count += usize::from(db.nack(&MessageKey::new(q.clone(), n))?);
            }
            Ok(Ok(count))
        })
        .await
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        self.call(Kind::Write, move |db| db.expire_leases(now_ms(), max_deliveries).map(Ok)).await
    }

    async fn redrive(&self, from: &QueueName, to: &QueueName, cap: Option<LengthLimit>) -> StoreResult<u64> {
        self.predrain(from).await?;
        self.predrain(to).await?;
        let (from, to) = (from.clone(), to.clone());
        self.call(Kind::Write, move |db| db.redrive(&from, &to, cap, now_ms()).map(Ok)).await
    }
}
