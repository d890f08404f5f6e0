//! Queue administration: policy (`/p`), pause and resume (`/control`), figures (`/stats`).

use axum::extract::State;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use restmq_shared::{
    ControlReply, ControlStat, NodeReply, NodesReply, Policy, PolicyReply, QueueStatus, StatsReply,
    StatusListReply, StatusReply,
};

use super::reply;
use crate::app_state::AppState;
use crate::auth::{guard, Rule};
use crate::error::ApiError;
use crate::extract::{Args, QueuePath};
use crate::store::QuarantinedQueue;

/// Every route here needs `admin` (on the queue, or on every queue), but the health checks.
pub fn routes() -> Router<AppState> {
    let admin = || guard(Rule::admin());
    Router::new()
        .route("/p/{queue}", get(get_policy.layer(admin())).post(set_policy.layer(admin())))
        .route("/control", get(list_statuses.layer(admin())))
        .route("/control/", get(list_statuses.layer(admin())))
        .route("/control/{queue}", get(get_status.layer(admin())).post(set_status.layer(admin())))
        .route("/stats", get(all_stats.layer(admin())))
        .route("/stats/", get(all_stats.layer(admin())))
        .route("/stats/{queue}", get(queue_stats.layer(admin())))
        .route("/healthz", get(healthz.layer(guard(Rule::open()))))
        .route("/readyz", get(readyz.layer(guard(Rule::open()))))
        .route("/nodes", get(list_nodes.layer(admin())))
        .route("/nodes/pick", get(pick_node.layer(admin())))
}

/// `GET /p/<queue>`: `broadcast` unless set otherwise.
async fn get_policy(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let value = state.broker.info(&queue).await?.map_or(Policy::default(), |i| i.policy);
    reply::json_line(&PolicyReply { queue, value }, callback)
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

/// `GET /control/<queue>`: 1 started or 0 paused, in RestMQ's shape.
async fn get_status(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let status = state.broker.info(&queue).await?.map_or(QueueStatus::default(), |i| i.status);
    let stat = ControlStat { queue: queue.clone(), status: status.as_number() };
    reply::json_line(&StatusReply { queue, status: stat, state: status }, callback)
}

/// `GET /control/`: every queue's status.
async fn list_statuses(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let stats = state.broker.stats().await?;
    let count = stats.queues.len() as u64;
    let queues = stats
        .queues
        .into_iter()
        .map(|(name, q)| (name, ControlStat { queue: q.name, status: q.state.as_number() }));
    reply::json_line(&StatusListReply { queues: queues.collect(), count }, callback)
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
    reply::json_line(&ControlReply { stat: ControlStat { queue, status: status.as_number() } }, None)
}

/// `GET /stats/`: every queue's figures, the store kind, the feeds' counters and the store's
/// quarantined queues.
async fn all_stats(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let mut stats = state.broker.stats().await?;
    stats.feeds = state.feeds.snapshot();
    let quarantined = state.broker.store_health().quarantined;
    reply::json(&AllStats { stats, quarantined }, callback)
}

/// `/stats/`: the shared reply, with the store's queues whose files were set aside (absent
/// when there are none).
#[derive(serde::Serialize)]
struct AllStats {
    #[serde(flatten)]
    stats: StatsReply,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    quarantined: Vec<QuarantinedQueue>,
}

/// `GET /stats/<queue>`: RestMQ's `{"queue","len"}` with the added figures; a queue that
/// does not exist has `len` 0.
async fn queue_stats(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&state.broker.queue_stats(&queue).await?, callback)
}

/// The live processes as the wire shows them, least loaded first.
async fn node_replies(state: &AppState) -> Result<Vec<NodeReply>, ApiError> {
    Ok(state
        .broker
        .nodes()
        .await?
        .into_iter()
        .map(|n| NodeReply { id: n.id, addr: n.addr, load: n.load, consumers: n.consumers })
        .collect())
}

/// `GET /nodes`: every live server process on this store, least loaded first.
async fn list_nodes(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&NodesReply { nodes: node_replies(&state).await? }, callback)
}

/// `GET /nodes/pick`: the least-loaded process, for spreading consumers.
async fn pick_node(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let nodes = node_replies(&state).await?;
    let least = nodes.into_iter().next().ok_or_else(|| ApiError::NotFound("no live node".to_owned()))?;
    reply::json(&least, callback)
}

/// `GET /healthz`: the process is up.
async fn healthz() -> Result<Response, ApiError> {
    reply::json(&serde_json::json!({"status": "ok"}), None)
}

/// `GET /readyz`: the store answers; 503 when it does not (`store_unavailable`, also when it
/// does not in time) or refuses writes (`insufficient_storage`: its disk is full). Still ready
/// with queues whose files were quarantined: `quarantined` counts them (absent when none; the
/// route needs no credential, so their names are only in `/stats/`, for `admin`).
async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.broker.ready().await {
        Ok(store) => {
            let mut ready = serde_json::json!({"status": "ready", "store": store});
            let quarantined = state.broker.store_health().quarantined.len();
            if quarantined > 0 {
                ready["quarantined"] = quarantined.into();
            }
            reply::json(&ready, None)
        }
        Err(error) => {
            let mut response = ApiError::from(error).into_response();
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok(response)
        }
    }
}
