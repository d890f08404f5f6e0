//! The connection to Redis: one multiplexed, self-reconnecting connection to a single
//! server, or a cluster connection that routes by slot; and Redis errors as store errors.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use crate::store::StoreError;

/// A single server or a cluster, used the same way.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Connects to one server (`urls` has one entry) or to a cluster (its seed nodes).
    pub async fn open(urls: &[String], cluster: bool) -> Result<Self, StoreError> {
        if cluster {
            let client = ClusterClient::builder(urls.to_vec())
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(2))
                .build()
                .map_err(error)?;
            return Ok(Self::Cluster(client.get_async_connection().await.map_err(error)?));
        }
        let client = redis::Client::open(urls[0].as_str()).map_err(error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self::Single(ConnectionManager::new_with_config(client, config).await.map_err(error)?))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection that could not be made is `Unavailable`: nothing was sent, so nothing
/// happened. A timeout or a connection lost while waiting is `Unknown`: the command may have
/// run (a stalled Redis runs it when it wakes). Anything else is `Backend`.
pub fn error(err: RedisError) -> StoreError {
    if err.is_connection_refusal() {
        StoreError::Unavailable(err.to_string())
    } else if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
        StoreError::Unknown(err.to_string())
    } else {
        StoreError::Backend(err.to_string())
    }
}
