//! `GET /c/<queue>`: COMET, a chunked `text/plain` stream of one JSON line per message
//! (`cb({...});` lines with a JSONP callback), an empty line as a heartbeat.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::StreamExt;
use restmq_shared::MessageKey;

use super::source::{frames, observing, open, Encoder, Opening};
use super::{since_arg, Peer};
use crate::app_state::AppState;
use crate::broker::CloseReason;
use crate::connection::ConnectionCut;
use crate::error::ApiError;
use crate::extract::{Args, QueuePath};

/// Streams the queue's messages as lines until the client leaves or the server ends it.
pub async fn stream_comet(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    cut: Option<Extension<ConnectionCut>>,
    peer: Peer,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?.map(str::to_owned);
    let since = since_arg(&args, &queue)?;
    let opening = Opening { queue, transport: "comet", since, peer, cut };
    let source = open(&state, opening, observing(&args)?).await?;
    let lines = frames(source, Lines { callback }, state.settings.heartbeat).map(Ok::<_, Infallible>);
    let body = Body::from_stream(lines);
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "no-cache")], body).into_response())
}

/// COMET lines, wrapped in the JSONP callback when there is one.
struct Lines {
    callback: Option<String>,
}

impl Lines {
    fn line(&self, json: &[u8]) -> Bytes {
        let mut line = Vec::with_capacity(json.len() + 8 + self.callback.as_ref().map_or(0, String::len));
        match &self.callback {
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
}

impl Encoder for Lines {
    type Frame = Bytes;

    fn message(&self, _key: Option<&MessageKey>, json: &Bytes) -> Bytes {
        self.line(json)
    }

    fn closed(&self, _reason: CloseReason, notice: String) -> Bytes {
        self.line(notice.as_bytes())
    }

    /// An empty line, which line-reading clients skip.
    fn heartbeat(&self) -> Option<Bytes> {
        Some(Bytes::from_static(b"\r\n"))
    }
}
