//! Streaming scenarios over WebSocket: `e2e` (a paced producer to one consumer, latency from
//! the POST to the frame), `fanout` (one producer to C consumers) and `idle` (server memory
//! per connected, silent consumer).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{await_consumers, subscribe, HttpConn, Ws};
use crate::measure::{histogram, latencies, record, rss_kib, CpuMeter, Sample};
use crate::target::{find_stamp, now_ns, payload, Target};

/// A consumer that hears nothing this long is taken to have everything it will get.
const QUIET: Duration = Duration::from_secs(5);
/// WebSocket handshakes in flight at once while connecting many consumers.
const CONNECT_AHEAD: usize = 64;

/// How an `e2e` run paces its producer.
#[derive(Debug, Clone)]
pub struct E2eOpts {
    /// Messages per second, spread over `producers` connections.
    pub rate: u64,
    pub duration: Duration,
    pub size: usize,
    pub producers: usize,
}

/// Publishes at a fixed rate to a queue with one WebSocket consumer; latency is from just
/// before each POST to the frame's arrival.
pub async fn e2e(target: &Target, queue: &str, opts: &E2eOpts) -> anyhow::Result<Sample> {
    let mut ws = subscribe(target, queue).await?;
    await_consumers(target, queue, 1, Duration::from_secs(10)).await?;
    let total = ((opts.rate as f64 * opts.duration.as_secs_f64()) as u64).max(1);
    let producers = opts.producers.clamp(1, total as usize) as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let meter = CpuMeter::start(target.pid);
    let mut tasks = JoinSet::new();
    for first in 0..producers {
        let (addr, path, target, size) = (target.addr, target.publish_path(queue), target.clone(), opts.size);
        let gap = Duration::from_secs_f64(1.0 / opts.rate as f64);
        tasks.spawn(async move {
            let mut conn = HttpConn::connect(addr).await?;
            for i in (first..total).step_by(producers as usize) {
                sleep_until(start + gap * i as u32).await;
                let (body, ctype) = target.publish_body(&payload(size, now_ns()));
                let (status, _) = conn.post(&path, body, ctype).await?;
                if !status.is_success() {
                    bail!("publish answered {status}");
                }
            }
            anyhow::Ok(())
        });
    }
    let mut hist = histogram();
    let mut received = 0;
    while received < total {
        match timeout(QUIET, ws.next()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(stamp) = stamp_of(&frame) {
                    record(&mut hist, now_ns().saturating_sub(stamp));
                    received += 1;
                }
            }
            Ok(Some(Err(err))) => return Err(err.into()),
            Ok(None) | Err(_) => break,
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let (load_cpu, server_cpu) = meter.shares();
    let rate = received as f64 / opts.duration.as_secs_f64();
    Ok(Sample { count: received, rate, lat_us: latencies(&hist), load_cpu, server_cpu, extra: 0.0 })
}

/// How a `fanout` run is shaped.
#[derive(Debug, Clone)]
pub struct FanoutOpts {
    pub consumers: usize,
    /// Messages published, back to back over one connection.
    pub messages: u64,
    pub size: usize,
}

/// One producer, `consumers` WebSocket consumers on a broadcast queue. The sample counts
/// deliveries; its rate is deliveries per second from the first POST to the last frame.
pub async fn fanout(target: &Target, queue: &str, opts: &FanoutOpts) -> anyhow::Result<Sample> {
    let sockets = connect_many(target, queue, opts.consumers).await?;
    await_consumers(target, queue, opts.consumers as u64, Duration::from_secs(60)).await?;
    let (go, ready) = watch::channel(false);
    let mut readers = JoinSet::new();
    for mut ws in sockets {
        let (mut ready, want) = (ready.clone(), opts.messages);
        readers.spawn(async move {
            let _ = ready.wait_for(|go| *go).await;
            let mut lat = Vec::with_capacity(want as usize);
            let mut last = 0;
            while (lat.len() as u64) < want {
                match timeout(QUIET, ws.next()).await {
                    Ok(Some(Ok(frame))) => {
                        if let Some(stamp) = stamp_of(&frame) {
                            last = now_ns();
                            lat.push(last.saturating_sub(stamp));
                        }
                    }
                    _ => break,
                }
            }
            (lat, last)
        });
    }
    let meter = CpuMeter::start(target.pid);
    let _ = go.send(true);
    let first = now_ns();
    let mut conn = HttpConn::connect(target.addr).await?;
    let path = target.publish_path(queue);
    for _ in 0..opts.messages {
        let (body, ctype) = target.publish_body(&payload(opts.size, now_ns()));
        let (status, _) = conn.post(&path, body, ctype).await?;
        if !status.is_success() {
            bail!("publish answered {status}");
        }
    }
    let (mut hist, mut count, mut last) = (histogram(), 0u64, first);
    while let Some(done) = readers.join_next().await {
        let (lat, reader_last) = done?;
        count += lat.len() as u64;
        last = last.max(reader_last);
        lat.into_iter().for_each(|ns| record(&mut hist, ns));
    }
    let (load_cpu, server_cpu) = meter.shares();
    let secs = (last - first) as f64 / 1e9;
    let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
    Ok(Sample { count, rate, lat_us: latencies(&hist), load_cpu, server_cpu, extra: 0.0 })
}

/// Opens `conns` silent consumers and reads how much the server's RSS grew per connection
/// (`extra`, KiB; 0 when the server's process is unknown).
pub async fn idle(target: &Target, queue: &str, conns: usize) -> anyhow::Result<Sample> {
    sleep(Duration::from_millis(300)).await;
    let before = target.pid.and_then(rss_kib);
    let sockets = connect_many(target, queue, conns).await?;
    await_consumers(target, queue, conns as u64, Duration::from_secs(60)).await?;
    sleep(Duration::from_millis(500)).await;
    let after = target.pid.and_then(rss_kib);
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / conns as f64,
        _ => 0.0,
    };
    let count = sockets.len() as u64;
    drop(sockets);
    Ok(Sample { count, extra: per_conn, ..Sample::default() })
}

/// Opens `n` consumers of `queue`, a few handshakes at a time.
pub async fn connect_many(target: &Target, queue: &str, n: usize) -> anyhow::Result<Vec<Ws>> {
    let target = Arc::new(target.clone());
    stream::iter(0..n)
        .map(|_| {
            let target = target.clone();
            let queue = queue.to_owned();
            async move { subscribe(&target, &queue).await }
        })
        .buffer_unordered(CONNECT_AHEAD)
        .try_collect()
        .await
        .with_context(|| format!("opening {n} consumers"))
}

/// The send stamp in a text or binary frame.
fn stamp_of(frame: &Message) -> Option<u64> {
    match frame {
        Message::Text(text) => find_stamp(text.as_bytes()),
        Message::Binary(bytes) => find_stamp(bytes),
        _ => None,
    }
}
