//! The HTTP side of the client commands: server URLs, requests, and errors worth reading.

use crate::remote::describe_reqwest;
use std::time::Duration;

use restmq_shared::ErrorResponse;

use super::ServerArg;

/// Why a client command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach the restmq server at {server}: {detail} (is `restmq serve` running there?)")]
    Unreachable { server: String, detail: String },
    #[error("the server answered {status}: {code}: {message}")]
    Server { status: u16, code: String, message: String },
    #[error("{0}")]
    Nothing(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server { .. } | Self::Other(_) => 1,
            Self::Unreachable { .. } => 3,
            Self::Nothing(_) => 4,
        }
    }

    /// An error answer: the server's `code` and `message` when it sent RestMQ's error body.
    pub fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(answer) => Self::Server {
                status,
                code: answer.error.code.as_str().to_owned(),
                message: answer.error.message,
            },
            Err(_) => Self::Server {
                status,
                code: "unexpected_answer".to_owned(),
                message: String::from_utf8_lossy(body).trim().chars().take(300).collect(),
            },
        }
    }
}

/// A server to talk to; cloning is shallow.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    pub base: String,
}

impl Client {
    pub fn new(server: &ServerArg) -> Result<Self, CliError> {
        let url = reqwest::Url::parse(&server.server)
            .map_err(|e| CliError::Other(format!("--server {:?} is not a URL: {e}", server.server)))?;
        if url.scheme() != "http" {
            return Err(CliError::Other(format!("--server must be an http:// URL, not {:?}", server.server)));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| CliError::Other(e.to_string()))?;
        Ok(Self { http, base: server.server.trim_end_matches('/').to_owned() })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`; an unreachable server or an error answer becomes a [`CliError`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(CliError::from_answer(status.as_u16(), &body))
    }

    /// Sends `request` and reads the whole answer as text.
    pub async fn text(&self, request: reqwest::RequestBuilder) -> Result<(u16, String), CliError> {
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.unreachable(&e))?;
        Ok((status, body))
    }

    pub fn unreachable(&self, err: &reqwest::Error) -> CliError {
        if err.is_connect() || err.is_timeout() || err.is_request() {
            CliError::Unreachable { server: self.base.clone(), detail: describe_reqwest(err) }
        } else {
            CliError::Other(format!("{}: {}", self.base, describe_reqwest(err)))
        }
    }
}
