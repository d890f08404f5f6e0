//! RestMQ's collectd endpoint: `POST /collectd/data` (value lists, into `collectd_data`) and
//! `POST /collectd/event` (notifications, into `collectd_event`). Bodies are collectd's plain
//! text protocol or `write_http` JSON, whatever the content type; the answer lists the keys
//! added, one `<queue>:<n>\r\n` line each (none for messages a `collectd:` filter dropped).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::reply;
use crate::app_state::AppState;
use crate::auth::{guard, Deferred, Need, Right, Rule};
use crate::error::ApiError;
use crate::feed::{collectd, SinkError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collectd/data", post(add_collectd_data.layer(guard(Rule::handler()))))
        .route("/collectd/event", post(add_collectd_event.layer(guard(Rule::handler()))))
}

/// `POST /collectd/data`: one message per value list.
async fn add_collectd_data(
    State(state): State<AppState>,
    deferred: Deferred,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    relay(&state, &deferred, body, false).await
}

/// `POST /collectd/event`: one message per notification.
async fn add_collectd_event(
    State(state): State<AppState>,
    deferred: Deferred,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    relay(&state, &deferred, body, true).await
}

/// Adds to the feed's queue, which needs `produce` there (as any add to it).
async fn relay(
    state: &AppState,
    deferred: &Deferred,
    body: Result<Bytes, BytesRejection>,
    event: bool,
) -> Result<Response, ApiError> {
    let feed = state.feeds.collectd(&state.broker);
    deferred.allow(Need::on(Right::Produce, if event { feed.event.as_str() } else { feed.data.as_str() }))?;
    let body = body.map_err(|e| ApiError::InvalidArgument(format!("body: {}", e.body_text())))?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::InvalidArgument("body is not UTF-8".into()))?;
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
