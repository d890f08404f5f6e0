//! Reading what the store holds: which queues `QUEUESET` names (read the way RestMQ's
//! companions wrote it), a queue's length and settings, and whether the store is ready.

use std::sync::atomic::Ordering;

use redis::AsyncCommands;
use restmq_shared::{Policy, QueueName, QueueStatus};

use super::conn::error;
use super::keys::QUEUESET;
use super::RedisStore;
use crate::store::{QueueInfo, StoreError, StoreResult};

impl RedisStore {
    /// `QUEUESET`'s valid names. An entry `<q>:queue` that is itself a list and has no key of
    /// its own (list, counter, policy, status) is queue `<q>` (the Sinatra mini-RestMQ adds
    /// list names to the set).
    pub(super) async fn queue_names(&self) -> StoreResult<Vec<QueueName>> {
        let names: Vec<String> = self.conn().smembers(QUEUESET).await.map_err(error)?;
        let mut queues: Vec<QueueName> = Vec::with_capacity(names.len());
        for name in names {
            let Ok(queue) = QueueName::try_from(name) else { continue };
            match queue.as_str().strip_suffix(":queue").map(QueueName::try_from) {
                Some(Ok(listed)) if self.is_list_name(&queue).await? => queues.push(listed),
                _ => queues.push(queue),
            }
        }
        queues.sort();
        queues.dedup();
        Ok(queues)
    }

    /// Whether `name` is the list of another queue rather than a queue: a list key with no
    /// key of its own.
    async fn is_list_name(&self, name: &QueueName) -> StoreResult<bool> {
        let keys = self.keys(name);
        let (kind, own): (String, u64) = redis::pipe()
            .cmd("TYPE")
            .arg(name.as_str())
            .exists(&[keys.list(), keys.counter(), keys.policy(), keys.status()])
            .query_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(kind == "list" && own == 0)
    }

    /// A queue's length and settings, `None` when nothing of it exists.
    pub(super) async fn queue_info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        let keys = self.keys(queue);
        let mut conn = self.conn();
        let listed: bool = conn.sismember(QUEUESET, queue.as_str()).await.map_err(error)?;
        let (len, policy, status, last): (u64, Option<String>, Option<String>, Option<u64>) = redis::pipe()
            .llen(keys.list())
            .get(keys.policy())
            .get(keys.status())
            .get(keys.counter())
            .query_async(&mut conn)
            .await
            .map_err(error)?;
        let exists = listed || len > 0 || policy.is_some() || status.is_some();
        Ok(exists.then(|| QueueInfo {
            len,
            policy_set: policy.is_some(),
            status_set: status.is_some(),
            policy: parse_policy(policy),
            status: parse_status(status),
            last: last.unwrap_or(0),
        }))
    }

    /// Ready when the bus is subscribed and Redis answers; in a cluster, when every slot is
    /// served (`cluster_state:ok`, which a node reports only then).
    pub(super) async fn readiness(&self) -> StoreResult<()> {
        if !self.inner.bus_up.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the Redis bus is reconnecting".to_owned()));
        }
        if self.inner.cluster {
            let info: String =
                redis::cmd("CLUSTER").arg("INFO").query_async(&mut self.conn()).await.map_err(error)?;
            if !info.contains("cluster_state:ok") {
                return Err(StoreError::Unavailable(
                    "the Redis cluster does not serve every slot".to_owned(),
                ));
            }
            return Ok(());
        }
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await.map_err(error)?;
        Ok(())
    }
}

fn parse_policy(v: Option<String>) -> Policy {
    if v.as_deref() == Some("2") {
        Policy::Roundrobin
    } else {
        Policy::Broadcast
    }
}

fn parse_status(v: Option<String>) -> QueueStatus {
    if v.as_deref() == Some("0") {
        QueueStatus::Paused
    } else {
        QueueStatus::Started
    }
}
