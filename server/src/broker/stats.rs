//! Queue figures for `/stats/`: each queue's length and settings from the store, this
//! process's counters, and on a shared store the consumers of every process.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use futures_util::{StreamExt as _, TryStreamExt as _};
use restmq_shared::{QueueName, QueueStats, StatsReply};

use super::hub::Hub;
use super::{Broker, BrokerResult};
use crate::store::{QueueInfo, QueueStore};

impl Broker {
    /// One queue's figures; a queue that does not exist reads as empty, as RestMQ answered
    /// (and is not created by the asking).
    pub async fn queue_stats(&self, queue: &QueueName) -> BrokerResult<QueueStats> {
        let info = self.inner.store.info(queue).await?.unwrap_or_default();
        let mut found = BTreeMap::from([(queue.to_string(), self.figures(queue, info))]);
        self.add_remote_consumers(&mut found).await?;
        Ok(found.remove(queue.as_str()).unwrap_or_else(|| self.figures(queue, info)))
    }

    /// Every queue's figures, including queues that have consumers but no message yet.
    pub async fn stats(&self) -> BrokerResult<StatsReply> {
        let mut queues = BTreeMap::new();
        for (queue, info) in self.all_infos().await? {
            if let Some(info) = info {
                queues.insert(queue.to_string(), self.figures(&queue, info));
            }
        }
        for hub in self.all_hubs() {
            if hub.consumer_count() > 0 && !queues.contains_key(hub.queue.as_str()) {
                queues.insert(hub.queue.to_string(), self.figures(&hub.queue, QueueInfo::default()));
            }
        }
        self.add_remote_consumers(&mut queues).await?;
        Ok(StatsReply {
            count: queues.len() as u64,
            queues,
            store: self.inner.store.kind().to_owned(),
            feeds: BTreeMap::new(),
        })
    }

    /// Every stored queue with its settings and length, many asked at once (on Redis they
    /// share round trips instead of taking one each).
    pub async fn all_infos(&self) -> BrokerResult<Vec<(QueueName, Option<QueueInfo>)>> {
        let store = &self.inner.store;
        let asks = futures_util::stream::iter(store.queues().await?)
            .map(|queue| async move { store.info(&queue).await.map(|info| (queue, info)) });
        Ok(asks.buffered(64).try_collect().await?)
    }

    fn figures(&self, queue: &QueueName, info: QueueInfo) -> QueueStats {
        let hub = self.existing_hub(queue);
        let counter = |f: fn(&Hub) -> u64| hub.as_deref().map_or(0, f);
        QueueStats {
            queue: queue.clone(),
            name: queue.clone(),
            len: info.len,
            status: info.status_set.then(|| info.status.as_number()),
            policy: info.policy_set.then(|| info.policy.as_number()),
            state: info.status,
            policy_name: info.policy,
            consumers: counter(|h| h.consumer_count() as u64),
            added: counter(|h| h.counters.added.load(Ordering::Relaxed)),
            taken: counter(|h| h.counters.taken.load(Ordering::Relaxed)),
            delivered: counter(|h| h.counters.delivered.load(Ordering::Relaxed)),
        }
    }
}
