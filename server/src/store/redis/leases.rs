//! Leases on Redis: leased message keys wait in the sorted set `<q>:|leased` (scored by the
//! lease deadline), their delivery counts in `<q>:<n>|deliveries`; expired leases go back to
//! the list or, delivered too often, to `<q>.dead`.

use std::time::Duration;

use redis::AsyncCommands;
use restmq_shared::{MessageKey, QueueName};

use super::conn::error;
use super::keys::{client_key, number, BUS, LEASED_QUEUES, QUEUESET};
use super::{scripts, RedisStore};
use crate::store::{dead_letter_queue, ExpiredLeases, LeasedMessage, LengthLimit, StoreError, StoreResult};

impl RedisStore {
    pub(super) async fn reserve_leased(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        let keys = self.keys(queue);
        let deadline = crate::store::clock::after(lease);
        self.register(LEASED_QUEUES, queue).await?;
        let out: Vec<String> = scripts::RESERVE
            .key(keys.list())
            .key(keys.leased())
            .arg(max)
            .arg(deadline)
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(out
            .chunks_exact(3)
            .filter_map(|m| {
                Some(LeasedMessage {
                    key: client_key(queue, number(&m[0])?),
                    value: m[1].clone(),
                    deliveries: m[2].parse().ok()?,
                })
            })
            .collect())
    }

    pub(super) async fn ack_leased(&self, key: &MessageKey) -> StoreResult<bool> {
        let keys = self.keys(&key.queue);
        let acked: i64 = scripts::ACK
            .key(keys.leased())
            .arg(keys.message(key.n))
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(acked == 1)
    }

    pub(super) async fn release_leased(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        let keys = self.keys(queue);
        let mut newest_first = ns.to_vec();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        let mut inv = scripts::NACK.key(keys.leased());
        inv.key(keys.list()).arg(queue.as_str()).arg(BUS);
        for n in newest_first {
            inv.arg(keys.message(n));
        }
        let back: usize = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        Ok(back)
    }

    pub(super) async fn expire_due_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        let names: Vec<String> = self.conn().smembers(LEASED_QUEUES).await.map_err(error)?;
        let now = crate::store::clock::now_ms();
        let mut changed = Vec::new();
        for queue in names.into_iter().filter_map(|n| QueueName::try_from(n).ok()) {
            let (keys, dlq) = (self.keys(&queue), dead_letter_queue(&queue));
            let dead = self.keys(&dlq);
            let (back, moved): (u64, u64) = scripts::EXPIRE
                .key(keys.leased())
                .key(keys.list())
                .key(dead.counter())
                .key(dead.list())
                .arg(now)
                .arg(max_deliveries)
                .arg(queue.as_str())
                .arg(BUS)
                .arg(dead.message_prefix())
                .arg(dlq.as_str())
                .invoke_async(&mut self.conn())
                .await
                .map_err(error)?;
            if moved > 0 {
                let () = self.conn().sadd(QUEUESET, dlq.as_str()).await.map_err(error)?;
            }
            if back + moved > 0 {
                changed.push(ExpiredLeases { queue, returned: back, dead: moved });
            }
        }
        Ok(changed)
    }

    pub(super) async fn redrive_dead(
        &self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<LengthLimit>,
    ) -> StoreResult<u64> {
        let (src, dst) = (self.keys(from), self.keys(to));
        if self.inner.cluster && src.list().split('}').next() != dst.list().split('}').next() {
            return Err(StoreError::Backend("redrive across hash slots is not supported".to_owned()));
        }
        let () = self.conn().sadd(QUEUESET, to.as_str()).await.map_err(error)?;
        let moved: u64 = scripts::REDRIVE
            .key(src.list())
            .key(dst.counter())
            .key(dst.list())
            .arg(dst.message_prefix())
            .arg(to.as_str())
            .arg(BUS)
            .arg(limit.map_or(0, |l| l.max))
            .arg(dst.delayed())
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(moved)
    }
}
