//! `GET /c/<queue>`: COMET, a chunked `text/plain` stream of one JSON line per message
//! (`cb({...});` lines with a JSONP callback).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{stream, StreamExt};

use super::{close_notice, cut_when_slow, described, join, next, observing, resume, since_arg, Next, Peer};
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::http::args::{Args, QueuePath};
use crate::state::AppState;

/// Streams the queue's messages as lines until the client leaves or the server ends it.
pub async fn stream_comet(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    cut: Option<Extension<ConnectionCut>>,
    peer: Peer,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?.map(str::to_owned);
    state.check_stream_capacity()?;
    let since = since_arg(&args, &queue)?;
    let observe = observing(&args)?;
    let mut sub = join(&state.broker, &queue, observe, described("comet", observe, false, peer)).await?;
    cut_when_slow(&sub, cut);
    let replayed: Vec<Result<Bytes, std::convert::Infallible>> =
        resume(&state.broker, &mut sub, since.as_ref())
            .into_iter()
            .map(|f| Ok(frame(&f.json, callback.as_deref())))
            .collect();
    let shutdown = state.broker.shutdown_token().clone();
    let heartbeat = state.settings.heartbeat;
    let lines = stream::unfold(Some(sub), move |sub| {
        let (callback, shutdown) = (callback.clone(), shutdown.clone());
        async move {
            let mut sub = sub?;
            let waited = match heartbeat {
                Some(every) => tokio::time::timeout(every, next(&mut sub, &shutdown)).await.ok(),
                None => Some(next(&mut sub, &shutdown).await),
            };
            let (line, more) = match waited {
                // A beat without a message: an empty line, which line clients skip.
                None => (Bytes::from_static(b"\r\n"), true),
                Some(Next::Message(delivery)) => {
                    delivery.mark_delivered();
                    (frame(&delivery.json, callback.as_deref()), true)
                }
                Some(Next::Closed(reason)) => {
                    (frame(close_notice(&sub, reason).as_bytes(), callback.as_deref()), false)
                }
            };
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
