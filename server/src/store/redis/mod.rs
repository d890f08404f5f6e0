//! The `redis` backend: RestMQ's key layout on a Redis server or cluster, every operation
//! one Lua script, and a pub/sub bus so that many restmq processes act as one server.

mod browse;
mod bus;
mod coalesce;
mod conn;
mod delayed;
mod fanout;
mod keys;
mod leases;
mod listing;
mod multi;
mod once;
mod presence;
mod registry;
mod scripts;
mod upgrade;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncCommands, ScriptInvocation};
use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::conn::{error, Conn};
pub use self::fanout::FanoutRead;
use self::keys::{client_key, number, QueueKeys, BUS, QUEUESET};
use super::{
    Batch, Claimed, Delayed, ExpiredLeases, IdempotencyClaim, LeaseStore, Leases, LengthLimit, Page,
    PeekedMessage, QueueInfo, QueueStore, StoreError, StoreEvent, StoreResult, StoredMessage,
};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// One URL, or the seed nodes of a cluster.
    pub urls: Vec<String>,
    /// Talk to a Redis Cluster, with per-queue hash tags.
    pub cluster: bool,
    /// This process's address, for `/nodes`.
    pub node_addr: String,
}

/// A Redis-backed store; cloning is shallow.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    /// Single adds, batched while earlier ones are on their way.
    adds: coalesce::Coalescer,
    cluster: bool,
    node: String,
    events: broadcast::Sender<StoreEvent>,
    /// Whether the bus subscription is in place: broadcasts wait while it is not.
    bus_up: Arc<AtomicBool>,
    /// Cluster only: registrations in the server-wide sets, done and owed.
    registry: registry::Registry,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisStore {
    /// Connects, subscribes to the bus, and returns once both are in place.
    pub async fn open(options: RedisOptions) -> StoreResult<Self> {
        if options.urls.is_empty() {
            return Err(StoreError::Backend("no Redis URL".to_owned()));
        }
        let conn = Conn::open(&options.urls, options.cluster).await?;
        upgrade::move_legacy_keys(&mut conn.clone(), options.cluster).await?;
        let nodes: Vec<redis::Client> = options
            .urls
            .iter()
            .map(|url| redis::Client::open(url.as_str()))
            .collect::<Result<_, _>>()
            .map_err(error)?;
        let pubsub = first_subscription(&nodes).await?;
        let (events, _) = broadcast::channel(65_536);
        let stop = CancellationToken::new();
        let node = format!("{}-{}-{:x}", options.node_addr, std::process::id(), super::clock::now_ms());
        let bus_up = Arc::new(AtomicBool::new(true));
        tokio::spawn(bus::run(nodes, pubsub, events.clone(), bus_up.clone(), stop.clone()));
        let adds = coalesce::Coalescer::start(conn.clone(), options.cluster);
        let cluster = options.cluster;
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                adds,
                cluster,
                node,
                events,
                bus_up,
                registry: Default::default(),
                stop,
            }),
        })
    }

    fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    fn keys(&self, queue: &QueueName) -> QueueKeys {
        QueueKeys::new(queue, self.inner.cluster)
    }

    /// Adds `QUEUESET` as the script's last key outside cluster mode.
    fn with_queueset<'a>(
        &self,
        invocation: &'a mut ScriptInvocation<'static>,
    ) -> &'a mut ScriptInvocation<'static> {
        with_queueset(invocation, self.inner.cluster)
    }

    /// In a cluster `QUEUESET` lives in another slot, so it is written on its own.
    async fn register_in_cluster(&self, queue: &QueueName) -> StoreResult<()> {
        if self.inner.cluster {
            self.register(QUEUESET, queue).await?;
        }
        Ok(())
    }

    async fn set_setting(&self, queue: &QueueName, key: String, value: &str) -> StoreResult<()> {
        self.register_in_cluster(queue).await?;
        let mut inv = scripts::SETTING.key(key);
        self.with_queueset(&mut inv).arg(value).arg(queue.as_str()).arg(BUS);
        let _: i64 = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        Ok(())
    }
}

/// The bus subscription on the first node that accepts it.
async fn first_subscription(nodes: &[redis::Client]) -> StoreResult<redis::aio::PubSub> {
    let mut last = StoreError::Unavailable("no Redis node to subscribe to".to_owned());
    for node in nodes {
        match tokio::time::timeout(bus::SUBSCRIBE_TIMEOUT, bus::subscribe(node)).await {
            Ok(Ok(pubsub)) => return Ok(pubsub),
            Ok(Err(err)) => last = error(err),
            Err(_) => last = StoreError::Unavailable("subscribing to the Redis bus timed out".to_owned()),
        }
    }
    Err(last)
}

/// Adds `QUEUESET` as the script's last key unless `cluster` (where it lives in another slot).
fn with_queueset<'a>(
    invocation: &'a mut ScriptInvocation<'static>,
    cluster: bool,
) -> &'a mut ScriptInvocation<'static> {
    if !cluster {
        invocation.key(QUEUESET);
    }
    invocation
}

/// When a message added now with a ttl of `ttl_secs` expires, in Unix ms (0 for none).
fn expires_at(ttl_secs: u64) -> u64 {
    if ttl_secs == 0 {
        return 0;
    }
    super::clock::after(Duration::from_secs(ttl_secs))
}

/// A ttl in whole seconds as the scripts take it: at least 1, or 0 for none.
fn ttl_secs(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| t.as_secs().max(1))
}

impl QueueStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        if once::current().is_some() {
            // A claimed publish adds in its own script, which checks and answers the claim.
            let keys = self.add_batch(queue, Batch { values: vec![value], ttl, limit: None }).await?;
            return keys.into_iter().next().ok_or(StoreError::ClaimLost);
        }
        self.register_in_cluster(queue).await?;
        self.note_expiring(queue, ttl).await?;
        let n = self.inner.adds.add(queue, value, ttl_secs(ttl)).await?;
        Ok(client_key(queue, n))
    }

    async fn add_batch(&self, queue: &QueueName, batch: Batch) -> StoreResult<Vec<MessageKey>> {
        let Batch { values, ttl, limit } = batch;
        if values.is_empty() {
            return Ok(Vec::new());
        }
        self.register_in_cluster(queue).await?;
        self.note_expiring(queue, ttl).await?;
        let count = values.len() as u64;
        let claim = once::current();
        let inv = coalesce::add_batch_invocation(
            queue,
            self.inner.cluster,
            ttl_secs(ttl),
            limit,
            claim.as_ref(),
            values,
        );
        let first: i64 = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        let first = once::first_added(first, limit.map_or(0, |l| l.max))?;
        Ok((first..first + count).map(|n| client_key(queue, n)).collect())
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        let out: Vec<String> = scripts::POP
            .key(self.keys(queue).list())
            .arg(max)
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(out[1..]
            .chunks_exact(2)
            .filter_map(|kv| {
                Some(StoredMessage { key: client_key(queue, number(&kv[0])?), value: kv[1].clone() })
            })
            .collect())
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        let found: Option<(String, String, u64)> =
            scripts::PEEK.key(self.keys(queue).list()).invoke_async(&mut self.conn()).await.map_err(error)?;
        Ok(found.and_then(|(key, value, count)| {
            Some(PeekedMessage { key: client_key(queue, number(&key)?), value, count })
        }))
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        let keys = self.keys(&key.queue);
        let deleted: i64 = scripts::DELETE
            .key(keys.list())
            .arg(keys.message(key.n))
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(deleted == 1)
    }

    async fn requeue(&self, queue: &QueueName, mut messages: Vec<StoredMessage>) -> StoreResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        self.register_in_cluster(queue).await?;
        let keys = self.keys(queue);
        messages.sort_by_key(|m| std::cmp::Reverse(m.key.n));
        let mut inv = scripts::REQUEUE.key(keys.list());
        self.with_queueset(&mut inv).arg(queue.as_str()).arg(BUS);
        for m in messages {
            inv.arg(keys.message(m.key.n)).arg(m.value);
        }
        let _: i64 = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        Ok(())
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        let keys = self.keys(queue);
        let mut inv = scripts::PURGE.key(keys.list());
        inv.key(keys.leased())
            .key(keys.delayed())
            .key(keys.expiring())
            .key(keys.fanout())
            .key(keys.readers());
        inv.arg(queue.as_str()).arg(BUS);
        let held: i64 = inv.invoke_async(&mut self.conn()).await.map_err(error)?;
        Ok(held > 0)
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        self.queue_names().await
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        self.queue_info(queue).await
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        let value = policy.as_number().to_string();
        self.set_setting(queue, self.keys(queue).policy(), &value).await
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        let value = if status == QueueStatus::Paused { "0" } else { "1" };
        self.set_setting(queue, self.keys(queue).status(), value).await
    }

    async fn browse(&self, queue: &QueueName, page: Page) -> StoreResult<Vec<BrowsedMessage>> {
        self.browse_page(queue, page).await
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        let stop = isize::try_from(max).unwrap_or(isize::MAX) - 1;
        let listed: Vec<String> =
            self.conn().lrange(self.keys(queue).list(), 0, stop).await.map_err(error)?;
        Ok(listed.iter().filter_map(|k| Some(client_key(queue, number(k)?))).collect())
    }

    async fn close(&self) -> StoreResult<()> {
        let _ = presence::withdraw(&mut self.conn(), &self.inner.node).await;
        self.inner.stop.cancel();
        Ok(())
    }

    async fn add_delayed(&self, queue: &QueueName, message: Delayed) -> StoreResult<MessageKey> {
        self.add_delayed_message(queue, message).await
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        if self.inner.cluster {
            self.repay_registrations().await;
        }
        self.promote_due().await
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        self.sweep_due().await
    }

    async fn claim_idempotent(&self, queue: &QueueName, claim: &IdempotencyClaim) -> StoreResult<Claimed> {
        self.claim_once(queue, claim).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.readiness().await
    }
}

impl LeaseStore for RedisStore {
    async fn reserve(&self, queue: &QueueName, max: usize, lease: Duration) -> StoreResult<Leases> {
        self.reserve_leased(queue, max, lease).await
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        self.ack_leased(key).await
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        Ok(self.release(&key.queue, &[key.n]).await? == 1)
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        self.release_leased(queue, ns).await
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        self.expire_due_leases(max_deliveries).await
    }

    async fn redrive(&self, from: &QueueName, to: &QueueName, cap: Option<LengthLimit>) -> StoreResult<u64> {
        self.redrive_dead(from, to, cap).await
    }
}
