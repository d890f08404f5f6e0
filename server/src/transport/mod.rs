//! Streaming transports: thin adapters over one skeleton ([`source`]: open, replay, live,
//! close) that encode what it sends as COMET lines, SSE events or WebSocket frames.

mod comet;
mod heartbeat;
mod source;
mod sse;
mod ws;
mod ws_ack;

use axum::handler::Handler;
use axum::routing::get;
use axum::Router;
use restmq_shared::{MessageKey, QueueName};

use crate::app_state::AppState;
use crate::auth::acl::Section;
use crate::auth::{guard, Rule};
use crate::error::ApiError;
use crate::extract::Args;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/c/{queue}", get(comet::stream_comet.layer(guard(comet_rule()))))
        .route("/ws/{queue}", get(ws::stream_websocket.layer(guard(websocket_rule()))))
        .route("/sse/{queue}", get(sse::stream_sse.layer(guard(comet_rule()))))
}

/// A stream consumes, or only observes with `observe=1`, under `acl.conf`'s `[comet:consumer]`
/// (COMET and SSE) or `[websocket:consumer]`; a WebSocket's `add` frames are checked as
/// `POST /q/<queue>` at the upgrade.
const fn comet_rule() -> Rule {
    Rule::consume().or_observe().in_section(Section::CometConsumer)
}

const fn websocket_rule() -> Rule {
    Rule::consume().or_observe().in_section(Section::WebsocketConsumer)
}

/// The client's address as the server saw it (`unknown` without a socket, as when a test
/// calls the router directly).
pub(crate) struct Peer(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(peer.map_or_else(|| "unknown".to_owned(), |info| info.0.to_string())))
    }
}

/// The `since` argument, which must be a key of `queue`.
pub(crate) fn since_arg(args: &Args, queue: &QueueName) -> Result<Option<MessageKey>, ApiError> {
    let Some(since) = args.get("since") else { return Ok(None) };
    let key = MessageKey::try_from(since)?;
    if &key.queue != queue {
        return Err(ApiError::InvalidKey(format!("since={key} is not a key of queue {queue}")));
    }
    Ok(Some(key))
}
