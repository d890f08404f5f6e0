//! `GET /c/<queue>`: COMET, a chunked `text/plain` stream of one JSON line per message
//! (`cb({...});` lines with a JSONP callback).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{stream, StreamExt};

use super::{close_notice, cut_when_slow, next, resume, since_arg, Next};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::http::args::{Args, QueuePath};
use crate::state::AppState;

/// Streams the queue's messages as lines until the client leaves or the server ends it.
pub async fn stream_comet(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    cut: Option<Extension<ConnectionCut>>,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?.map(str::to_owned);
    state.check_stream_capacity()?;
    let since = since_arg(&args, &queue)?;
    let mut sub = state.broker.subscribe(&queue);
    cut_when_slow(&sub, cut);
    let replayed: Vec<Result<Bytes, std::convert::Infallible>> =
        resume(&state.broker, &mut sub, since.as_ref())
            .await
            .into_iter()
            .map(|f| Ok(frame(&f.json, callback.as_deref())))
            .collect();
    let shutdown = state.broker.shutdown_token().clone();
    let lines = stream::unfold(Some(sub), move |sub| {
        let (callback, shutdown) = (callback.clone(), shutdown.clone());
        async move {
            let mut sub = sub?;
            let (json, more) = match next(&mut sub, &shutdown).await {
                Next::Message(delivery) => {
                    delivery.mark_delivered();
                    (delivery.json.clone(), true)
                }
                Next::Closed(reason) => (Bytes::from(close_notice(&sub, reason)), false),
            };
            let line = frame(&json, callback.as_deref());
            Some((Ok::<_, std::convert::Infallible>(line), more.then_some(sub)))
        }
    });
    let connection = state.broker.metrics().open_connection();
    let body = Body::from_stream(connection.hold(stream::iter(replayed).chain(lines)));
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "no-cache")], body).into_response())
}

fn frame(json: &[u8], callback: Option<&str>) -> Bytes {
    let mut line = Vec::with_capacity(json.len() + 8 + callback.map_or(0, str::len));
    match callback {
        Some(cb) => {
            line.extend_from_slice(cb.as_bytes());
            line.push(b'(');
            line.extend_from_slice(json);
            line.extend_from_slice(b");\r\n");
        }
        None => {
            line.extend_from_slice(json);
            line.extend_from_slice(b"\r\n");
        }
    }
    Bytes::from(line)
}
