//! Looking without taking: `/browse/<q>` (waiting or leased messages, paged),
//! `/history/<q>` (the last hour of figures) and `/consumers/<q>` (who streams from it).
//! They need the `observe` right; none of them changes the queue.

use axum::extract::State;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use restmq_shared::MessageKey;

use super::reply;
use crate::app_state::AppState;
use crate::auth::{guard, Rule};
use crate::broker::{DEFAULT_BROWSE_LIMIT, MAX_BROWSE_LIMIT};
use crate::error::ApiError;
use crate::extract::{Args, QueuePath};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/browse/{queue}", get(browse.layer(guard(Rule::observe()))))
        .route("/history/{queue}", get(history.layer(guard(Rule::observe()))))
        .route("/consumers/{queue}", get(consumers.layer(guard(Rule::observe()))))
}

/// `GET /browse/<queue>?limit=N&after=<key>[&leased=1]`.
async fn browse(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let limit = match args.get("limit") {
        None => DEFAULT_BROWSE_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=MAX_BROWSE_LIMIT) => n,
            _ => {
                return Err(ApiError::InvalidArgument(format!(
                    "limit must be 1 to {MAX_BROWSE_LIMIT}, not {v:?}"
                )))
            }
        },
    };
    let after = args.get("after").map(MessageKey::try_from).transpose()?;
    let page = state.broker.browse(&queue, after.as_ref(), limit, args.flag("leased")).await?;
    reply::json(&page, callback)
}

/// `GET /history/<queue>`: the last hour of the queue's figures.
async fn history(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&state.broker.queue_history(&queue), callback)
}

/// `GET /consumers/<queue>`: every streaming connection on the queue, on every process.
async fn consumers(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&state.broker.consumers_of(&queue).await?, callback)
}
