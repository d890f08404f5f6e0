//! Serving: opens the store, starts the broker, serves the router until shutdown, then
//! ends streams, puts undelivered messages back and closes the store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, BrokerConfig};
use crate::config::{ServeConfig, StoreKind};
use crate::state::{AppState, Settings};
use crate::store::{EmbeddedStore, MemoryStore, QueueStore, Store};

/// Opens the configured store.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<Store> {
    Ok(match config.store {
        StoreKind::Memory => Store::Memory(MemoryStore::new()),
        StoreKind::Embedded => Store::Embedded(
            EmbeddedStore::open(&config.data_dir)
                .with_context(|| format!("opening the embedded store in {}", config.data_dir.display()))?,
        ),
        StoreKind::Redis => anyhow::bail!("the redis store is not available in this build yet"),
    })
}

/// Serves on `listener` until `shutdown` is cancelled, then stops cleanly: streams are
/// closed, undelivered messages go back to their queues, the store is flushed.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let tracker = TaskTracker::new();
    let broker_config = BrokerConfig {
        consumer_buffer: config.consumer_buffer,
        slow_consumer_timeout: Duration::from_secs(config.slow_consumer_secs),
        ..BrokerConfig::default()
    };
    let broker = Broker::new(store.clone(), broker_config, shutdown.clone(), tracker.clone());
    let settings = Settings { max_message_bytes: config.max_message_bytes, web_dir: config.web_dir.clone() };
    let app = crate::http::router(AppState { broker: broker.clone(), settings: Arc::new(settings) });

    let addr = listener.local_addr()?;
    tracing::info!(store = store.kind(), "restmq ready at http://{addr}/");
    axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await?;

    tracker.close();
    if tokio::time::timeout(Duration::from_secs(config.shutdown_grace_secs), tracker.wait()).await.is_err() {
        tracing::warn!("some streams did not end in time");
    }
    broker.flush_requeues().await;
    store.close().await?;
    tracing::info!("restmq stopped");
    Ok(())
}
