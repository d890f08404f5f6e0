//! The state every handler gets: cheap handles to the broker and the serving settings.

use std::path::PathBuf;
use std::sync::Arc;

use crate::broker::Broker;
use crate::feed::FeedRegistry;

/// Shared by all handlers; cloning is shallow.
#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
    pub settings: Arc<Settings>,
    /// The feeds running in this server, for `/stats/` and the collectd endpoint.
    pub feeds: FeedRegistry,
    /// Access rules (tokens, address lists, `acl.conf`, CORS).
    pub auth: Arc<crate::auth::Auth>,
}

/// What handlers need to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The built web app served at `/`.
    pub web_dir: PathBuf,
    /// Streaming connections (COMET, WebSocket, SSE) accepted at once; 0 = no limit.
    pub max_streams: usize,
    /// How often idle streams beat (`None`: never).
    pub heartbeat: Option<std::time::Duration>,
    /// How long a request's body may take to arrive.
    pub body_read_timeout: std::time::Duration,
}

impl AppState {
    /// Refuses a new streaming connection with 429 when `--max-streams` are open.
    pub fn check_stream_capacity(&self) -> Result<(), crate::error::ApiError> {
        let max = self.settings.max_streams;
        let open = usize::try_from(self.broker.metrics().connections()).unwrap_or(0);
        if max > 0 && open >= max {
            return Err(crate::error::ApiError::TooManyStreams(max));
        }
        Ok(())
    }

    /// The most body bytes read for one request: room for a maximal value encoded as a
    /// form (percent-encoding can triple it) plus the other fields.
    pub fn body_limit(&self) -> usize {
        self.broker.config().max_message_bytes.saturating_mul(3).saturating_add(64 * 1024)
    }
}

impl crate::extract::BodyLimit for AppState {
    fn body_limit(&self) -> usize {
        AppState::body_limit(self)
    }
}

impl crate::auth::Guarded for AppState {
    fn auth(&self) -> &Arc<crate::auth::Auth> {
        &self.auth
    }
}
