//! `GET /sse/<queue>`: Server-Sent Events, `id:` = message key, `data:` = the message JSON,
//! with keep-alive comments.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::{close_notice, next, Next};
use crate::error::ApiError;
use crate::http::args::QueuePath;
use crate::state::AppState;

/// Streams the queue's messages as events until the client leaves or the server ends it.
pub async fn stream_sse(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
) -> Result<Response, ApiError> {
    let sub = state.broker.subscribe(&queue);
    let shutdown = state.broker.shutdown_token().clone();
    let events = stream::unfold(Some(sub), move |sub| {
        let shutdown = shutdown.clone();
        async move {
            let mut sub = sub?;
            let (event, more) = match next(&mut sub, &shutdown).await {
                Next::Message(delivery) => {
                    let data = std::str::from_utf8(&delivery.json).unwrap_or_default();
                    let event = Event::default().id(delivery.message.key.to_string()).data(data);
                    delivery.mark_delivered();
                    (event, true)
                }
                Next::Closed(reason) => {
                    (Event::default().event("close").data(close_notice(&sub, reason)), false)
                }
            };
            Some((Ok::<_, Infallible>(event), more.then_some(sub)))
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
