//! The HTTP error type: every failure a handler can answer, mapped to a status and the
//! shared `{"error":{"code","message"}}` body. Internal causes are logged, never sent.

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use restmq_shared::{ErrorCode, ErrorResponse, NameError};

use crate::broker::BrokerError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing argument `{0}`")]
    MissingArgument(&'static str),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidQueueName(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unknown cmd {cmd:?}; known are {}", known.join(", "))]
    UnknownCommand { cmd: String, known: &'static [&'static str] },
    #[error("callback must be a JavaScript identifier path like `cb` or `app.onData`")]
    InvalidCallback,
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("this route needs a WebSocket upgrade")]
    UpgradeRequired,
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("the server holds its limit of {0} streaming connections; retry later")]
    TooManyStreams(usize),
    /// No (valid) credentials; `challenge` is the `WWW-Authenticate` answer.
    #[error("{message}")]
    Unauthorized { message: String, challenge: &'static str },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl From<NameError> for ApiError {
    /// A name or key that breaks the naming rules.
    fn from(err: NameError) -> Self {
        match err {
            NameError::BadKey => Self::InvalidKey(err.to_string()),
            _ => Self::InvalidQueueName(err.to_string()),
        }
    }
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MissingArgument(_) => ErrorCode::MissingArgument,
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::InvalidQueueName(_) => ErrorCode::InvalidQueueName,
            Self::InvalidKey(_) | Self::Broker(BrokerError::ForeignKey { .. }) => ErrorCode::InvalidKey,
            Self::Broker(BrokerError::NotDeadLetter(_)) => ErrorCode::InvalidQueueName,
            Self::MalformedJson(_) => ErrorCode::MalformedJson,
            Self::UnknownCommand { .. } => ErrorCode::UnknownCommand,
            Self::InvalidCallback => ErrorCode::InvalidCallback,
            Self::TooLarge(_) | Self::Broker(BrokerError::TooLarge { .. }) => ErrorCode::TooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::UpgradeRequired => ErrorCode::UpgradeRequired,
            Self::TooManyStreams(_) => ErrorCode::TooManyRequests,
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::InvalidIdempotencyKey(_) => ErrorCode::InvalidIdempotencyKey,
            Self::Broker(
                BrokerError::IdempotencyKeyInUse | BrokerError::IdempotencyOutcomeUnknown { .. },
            ) => ErrorCode::IdempotencyKeyInUse,
            Self::Broker(BrokerError::IdempotencyFull { .. }) => ErrorCode::TooManyRequests,
            Self::Broker(BrokerError::Unavailable(_)) => ErrorCode::StoreUnavailable,
            Self::Broker(BrokerError::OutcomeUnknown(_)) => ErrorCode::OutcomeUnknown,
            Self::Broker(BrokerError::ClaimLost) => ErrorCode::IdempotencyKeyInUse,
            Self::Broker(BrokerError::Internal(_)) => ErrorCode::Internal,
            Self::Broker(BrokerError::InsufficientStorage(_)) => ErrorCode::InsufficientStorage,
            Self::Broker(BrokerError::QueueFull(_)) => ErrorCode::TooManyRequests,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match code {
            ErrorCode::Internal => {
                tracing::error!(error = %self, "request failed");
                "internal error; see the server log".to_owned()
            }
            ErrorCode::StoreUnavailable => {
                tracing::warn!(error = %self, "store unavailable");
                "the store is unavailable; nothing was done; retry later".to_owned()
            }
            ErrorCode::OutcomeUnknown => {
                tracing::warn!(error = %self, "store outcome unknown");
                "the store did not confirm in time: this may or may not have taken effect; \
                 retry an add with the same Idempotency-Key"
                    .to_owned()
            }
            ErrorCode::InsufficientStorage => {
                tracing::warn!(error = %self, "store disk full");
                "the store's disk is full: writes are refused until space is freed".to_owned()
            }
            _ => self.to_string(),
        };
        let retry_after = match &self {
            Self::Broker(
                BrokerError::IdempotencyFull { retry_after_secs }
                | BrokerError::IdempotencyOutcomeUnknown { retry_after_secs },
            ) => Some(*retry_after_secs),
            _ => None,
        };
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorResponse::new(code, message))).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Self::Unauthorized { challenge, .. } = &self {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
