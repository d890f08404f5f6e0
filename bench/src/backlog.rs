//! The embedded store's deep backlog: fill one queue with N messages of 1 KiB (one `POST` each,
//! over several connections: the plain adds a producer sends, through the queue's log), read
//! the server's RSS, kill it (`SIGKILL`) and start it again on the same data
//! directory, time it to `/readyz`, then drain the queue with hard gets over several
//! connections, checking every message comes back exactly once and each connection sees
//! them oldest first; the same gets from a short queue of the same messages, just before, are
//! the yardstick.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use hyper::StatusCode;
use tokio::task::JoinSet;

use crate::client::HttpConn;
use crate::http_load::fill;
use crate::measure::{cpu_time, rss_kib, CpuMeter};
use crate::servers::Env;

/// The short queue the deep one's gets are compared with.
pub const SHORT: u64 = 30_000;

/// What the backlog run measured.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub messages: u64,
    pub size: usize,
    pub fill_rate: f64,
    pub rss_filled_mib: f64,
    /// From spawning the restarted server to `/readyz` answering 200.
    pub restart_s: f64,
    pub rss_restarted_mib: f64,
    pub drain_rate: f64,
    /// The same gets from a queue of [`SHORT`] such messages, on the restarted server (the
    /// median of three fills and drains).
    pub short_rate: f64,
    pub drain_server_cpu: f64,
    pub rss_drained_mib: f64,
    /// Every message came back once, and each connection's in increasing order.
    pub in_order: bool,
}

fn mib(pid: Option<u32>) -> f64 {
    pid.and_then(rss_kib).map_or(0.0, |k| k as f64 / 1024.0)
}

/// Runs the backlog scenario on `restmq --store embedded`.
pub async fn backlog(env: &Env, redis: SocketAddr, messages: u64, conns: usize) -> anyhow::Result<Backlog> {
    let size = 1024;
    let dir = tempfile::tempdir()?;
    let mut out = Backlog { messages, size, ..Backlog::default() };
    let server = env.restmq_in("embedded", redis, dir.path())?;
    let queue = "backlog";
    let path = format!("/q/{queue}");
    let started = Instant::now();
    fill(&server.target, queue, conns, size, messages).await?;
    out.fill_rate = messages as f64 / started.elapsed().as_secs_f64();
    out.rss_filled_mib = mib(server.target.pid);
    drop(server); // SIGKILL: the restart recovers from the WAL
    let spawned = Instant::now();
    let server = env.restmq_in("embedded", redis, dir.path())?;
    let mut conn = HttpConn::connect(addr_of(&server)).await?;
    loop {
        let (status, _) = conn.get("/readyz").await?;
        if status == StatusCode::OK {
            break;
        }
        ensure!(spawned.elapsed() < Duration::from_secs(60), "not ready after 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out.restart_s = spawned.elapsed().as_secs_f64();
    out.rss_restarted_mib = mib(server.target.pid);
    let (addr, pid) = (server.target.addr, server.target.pid);
    // The same gets from a short queue of the same messages, on the same server, first: the
    // median of three, each drained once the server is idle after its fill (a drain of 30,000
    // alone is over in a second, and swings with the fill's writes still under way).
    let mut short = Vec::new();
    for _ in 0..3 {
        fill(&server.target, "backlog-short", conns, size, SHORT).await?;
        settle(pid).await;
        short.push(drain(addr, "/q/backlog-short", conns, SHORT).await?.0);
    }
    out.short_rate = crate::measure::median(&mut short);
    settle(pid).await;
    let meter = CpuMeter::start(pid);
    let (rate, in_order) = drain(addr, &path, conns, messages).await?;
    (out.drain_rate, out.in_order) = (rate, in_order);
    out.drain_server_cpu = meter.shares().1;
    out.rss_drained_mib = mib(pid);
    Ok(out)
}

/// Waits (up to 10 s) until the server uses under 5 % of a core over a tenth of a second.
async fn settle(pid: Option<u32>) {
    let window = Duration::from_millis(100);
    for _ in 0..100 {
        let before = cpu_time(pid);
        tokio::time::sleep(window).await;
        match (before, cpu_time(pid)) {
            (Some(a), Some(b)) if (b - a) * 20 < window => return,
            (None, _) | (_, None) => return,
            _ => {}
        }
    }
}

/// Hard gets on `path` over `conns` connections until it is empty: the rate, and whether
/// messages 1..=`messages` each came back once and each connection's in increasing order.
async fn drain(addr: SocketAddr, path: &str, conns: usize, messages: u64) -> anyhow::Result<(f64, bool)> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        let path = path.to_owned();
        tasks.spawn(async move {
            let mut conn = HttpConn::connect(addr).await?;
            let mut got = Vec::new();
            loop {
                let (status, answer) = conn.get(&path).await?;
                if status == StatusCode::NO_CONTENT {
                    return anyhow::Ok(got);
                }
                ensure!(status.is_success(), "get: {status}");
                got.push(number(&answer)?);
            }
        });
    }
    let mut all = Vec::with_capacity(messages as usize);
    let mut ordered = true;
    while let Some(done) = tasks.join_next().await {
        let got = done??;
        ordered &= got.windows(2).all(|w| w[0] < w[1]);
        all.extend(got);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok((rate, ordered && all.len() as u64 == messages && all.iter().zip(1..).all(|(n, i)| *n == i)))
}

fn addr_of(server: &crate::servers::Server) -> SocketAddr {
    server.target.addr
}

/// The `n` of the `"key":"<queue>:<n>"` of a get's answer.
fn number(answer: &[u8]) -> anyhow::Result<u64> {
    let text = std::str::from_utf8(answer)?;
    let Some(start) = text.find("\"key\":\"") else { bail!("no key in {text}") };
    let rest = &text[start + 7..];
    let key = &rest[..rest.find('"').unwrap_or(rest.len())];
    Ok(key.rsplit(':').next().unwrap_or_default().parse()?)
}
