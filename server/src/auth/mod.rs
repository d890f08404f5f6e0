//! Access control, off unless configured: bearer tokens with rights on queue patterns
//! (`--auth-tokens`), client address lists (`--allow-ip`, `--deny-ip`, `--trusted-proxy`),
//! RestMQ's `acl.conf` (`--acl`, reloaded when it changes) and CORS (`--cors-origin`).
//!
//! Each handler declares what it needs where its route is registered ([`Rule`], applied by
//! the [`guard`] layer), or states it after its one parse ([`Deferred`]) when its arguments
//! name the queue. A router-wide middleware first finds the client's address and checks the
//! address lists; the guard then applies the `acl.conf` section and the token's rights.
//! Every configured mechanism must agree. A request with
//! Basic credentials for `acl.conf` can carry its token in the `token` query parameter.
//! Adding has one rule wherever it happens: a WebSocket upgrade is also checked as a
//! `POST /q/<queue>` would be, and its `add` frames get that verdict ([`AddFrames`]).
//!
//! # Layout
//! - [`config`]: the command-line flags.
//! - [`rule`]: what a route can need: a right on its queue, an `acl.conf` section, nothing.
//! - [`guard`]: applying a rule, or a handler's deferred need, to the caller.
//! - [`tokens`]: the token file, queue-pattern globs, rights.
//! - [`acl`]: `acl.conf` parsing, RestMQ's allow/deny/password rules, reloading.
//! - [`ip`]: CIDR blocks, allow/deny lists, `X-Forwarded-For` from trusted proxies.
//! - [`secret`]: constant-time comparison, Basic and Bearer headers.

pub mod acl;
pub mod config;
mod guard;
pub mod ip;
pub mod rule;
pub mod secret;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use restmq_shared::ErrorResponse;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::acl::AclFile;
pub use self::config::AuthConfig;
pub use self::guard::{guard, Caller, Deferred};
pub use self::ip::IpNet;
use self::ip::IpRules;
pub use self::rule::{Need, Rule};
pub use self::tokens::Right;
use self::tokens::Tokens;

const BASIC_CHALLENGE: &str = "Basic realm=\"RestMQ Restricted Access\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"restmq\"";

/// A configuration file or flag that cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("bad token file {}: {error}", path.display())]
    Tokens { path: PathBuf, error: String },
    #[error("bad acl file {}: {error}", path.display())]
    Acl { path: PathBuf, error: String },
    #[error("bad --cors-origin {0:?}: give `*` or an origin like https://example.com")]
    CorsOrigin(String),
}

/// The access rules in force; shared by every request.
#[derive(Default)]
pub struct Auth {
    tokens: Option<Tokens>,
    ip: IpRules,
    acl: Option<Arc<AclFile>>,
    cors: Option<CorsLayer>,
}

impl Auth {
    /// No checks at all (the default).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Loads the files the configuration names.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        Ok(Self {
            tokens: config.auth_tokens.as_deref().map(Tokens::load).transpose()?,
            ip: IpRules {
                allow: config.allow_ip.clone(),
                deny: config.deny_ip.clone(),
                trusted_proxies: config.trusted_proxy.clone(),
            },
            acl: config.acl.as_deref().map(AclFile::load).transpose()?.map(Arc::new),
            cors: cors_layer(&config.cors_origin)?,
        })
    }

    /// Whether any check runs.
    pub fn is_enabled(&self) -> bool {
        self.tokens.is_some() || self.acl.is_some() || self.ip.is_active()
    }

    /// Starts re-reading `acl.conf` when it changes, until `shutdown`.
    pub fn spawn_reload(&self, shutdown: CancellationToken, tracker: &TaskTracker) {
        if let Some(file) = &self.acl {
            acl::spawn_reload(file.clone(), shutdown, tracker);
        }
    }
}

/// The token that let the request through (present on every request once tokens are on).
#[derive(Debug, Clone)]
pub struct Granted {
    /// The token's name in the file.
    pub name: String,
}

/// Whether a WebSocket's `add` frames may add to its queue: decided at the upgrade by the
/// rules of `POST /q/<queue>` (the token's `produce` right and `acl.conf`'s `[rest:producer]`),
/// with the error each refused frame is answered. Absent when no check is configured.
#[derive(Debug, Clone)]
pub struct AddFrames(pub Result<(), ErrorResponse>);

/// What the router-wide check needs of the router's state: the rules.
pub trait Guarded: Clone + Send + Sync + 'static {
    fn auth(&self) -> &Arc<Auth>;
}

/// Adds the checks (when any is configured) and CORS (when origins are) to `router`.
pub fn layer<S: Guarded>(router: Router<S>, state: &S) -> Router<S> {
    let router = if state.auth().is_enabled() {
        router.layer(middleware::from_fn_with_state(state.clone(), admit::<S>))
    } else {
        router
    };
    match &state.auth().cors {
        Some(cors) => router.layer(cors.clone()),
        None => router,
    }
}

fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, AuthConfigError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parse = |o: &String| {
            let o = o.trim_end_matches('/');
            (o.starts_with("http://") || o.starts_with("https://"))
                .then(|| HeaderValue::from_str(o).ok())
                .flatten()
                .ok_or_else(|| AuthConfigError::CorsOrigin(o.to_owned()))
        };
        AllowOrigin::list(origins.iter().map(parse).collect::<Result<Vec<_>, _>>()?)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::DELETE])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .max_age(Duration::from_secs(600)),
    ))
}

/// The router-wide check: finds the client's address, applies the address lists, and
/// admits the request as a [`Caller`] for the rule its handler declares.
async fn admit<S: Guarded>(State(state): State<S>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let auth = state.auth();
    let client = match auth.ip.client_addr(&parts).and_then(|client| auth.ip.check(client).map(|()| client)) {
        Ok(client) => client,
        Err(error) => {
            tracing::debug!(method = %parts.method, path = %parts.uri.path(), %error, "request refused");
            return error.into_response();
        }
    };
    parts.extensions.insert(Caller { client, auth: auth.clone() });
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_checked() {
        assert!(cors_layer(&[]).unwrap().is_none());
        assert!(cors_layer(&["*".to_owned()]).unwrap().is_some());
        assert!(cors_layer(&["https://app.example/".to_owned()]).unwrap().is_some());
        assert!(cors_layer(&["app.example".to_owned()]).is_err());
    }
}
