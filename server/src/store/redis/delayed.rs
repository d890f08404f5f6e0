//! Time-driven work on Redis: delayed messages wait in the sorted set `<q>:delayed` (scored
//! by when they become visible) and join the queue's list when due; messages added with a
//! ttl are indexed in `<q>:ttl`, so their list entries are swept once the value expires.

use std::time::Duration;

use redis::AsyncCommands;
use restmq_shared::{MessageKey, QueueName};

use super::conn::error;
use super::keys::{client_key, BUS, DELAYED_QUEUES, TTL_QUEUES};
use super::{once, scripts, RedisStore};
use crate::store::{Delayed, StoreResult};

impl RedisStore {
    pub(super) async fn add_delayed_message(
        &self,
        queue: &QueueName,
        message: Delayed,
    ) -> StoreResult<MessageKey> {
        let Delayed { value, ttl, delay, limit } = message;
        self.register_in_cluster(queue).await?;
        self.note_expiring(queue, ttl).await?;
        self.register(DELAYED_QUEUES, queue).await?;
        let keys = self.keys(queue);
        let visible_at = crate::store::clock::after(delay);
        let mut inv = scripts::ADD_DELAYED.key(keys.counter());
        inv.key(keys.delayed()).key(keys.status()).key(keys.expiring());
        let claim = once::current();
        once::with_record(&mut inv, &keys, claim.as_ref());
        self.with_queueset(&mut inv)
            .arg(queue.as_str())
            .arg(value)
            .arg(super::ttl_secs(ttl))
            .arg(keys.message_prefix())
            .arg(visible_at);
        once::claim_args(&mut inv, queue, claim.as_ref());
        inv.arg(super::expires_at(super::ttl_secs(ttl)))
            .arg(limit.map_or(0, |l| l.max))
            .arg(keys.list())
            .arg(BUS);
        let n: i64 = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        let n = once::first_added(n, limit.map_or(0, |l| l.max))?;
        Ok(client_key(queue, n))
    }

    pub(super) async fn promote_due(&self) -> StoreResult<Vec<QueueName>> {
        let names: Vec<String> = self.conn().smembers(DELAYED_QUEUES).await.map_err(error)?;
        let now = crate::store::clock::now_ms();
        let mut changed = Vec::new();
        for queue in names.into_iter().filter_map(|n| QueueName::try_from(n).ok()) {
            let keys = self.keys(&queue);
            let moved: u64 = scripts::PROMOTE
                .key(keys.delayed())
                .key(keys.list())
                .arg(now)
                .arg(queue.as_str())
                .arg(BUS)
                .invoke_async(&mut self.conn())
                .await
                .map_err(error)?;
            if moved > 0 {
                changed.push(queue);
            }
        }
        Ok(changed)
    }

    /// Puts `queue` in the set the sweep visits, before an add with `ttl` (whose script indexes
    /// its messages by expiry in the same step). A visit that finds nothing due costs a
    /// lookup, so this may run even when the add then fails.
    pub(super) async fn note_expiring(&self, queue: &QueueName, ttl: Option<Duration>) -> StoreResult<()> {
        if ttl.is_some() {
            self.register(TTL_QUEUES, queue).await?;
        }
        Ok(())
    }

    /// Removes the list entries of messages whose ttl ran out, in every queue that had some.
    pub(super) async fn sweep_due(&self) -> StoreResult<u64> {
        let names: Vec<String> = self.conn().smembers(TTL_QUEUES).await.map_err(error)?;
        let now = crate::store::clock::now_ms();
        let mut swept = 0;
        for queue in names.into_iter().filter_map(|n| QueueName::try_from(n).ok()) {
            let keys = self.keys(&queue);
            let n: u64 = scripts::SWEEP
                .key(keys.expiring())
                .key(keys.list())
                .arg(now)
                .invoke_async(&mut self.conn())
                .await
                .map_err(error)?;
            swept += n;
        }
        Ok(swept)
    }
}
