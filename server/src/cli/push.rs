//! `restmq push QUEUE [VALUE|-]`: one value, or standard input's lines in order (keys follow
//! line order), with a progress bar and rate on stderr when it is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::CONTENT_TYPE;
use restmq_shared::QueueName;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::client::{CliError, Client};
use super::ServerArg;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The queue.
    pub queue: QueueName,

    /// The message; `-` or nothing reads standard input, one message per line (blank lines
    /// are skipped).
    pub value: Option<String>,

    /// Seconds before the messages expire.
    #[arg(long)]
    pub ttl: Option<u64>,

    #[command(flatten)]
    pub server: ServerArg,
}

pub async fn run(args: PushArgs) -> Result<(), CliError> {
    let client = Client::new(&args.server)?;
    let pusher = Pusher { client, queue: args.queue, ttl: args.ttl };
    match args.value.as_deref() {
        Some("-") | None => pusher.push_stdin().await,
        Some(value) => {
            let key = pusher.push(value.to_owned()).await?;
            println!("{key}");
            Ok(())
        }
    }
}

struct Pusher {
    client: Client,
    queue: QueueName,
    ttl: Option<u64>,
}

impl Pusher {
    /// Adds one message; returns its key.
    async fn push(&self, value: String) -> Result<String, CliError> {
        let mut form = vec![("value", value)];
        if let Some(ttl) = self.ttl {
            form.push(("ttl", ttl.to_string()));
        }
        let request = self.client.http.post(self.client.url(&format!("/q/{}", self.queue))).form(&form);
        let (_, body) = self.client.text(request).await?;
        Ok(body.trim_end().to_owned())
    }

    /// Adds `values` in one request (SPEC §4 batch publish: a JSON array with `?batch=1`);
    /// `Ok(None)` when the server does not take batches.
    async fn push_batch(&self, values: &[String]) -> Result<Option<()>, CliError> {
        let mut request = self.client.http.post(self.client.url(&format!("/q/{}", self.queue)));
        let body = serde_json::to_vec(values).map_err(|e| CliError::Other(e.to_string()))?;
        request = request.query(&[("batch", "1")]).header(CONTENT_TYPE, "application/json").body(body);
        if let Some(ttl) = self.ttl {
            request = request.query(&[("ttl", ttl)]);
        }
        let body = match self.client.text(request).await {
            Ok((_, body)) => body,
            Err(CliError::Server { code, .. }) if NO_BATCHES.contains(&code.as_str()) => return Ok(None),
            Err(err) => return Err(err),
        };
        // The keys, as a JSON array or one per line.
        let keys = match serde_json::from_str::<Vec<String>>(&body) {
            Ok(keys) => keys.len(),
            Err(_) => body.lines().filter(|l| !l.trim().is_empty()).count(),
        };
        if keys != values.len() {
            return Err(CliError::Other(format!(
                "the server answered {keys} keys for {} messages",
                values.len()
            )));
        }
        Ok(Some(()))
    }

    /// Pushes every non-blank line of stdin in order: in batches when the server takes them,
    /// else one request after the other on a kept-alive connection. Reading runs ahead in
    /// its own task; a batch holds whatever lines are ready, up to [`BATCH`].
    async fn push_stdin(&self) -> Result<(), CliError> {
        let (tx, mut rx) = mpsc::channel::<String>(4 * BATCH);
        let reader = tokio::spawn(read_lines(tx));
        let bar = progress_bar();
        let started = Instant::now();
        let (mut pushed, mut batches) = (0u64, true);
        let mut chunk = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut chunk, BATCH).await > 0 {
            let done = match batches {
                true => self.push_batch(&chunk).await,
                false => Ok(None),
            };
            let result = match done {
                Ok(Some(())) => Ok(()),
                Ok(None) => {
                    batches = false;
                    self.push_each(&mut chunk, &mut pushed, &bar).await
                }
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                bar.finish_and_clear();
                eprintln!("restmq: pushed {pushed} messages to {} before this failed", self.queue);
                return Err(err);
            }
            pushed += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
            chunk.clear();
        }
        bar.finish_and_clear();
        let skipped = reader
            .await
            .map_err(|e| CliError::Other(format!("reading stdin: {e}")))?
            .map_err(|e| CliError::Other(format!("reading stdin: {e}")))?;
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { pushed as f64 / secs } else { 0.0 };
        let skipped = if skipped > 0 { format!(" ({skipped} blank lines skipped)") } else { String::new() };
        eprintln!("pushed {pushed} messages to {} in {secs:.2}s ({rate:.0}/s){skipped}", self.queue);
        Ok(())
    }

    /// One request per value, in order; counts them into `pushed` and leaves `chunk` empty.
    async fn push_each(
        &self,
        chunk: &mut Vec<String>,
        pushed: &mut u64,
        bar: &ProgressBar,
    ) -> Result<(), CliError> {
        for value in chunk.drain(..) {
            self.push(value).await?;
            *pushed += 1;
            bar.inc(1);
        }
        Ok(())
    }
}

/// The most lines sent in one batch.
const BATCH: usize = 1000;
/// Error codes of a server that does not take batches: it looked for a `value` field.
const NO_BATCHES: &[&str] = &["missing_argument", "unsupported_media_type"];

/// Sends stdin's non-blank lines (without line endings); returns how many were blank.
async fn read_lines(tx: mpsc::Sender<String>) -> std::io::Result<u64> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut blank = 0;
    while let Some(line) = lines.next_line().await? {
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if tx.send(line.to_owned()).await.is_err() {
            break; // the pusher stopped on an error
        }
    }
    Ok(blank)
}

/// A spinner with the count and rate, drawn on stderr only when it is a terminal.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {pos} pushed  {per_sec}  {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
