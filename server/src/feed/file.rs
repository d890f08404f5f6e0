//! The `file` feed: replays a file's lines (text or NDJSON) at a steady rate, from the top
//! again when it loops. Blank lines are skipped.

use std::path::PathBuf;
use std::time::Duration;

use restmq_shared::QueueName;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{message_from_text, Format, Publisher};

/// A `file:` spec's settings.
pub struct FileFeed {
    pub name: String,
    pub queue: QueueName,
    pub path: PathBuf,
    pub format: Format,
    /// Lines per second; 0 for as fast as the queue takes them.
    pub rate: f64,
    pub looping: bool,
}

/// Longest line read; the rest of a longer line is dropped.
const MAX_LINE: usize = 1024 * 1024;

impl FileFeed {
    /// Publishes the file's lines until the end (or forever when looping) or `shutdown`.
    pub async fn run(self, publisher: Publisher, shutdown: CancellationToken) {
        let mut pace = (self.rate > 0.0).then(|| {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / self.rate));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick
        });
        loop {
            let published = tokio::select! {
                published = self.pass(&publisher, pace.as_mut()) => published,
                () = shutdown.cancelled() => return,
            };
            if !self.looping {
                tracing::info!(feed = %self.name, "file feed reached the end of {}", self.path.display());
                return;
            }
            if published == 0 {
                // Missing or empty: try again later rather than spin.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// One pass over the file; returns how many lines it offered.
    async fn pass(&self, publisher: &Publisher, mut pace: Option<&mut tokio::time::Interval>) -> u64 {
        let file = match tokio::fs::File::open(&self.path).await {
            Ok(file) => file,
            Err(err) => {
                publisher.source_error(&self.name, &format!("{}: {err}", self.path.display()));
                return 0;
            }
        };
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut offered = 0;
        loop {
            buf.clear();
            match read_line(&mut reader, &mut buf).await {
                Ok(0) => return offered,
                Ok(_) => {}
                Err(err) => {
                    publisher.source_error(&self.name, &format!("{}: {err}", self.path.display()));
                    return offered;
                }
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(tick) = pace.as_deref_mut() {
                tick.tick().await;
            }
            offered += 1;
            match message_from_text(line, self.format) {
                Ok(message) => {
                    let _ = publisher.publish(&self.queue, message).await;
                }
                Err(err) => publisher.source_error(&self.name, &format!("line is not JSON: {err}")),
            }
        }
    }
}

/// Reads one line into `buf`, keeping at most [`MAX_LINE`] bytes of it.
async fn read_line(reader: &mut BufReader<tokio::fs::File>, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}
