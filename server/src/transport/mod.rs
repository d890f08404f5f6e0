//! Streaming transports: thin adapters that turn a broker [`Subscription`] into COMET,
//! WebSocket or SSE frames.

mod comet;
mod sse;
mod ws;
mod ws_ack;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use restmq_shared::CloseNotice;

use crate::broker::{CloseReason, Delivery, Subscription};
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

/// The JSON told to a consumer whose stream the server ends.
pub(crate) fn close_notice(sub: &Subscription, reason: CloseReason) -> String {
    let notice = CloseNotice { queue: sub.queue().clone(), closed: reason.as_str().to_owned() };
    serde_json::to_string(&notice).unwrap_or_default()
}
