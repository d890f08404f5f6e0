//! RestMQ's collectd endpoint: `POST /collectd/data` (value lists, into `collectd_data`) and
//! `POST /collectd/event` (notifications, into `collectd_event`). Bodies are collectd's plain
//! text protocol or `write_http` JSON, whatever the content type; the answer lists the keys
//! added, one `<queue>:<n>\r\n` line each (none for messages a `collectd:` filter dropped).

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::reply;
use crate::error::ApiError;
use crate::feed::{collectd, SinkError};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collectd/data", post(add_collectd_data))
        .route("/collectd/event", post(add_collectd_event))
}

/// `POST /collectd/data`: one message per value list.
async fn add_collectd_data(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    relay(&state, &body, false).await
}

/// `POST /collectd/event`: one message per notification.
async fn add_collectd_event(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    relay(&state, &body, true).await
}

async fn relay(state: &AppState, body: &[u8], event: bool) -> Result<Response, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::InvalidArgument("body is not UTF-8".into()))?;
    let feed = state.feeds.collectd(&state.broker);
    let (queue, messages) = match event {
        false => (&feed.data, collectd::data_messages(text)),
        true => (&feed.event, collectd::event_messages(text)),
    };
    let messages = messages.map_err(|e| ApiError::InvalidArgument(format!("collectd body: {e}")))?;
    let mut keys = String::new();
    for message in messages {
        match feed.publisher.publish(queue, message).await {
            Ok(Some(key)) => keys.push_str(&format!("{key}\r\n")),
            Ok(None) => {}
            Err(SinkError::Broker(err)) => return Err(err.into()),
            Err(SinkError::Http(err)) => return Err(ApiError::InvalidArgument(err)),
        }
    }
    Ok(reply::text(keys))
}
