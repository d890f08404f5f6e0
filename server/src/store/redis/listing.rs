//! Which queues `QUEUESET` names, read the way RestMQ's companions wrote it.

use redis::AsyncCommands;
use restmq_shared::QueueName;

use super::conn::error;
use super::keys::QUEUESET;
use super::RedisStore;
use crate::store::StoreResult;

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
}
