//! The `syslog` feed: UDP and TCP listeners. Each message becomes RestMQ's JSON
//! (`line`, `host`, `tstamp`, `facility`, `severity`, …) in queue `<prefix>:<host>`, where host
//! is the sender's host name from the message (or its address when the message has none).
//! TCP takes newline-framed and octet-counted (RFC 6587) messages.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use restmq_shared::name::MAX_QUEUE_NAME_LEN;
use restmq_shared::QueueName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{syslog_parse, Publisher};

/// Largest message accepted, over UDP or TCP.
const MAX_MESSAGE: usize = 64 * 1024;

/// A `syslog:` spec's settings; cloning is cheap enough for one per connection.
#[derive(Clone)]
pub struct SyslogFeed {
    pub prefix: String,
    /// Every message to this queue instead of `<prefix>:<host>`.
    pub queue: Option<QueueName>,
}

impl SyslogFeed {
    /// Binds the listeners (so a busy port fails here) and serves them on `tracker`.
    pub async fn start(
        self,
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        publisher: Publisher,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<()> {
        if let Some(addr) = udp {
            let socket = UdpSocket::bind(addr).await.with_context(|| format!("syslog feed: udp {addr}"))?;
            tracing::info!("syslog feed listening on udp {}", socket.local_addr()?);
            let (feed, publisher, stop) = (self.clone(), publisher.clone(), shutdown.clone());
            tracker.spawn(async move { feed.serve_udp(socket, publisher, stop).await });
        }
        if let Some(addr) = tcp {
            let listener =
                TcpListener::bind(addr).await.with_context(|| format!("syslog feed: tcp {addr}"))?;
            tracing::info!("syslog feed listening on tcp {}", listener.local_addr()?);
            let tasks = tracker.clone();
            tracker.spawn(async move { self.serve_tcp(listener, publisher, shutdown, tasks).await });
        }
        Ok(())
    }

    async fn serve_udp(self, socket: UdpSocket, publisher: Publisher, shutdown: CancellationToken) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let (len, from) = tokio::select! {
                got = socket.recv_from(&mut buf) => match got {
                    Ok(got) => got,
                    Err(err) => {
                        publisher.source_error("syslog", &err);
                        continue;
                    }
                },
                () = shutdown.cancelled() => return,
            };
            let datagram = String::from_utf8_lossy(&buf[..len]);
            for line in datagram.split('\n') {
                self.relay(line, from, &publisher).await;
            }
        }
    }

    async fn serve_tcp(
        self,
        listener: TcpListener,
        publisher: Publisher,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let (stream, from) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        publisher.source_error("syslog", &err);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => return,
            };
            let (feed, publisher, stop) = (self.clone(), publisher.clone(), shutdown.clone());
            tracker.spawn(async move {
                tokio::select! {
                    () = feed.serve_connection(stream, from, &publisher) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }

    /// Reads frames until the sender closes: `LEN SP MSG` when a frame starts with a digit,
    /// else a line.
    async fn serve_connection(&self, stream: TcpStream, from: SocketAddr, publisher: &Publisher) {
        let mut reader = BufReader::new(stream);
        let mut frame = Vec::new();
        loop {
            frame.clear();
            let first = reader.fill_buf().await.map(|buf| buf.first().copied());
            let read = match first {
                Ok(None) => return,
                Ok(Some(b)) if b.is_ascii_digit() => read_counted(&mut reader, &mut frame).await,
                Ok(Some(_)) => read_line(&mut reader, &mut frame).await,
                Err(err) => Err(err),
            };
            if let Err(err) = read {
                return publisher.source_error("syslog", &format!("tcp {from}: {err}"));
            }
            self.relay(&String::from_utf8_lossy(&frame), from, publisher).await;
        }
    }

    /// Parses one message and publishes it to its host's queue.
    async fn relay(&self, line: &str, from: SocketAddr, publisher: &Publisher) {
        let line = line.trim_end_matches(['\r', '\n', '\0']);
        if line.trim().is_empty() {
            return;
        }
        let parsed = syslog_parse::parse(line);
        let host = parsed.host.clone().unwrap_or_else(|| from.ip().to_string());
        let queue = match &self.queue {
            Some(queue) => queue.clone(),
            None => host_queue(&self.prefix, &host),
        };
        let tstamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let _ = publisher.publish(&queue, parsed.to_message(line, &host, tstamp)).await;
    }
}

/// `<prefix>:<host>`, with characters a queue name cannot hold replaced by `-`.
pub fn host_queue(prefix: &str, host: &str) -> QueueName {
    let room = MAX_QUEUE_NAME_LEN.saturating_sub(prefix.len() + 1).max(1);
    let host: String = host
        .chars()
        .take(room)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@') { c } else { '-' })
        .collect();
    QueueName::try_from(format!("{prefix}:{host}")).unwrap_or_else(|_| {
        QueueName::try_from(prefix).expect("the prefix was checked when the spec was parsed")
    })
}

async fn read_line(reader: &mut BufReader<TcpStream>, frame: &mut Vec<u8>) -> std::io::Result<()> {
    let mut limited = (&mut *reader).take(MAX_MESSAGE as u64);
    limited.read_until(b'\n', frame).await?;
    if frame.len() >= MAX_MESSAGE && frame.last() != Some(&b'\n') {
        return Err(std::io::Error::other(format!("a line is longer than {MAX_MESSAGE} bytes")));
    }
    Ok(())
}

async fn read_counted(reader: &mut BufReader<TcpStream>, frame: &mut Vec<u8>) -> std::io::Result<()> {
    let mut digits = Vec::new();
    (&mut *reader).take(8).read_until(b' ', &mut digits).await?;
    let len = std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.strip_suffix(' '))
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|len| *len <= MAX_MESSAGE)
        .ok_or_else(|| std::io::Error::other("bad octet count"))?;
    frame.resize(len, 0);
    reader.read_exact(frame).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host queues keep dots, dashes and colons and replace anything else.
    #[test]
    fn host_queues() {
        assert_eq!(host_queue("syslogd", "web-1.example.com").as_str(), "syslogd:web-1.example.com");
        assert_eq!(host_queue("syslogd", "::1").as_str(), "syslogd:::1");
        assert_eq!(host_queue("syslogd", "bad host/name").as_str(), "syslogd:bad-host-name");
        assert_eq!(host_queue("syslogd", &"h".repeat(300)).as_str().len(), MAX_QUEUE_NAME_LEN);
    }
}
