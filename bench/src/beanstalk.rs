//! beanstalkd as a durable peer of the embedded store (its binlog on): a small client of its
//! text protocol (`put`, `reserve-with-timeout`, `delete`, `use`, `watch`, `ignore`) and the
//! `publish` and `pop` scenarios, each queue a tube of its own. `publish` puts from K
//! connections, each waiting for `INSERTED` before its next `put`; `pop` fills the tube, then
//! K connections `reserve-with-timeout 0` and `delete` each job they get until the tube
//! answers `TIMED_OUT` (no job ready). A connection sends its `delete` together with its next
//! reserve, so that a message costs one round trip, like restmq's hard get.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, ensure, Context as _};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufStream};
use tokio::net::TcpStream;

use crate::http_load::{closed_loop, send_all, take_all, PublishOpts, Publisher, Taker};
use crate::measure::Sample;
use crate::target::{payload, Target};

/// Seconds a reserved job stays reserved before beanstalkd gives it back (far longer than a run).
const TTR: u32 = 120;

/// One line of beanstalkd's answers, as far as this client needs them.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Inserted(u64),
    /// A job follows: `bytes` of body, then `\r\n`.
    Reserved {
        id: u64,
        bytes: usize,
    },
    Deleted,
    TimedOut,
    Using,
    Watching(u64),
    /// Anything else (an error such as `JOB_TOO_BIG` or `NOT_FOUND`), as sent.
    Other(String),
}

impl Reply {
    /// Parses one answer line (without its `\r\n`).
    pub fn parse(line: &str) -> Self {
        let mut words = line.split(' ');
        let word = words.next().unwrap_or_default();
        let mut number = || words.next().and_then(|n| n.parse::<u64>().ok());
        let parsed = match word {
            "INSERTED" => number().map(Self::Inserted),
            "RESERVED" => {
                number().zip(number()).map(|(id, bytes)| Self::Reserved { id, bytes: bytes as usize })
            }
            "DELETED" => Some(Self::Deleted),
            "TIMED_OUT" => Some(Self::TimedOut),
            "USING" => Some(Self::Using),
            "WATCHING" => number().map(Self::Watching),
            _ => None,
        };
        parsed.unwrap_or_else(|| Self::Other(line.to_owned()))
    }
}

/// One connection to beanstalkd.
pub struct Beanstalk {
    stream: BufStream<TcpStream>,
    line: String,
}

impl Beanstalk {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream: BufStream::new(stream), line: String::new() })
    }

    /// Puts the jobs of this connection in `tube`.
    pub async fn use_tube(&mut self, tube: &str) -> anyhow::Result<()> {
        self.stream.write_all(format!("use {tube}\r\n").as_bytes()).await?;
        self.stream.flush().await?;
        match self.reply().await? {
            Reply::Using => Ok(()),
            other => bail!("use {tube}: {other:?}"),
        }
    }

    /// Reserves from `tube` only (not from `default`).
    pub async fn watch_only(&mut self, tube: &str) -> anyhow::Result<()> {
        self.stream.write_all(format!("watch {tube}\r\nignore default\r\n").as_bytes()).await?;
        self.stream.flush().await?;
        for command in ["watch", "ignore"] {
            match self.reply().await? {
                Reply::Watching(_) => {}
                other => bail!("{command}: {other:?}"),
            }
        }
        Ok(())
    }

    /// `put` of `body` (priority 0, no delay), waiting for `INSERTED`; the job's id.
    pub async fn put(&mut self, body: &[u8]) -> anyhow::Result<u64> {
        let head = format!("put 0 0 {TTR} {}\r\n", body.len());
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.stream.write_all(b"\r\n").await?;
        self.stream.flush().await?;
        match self.reply().await? {
            Reply::Inserted(id) => Ok(id),
            other => bail!("put: {other:?}"),
        }
    }

    /// Deletes job `done` if given, then reserves the next ready job without waiting
    /// (`reserve-with-timeout 0`), both in one write: the job, or `None` when none is ready.
    pub async fn delete_and_reserve(&mut self, done: Option<u64>) -> anyhow::Result<Option<(u64, Bytes)>> {
        if let Some(id) = done {
            self.stream.write_all(format!("delete {id}\r\n").as_bytes()).await?;
        }
        self.stream.write_all(b"reserve-with-timeout 0\r\n").await?;
        self.stream.flush().await?;
        if let Some(id) = done {
            let reply = self.reply().await?;
            ensure!(reply == Reply::Deleted, "delete {id}: {reply:?}");
        }
        match self.reply().await? {
            Reply::Reserved { id, bytes } => {
                let mut body = vec![0; bytes + 2];
                self.stream.read_exact(&mut body).await?;
                ensure!(body.ends_with(b"\r\n"), "job {id}: its body does not end with CRLF");
                body.truncate(bytes);
                Ok(Some((id, Bytes::from(body))))
            }
            Reply::TimedOut => Ok(None),
            other => bail!("reserve-with-timeout 0: {other:?}"),
        }
    }

    /// Reads one answer line.
    async fn reply(&mut self) -> anyhow::Result<Reply> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            bail!("beanstalkd closed the connection");
        }
        Ok(Reply::parse(self.line.trim_end_matches("\r\n")))
    }
}

/// A connection putting one body into its tube.
struct Put {
    conn: Beanstalk,
    body: Arc<[u8]>,
}

impl Publisher for Put {
    async fn send(&mut self) -> anyhow::Result<()> {
        self.conn.put(&self.body).await.map(drop)
    }
}

/// Puts `size`-byte jobs into `queue` (a tube) for a while from `opts.conns` connections, each
/// waiting for `INSERTED` before its next `put`.
pub async fn publish(target: &Target, queue: &str, opts: &PublishOpts) -> anyhow::Result<Sample> {
    let body: Arc<[u8]> = payload(opts.size, 0).into();
    let mut puts = Vec::with_capacity(opts.conns);
    for _ in 0..opts.conns {
        let mut conn = Beanstalk::connect(target.addr).await?;
        conn.use_tube(queue).await?;
        puts.push(Put { conn, body: body.clone() });
    }
    closed_loop(target.pid, opts, puts).await
}

/// A connection reserving from its tube, deleting each job with its next reserve.
struct Reserve {
    conn: Beanstalk,
    done: Option<u64>,
}

impl Taker for Reserve {
    async fn take(&mut self) -> anyhow::Result<bool> {
        let reserved = self.conn.delete_and_reserve(self.done.take()).await?;
        self.done = reserved.map(|(id, _)| id);
        Ok(self.done.is_some())
    }
}

/// Fills `queue` (a tube) with `prefill` jobs, then reserves and deletes them over `conns`
/// connections until none is ready. The sample counts the jobs taken.
pub async fn pop(
    target: &Target,
    queue: &str,
    conns: usize,
    size: usize,
    prefill: u64,
) -> anyhow::Result<Sample> {
    let body: Arc<[u8]> = payload(size, 0).into();
    let mut puts = Vec::with_capacity(conns);
    let mut reserves = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut conn = Beanstalk::connect(target.addr).await?;
        conn.use_tube(queue).await?;
        puts.push(Put { conn, body: body.clone() });
        let mut conn = Beanstalk::connect(target.addr).await?;
        conn.watch_only(queue).await?;
        reserves.push(Reserve { conn, done: None });
    }
    send_all(puts, prefill).await?;
    take_all(target.pid, reserves).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each answer the client relies on is recognised, with its numbers; the rest is kept as sent.
    #[test]
    fn parses_replies() {
        assert_eq!(Reply::parse("INSERTED 42"), Reply::Inserted(42));
        assert_eq!(Reply::parse("RESERVED 7 64"), Reply::Reserved { id: 7, bytes: 64 });
        assert_eq!(Reply::parse("DELETED"), Reply::Deleted);
        assert_eq!(Reply::parse("TIMED_OUT"), Reply::TimedOut);
        assert_eq!(Reply::parse("USING pubr0"), Reply::Using);
        assert_eq!(Reply::parse("WATCHING 2"), Reply::Watching(2));
        assert_eq!(Reply::parse("JOB_TOO_BIG"), Reply::Other("JOB_TOO_BIG".into()));
        assert_eq!(Reply::parse("RESERVED 7"), Reply::Other("RESERVED 7".into()));
        assert_eq!(Reply::parse("INSERTED x"), Reply::Other("INSERTED x".into()));
    }
}
