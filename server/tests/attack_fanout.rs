//! Attacks on broadcast through the Redis log `<q>:|fanout` and on cluster registrations:
//! a broadcast consumer that stops reading on one process while another process's consumer
//! reads on (the first process puts back messages the second already handed out), and an
//! add while the master holding `QUEUESET` is down.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::redis::{create_cluster, wait_cluster_ok, RedisServer};
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use tokio::io::AsyncWriteExt;

/// Two processes on one Redis, broadcast: a consumer on A that never reads (cut as slow
/// after a second) and one on B that reads. B's consumer gets every message exactly once:
/// what A moved into the log and B handed out must not be put back into the queue when A's
/// consumer goes ("a cursor only moves forward, so none is repeated").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_consumer_leaving_one_process_repeats_nothing_on_another() {
    let redis = RedisServer::start();
    let a = TestServer::start_inner_on_redis(&redis.url(), |c| {
        c.slow_consumer_secs = 1;
        c.consumer_buffer = 64;
    })
    .await;
    let b = TestServer::start_on_redis(&redis.url()).await;
    // A's consumer: a raw SSE request whose socket is never read.
    let mut stuck = tokio::net::TcpStream::connect(a.addr).await.unwrap();
    stuck.write_all(b"GET /sse/bc HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let reading = b.http.get(b.url("/sse/bc")).send().await.unwrap();
    a.metric_reaches("restmq_consumers{queue=\"bc\"}", 1.0, Duration::from_secs(30)).await;
    b.metric_reaches("restmq_consumers{queue=\"bc\"}", 1.0, Duration::from_secs(30)).await;

    let total = 300;
    let collector = tokio::spawn(async move {
        let mut events = reading.bytes_stream();
        let mut text = String::new();
        let mut quiet_until = None::<Instant>;
        loop {
            let wait = Duration::from_secs(if quiet_until.is_some() { 5 } else { 60 });
            match tokio::time::timeout(wait, events.next()).await {
                Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
            // Once all arrived, keep listening a few seconds for repeats.
            if quiet_until.is_none() && count_ids(&text).len() >= total {
                quiet_until = Some(Instant::now() + Duration::from_secs(5));
            }
            if quiet_until.is_some_and(|t| Instant::now() > t) {
                break;
            }
        }
        count_ids(&text)
    });
    // Values large enough that A's socket buffers fill and messages wait in A's process.
    let value = "x".repeat(64 * 1024);
    for i in 0..total {
        let via = if i % 2 == 0 { &a } else { &b };
        let res = via.http.post(via.url("/q/bc")).form(&[("value", format!("{i}-{value}"))]).send().await;
        assert_eq!(res.unwrap().status(), 200);
    }
    let seen = collector.await.unwrap();
    let repeated: Vec<(u64, usize)> = seen.iter().filter(|(_, c)| **c > 1).map(|(k, c)| (*k, *c)).collect();
    let missing: Vec<u64> = (1..=total as u64).filter(|k| !seen.contains_key(k)).collect();
    assert!(
        repeated.is_empty(),
        "B's broadcast consumer got {} messages more than once (key, times): {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(20)]
    );
    assert!(missing.is_empty(), "B's consumer missed {} messages: {missing:?}", missing.len());
    drop(stuck);
    a.stop().await;
    b.stop().await;
}

/// How often each key number appears as an SSE `id: bc:<n>` line.
fn count_ids(text: &str) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("id: bc:").and_then(|n| n.trim().parse::<u64>().ok()) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// Starts three cluster masters (no replicas) that keep serving their slots when another
/// master is down.
fn start_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_cluster_node()).collect();
    for node in &nodes {
        node.cli(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]).expect("config set");
    }
    create_cluster(&nodes, 0);
    wait_cluster_ok(&nodes);
    nodes
}

/// Which of `nodes` serves `slot`.
fn owner(nodes: &[RedisServer], slot: u16) -> usize {
    nodes
        .iter()
        .position(|node| {
            let text = node.cli(&["CLUSTER", "NODES"]).unwrap();
            let me = text.lines().find(|l| l.contains("myself")).unwrap().to_owned();
            me.split_whitespace().skip(8).any(|range| match range.split_once('-') {
                Some((lo, hi)) => (lo.parse().unwrap()..=hi.parse().unwrap()).contains(&slot),
                None => range.parse::<u16>().ok() == Some(slot),
            })
        })
        .expect("a master serves the slot")
}

fn slot_of(nodes: &[RedisServer], key: &str) -> u16 {
    nodes[0].cli(&["CLUSTER", "KEYSLOT", key]).unwrap().parse().unwrap()
}

/// With the master holding `QUEUESET`'s slot down, adds to queues served by the other
/// masters answer 200 (the registration is owed, not required), new queues included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_succeed_while_the_queueset_master_is_down() {
    let mut nodes = start_cluster();
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.store = StoreKind::Redis;
        c.redis_cluster = true;
        c.redis_url = urls.join(",");
    })
    .await;
    let down = owner(&nodes, slot_of(&nodes, "QUEUESET"));
    let candidates = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    let elsewhere: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|q| owner(&nodes, slot_of(&nodes, &format!("{{{q}}}:queue"))) != down)
        .collect();
    assert!(elsewhere.len() >= 2, "queues on the other masters: {elsewhere:?}");
    // One queue known before the failure, one first added after it.
    let (known, fresh) = (elsewhere[0], elsewhere[1]);
    assert_eq!(s.add(known, "before").await, format!("{known}:1"));
    nodes[down].kill();

    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    for (queue, expected) in [(known, format!("{known}:2")), (fresh, format!("{fresh}:1"))] {
        let res = http.post(s.url(&format!("/q/{queue}"))).form(&[("value", "during")]).send().await;
        let (status, body) = match res {
            Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
            Err(err) => (0, err.to_string()),
        };
        assert_eq!(
            (status, body.trim_end()),
            (200, expected.as_str()),
            "add to {queue} with QUEUESET's master down"
        );
    }
    let (status, body) = s.get(&format!("/q/{fresh}")).await;
    assert_eq!((status, body.contains("during")), (200, true), "{body}");
}

/// An observer on a process that outlives a Redis restart (AOF always, so nothing stored
/// is lost) sees every add the server acknowledged after Redis came back: an add answered
/// 200 while the bus is still resubscribing must not vanish for observers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_misses_no_acknowledged_add_across_a_redis_restart() {
    let mut redis = RedisServer::start_durable();
    let s = TestServer::start_on_redis(&redis.url()).await;
    s.add("watch", "before").await;
    let observer = s.http.get(s.url("/sse/watch?observe=1")).send().await.unwrap();
    s.metric_reaches("restmq_observers{queue=\"watch\"}", 1.0, Duration::from_secs(30)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.restart();

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 30 {
        assert!(Instant::now() < deadline, "adds never succeeded again");
        let res = http.post(s.url("/q/watch")).form(&[("value", "after")]).send().await;
        match res {
            Ok(res) if res.status() == 200 => acked.push(res.text().await.unwrap().trim_end().to_owned()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    // And one more once the server says it is ready again (its bus resubscribed).
    while s.get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    acked.push(s.add("watch", "ready").await);
    let last = acked.last().unwrap().clone();
    let mut events = observer.bytes_stream();
    let mut text = String::new();
    while !text.contains(&format!("id: {last}\n")) {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    let missed: Vec<&String> = acked.iter().filter(|k| !text.contains(&format!("id: {k}\n"))).collect();
    assert!(
        missed.is_empty(),
        "the observer missed {} of {} acknowledged adds: {missed:?}; it got: {text:?}",
        missed.len(),
        acked.len()
    );
}
