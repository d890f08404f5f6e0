//! The `url` feed: relays an SSE (`text/event-stream`) or NDJSON HTTP stream event by event.
//! When the stream ends or fails it reconnects with exponential back-off, sending the last
//! SSE `id:` as `Last-Event-ID`; an SSE `retry:` sets the first delay.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use restmq_shared::QueueName;
use tokio_util::sync::CancellationToken;

use super::{message_from_text, Format, Publisher};

/// A `url:` spec's settings.
pub struct UrlFeed {
    pub name: String,
    pub queue: QueueName,
    pub url: String,
    pub format: Format,
    pub max_backoff: Duration,
}

/// First delay before reconnecting, unless the stream says otherwise with `retry:`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The shortest first delay a stream's `retry:` may ask for.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest line or event accepted from a stream.
const MAX_LINE: usize = 1024 * 1024;

/// What is kept across connections.
struct Session {
    last_id: Option<String>,
    first_backoff: Duration,
}

impl UrlFeed {
    /// Relays the stream until `shutdown`, reconnecting whenever it ends.
    pub async fn run(self, publisher: Publisher, shutdown: CancellationToken) {
        let client = match reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build() {
            Ok(client) => client,
            Err(err) => return publisher.source_error(&self.name, &err),
        };
        let mut session = Session { last_id: None, first_backoff: FIRST_BACKOFF };
        let mut backoff = session.first_backoff;
        loop {
            let relayed = tokio::select! {
                relayed = self.connect(&client, &mut session, &publisher) => relayed,
                () = shutdown.cancelled() => return,
            };
            match relayed {
                Ok(Some(0)) | Err(_) => {}
                Ok(Some(_)) => backoff = session.first_backoff,
                Ok(None) => return, // 204: the server asked us to stop
            }
            if let Err(err) = relayed {
                publisher.source_error(&self.name, &err);
            }
            tracing::debug!(feed = %self.name, ?backoff, "url feed: reconnecting");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(self.max_backoff.max(session.first_backoff));
            publisher.counters.reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One connection: relays events until the stream ends. Returns how many it relayed, or
    /// `None` when the server answered 204 No Content (SSE's "stop reconnecting").
    async fn connect(
        &self,
        client: &reqwest::Client,
        session: &mut Session,
        publisher: &Publisher,
    ) -> Result<Option<u64>, String> {
        let mut request = client.get(&self.url).header(ACCEPT, "text/event-stream, application/x-ndjson");
        if let Some(id) = &session.last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.map_err(|e| crate::remote::describe_reqwest(&e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            tracing::info!(feed = %self.name, "url feed: the server answered 204; stopping");
            return Ok(None);
        }
        if !status.is_success() {
            return Err(format!("GET {}: {status}", self.url));
        }
        let sse = match self.format {
            Format::Auto => response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream")),
            format => format == Format::Sse,
        };
        let mut events = EventParser::new(sse);
        let mut body = response.bytes_stream();
        let mut relayed = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("stream broke after {relayed} events: {e}"))?;
            for event in events.push(&chunk)? {
                match event {
                    Event::Data(data) => {
                        relayed += 1;
                        let format = if sse { Format::Auto } else { self.format };
                        match message_from_text(&data, format) {
                            Ok(message) => {
                                let _ = publisher.publish(&self.queue, message).await;
                            }
                            Err(err) => publisher.source_error(&self.name, &format!("not JSON: {err}")),
                        }
                    }
                    Event::Id(id) => session.last_id = Some(id),
                    Event::Retry(delay) => session.first_backoff = delay.max(MIN_BACKOFF),
                }
            }
        }
        Ok(Some(relayed))
    }
}

/// What a stream says, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A message: an SSE event's data, or an NDJSON line.
    Data(String),
    /// SSE `id:`: the last event ID from now on.
    Id(String),
    /// SSE `retry:`: the reconnection delay.
    Retry(Duration),
}

/// Cuts a byte stream into lines, and SSE lines into events.
pub struct EventParser {
    sse: bool,
    pending: Vec<u8>,
    data: Option<String>,
}

impl EventParser {
    pub fn new(sse: bool) -> Self {
        Self { sse, pending: Vec::new(), data: None }
    }

    /// Takes the next bytes and returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(at) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + at];
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
            start += at + 1;
            self.line(line, &mut events);
        }
        self.pending.drain(..start);
        let buffered = self.pending.len() + self.data.as_ref().map_or(0, String::len);
        if buffered > MAX_LINE {
            return Err(format!("a line or event is longer than {MAX_LINE} bytes"));
        }
        Ok(events)
    }

    fn line(&mut self, line: String, events: &mut Vec<Event>) {
        if !self.sse {
            if !line.trim().is_empty() {
                events.push(Event::Data(line));
            }
            return;
        }
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(Event::Data(data));
            }
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => events.push(Event::Id(value.to_owned())),
            "retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    events.push(Event::Retry(Duration::from_millis(ms)));
                }
            }
            _ => {} // comments (`: …`), `event:` and unknown fields
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SSE: multi-line data joins with `\n`, ids and retry come out, comments are ignored,
    /// and lines split across chunks and CRLF endings still parse.
    #[test]
    fn sse_events() {
        let mut p = EventParser::new(true);
        assert_eq!(
            p.push(b": keep-alive\n\nretry: 250\nid: 7\r\ndata: a").unwrap(),
            vec![Event::Retry(Duration::from_millis(250)), Event::Id("7".into())]
        );
        assert_eq!(p.push(b"b\ndata:c\n").unwrap(), vec![]);
        assert_eq!(
            p.push(b"\nevent: x\ndata: {\"n\":1}\n\n").unwrap(),
            vec![Event::Data("ab\nc".into()), Event::Data("{\"n\":1}".into())]
        );
    }

    /// NDJSON: one event per non-blank line, the last one only once its newline arrives.
    #[test]
    fn ndjson_lines() {
        let mut p = EventParser::new(false);
        assert_eq!(p.push(b"{\"a\":1}\n\n{\"a\"").unwrap(), vec![Event::Data("{\"a\":1}".into())]);
        assert_eq!(p.push(b":2}\n").unwrap(), vec![Event::Data("{\"a\":2}".into())]);
    }

    /// A line that never ends is refused instead of growing memory without bound.
    #[test]
    fn overlong_line() {
        let mut p = EventParser::new(false);
        assert!(p.push(&vec![b'x'; MAX_LINE + 1]).is_err());
    }
}
