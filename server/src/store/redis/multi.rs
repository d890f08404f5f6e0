//! What only a store shared by many processes does, reached through `Store::shared()`: the
//! bus of changes, broadcast logs, observed marks and presence.

use std::time::Duration;

use redis::AsyncCommands;
use restmq_shared::QueueName;
use tokio::sync::broadcast;

use super::conn::error;
use super::{presence, FanoutRead, RedisStore};
use crate::store::{NodePresence, StoreEvent, StoreResult};

impl RedisStore {
    /// For `ttl` from now, every add to `queue` (by any process) is also announced as a
    /// [`StoreEvent::Observed`], for the observers of every process.
    pub async fn mark_observed(&self, queue: &QueueName, ttl: Duration) -> StoreResult<()> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let () = self.conn().pset_ex(self.keys(queue).observed(), 1, ms).await.map_err(error)?;
        Ok(())
    }

    /// Changes made to the store by this process or others sharing it.
    pub fn watch(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.events.subscribe()
    }

    /// Moves up to `max` of the oldest messages into the queue's broadcast log, in order;
    /// returns their numbers (see `fanout.rs`).
    pub async fn move_to_fanout(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<u64>> {
        self.move_to_log(queue, max).await
    }

    /// Up to `max` entries of the queue's broadcast log after `cursor`, and the cursor after
    /// them; without a cursor, none, and the cursor of the log's end now.
    pub async fn read_fanout(
        &self,
        queue: &QueueName,
        cursor: Option<&str>,
        max: usize,
    ) -> StoreResult<FanoutRead> {
        self.read_log(queue, cursor, max).await
    }

    /// Publishes this process's presence, so that every process can count all consumers.
    pub async fn report_presence(&self, mut presence: NodePresence) -> StoreResult<()> {
        presence.id.clone_from(&self.inner.node);
        presence::report(&mut self.conn(), &presence).await
    }

    /// Every live process's presence.
    pub async fn nodes(&self) -> StoreResult<Vec<NodePresence>> {
        let mut nodes = presence::nodes(&mut self.conn()).await?;
        for node in &mut nodes {
            node.is_self = node.id == self.inner.node;
        }
        Ok(nodes)
    }
}
