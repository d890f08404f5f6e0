//! `POST /queue`: RestMQ's JSON protocol (`add`, `get`, `take`, `del`) and its additions
//! (`reserve`, `ack`, `nack`).

use axum::extract::State;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use restmq_shared::protocol::command_names;
use restmq_shared::{Command, CommandReply, MessageKey, QueueName};
use serde_json::Value;

use super::reply;
use crate::app_state::AppState;
use crate::auth::{guard, Deferred, Need, Right, Rule};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::extract::{lease_duration, Args, IdempotencyKey, DEFAULT_LEASE_SECS};

pub fn routes() -> Router<AppState> {
    Router::new().route("/queue", post(run_command.layer(guard(Rule::handler()))))
}

/// What a command needs on its queue: `add` produces; `get`, `take`, `del` and the lease
/// commands consume; anything else needs admin. A document without a command and a queue
/// needs only valid credentials (the handler refuses it).
fn command_needs(doc: &Value) -> Need {
    let (Some(cmd), Some(queue)) =
        (doc.get("cmd").and_then(Value::as_str), doc.get("queue").and_then(Value::as_str))
    else {
        return Need::Authenticated;
    };
    let right = match cmd {
        "add" => Right::Produce,
        "get" | "take" | "del" | "reserve" | "ack" | "nack" => Right::Consume,
        _ => Right::Admin,
    };
    Need::on(right, queue)
}

/// Runs one JSON command from the `body`/`msg` form field or a raw JSON body. An `add` with
/// an `Idempotency-Key` header is published once, as `POST /q/<queue>` does.
async fn run_command(
    State(state): State<AppState>,
    deferred: Deferred,
    idempotency: Result<IdempotencyKey, ApiError>,
    args: Result<Args, ApiError>,
) -> Result<Response, ApiError> {
    let doc = args.and_then(|args| document(&args));
    deferred.allow(doc.as_ref().map_or(Need::Authenticated, command_needs))?;
    let (IdempotencyKey(idempotency), command) = (idempotency?, command(doc?)?);
    reply::json(&execute(&state.broker, command, idempotency.as_deref()).await?, None)
}

/// Runs a command; an `add` with an `idempotency` key is published once.
async fn execute(
    broker: &Broker,
    command: Command,
    idempotency: Option<&str>,
) -> Result<CommandReply, ApiError> {
    Ok(match command {
        Command::Add { queue, value } => {
            let key = add(broker, &queue, &value, idempotency).await?;
            CommandReply::Message { queue, key, value }
        }
        Command::Get { queue } => match broker.peek(&queue).await? {
            Some(m) => CommandReply::Peeked { queue, key: m.key, value: m.value, count: m.count },
            None => CommandReply::empty(),
        },
        Command::Take { queue } => match broker.take(&queue).await? {
            Some(m) => CommandReply::Message { queue, key: m.key, value: m.value },
            None => CommandReply::empty(),
        },
        Command::Del { queue, key } => {
            let deleted = broker.delete(&queue, &key).await?;
            CommandReply::Deleted { queue, key, deleted }
        }
        Command::Reserve { queue, lease } => {
            let lease = lease_duration(lease.unwrap_or(DEFAULT_LEASE_SECS))?;
            let leased = broker.reserve(&queue, lease).await?;
            leased.map_or_else(CommandReply::empty, |m| CommandReply::Leased {
                queue,
                key: m.key,
                value: m.value,
                deliveries: m.deliveries,
            })
        }
        Command::Ack { queue, key } => {
            let acked = broker.ack(&queue, &key).await?;
            CommandReply::Acked { queue, key, acked }
        }
        Command::Nack { queue, key } => {
            let nacked = broker.nack(&queue, &key).await?;
            CommandReply::Nacked { queue, key, nacked }
        }
    })
}

/// Adds `value`; with an `idempotency` key, once.
async fn add(
    broker: &Broker,
    queue: &QueueName,
    value: &str,
    idempotency: Option<&str>,
) -> Result<MessageKey, ApiError> {
    let keys = broker
        .add_once::<ApiError, _, _>(queue, idempotency, 1, || async {
            broker.check_size(value)?;
            Ok(vec![broker.add(queue, value.to_owned(), None).await?])
        })
        .await?;
    keys.into_iter()
        .next()
        .ok_or_else(|| ApiError::InvalidArgument("that Idempotency-Key answered no message".to_owned()))
}

/// Missing fields, bad names and bad keys get their own error codes, before serde's
/// generic message.
fn check_fields(cmd: &str, doc: &Value) -> Result<(), ApiError> {
    let needed: &[&'static str] = match cmd {
        "add" => &["queue", "value"],
        "del" | "ack" | "nack" => &["queue", "key"],
        _ => &["queue"],
    };
    for &field in needed {
        match doc.get(field) {
            None | Some(Value::Null) => return Err(ApiError::MissingArgument(field)),
            Some(Value::String(s)) if s.is_empty() => return Err(ApiError::MissingArgument(field)),
            _ => {}
        }
    }
    let queue = doc["queue"]
        .as_str()
        .ok_or_else(|| ApiError::InvalidQueueName("queue must be a string".to_owned()))?;
    QueueName::try_from(queue)?;
    if matches!(cmd, "del" | "ack" | "nack") {
        let key =
            doc["key"].as_str().ok_or_else(|| ApiError::InvalidKey("key must be a string".to_owned()))?;
        MessageKey::try_from(key)?;
    }
    Ok(())
}

/// The JSON document of the `body`/`msg` field or the raw body.
fn document(args: &Args) -> Result<Value, ApiError> {
    let text = match args.get("body").or_else(|| args.get("msg")) {
        Some(field) => field,
        None => {
            let raw = args.raw.as_ref().ok_or(ApiError::MissingArgument("body"))?;
            std::str::from_utf8(&raw.bytes)
                .map_err(|_| ApiError::MalformedJson("body is not UTF-8".to_owned()))?
        }
    };
    serde_json::from_str(text).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// The command a document holds.
fn command(doc: Value) -> Result<Command, ApiError> {
    let cmd = doc
        .get("cmd")
        .ok_or(ApiError::MissingArgument("cmd"))?
        .as_str()
        .ok_or_else(|| ApiError::UnknownCommand { cmd: doc["cmd"].to_string(), known: command_names() })?
        .to_owned();
    if !command_names().contains(&cmd.as_str()) {
        return Err(ApiError::UnknownCommand { cmd, known: command_names() });
    }
    check_fields(&cmd, &doc)?;
    serde_json::from_value(doc).map_err(|e| ApiError::InvalidArgument(format!("bad {cmd} command: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_need_their_rights() {
        let need = |body: &str| command_needs(&serde_json::from_str(body).unwrap());
        assert_eq!(need(r#"{"cmd":"add","queue":"q","value":"v"}"#), Need::on(Right::Produce, "q"));
        assert_eq!(need(r#"{"cmd":"take","queue":"q"}"#), Need::on(Right::Consume, "q"));
        assert_eq!(need(r#"{"cmd":"del","queue":"q","key":"q:1"}"#), Need::on(Right::Consume, "q"));
        assert_eq!(need(r#"{"cmd":"purge","queue":"q"}"#), Need::on(Right::Admin, "q"));
        assert_eq!(need(r#"{"cmd":"add"}"#), Need::Authenticated);
        assert_eq!(need("[1]"), Need::Authenticated);
    }
}
