//! `GET /sse/<queue>`: Server-Sent Events, `id:` = message key, `data:` = the message JSON,
//! `event: gap` and `event: close` notices, with keep-alive comments.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::StreamExt;
use restmq_shared::{MessageKey, QueueName};

use super::source::{frames, observing, open, Encoder, Opening};
use super::{since_arg, Peer};
use crate::app_state::AppState;
use crate::broker::CloseReason;
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::extract::{Args, QueuePath};

/// Streams the queue's messages as events until the client leaves or the server ends it.
pub async fn stream_sse(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    headers: HeaderMap,
    cut: Option<Extension<ConnectionCut>>,
    peer: Peer,
    args: Args,
) -> Result<Response, ApiError> {
    // A reconnecting EventSource sends `Last-Event-ID`; `since` wins when both are given.
    let since = match since_arg(&args, &queue)? {
        Some(key) => Some(key),
        None => last_event_id(&headers, &queue),
    };
    let opening = Opening { queue, transport: "sse", since, peer, cut };
    let source = open(&state, opening, observing(&args)?).await?;
    let sse = Sse::new(frames(source, Events, None).map(Ok::<_, Infallible>));
    Ok(match state.settings.heartbeat {
        Some(every) => sse.keep_alive(KeepAlive::new().interval(every)).into_response(),
        None => sse.into_response(),
    })
}

/// SSE events: a message with its key as `id`, a gap or close notice as a named event.
struct Events;

impl Encoder for Events {
    type Frame = Event;

    fn message(&self, key: Option<&MessageKey>, json: &Bytes) -> Event {
        let data = std::str::from_utf8(json).unwrap_or_default();
        match key {
            Some(key) => Event::default().id(key.to_string()).data(data),
            None => Event::default().event("gap").data(data),
        }
    }

    fn closed(&self, _reason: CloseReason, notice: String) -> Event {
        Event::default().event("close").data(notice)
    }
}

/// `Last-Event-ID`, when it is a key of `queue` (anything else is ignored, as browsers
/// send whatever id they last saw).
fn last_event_id(headers: &HeaderMap, queue: &QueueName) -> Option<MessageKey> {
    let id = headers.get("last-event-id")?.to_str().ok()?;
    MessageKey::try_from(id).ok().filter(|key| &key.queue == queue)
}
