//! Several restmq processes on one Redis behave as one server: broadcast reaches every
//! consumer on every process once, roundrobin splits across processes, pause and purge
//! apply everywhere, presence counts all consumers, and `/nodes/pick` names the least
//! loaded process.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::redis::RedisServer;
use common::TestServer;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn two_servers(redis: &RedisServer) -> (TestServer, TestServer) {
    (TestServer::start_on_redis(&redis.url()).await, TestServer::start_on_redis(&redis.url()).await)
}

async fn connect(s: &TestServer, queue: &str) -> Ws {
    tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/{queue}"))).await.expect("ws connect").0
}

/// Polls `/stats/<queue>` on `s` until it counts `n` consumers (across all processes).
async fn wait_for_consumers(s: &TestServer, queue: &str, n: u64) {
    for _ in 0..300 {
        let (status, body) = s.get(&format!("/stats/{queue}")).await;
        if status == 200 && serde_json::from_str::<Value>(&body).unwrap()["consumers"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{queue} never showed {n} consumers on {}", s.addr);
}

/// Every text frame that arrives within `quiet` of the previous one, as keys.
async fn drain(ws: &mut Ws, quiet: Duration) -> Vec<String> {
    let mut keys = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(quiet, ws.next()).await {
        if let Message::Text(t) = msg {
            keys.push(serde_json::from_str::<Value>(&t).unwrap()["key"].as_str().unwrap().to_owned());
        }
    }
    keys
}

/// A broadcast message reaches a consumer on each process exactly once, in order; `/stats/`
/// on either process shows both consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_across_processes() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis).await;
    a.post_form("/control/news", &[("status", "start")]).await;
    let mut wa = connect(&a, "news").await;
    let mut wb = connect(&b, "news").await;
    wait_for_consumers(&a, "news", 2).await;
    wait_for_consumers(&b, "news", 2).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(if i % 2 == 0 {
            a.add("news", &format!("n{i}")).await
        } else {
            b.add("news", &format!("n{i}")).await
        });
    }
    assert_eq!(drain(&mut wa, Duration::from_millis(700)).await, sent, "consumer on A");
    assert_eq!(drain(&mut wb, Duration::from_millis(700)).await, sent, "consumer on B");
}

/// Roundrobin over two processes: 20 messages split between their consumers, no
/// duplicate, no loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_across_processes() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis).await;
    assert_eq!(a.post_form("/p/jobs", &[("policy", "roundrobin")]).await.0, 200);
    let mut wa = connect(&a, "jobs").await;
    let mut wb = connect(&b, "jobs").await;
    wait_for_consumers(&a, "jobs", 2).await;
    // Producers on both processes: each process's dispatcher competes for every message
    // (the one whose own add woke it usually wins the pop).
    let mut sent = HashSet::new();
    for i in 0..20 {
        let producer = if i % 2 == 0 { &a } else { &b };
        sent.insert(producer.add("jobs", &format!("j{i}")).await);
    }
    let (ka, kb) =
        tokio::join!(drain(&mut wa, Duration::from_millis(700)), drain(&mut wb, Duration::from_millis(700)));
    println!("roundrobin over two processes: A got {}, B got {}", ka.len(), kb.len());
    assert!(!ka.is_empty() && !kb.is_empty(), "both processes take part: A {ka:?}, B {kb:?}");
    let all: Vec<&String> = ka.iter().chain(&kb).collect();
    assert_eq!(all.len(), 20, "no duplicate");
    assert_eq!(all.into_iter().cloned().collect::<HashSet<_>>(), sent, "no loss");
}

/// Pause on one process holds delivery on the other; start there resumes it; purge on one
/// closes the other's consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_purge_apply_everywhere() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis).await;
    a.post_form("/control/ctl", &[("status", "start")]).await;
    let mut wb = connect(&b, "ctl").await;
    wait_for_consumers(&a, "ctl", 1).await;
    assert_eq!(a.post_form("/control/ctl", &[("status", "stop")]).await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = a.add("ctl", "held").await;
    assert!(drain(&mut wb, Duration::from_millis(400)).await.is_empty(), "paused on A holds B's consumer");
    assert_eq!(b.post_form("/control/ctl", &[("status", "start")]).await.0, 200);
    assert_eq!(drain(&mut wb, Duration::from_millis(700)).await, [key]);
    assert_eq!(a.http.delete(a.url("/q/ctl")).send().await.unwrap().status(), 200);
    let frame = tokio::time::timeout(Duration::from_secs(5), wb.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(frame, Message::Close(Some(ref c)) if c.reason.as_str() == "purged"), "{frame:?}");
}

/// `/nodes` lists both processes; `/nodes/pick` names the one with fewer consumers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_pick_least_loaded() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis).await;
    let _w1 = connect(&a, "x").await;
    let _w2 = connect(&a, "y").await;
    let _w3 = connect(&b, "x").await;
    wait_for_consumers(&b, "x", 2).await;
    let mut picked = Value::Null;
    for _ in 0..100 {
        let nodes = b.get_json("/nodes").await;
        picked = b.get_json("/nodes/pick").await;
        let loads: Vec<u64> =
            nodes["nodes"].as_array().unwrap().iter().map(|n| n["load"].as_u64().unwrap()).collect();
        if loads == [1, 2] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(picked["addr"], b.addr.to_string(), "the process with one consumer: {picked}");
    assert_eq!(picked["load"], 1);
}

/// A consumer connected before Redis restarts gets messages added after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_resume_after_redis_restart() {
    let mut redis = RedisServer::start_durable();
    let s = TestServer::start_on_redis(&redis.url()).await;
    s.post_form("/control/live", &[("status", "start")]).await;
    let mut ws = connect(&s, "live").await;
    wait_for_consumers(&s, "live", 1).await;
    let first = s.add("live", "before").await;
    assert_eq!(drain(&mut ws, Duration::from_millis(500)).await, [first]);
    redis.restart();
    let mut key = None;
    for _ in 0..100 {
        let res = s.http.post(s.url("/q/live")).form(&[("value", "after")]).send().await.unwrap();
        if res.status() == 200 {
            key = Some(res.text().await.unwrap().trim_end().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let key = key.expect("adds work again after the restart");
    let got = drain(&mut ws, Duration::from_secs(4)).await;
    assert_eq!(got, [key], "the consumer resumed");
}

/// An `Idempotency-Key` retry that lands on the other process gets the first answer and
/// adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_across_processes() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis).await;
    let post = |s: &TestServer| {
        let req =
            s.http.post(s.url("/q/orders")).header("Idempotency-Key", "order-42").form(&[("value", "once")]);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(post(&a).await, "orders:1\r\n");
    assert_eq!(post(&b).await, "orders:1\r\n", "the retry on B gets A's answer");
    assert_eq!(b.get_json("/stats/orders").await["len"], 1, "stored once");
}
