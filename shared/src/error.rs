//! Stable, machine-readable error codes and the `{"error":{"code","message"}}` body.

use serde::{Deserialize, Serialize};

/// Every error the server answers with; the web client matches on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required argument is missing or empty.
    MissingArgument,
    /// An argument has a value outside what the route accepts.
    InvalidArgument,
    /// The queue name breaks the naming rules.
    InvalidQueueName,
    /// A message key is malformed or belongs to another queue.
    InvalidKey,
    /// A JSON document could not be parsed.
    MalformedJson,
    /// The JSON protocol's `cmd` is not one the server knows.
    UnknownCommand,
    /// The JSONP `callback` is not a plain JavaScript identifier path.
    InvalidCallback,
    /// The body or message is larger than the server accepts.
    TooLarge,
    /// The content type of the body is not supported by the route.
    UnsupportedMediaType,
    /// The request is not valid HTTP (a malformed request line or header).
    BadRequest,
    /// The request line (the URI) is longer than the server reads.
    UriTooLong,
    /// The request has more or larger headers than the server reads.
    HeadersTooLarge,
    /// No route has this path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// A WebSocket route was called without an upgrade.
    UpgradeRequired,
    /// Credentials are missing or wrong (bearer token, or Basic auth from `acl.conf`).
    Unauthorized,
    /// The credentials or the client address do not allow this request.
    Forbidden,
    /// A limit was reached.
    TooManyRequests,
    /// The request's body did not arrive in time; the connection is closed.
    RequestTimeout,
    /// The `Idempotency-Key` header is too long, repeated, or not visible ASCII.
    InvalidIdempotencyKey,
    /// A request with the same `Idempotency-Key` is still being processed, or was interrupted
    /// and may have added; retry later (see `Retry-After` when given).
    IdempotencyKeyInUse,
    /// The store cannot be reached; the request did not take effect.
    StoreUnavailable,
    /// The store did not confirm in time: the request may or may not have taken effect.
    /// Retry an add with the same `Idempotency-Key`.
    OutcomeUnknown,
    /// The store's disk is full: the write was refused and changed nothing; retry once
    /// space is freed.
    InsufficientStorage,
    /// Something failed inside the server; details are in its log.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingArgument => "missing_argument",
            Self::InvalidArgument => "invalid_argument",
            Self::InvalidQueueName => "invalid_queue_name",
            Self::InvalidKey => "invalid_key",
            Self::MalformedJson => "malformed_json",
            Self::UnknownCommand => "unknown_command",
            Self::InvalidCallback => "invalid_callback",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BadRequest => "bad_request",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "headers_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UpgradeRequired => "upgrade_required",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooManyRequests => "too_many_requests",
            Self::RequestTimeout => "request_timeout",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::StoreUnavailable => "store_unavailable",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::MissingArgument
            | Self::InvalidArgument
            | Self::InvalidQueueName
            | Self::InvalidKey
            | Self::MalformedJson
            | Self::UnknownCommand
            | Self::InvalidCallback
            | Self::BadRequest
            | Self::InvalidIdempotencyKey => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::IdempotencyKeyInUse => 409,
            Self::TooLarge => 413,
            Self::UriTooLong => 414,
            Self::UnsupportedMediaType => 415,
            Self::UpgradeRequired => 426,
            Self::HeadersTooLarge => 431,
            Self::TooManyRequests => 429,
            Self::RequestTimeout => 408,
            Self::Internal => 500,
            Self::StoreUnavailable => 503,
            Self::OutcomeUnknown => 504,
            Self::InsufficientStorage => 507,
        }
    }
}

/// The inner object of an error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// An error answer: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

impl ErrorResponse {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorBody { code, message: message.into() } }
    }
}
