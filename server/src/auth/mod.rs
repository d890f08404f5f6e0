//! Access control, off unless configured: bearer tokens with rights on queue patterns
//! (`--auth-tokens`), client address lists (`--allow-ip`, `--deny-ip`, `--trusted-proxy`),
//! RestMQ's `acl.conf` (`--acl`, reloaded when it changes) and CORS (`--cors-origin`).
//!
//! One middleware runs on every route after routing: it finds the client's address, checks
//! the address lists, classifies the request ([`route`]), then applies the `acl.conf`
//! section and the token's rights. Every configured mechanism must agree. A request with
//! Basic credentials for `acl.conf` can carry its token in the `token` query parameter.
//! Adding has one rule wherever it happens: a WebSocket upgrade is also checked as a
//! `POST /q/<queue>` would be, and its `add` frames get that verdict ([`AddFrames`]).
//!
//! # Layout
//! - [`config`]: the command-line flags.
//! - [`route`]: which right and `acl.conf` section each route needs, for which queue.
//! - [`tokens`]: the token file, queue-pattern globs, rights.
//! - [`acl`]: `acl.conf` parsing, RestMQ's allow/deny/password rules, reloading.
//! - [`ip`]: CIDR blocks, allow/deny lists, `X-Forwarded-For` from trusted proxies.
//! - [`secret`]: constant-time comparison, Basic and Bearer headers.

pub mod acl;
pub mod config;
pub mod ip;
pub mod route;
pub mod secret;
pub mod tokens;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use restmq_shared::ErrorResponse;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::acl::{AclDenial, AclFile};
pub use self::config::AuthConfig;
pub use self::ip::IpNet;
use self::ip::IpRules;
use self::route::{Access, Need};
pub use self::tokens::Right;
use self::tokens::{TokenError, Tokens};
use crate::error::ApiError;

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

/// What the access checks need of the router's state: the rules, the collectd endpoint's
/// queues (guarded like adds to them), and the body limit (to read arguments).
pub trait Guarded: crate::extract::BodyLimit + Clone + Send + Sync + 'static {
    fn auth(&self) -> &Auth;
    /// The queues of `/collectd/data` and `/collectd/event`.
    fn collectd_queues(&self) -> (restmq_shared::QueueName, restmq_shared::QueueName);
}

/// Adds the checks (when any is configured) and CORS (when origins are) to `router`.
pub fn layer<S: Guarded>(router: Router<S>, state: &S) -> Router<S> {
    let router = if state.auth().is_enabled() {
        router.layer(middleware::from_fn_with_state(state.clone(), check::<S>))
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

/// A refusal: the error body, and the challenge of a 401.
struct Denial {
    error: ApiError,
    challenge: Option<&'static str>,
}

impl From<ApiError> for Denial {
    fn from(error: ApiError) -> Self {
        Self { error, challenge: None }
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// The middleware.
async fn check<S: Guarded>(State(state): State<S>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match authorize(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(denial) => {
            tracing::debug!(%method, %path, error = %denial.error, "request refused");
            denial.into_response()
        }
    }
}

async fn authorize<S: Guarded>(state: &S, req: Request) -> Result<Request, Denial> {
    let auth = state.auth();
    let (parts, body) = req.into_parts();
    let client = auth.ip.client_addr(&parts)?;
    auth.ip.check(client)?;
    let (mut req, access) = route::classify(state, parts, body).await?;
    if access.need == Need::Open {
        return Ok(req);
    }
    let granted = check_access(auth, client, &req, &access)?;
    if let Some(adding) = access.for_add_frames() {
        let verdict = check_access(auth, client, &req, &adding)
            .map(drop)
            .map_err(|denial| ErrorResponse::new(denial.error.code(), denial.error.to_string()));
        req.extensions_mut().insert(AddFrames(verdict));
    }
    if let Some(granted) = granted {
        req.extensions_mut().insert(granted);
    }
    Ok(req)
}

/// Applies the `acl.conf` section and the token's rights that `access` names.
fn check_access(
    auth: &Auth,
    client: Option<IpAddr>,
    req: &Request,
    access: &Access,
) -> Result<Option<Granted>, Denial> {
    if let (Some(file), Some(section)) = (&auth.acl, access.section) {
        match file.current().check(section, client, req.headers()) {
            Ok(()) => {}
            Err(AclDenial::Address) => {
                let who = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                return Err(
                    ApiError::Forbidden(format!("address {who} may not use {}", section.name())).into()
                );
            }
            Err(AclDenial::Password) => {
                return Err(Denial {
                    error: ApiError::Unauthorized(format!(
                        "{} needs a user name and password",
                        section.name()
                    )),
                    challenge: Some(BASIC_CHALLENGE),
                });
            }
        }
    }
    auth.tokens.as_ref().map(|tokens| check_token(tokens, req, access)).transpose()
}

fn check_token(tokens: &Tokens, req: &Request, access: &Access) -> Result<Granted, Denial> {
    let unauthorized = |message: &str| Denial {
        error: ApiError::Unauthorized(message.to_owned()),
        challenge: Some(BEARER_CHALLENGE),
    };
    let Some(token) = presented_token(req) else {
        return Err(unauthorized("a token is needed: `Authorization: Bearer …` or `?token=…`"));
    };
    let rights = access.rights();
    let checks = match rights.is_empty() {
        true => vec![(None, tokens::Scope::All)],
        false => rights.into_iter().map(|(right, scope)| (Some(right), scope)).collect(),
    };
    let mut name = String::new();
    for (right, scope) in checks {
        match tokens.authorize(&token, right, &scope) {
            Ok(found) => name = found,
            Err(TokenError::Unknown) => return Err(unauthorized("the token is not valid")),
            Err(TokenError::NotGranted { name }) => {
                let right = right.map_or("access", Right::as_str);
                let what = match &scope {
                    tokens::Scope::Queue(queue) => format!("queue {queue}"),
                    tokens::Scope::All => "every queue".to_owned(),
                };
                return Err(ApiError::Forbidden(format!("token {name} may not {right} on {what}")).into());
            }
        }
    }
    Ok(Granted { name })
}

/// The token of `Authorization: Bearer`, else of the `token` query parameter (browsers cannot
/// set headers on a WebSocket upgrade).
fn presented_token(req: &Request) -> Option<String> {
    if let Some(token) = secret::bearer_token(req.headers()) {
        return Some(token.to_owned());
    }
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, value)| name == "token" && !value.is_empty())
        .last()
        .map(|(_, value)| value.into_owned())
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
