//! Streaming transports: thin adapters that turn a broker [`Subscription`] into COMET,
//! WebSocket or SSE frames.

mod comet;
mod heartbeat;
mod sse;
mod ws;
mod ws_ack;

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use restmq_shared::{CloseNotice, GapNotice, GapRange, MessageKey, QueueName};

use crate::broker::{Broker, CloseReason, Delivery, Replay, StreamInfo, Subscription};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::http::args::Args;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/c/{queue}", get(comet::stream_comet))
        .route("/ws/{queue}", get(ws::stream_websocket))
        .route("/sse/{queue}", get(sse::stream_sse))
}

/// What a streaming consumer gets next.
pub(crate) enum Next {
    Message(Arc<Delivery>),
    Closed(CloseReason),
}

/// Waits for the next message of `sub`, or for the server to end the stream.
pub(crate) async fn next(sub: &mut Subscription, shutdown: &tokio_util::sync::CancellationToken) -> Next {
    tokio::select! {
        delivery = sub.recv() => match delivery {
            Some(d) => Next::Message(d),
            None => Next::Closed(sub.close_reason().unwrap_or(CloseReason::Shutdown)),
        },
        () = shutdown.cancelled() => Next::Closed(CloseReason::Shutdown),
    }
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

/// How a stream shows in the consumers list.
pub(crate) fn described(transport: &'static str, observer: bool, ack: bool, peer: Peer) -> StreamInfo {
    StreamInfo { observer, transport, addr: peer.0, ack }
}

/// Whether the stream only looks (`observe=1`: an observer, which takes nothing) rather than
/// consumes. An observer has nothing to acknowledge, so `ack=1` with it is refused.
pub(crate) fn observing(args: &Args) -> Result<bool, ApiError> {
    let observe = args.flag("observe");
    if observe && args.flag("ack") {
        return Err(ApiError::InvalidArgument(
            "observe=1 takes nothing, so there is nothing to acknowledge: drop ack=1 or observe=1".to_owned(),
        ));
    }
    Ok(observe)
}

/// Joins `queue` as an observer or as a consumer, listed in its consumers list as `info`.
pub(crate) async fn join(
    broker: &Broker,
    queue: &QueueName,
    observe: bool,
    info: StreamInfo,
) -> Result<Subscription, ApiError> {
    let mut sub = if observe { broker.observe(queue).await? } else { broker.subscribe(queue) };
    sub.list_as(info);
    Ok(sub)
}

/// A frame replayed to a resuming consumer: a missed message, or a gap notice.
pub(crate) struct ReplayFrame {
    /// The message key (`None` for a gap notice).
    pub key: Option<MessageKey>,
    pub json: Bytes,
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

/// What a consumer resuming after `since` missed; live copies of exactly those messages will
/// be skipped (keys are never reused, purge included, so a key names one message for good).
pub(crate) fn resume(
    broker: &Broker,
    sub: &mut Subscription,
    since: Option<&MessageKey>,
) -> Vec<ReplayFrame> {
    let Some(since) = since else { return Vec::new() };
    let frames: Vec<ReplayFrame> = broker
        .replay(sub.queue(), since)
        .into_iter()
        .map(|item| match item {
            Replay::Gap { from, to } => {
                let notice = GapNotice { gap: GapRange { from, to } };
                ReplayFrame { key: None, json: Bytes::from(serde_json::to_vec(&notice).unwrap_or_default()) }
            }
            Replay::Message { key, json } => ReplayFrame { key: Some(key), json },
        })
        .collect();
    sub.skip_replayed(frames.iter().filter_map(|f| f.key.as_ref()).map(|k| k.n));
    frames
}

/// Arranges for the connection to be cut when the server cuts `sub` as slow: its client is
/// not reading, so the transport is stuck writing and would never notice by itself.
pub(crate) fn cut_when_slow(sub: &Subscription, cut: Option<Extension<ConnectionCut>>) {
    if let Some(Extension(cut)) = cut {
        sub.when_slow(move || cut.cut());
    }
}

/// The JSON told to a consumer whose stream the server ends.
pub(crate) fn close_notice(sub: &Subscription, reason: CloseReason) -> String {
    let notice = CloseNotice { queue: sub.queue().clone(), closed: reason.as_str().to_owned() };
    serde_json::to_string(&notice).unwrap_or_default()
}
