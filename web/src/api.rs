//! HTTP calls to the restmq server, typed with the wire types of `restmq-shared`. Message
//! operations go through the JSON protocol (`POST /queue`); settings through RestMQ's routes.
//! Every call carries the tab's token ([`crate::auth`]) and reports a refusal to it.

use std::fmt;

use gloo_net::http::{Request, RequestBuilder, Response};
use restmq_shared::{
    BrowseReply, Command, CommandReply, ConsumersReply, ErrorCode, ErrorResponse, HistoryReply, MessageKey,
    Policy, PurgeReply, QueueName, QueueStatus, StatsReply,
};
use serde::de::DeserializeOwned;
use web_sys::UrlSearchParams;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The server answered with an error body.
    Server { status: u16, code: ErrorCode, message: String },
    /// The server answered an error without a readable body.
    Status(u16),
    /// No answer (server down, network gone) or an answer that does not parse.
    Network(String),
}

impl ApiError {
    /// The machine-readable code, as the server names it.
    /// Whether the server refused the call for want of a (better) token: 401 or 403.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Server { status, .. } | Self::Status(status) => crate::auth::is_refusal(*status),
            Self::Network(_) => false,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Server { code, .. } => code.as_str(),
            Self::Status(_) => "http_status",
            Self::Network(_) => "network",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server { code, message, .. } => write!(f, "{}: {message}", describe(*code)),
            Self::Status(status) => write!(f, "the server answered HTTP {status}"),
            Self::Network(detail) => write!(f, "cannot reach the server ({detail})"),
        }
    }
}

/// What an error code means to the user. Matched by name, so a code the shared crate adds
/// later still shows (as its name) before it gets a sentence here.
pub fn describe(code: ErrorCode) -> &'static str {
    match code.as_str() {
        "missing_argument" => "Something required is missing",
        "invalid_argument" => "A value is not accepted",
        "invalid_queue_name" => "Invalid queue name",
        "invalid_key" => "Invalid message key",
        "malformed_json" => "The request is not valid JSON",
        "unknown_command" => "Unknown command",
        "invalid_callback" => "Invalid JSONP callback",
        "too_large" => "The message is too large",
        "unsupported_media_type" => "Unsupported content type",
        "not_found" => "Not found",
        "method_not_allowed" => "Method not allowed",
        "upgrade_required" => "WebSocket upgrade required",
        "unauthorized" => "Sign-in required",
        "forbidden" => "Not allowed",
        "too_many_requests" => "Limit reached, try again later",
        "store_unavailable" => "The store is unavailable",
        "outcome_unknown" => "The store did not confirm in time: check before retrying",
        "bad_request" => "The request is not valid HTTP",
        "uri_too_long" => "The address is too long",
        "headers_too_large" => "The request headers are too large",
        "request_timeout" => "The request took too long to send",
        "insufficient_storage" => "The server's disk is full: writes are refused until space is freed",
        "invalid_idempotency_key" => "Invalid Idempotency-Key",
        "idempotency_key_in_use" => "A request with this Idempotency-Key is still running",
        "internal" => "Server error (see its log)",
        other => other,
    }
}

/// A message read by a hard or soft get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub key: MessageKey,
    pub value: String,
    /// Soft gets: how many times the message was read.
    pub count: Option<u64>,
}

/// `GET /stats/`: every queue's figures.
pub async fn fetch_stats() -> Result<StatsReply, ApiError> {
    read_json(Request::get("/stats/")).await
}

/// Adds a message (`{"cmd":"add"}`); returns its key.
pub async fn publish(queue: &QueueName, value: String) -> Result<MessageKey, ApiError> {
    match command(&Command::Add { queue: queue.clone(), value }).await? {
        CommandReply::Message { key, .. } => Ok(key),
        other => Err(unexpected(&other)),
    }
}

/// Adds several messages in one request (`POST /q/<queue>`, NDJSON): each value is a JSON
/// string (taken as it is) or any JSON (stored as its compact text).
pub async fn publish_batch(queue: &QueueName, values: &[serde_json::Value]) -> Result<(), ApiError> {
    let lines: Vec<String> = values.iter().map(serde_json::Value::to_string).collect();
    let request =
        authed(Request::post(&format!("/q/{queue}"))).header("content-type", "application/x-ndjson");
    let request = request.body(lines.join("\n")).map_err(|e| ApiError::Network(e.to_string()))?;
    let response = request.send().await.map_err(|e| ApiError::Network(e.to_string()))?;
    check(response).await.map(drop)
}

/// Hard get (`take`, removes the message) or soft get (`get`, peeks); `None` when empty.
pub async fn get_message(queue: &QueueName, soft: bool) -> Result<Option<Got>, ApiError> {
    let cmd =
        if soft { Command::Get { queue: queue.clone() } } else { Command::Take { queue: queue.clone() } };
    match command(&cmd).await? {
        CommandReply::Message { key, value, .. } => Ok(Some(Got { key, value, count: None })),
        CommandReply::Peeked { key, value, count, .. } => Ok(Some(Got { key, value, count: Some(count) })),
        CommandReply::Empty { .. } => Ok(None),
        other => Err(unexpected(&other)),
    }
}

/// What the publish form sends: `POST /q/<queue>` with `ttl` and `delay` in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub queue: QueueName,
    pub value: String,
    pub ttl: Option<u32>,
    pub delay: Option<u32>,
}

/// `POST /q/<queue>` (form): adds one message with its ttl and delay; returns its key.
pub async fn publish_form(publish: &Publish) -> Result<String, ApiError> {
    let ttl = publish.ttl.map(|n| n.to_string());
    let delay = publish.delay.map(|n| n.to_string());
    let mut fields = vec![("value", publish.value.as_str())];
    fields.extend(ttl.as_deref().map(|t| ("ttl", t)));
    fields.extend(delay.as_deref().map(|d| ("delay", d)));
    let response = send(Request::post(&format!("/q/{}", publish.queue)), Some(form(&fields)?)).await?;
    let text = response.text().await.map_err(|e| ApiError::Network(format!("bad reply: {e}")))?;
    Ok(text.trim_end().to_owned())
}

/// `GET /browse/<queue>`: up to `limit` waiting messages after `after`, oldest first; takes nothing.
pub async fn browse(queue: &QueueName, after: Option<&str>, limit: u32) -> Result<BrowseReply, ApiError> {
    browse_where(queue, after, limit, false).await
}

/// `GET /browse/<queue>`, the waiting messages or (`leased`) the leased ones; takes nothing.
pub async fn browse_where(
    queue: &QueueName,
    after: Option<&str>,
    limit: u32,
    leased: bool,
) -> Result<BrowseReply, ApiError> {
    let mut query = vec![("limit", limit.to_string())];
    query.extend(after.map(|key| ("after", key.to_owned())));
    if leased {
        query.push(("leased", "1".to_owned()));
    }
    read_json(Request::get(&format!("/browse/{queue}")).query(query.iter().map(|(k, v)| (*k, v.as_str()))))
        .await
}

/// `GET /history/<queue>`: the last hour of the queue's figures.
pub async fn history(queue: &QueueName) -> Result<HistoryReply, ApiError> {
    read_json(Request::get(&format!("/history/{queue}"))).await
}

/// `GET /consumers/<queue>`: every stream on the queue.
pub async fn consumers(queue: &QueueName) -> Result<ConsumersReply, ApiError> {
    read_json(Request::get(&format!("/consumers/{queue}"))).await
}

/// `POST /q/<queue>.dead/redrive`: moves the dead letters back to `queue`.
pub async fn redrive(queue: &QueueName) -> Result<String, ApiError> {
    let response = send(Request::post(&format!("/q/{queue}.dead/redrive")), None).await?;
    let text = response.text().await.map_err(|e| ApiError::Network(format!("bad reply: {e}")))?;
    Ok(text.trim_end().to_owned())
}

/// `GET /p/<queue>`: the delivery policy.
pub async fn policy(queue: &QueueName) -> Result<Policy, ApiError> {
    let reply: serde_json::Value = read_json(Request::get(&format!("/p/{queue}"))).await?;
    Ok(reply["value"].as_str().and_then(Policy::parse).unwrap_or(Policy::Broadcast))
}

/// `POST /p/<queue>`: sets the delivery policy.
pub async fn set_policy(queue: &QueueName, policy: Policy) -> Result<(), ApiError> {
    let form = form(&[("policy", policy.as_str())])?;
    send(Request::post(&format!("/p/{queue}")), Some(form)).await.map(drop)
}

/// `POST /control/<queue>`: starts or stops streaming delivery.
pub async fn set_status(queue: &QueueName, status: QueueStatus) -> Result<(), ApiError> {
    let command = match status {
        QueueStatus::Started => "start",
        QueueStatus::Paused => "stop",
    };
    let form = form(&[("status", command)])?;
    send(Request::post(&format!("/control/{queue}")), Some(form)).await.map(drop)
}

/// `DELETE /q/<queue>`: removes every message; `true` when the queue existed.
pub async fn purge(queue: &QueueName) -> Result<bool, ApiError> {
    let reply: PurgeReply = read_json(Request::delete(&format!("/q/{queue}"))).await?;
    Ok(reply.status == 1)
}

async fn command(cmd: &Command) -> Result<CommandReply, ApiError> {
    let request = authed(Request::post("/queue")).json(cmd).map_err(|e| ApiError::Network(e.to_string()))?;
    let response = request.send().await.map_err(|e| ApiError::Network(e.to_string()))?;
    let response = check(response).await?;
    response.json().await.map_err(|e| ApiError::Network(format!("bad reply: {e}")))
}

fn unexpected(reply: &CommandReply) -> ApiError {
    ApiError::Network(format!("unexpected reply {reply:?}"))
}

fn form(fields: &[(&str, &str)]) -> Result<UrlSearchParams, ApiError> {
    let params = UrlSearchParams::new().map_err(|_| ApiError::Network("no URLSearchParams".to_owned()))?;
    for (name, value) in fields {
        params.append(name, value);
    }
    Ok(params)
}

async fn read_json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, ApiError> {
    let response = send(request, None).await?;
    response.json().await.map_err(|e| ApiError::Network(format!("bad reply: {e}")))
}

/// The request with the tab's token, if any.
fn authed(request: RequestBuilder) -> RequestBuilder {
    match crate::auth::token() {
        Some(token) => request.header("authorization", &format!("Bearer {token}")),
        None => request,
    }
}

async fn send(request: RequestBuilder, form: Option<UrlSearchParams>) -> Result<Response, ApiError> {
    let request = authed(request);
    let sent = match form {
        Some(form) => request.body(form).map_err(|e| ApiError::Network(e.to_string()))?.send().await,
        None => request.send().await,
    };
    check(sent.map_err(|e| ApiError::Network(e.to_string()))?).await
}

/// Turns an error answer into an [`ApiError`] carrying the server's code.
async fn check(response: Response) -> Result<Response, ApiError> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    crate::auth::note_status(status);
    match response.json::<ErrorResponse>().await {
        Ok(body) => Err(ApiError::Server { status, code: body.error.code, message: body.error.message }),
        Err(_) => Err(ApiError::Status(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server errors are shown from their code, with the server's message after it.
    #[test]
    fn errors_are_shown_by_code() {
        let error = ApiError::Server {
            status: 400,
            code: ErrorCode::InvalidQueueName,
            message: "queue name has ' '".to_owned(),
        };
        assert_eq!(error.code(), "invalid_queue_name");
        assert_eq!(error.to_string(), "Invalid queue name: queue name has ' '");
        assert_eq!(ApiError::Status(502).code(), "http_status");
        assert!(ApiError::Network("refused".into()).to_string().contains("refused"));
    }
}
