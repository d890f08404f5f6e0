//! RestMQ's REST routes: add with POST, hard and soft get, purge, the queue list, `/j`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use restmq_shared::{GetReply, LeaseReply, MessageKey, PurgeReply, QueueName, RecentReply, RedriveReply};

use super::batch::batch_values;
use super::{reply, web};
use crate::app_state::AppState;
use crate::auth::acl::Section;
use crate::auth::{guard, Deferred, Need, Right, Rule};
use crate::error::ApiError;
use crate::extract::{Args, IdempotencyKey, QueuePath, MAX_TTL_SECS};

pub fn routes() -> Router<AppState> {
    let list = || get(list_queues.layer(guard(Rule::admin())));
    Router::new()
        .route(
            "/",
            get(root.layer(guard(Rule::handler()))).post(add_by_argument.layer(guard(Rule::handler()))),
        )
        .route("/q", list())
        .route("/q/", list())
        .route(
            "/q/{queue}",
            get(get_message.layer(guard(Rule::consume().or_look())))
                .post(add_message.layer(guard(Rule::produce())))
                .delete(purge_queue.layer(guard(Rule::admin()))),
        )
        .route(
            "/q/{queue}/{item}",
            post(nack_or_redrive.layer(guard(Rule::nack_or_redrive())))
                .delete(ack_message.layer(guard(Rule::consume().in_section(Section::RestConsumer)))),
        )
        .route("/j/{queue}", get(recent_keys.layer(guard(Rule::admin()))))
}

/// What `/` needs, from its arguments: a read without `queue` is the web app (open), with
/// one a hard get (consume); `POST` adds (produce). A request the handler will refuse as
/// malformed needs valid credentials all the same.
fn root_needs(method: &Method, args: &Result<Args, ApiError>) -> Need {
    let reading = method == Method::GET || method == Method::HEAD;
    match args.as_ref().map(|args| args.get("queue")) {
        Ok(Some(queue)) => Need::on(if reading { Right::Consume } else { Right::Produce }, queue),
        Ok(None) if reading => Need::Open,
        _ => Need::Authenticated,
    }
}

/// `GET /`: the web app, or with `queue` RestMQ's hard get.
async fn root(
    State(state): State<AppState>,
    deferred: Deferred,
    method: Method,
    args: Result<Args, ApiError>,
) -> Result<Response, ApiError> {
    deferred.allow(root_needs(&method, &args))?;
    let args = args?;
    match args.get("queue") {
        Some(name) => {
            let queue = QueueName::try_from(name)?;
            pop_or_peek(&state, &method, &queue, &args).await
        }
        None => Ok(web::index(&state).await),
    }
}

/// `POST /` with `queue` and `value`: RestMQ's add.
async fn add_by_argument(
    State(state): State<AppState>,
    deferred: Deferred,
    idempotency: Result<IdempotencyKey, ApiError>,
    args: Result<Args, ApiError>,
) -> Result<Response, ApiError> {
    deferred.allow(root_needs(&Method::POST, &args))?;
    let (IdempotencyKey(idempotency), args) = (idempotency?, args?);
    let queue = QueueName::try_from(args.require("queue")?)?;
    add(&state, &queue, idempotency.as_deref(), &args).await
}

/// `POST /q/<queue>`: adds `value`; answers `<queue>:<n>\r\n`.
async fn add_message(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    IdempotencyKey(idempotency): IdempotencyKey,
    args: Args,
) -> Result<Response, ApiError> {
    add(&state, &queue, idempotency.as_deref(), &args).await
}

/// One message (`value`) or a batch (NDJSON, or a JSON array with `batch=1`). With an
/// `Idempotency-Key` header, a retry within the window gets the first answer and adds
/// nothing; the key is claimed before adding, so a refusal (key in use, memory full) adds
/// nothing either.
async fn add(
    state: &AppState,
    queue: &QueueName,
    idempotency: Option<&str>,
    args: &Args,
) -> Result<Response, ApiError> {
    let batch = batch_values(args)?;
    let messages = batch.as_ref().map_or(1, Vec::len);
    let keys = state
        .broker
        .add_once::<ApiError, _, _>(queue, idempotency, messages, || async {
            let ttl = args.ttl()?;
            Ok(match &batch {
                Some(values) => {
                    for value in values {
                        state.broker.check_size(value)?;
                    }
                    state.broker.add_batch(queue, values.clone(), ttl).await?
                }
                None => {
                    let value = args.value()?;
                    state.broker.check_size(value)?;
                    match args.seconds("delay", MAX_TTL_SECS)? {
                        Some(delay) => {
                            vec![state.broker.add_delayed(queue, value.to_owned(), ttl, delay).await?]
                        }
                        None => vec![state.broker.add(queue, value.to_owned(), ttl).await?],
                    }
                }
            })
        })
        .await?;
    answer(&keys, batch.is_some())
}

/// `<queue>:<n>\r\n` for one message; a JSON array of keys for a batch.
fn answer(keys: &[MessageKey], batch: bool) -> Result<Response, ApiError> {
    match (batch, keys) {
        (false, [key]) => Ok(reply::text(format!("{key}\r\n"))),
        _ => reply::json(&keys, None),
    }
}

/// `GET /q/<queue>`: hard get, or a soft get with `soft=1`; `204` when empty.
async fn get_message(
    State(state): State<AppState>,
    method: Method,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    pop_or_peek(&state, &method, &queue, &args).await
}

/// A HEAD request changes nothing: it answers 200 when a message waits, else 204.
async fn pop_or_peek(
    state: &AppState,
    method: &Method,
    queue: &QueueName,
    args: &Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    if method == Method::HEAD {
        let waiting = state.broker.info(queue).await?.is_some_and(|i| i.len > 0);
        return Ok(if waiting { StatusCode::OK } else { StatusCode::NO_CONTENT }.into_response());
    }
    if let Some(lease) = args.lease("reserve")? {
        return match state.broker.reserve(queue, lease).await? {
            Some(m) => reply::json_line(
                &GetReply { key: m.key, value: m.value, count: 0, deliveries: Some(m.deliveries) },
                callback,
            ),
            None => Ok(StatusCode::NO_CONTENT.into_response()),
        };
    }
    let found = if args.flag("soft") {
        state.broker.peek(queue).await?.map(|m| GetReply {
            key: m.key,
            value: m.value,
            count: m.count,
            deliveries: None,
        })
    } else {
        state.broker.take(queue).await?.map(|m| GetReply {
            key: m.key,
            value: m.value,
            count: 0,
            deliveries: None,
        })
    };
    match found {
        Some(message) => reply::json_line(&message, callback),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `DELETE /q/<queue>`: purges the queue and closes its streaming consumers.
async fn purge_queue(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
) -> Result<Response, ApiError> {
    let existed = state.broker.purge(&queue).await?;
    reply::json_line(&PurgeReply { queue, status: u8::from(existed) }, None)
}

/// `GET /q/`: every queue name.
async fn list_queues(State(state): State<AppState>, args: Args) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    reply::json(&state.broker.queues().await?, callback)
}

/// `GET /j/<queue>`: the newest ten keys and the length.
async fn recent_keys(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    args: Args,
) -> Result<Response, ApiError> {
    let callback = args.callback()?;
    let len = state.broker.info(&queue).await?.map_or(0, |i| i.len);
    let keys = state.broker.recent_keys(&queue, 10).await?;
    reply::json(&RecentReply { queue, len, keys }, callback)
}

/// `DELETE /q/<queue>/<key>`: acknowledges a reserved message.
async fn ack_message(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((queue, key)) =
        path.map_err(|_| ApiError::InvalidKey("the path is not valid UTF-8".to_owned()))?;
    let (queue, key) = (QueueName::try_from(queue)?, MessageKey::try_from(key)?);
    let done = state.broker.ack(&queue, &key).await?;
    reply::json(&LeaseReply { queue, key, done }, None)
}

/// `POST /q/<queue>.dead/redrive` moves a dead-letter queue back; `POST /q/<queue>/<key>`
/// gives a reserved message back (nack).
async fn nack_or_redrive(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((queue, item)) =
        path.map_err(|_| ApiError::InvalidKey("the path is not valid UTF-8".to_owned()))?;
    let queue = QueueName::try_from(queue)?;
    if item == "redrive" {
        let (live, redriven) = state.broker.redrive(&queue).await?;
        return reply::json(&RedriveReply { queue: live, redriven }, None);
    }
    let key = MessageKey::try_from(item)?;
    let done = state.broker.nack(&queue, &key).await?;
    reply::json(&LeaseReply { queue, key, done }, None)
}
