//! Queue administration: policy (`/p`), pause and resume (`/control`), figures (`/stats`).

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use restmq_shared::{
    ControlReply, ControlStat, Policy, PolicyReply, QueueStatus, StatusListReply, StatusReply,
};

use super::args::{Args, QueuePath};
use super::reply;
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/p/{queue}", get(get_policy).post(set_policy))
        .route("/control", get(list_statuses))
        .route("/control/", get(list_statuses))
        .route("/control/{queue}", get(get_status).post(set_status))
        .route("/stats", get(all_stats))
        .route("/stats/", get(all_stats))
        .route("/stats/{queue}", get(queue_stats))
}

/// `GET /p/<queue>`: `broadcast` unless set otherwise.
async fn get_policy(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let value = state.broker.info(&queue).await?.map_or(Policy::default(), |i| i.policy);
    reply::json(&PolicyReply { queue, value }, callback)
}

/// `POST /p/<queue>` with `policy=broadcast|roundrobin`: answers `OK\r\n`.
async fn set_policy(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let given = args.require("policy")?;
    let policy = Policy::parse(given).ok_or_else(|| {
        ApiError::InvalidArgument(format!("policy must be broadcast or roundrobin, not {given:?}"))
    })?;
    state.broker.set_policy(&queue, policy).await?;
    Ok(reply::text("OK\r\n".to_owned()))
}

/// `GET /control/<queue>`: `started` or `paused`.
async fn get_status(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let status = state.broker.info(&queue).await?.map_or(QueueStatus::default(), |i| i.status);
    reply::json(&StatusReply { queue, status }, callback)
}

/// `GET /control/`: every queue's status.
async fn list_statuses(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let stats = state.broker.stats().await?;
    let queues = stats.queues.into_iter().map(|(name, q)| (name, q.status)).collect();
    reply::json(&StatusListReply { queues }, callback)
}

/// `POST /control/<queue>` with `status=start|stop`.
async fn set_status(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let given = args.require("status")?;
    let status = QueueStatus::parse_command(given)
        .ok_or_else(|| ApiError::InvalidArgument(format!("status must be start or stop, not {given:?}")))?;
    state.broker.set_status(&queue, status).await?;
    reply::json(&ControlReply { stat: ControlStat { queue, status: status.as_number() } }, None)
}

/// `GET /stats/`: every queue's figures and the store kind.
async fn all_stats(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&state.broker.stats().await?, callback)
}

/// `GET /stats/<queue>`: one queue's figures; 404 when it does not exist.
async fn queue_stats(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    match state.broker.queue_stats(&queue).await? {
        Some(stats) => reply::json(&stats, callback),
        None => Err(ApiError::NotFound(format!("queue {queue}"))),
    }
}
