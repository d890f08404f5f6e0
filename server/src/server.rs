//! Serving: opens the store, starts the broker, serves the router until shutdown, then
//! ends streams, puts undelivered messages back and closes the store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app_state::{AppState, Settings};
use crate::broker::{Broker, BrokerConfig};
use crate::config::{ServeConfig, StoreKind};
use crate::feed::Sink;
use crate::store::{
    EmbeddedOptions, EmbeddedStore, MemoryStore, QueueStore, RedisOptions, RedisStore, Store,
};

/// Opens the configured store.
pub async fn open_store(config: &ServeConfig, addr: std::net::SocketAddr) -> anyhow::Result<Store> {
    Ok(match config.store {
        StoreKind::Memory => Store::from(MemoryStore::new()),
        StoreKind::Embedded => Store::from(
            EmbeddedStore::open_with(
                &config.data_dir,
                EmbeddedOptions { fsync: config.fsync, cache_bytes: config.cache_mib << 20 },
            )
            .with_context(|| format!("opening the embedded store in {}", config.data_dir.display()))?,
        ),
        StoreKind::Redis => {
            let options = RedisOptions {
                urls: config.redis_url.split(',').map(|u| u.trim().to_owned()).collect(),
                cluster: config.redis_cluster,
                node_addr: addr.to_string(),
            };
            Store::from(
                RedisStore::open(options)
                    .await
                    .with_context(|| format!("connecting to Redis at {}", config.redis_url))?,
            )
        }
    })
}

/// Serves on `listener` until `shutdown` is cancelled, then stops cleanly: streams are
/// closed, undelivered messages go back to their queues, the store is flushed.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let store = open_store(&config, addr).await?;
    let tracker = TaskTracker::new();
    let broker_config = BrokerConfig {
        consumer_buffer: config.consumer_buffer,
        slow_consumer_timeout: Duration::from_secs(config.slow_consumer_secs),
        node_addr: addr.to_string(),
        max_deliveries: config.max_deliveries.max(1),
        lease: Duration::from_secs(config.lease_secs.max(1)),
        history_len: config.history_len,
        history_age: Duration::from_secs(config.history_age_secs),
        timeline_step: Duration::from_secs(config.queue_history_step_secs.max(1)),
        history_queue_bytes: config.history_queue_bytes,
        history_total_bytes: config.history_total_bytes,
        length_limit: (config.max_queue_len > 0).then_some(crate::store::LengthLimit {
            max: config.max_queue_len,
            drop_oldest: config.overflow == crate::config::Overflow::DropOldest,
        }),
        idempotency_window: Duration::from_secs(config.idempotency_secs),
        idempotency_max_bytes: config.idempotency_max_bytes,
        max_message_bytes: config.max_message_bytes,
        ..BrokerConfig::default()
    };
    let broker = Broker::new(store.clone(), broker_config, shutdown.clone(), tracker.clone());
    let settings = Settings {
        web_dir: config.web_dir.clone(),
        max_streams: config.max_streams,
        body_read_timeout: Duration::from_secs(config.body_read_timeout_secs.max(1)),
        heartbeat: (config.heartbeat_secs > 0).then(|| Duration::from_secs(config.heartbeat_secs)),
    };
    let feeds = crate::feed::start(&config.feeds, Sink::Broker(broker.clone()), &shutdown, &tracker).await?;
    let auth = Arc::new(crate::auth::Auth::from_config(&config.auth)?);
    auth.spawn_reload(shutdown.clone(), &tracker);
    let state = AppState { broker: broker.clone(), settings: Arc::new(settings), feeds, auth };
    let app = crate::app::router(state);
    let limits = crate::connection::Limits::from_config(&config);

    tracing::info!(store = store.kind(), "restmq ready at http://{addr}/");
    crate::connection::serve(listener, app, limits, shutdown.clone(), &tracker).await;
    broker.flush_requeues().await;
    store.close().await?;
    tracing::info!("restmq stopped");
    Ok(())
}
