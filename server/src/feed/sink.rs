//! Where feeds publish: the broker of this process, or a restmq server over HTTP.

use std::time::Duration;

use restmq_shared::{MessageKey, QueueName};

use crate::broker::{Broker, BrokerError};

/// The destination of a feed's messages; cloning is shallow.
#[derive(Clone)]
pub enum Sink {
    /// `restmq serve --feed`: straight into this server's broker.
    Broker(Broker),
    /// `restmq feed --server URL`: `POST /q/<queue>` on that server.
    Http { client: reqwest::Client, server: String },
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Http(String),
}

impl Sink {
    /// A sink posting to the server at `server` (`http://host:port`).
    pub fn http(server: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client without TLS always builds");
        Self::Http { client, server: server.trim_end_matches('/').to_owned() }
    }

    pub async fn publish(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<MessageKey, SinkError> {
        match self {
            Self::Broker(broker) => {
                broker.check_size(&value)?;
                Ok(broker.add(queue, value, ttl).await?)
            }
            Self::Http { client, server } => {
                let mut form = vec![("value", value)];
                if let Some(ttl) = ttl {
                    form.push(("ttl", ttl.as_secs().max(1).to_string()));
                }
                let url = format!("{server}/q/{queue}");
                let res = client.post(&url).form(&form).send().await.map_err(|e| {
                    SinkError::Http(format!("POST {url}: {}", crate::remote::describe_reqwest(&e)))
                })?;
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(SinkError::Http(format!("POST {url}: {status}: {}", body.trim())));
                }
                MessageKey::try_from(body.trim()).map_err(|e| SinkError::Http(format!("POST {url}: {e}")))
            }
        }
    }
}
