//! `GET /sse/<queue>`: Server-Sent Events, `id:` = message key, `data:` = the message JSON,
//! with keep-alive comments.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{stream, StreamExt};
use restmq_shared::{MessageKey, QueueName};

use super::{close_notice, cut_when_slow, described, join, next, observing, resume, since_arg, Next, Peer};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::http::args::{Args, QueuePath};
use crate::state::AppState;

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
    let observe = observing(&args)?;
    state.check_stream_capacity()?;
    let mut sub = join(&state.broker, &queue, observe, described("sse", observe, false, peer)).await?;
    cut_when_slow(&sub, cut);
    let replayed: Vec<Result<Event, Infallible>> = resume(&state.broker, &mut sub, since.as_ref())
        .into_iter()
        .map(|f| {
            let data = std::str::from_utf8(&f.json).unwrap_or_default();
            Ok(match f.key {
                Some(key) => Event::default().id(key.to_string()).data(data),
                None => Event::default().event("gap").data(data),
            })
        })
        .collect();
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
    let connection = state.broker.metrics().open_connection();
    let events = connection.hold(stream::iter(replayed).chain(events));
    let sse = Sse::new(events);
    Ok(match state.settings.heartbeat {
        Some(every) => sse.keep_alive(KeepAlive::new().interval(every)).into_response(),
        None => sse.into_response(),
    })
}

/// `Last-Event-ID`, when it is a key of `queue` (anything else is ignored, as browsers
/// send whatever id they last saw).
fn last_event_id(headers: &HeaderMap, queue: &QueueName) -> Option<MessageKey> {
    let id = headers.get("last-event-id")?.to_str().ok()?;
    MessageKey::try_from(id).ok().filter(|key| &key.queue == queue)
}
