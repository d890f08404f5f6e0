//! HTTP scenarios: `publish` (POSTs over K keep-alive connections for a while) and `pop`
//! (hard gets from a pre-filled queue until it is empty).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use tokio::task::JoinSet;

use crate::client::HttpConn;
use crate::measure::{histogram, latencies, record, CpuMeter, Sample};
use crate::target::{payload, Target};

/// How a `publish` run loads the server.
#[derive(Debug, Clone)]
pub struct PublishOpts {
    /// Keep-alive connections, each with one request in flight.
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Measured time, after `warmup`.
    pub duration: Duration,
    pub warmup: Duration,
}

/// One connection of a publish run: sends one message and waits for its answer.
pub trait Publisher: Send + 'static {
    fn send(&mut self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// Runs `publishers` (one connection each, one message in flight) as fast as they go for
/// `opts.warmup`, then for `opts.duration`, which the sample measures.
pub async fn closed_loop<P: Publisher>(
    pid: Option<u32>,
    opts: &PublishOpts,
    publishers: Vec<P>,
) -> anyhow::Result<Sample> {
    let from = Instant::now() + opts.warmup;
    let until = from + opts.duration;
    let meter = CpuMeter::start(pid);
    let mut tasks = JoinSet::new();
    for mut publisher in publishers {
        tasks.spawn(async move {
            let (mut hist, mut count) = (histogram(), 0u64);
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                publisher.send().await?;
                if t0 >= from {
                    record(&mut hist, t0.elapsed().as_nanos() as u64);
                    count += 1;
                }
            }
            anyhow::Ok((hist, count))
        });
    }
    let (hist, count) = join(tasks).await?;
    let (load_cpu, server_cpu) = meter.shares();
    let rate = count as f64 / opts.duration.as_secs_f64();
    Ok(Sample { count, rate, lat_us: latencies(&hist), load_cpu, server_cpu, extra: 0.0 })
}

/// Sends exactly `total` messages through `publishers`, each taking the next while any is left.
pub async fn send_all<P: Publisher>(publishers: Vec<P>, total: u64) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for mut publisher in publishers {
        let next = next.clone();
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                publisher.send().await?;
            }
            anyhow::Ok((histogram(), 0))
        });
    }
    join(tasks).await.map(drop)
}

/// One connection of a pop run: takes one message, or says none is left.
pub trait Taker: Send + 'static {
    /// `false` once the queue has none.
    fn take(&mut self) -> impl std::future::Future<Output = anyhow::Result<bool>> + Send;
    /// After the last take: what must reach the server before the CPU is read.
    fn finish(&mut self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Runs `takers` (one connection each, one take in flight) until each finds the queue empty;
/// the sample counts the messages taken and their latency.
pub async fn take_all<T: Taker>(pid: Option<u32>, takers: Vec<T>) -> anyhow::Result<Sample> {
    let meter = CpuMeter::start(pid);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for mut taker in takers {
        tasks.spawn(async move {
            let (mut hist, mut count) = (histogram(), 0u64);
            loop {
                let t0 = Instant::now();
                if !taker.take().await? {
                    break;
                }
                record(&mut hist, t0.elapsed().as_nanos() as u64);
                count += 1;
            }
            taker.finish().await?;
            anyhow::Ok((hist, count))
        });
    }
    let (hist, count) = join(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let (load_cpu, server_cpu) = meter.shares();
    Ok(Sample {
        count,
        rate: count as f64 / elapsed,
        lat_us: latencies(&hist),
        load_cpu,
        server_cpu,
        extra: 0.0,
    })
}

/// An HTTP connection POSTing one body to one path.
struct Post {
    conn: HttpConn,
    path: Arc<str>,
    body: Bytes,
    ctype: &'static str,
}

impl Publisher for Post {
    async fn send(&mut self) -> anyhow::Result<()> {
        let (status, answer) = self.conn.post(&self.path, self.body.clone(), self.ctype).await?;
        check(status, &answer)
    }
}

/// POSTs `size`-byte messages to `queue` as fast as `conns` connections go.
pub async fn publish(target: &Target, queue: &str, opts: &PublishOpts) -> anyhow::Result<Sample> {
    let path: Arc<str> = target.publish_path(queue).into();
    let (body, ctype) = target.publish_body(&payload(opts.size, 0));
    let mut posts = Vec::with_capacity(opts.conns);
    for _ in 0..opts.conns {
        let conn = HttpConn::connect(target.addr).await?;
        posts.push(Post { conn, path: path.clone(), body: body.clone(), ctype });
    }
    closed_loop(target.pid, opts, posts).await
}

/// An HTTP connection hard-getting from one path.
struct Get {
    conn: HttpConn,
    path: Arc<str>,
}

impl Taker for Get {
    async fn take(&mut self) -> anyhow::Result<bool> {
        let (status, answer) = self.conn.get(&self.path).await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(false);
        }
        check(status, &answer)?;
        Ok(true)
    }
}

/// Fills `queue` with `prefill` messages, then hard-gets them over `conns` connections until
/// the queue answers empty. The sample counts the messages taken.
pub async fn pop(
    target: &Target,
    queue: &str,
    conns: usize,
    size: usize,
    prefill: u64,
) -> anyhow::Result<Sample> {
    ensure!(target.can_pop(), "{} has no consuming get", target.name);
    fill(target, queue, conns, size, prefill).await?;
    let path: Arc<str> = target.publish_path(queue).into();
    let mut gets = Vec::with_capacity(conns);
    for _ in 0..conns {
        gets.push(Get { conn: HttpConn::connect(target.addr).await?, path: path.clone() });
    }
    take_all(target.pid, gets).await
}

/// Publishes exactly `total` messages to `queue` over `conns` connections.
pub async fn fill(target: &Target, queue: &str, conns: usize, size: usize, total: u64) -> anyhow::Result<()> {
    let path: Arc<str> = target.publish_path(queue).into();
    let (body, ctype) = target.publish_body(&payload(size, 0));
    let mut posts = Vec::with_capacity(conns);
    for _ in 0..conns {
        let conn = HttpConn::connect(target.addr).await?;
        posts.push(Post { conn, path: path.clone(), body: body.clone(), ctype });
    }
    send_all(posts, total).await
}

fn check(status: StatusCode, body: &Bytes) -> anyhow::Result<()> {
    if !status.is_success() {
        bail!("server answered {status}: {}", String::from_utf8_lossy(body));
    }
    Ok(())
}

/// Waits for every connection's task and merges their histograms and counts.
pub(crate) async fn join(
    mut tasks: JoinSet<anyhow::Result<(Histogram<u64>, u64)>>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let (mut all, mut total) = (histogram(), 0);
    while let Some(done) = tasks.join_next().await {
        let (hist, count) = done??;
        all.add(&hist)?;
        total += count;
    }
    Ok((all, total))
}
