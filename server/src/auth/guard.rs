//! Applying what routes declare: the layer a handler's [`Rule`] becomes ([`guard`]), and
//! [`Deferred`], with which a handler applies the [`Need`] it learned from its arguments. Both
//! check the `acl.conf` section and the token's rights for the caller that the router-wide
//! layer admitted ([`Caller`]); with no check configured there is no caller and both pass.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use restmq_shared::ErrorResponse;
use tower::{Layer, Service};

use super::acl::AclDenial;
use super::rule::{Access, Need, Rule};
use super::tokens::{self, Right, Scope, TokenError};
use super::{secret, AddFrames, Auth, Granted, BASIC_CHALLENGE, BEARER_CHALLENGE};
use crate::error::ApiError;

/// Who is asking, as the router-wide layer found: present on every request once a check is
/// configured.
#[derive(Clone)]
pub struct Caller {
    pub client: Option<IpAddr>,
    pub auth: Arc<Auth>,
}

/// The layer that applies `rule` to a handler's requests.
pub fn guard(rule: Rule) -> Guard {
    Guard(rule)
}

#[derive(Clone, Copy)]
pub struct Guard(Rule);

impl<S> Layer<S> for Guard {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, rule: self.0 }
    }
}

#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    rule: Rule,
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Some(caller) = req.extensions().get::<Caller>().cloned() else {
            return Either::Left(self.inner.call(req));
        };
        // The service that was made ready serves the request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let rule = self.rule;
        Either::Right(Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &())
                .await
                .map(|params| params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
                .unwrap_or_default();
            match rule.access(&parts, &params) {
                Some(access) => {
                    if let Err(error) = admit(&caller, &mut parts, &access) {
                        tracing::debug!(method = %parts.method, path = %parts.uri.path(), %error, "request refused");
                        return Ok(error.into_response());
                    }
                }
                None => {
                    let pending = Pending {
                        caller,
                        method: parts.method.clone(),
                        uri: parts.uri.clone(),
                        headers: parts.headers.clone(),
                    };
                    parts.extensions.insert(pending);
                }
            }
            inner.call(Request::from_parts(parts, body)).await
        }))
    }
}

/// A check left to the handler by [`Rule::handler`].
#[derive(Clone)]
struct Pending {
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

/// The check a handler makes once it knows what its request needs; passes when no check is
/// configured.
pub struct Deferred(Option<Pending>);

impl<S: Send + Sync> FromRequestParts<S> for Deferred {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.extensions.remove::<Pending>()))
    }
}

impl Deferred {
    /// Refuses the request unless the caller has what `need` names (under the REST section of
    /// the request's method).
    pub fn allow(&self, need: Need) -> Result<(), ApiError> {
        let Some(pending) = &self.0 else { return Ok(()) };
        let access = Access::by_method(need, &pending.method);
        if access.need == Need::Open {
            return Ok(());
        }
        let caller = &pending.caller;
        check(&caller.auth, caller.client, &pending.headers, &pending.uri, &access).map(drop).inspect_err(|error| {
            tracing::debug!(method = %pending.method, path = %pending.uri.path(), %error, "request refused");
        })
    }
}

/// Checks `access` for a request, and notes the token and the verdict on `add` frames.
fn admit(caller: &Caller, parts: &mut Parts, access: &Access) -> Result<(), ApiError> {
    if access.need == Need::Open {
        return Ok(());
    }
    let (auth, client) = (&caller.auth, caller.client);
    let granted = check(auth, client, &parts.headers, &parts.uri, access)?;
    if let Some(adding) = access.for_add_frames() {
        let verdict = check(auth, client, &parts.headers, &parts.uri, &adding)
            .map(drop)
            .map_err(|error| ErrorResponse::new(error.code(), error.to_string()));
        parts.extensions.insert(AddFrames(verdict));
    }
    if let Some(granted) = granted {
        parts.extensions.insert(granted);
    }
    Ok(())
}

/// Applies the `acl.conf` section and the token's rights that `access` names.
fn check(
    auth: &Auth,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    uri: &Uri,
    access: &Access,
) -> Result<Option<Granted>, ApiError> {
    if let (Some(file), Some(section)) = (&auth.acl, access.section) {
        match file.current().check(section, client, headers) {
            Ok(()) => {}
            Err(AclDenial::Address) => {
                let who = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                return Err(ApiError::Forbidden(format!("address {who} may not use {}", section.name())));
            }
            Err(AclDenial::Password) => {
                let message = format!("{} needs a user name and password", section.name());
                return Err(ApiError::Unauthorized { message, challenge: BASIC_CHALLENGE });
            }
        }
    }
    auth.tokens.as_ref().map(|tokens| check_token(tokens, headers, uri, access)).transpose()
}

fn check_token(
    tokens: &tokens::Tokens,
    headers: &HeaderMap,
    uri: &Uri,
    access: &Access,
) -> Result<Granted, ApiError> {
    let unauthorized =
        |message: &str| ApiError::Unauthorized { message: message.to_owned(), challenge: BEARER_CHALLENGE };
    let Some(token) = presented_token(headers, uri) else {
        return Err(unauthorized("a token is needed: `Authorization: Bearer …` or `?token=…`"));
    };
    let rights = access.rights();
    let checks = match rights.is_empty() {
        true => vec![(None, Scope::All)],
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
                    Scope::Queue(queue) => format!("queue {queue}"),
                    Scope::All => "every queue".to_owned(),
                };
                return Err(ApiError::Forbidden(format!("token {name} may not {right} on {what}")));
            }
        }
    }
    Ok(Granted { name })
}

/// The token of `Authorization: Bearer`, else of the `token` query parameter (browsers cannot
/// set headers on a WebSocket upgrade).
fn presented_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(token) = secret::bearer_token(headers) {
        return Some(token.to_owned());
    }
    form_urlencoded::parse(uri.query()?.as_bytes())
        .filter(|(name, value)| name == "token" && !value.is_empty())
        .last()
        .map(|(_, value)| value.into_owned())
}
