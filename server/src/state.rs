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
    /// Largest message value accepted, in bytes.
    pub max_message_bytes: usize,
    /// The built web app served at `/`.
    pub web_dir: PathBuf,
}

impl Settings {
    /// The most body bytes read for one request: room for a maximal value encoded as a
    /// form (percent-encoding can triple it) plus the other fields.
    pub fn body_limit(&self) -> usize {
        self.max_message_bytes.saturating_mul(3).saturating_add(64 * 1024)
    }
}
