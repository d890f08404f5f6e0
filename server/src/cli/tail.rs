//! `restmq tail QUEUE`: streams a queue over WebSocket (`/ws/<queue>`) and prints each
//! message as one JSON line, `{"key":"q:7","value":"…"}`, until stopped, `--count` messages,
//! or `--timeout` seconds. With `--observe` it only looks (`?observe=1`): nothing is taken.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use restmq_shared::{MessageKey, QueueName};
use tokio_tungstenite::tungstenite::{self, Message};

use super::client::CliError;
use super::ServerArg;

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The queue.
    pub queue: QueueName,

    /// Resume after this key (sent as `?since=`; servers without history ignore it).
    #[arg(long)]
    pub since: Option<MessageKey>,

    /// Only look: see every message added from now on and take none (an observer).
    #[arg(long)]
    pub observe: bool,

    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,

    /// Stop after this many seconds; with --count, exit 4 if fewer arrived.
    #[arg(long)]
    pub timeout: Option<f64>,

    #[command(flatten)]
    pub server: ServerArg,
}

pub async fn run(args: TailArgs) -> Result<(), CliError> {
    let url = ws_url(&args)?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.map_err(|e| match e {
        tungstenite::Error::Io(err) => {
            CliError::Unreachable { server: args.server.server.clone(), detail: err.to_string() }
        }
        tungstenite::Error::Http(answer) => {
            CliError::from_answer(answer.status().as_u16(), answer.body().as_deref().unwrap_or_default())
        }
        other => CliError::Other(format!("{url}: {other}")),
    })?;
    let deadline =
        args.timeout.map(|secs| tokio::time::Instant::now() + Duration::from_secs_f64(secs.max(0.0)));
    let mut stdout = std::io::stdout();
    let mut seen = 0u64;
    while args.count.is_none_or(|count| seen < count) {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => socket.next().await,
        };
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(|| "no reason".to_owned(), |f| f.reason.to_string());
                return Err(CliError::Other(format!(
                    "the server closed the stream ({why}) after {seen} messages"
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                return Err(CliError::Other(format!("the stream broke after {seen} messages: {err}")))
            }
            None => return Err(CliError::Other(format!("the stream ended after {seen} messages"))),
        };
        seen += 1;
        let written = writeln!(stdout, "{}", text.as_str()).and_then(|()| stdout.flush());
        if written.is_err() {
            return Ok(()); // the reader went away (`| head`)
        }
    }
    let _ = socket.close(None).await;
    match args.count {
        Some(count) if seen < count => {
            Err(CliError::Nothing(format!("timed out after {seen} of {count} messages")))
        }
        _ => Ok(()),
    }
}

/// `ws://host:port/ws/<queue>[?since=<key>]` from `--server`.
fn ws_url(args: &TailArgs) -> Result<reqwest::Url, CliError> {
    let bad = |e: String| CliError::Other(format!("--server {:?}: {e}", args.server.server));
    let mut url = reqwest::Url::parse(&args.server.server).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad("must be an http:// URL".to_owned()));
    }
    url.set_scheme("ws").map_err(|()| bad("cannot use it for WebSocket".to_owned()))?;
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/ws/{}", args.queue));
    if let Some(since) = &args.since {
        url.query_pairs_mut().append_pair("since", &since.to_string());
    }
    if args.observe {
        url.query_pairs_mut().append_pair("observe", "1");
    }
    Ok(url)
}
