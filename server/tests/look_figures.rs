//! `/consumers/<queue>` (who streams from a queue) and `/history/<queue>` (the last hour of
//! its figures), on every store and, on Redis, summed over two processes.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;
use restmq_shared::{ConsumersReply, HistoryReply};
use tokio_tungstenite::connect_async;

async fn consumers(s: &TestServer, queue: &str) -> ConsumersReply {
    serde_json::from_value(s.get_json(&format!("/consumers/{queue}")).await).unwrap()
}

/// Polls `/consumers/<queue>` until `done` holds of it (10 s at most).
async fn consumers_until(
    s: &TestServer,
    queue: &str,
    done: impl Fn(&ConsumersReply) -> bool,
) -> ConsumersReply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = consumers(s, queue).await;
        if done(&reply) {
            return reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Consumers and observers of each transport are listed with what they are and got.
async fn consumers_list_every_stream(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (mut consumer, _) = connect_async(s.ws_url("/ws/jobs")).await.unwrap();
    let (_acked, _) = connect_async(s.ws_url("/ws/jobs?ack=1")).await.unwrap();
    let _observer = s.http.get(s.url("/sse/jobs?observe=1")).send().await.unwrap();
    let _comet = s.http.get(s.url("/c/other")).send().await.unwrap();
    let listed = consumers_until(&s, "jobs", |r| r.consumers.len() == 3).await;
    let mut kinds: Vec<(String, String, bool)> =
        listed.consumers.iter().map(|c| (c.mode.clone(), c.transport.clone(), c.ack)).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("consumer".into(), "ws".into(), false),
            ("consumer".into(), "ws".into(), true),
            ("observer".into(), "sse".into(), false)
        ]
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for c in &listed.consumers {
        assert!(c.addr.starts_with("127.0.0.1:"), "{c:?}");
        assert!(c.since <= now && c.since + 60 > now, "{c:?}");
    }
    assert_eq!(consumers(&s, "other").await.consumers[0].transport, "comet");

    s.post_form("/p/jobs", &[("policy", "broadcast")]).await;
    s.add("jobs", "hello").await;
    common::ws::next_json(&mut consumer).await;
    let listed = consumers_until(&s, "jobs", |r| {
        r.consumers.iter().any(|c| c.mode == "observer" && c.delivered == 1)
            && r.consumers.iter().map(|c| c.delivered).sum::<u64>() == 2
    })
    .await;
    assert!(listed.consumers.iter().all(|c| c.delivered <= 1), "{listed:?}");
    drop(consumer);
    consumers_until(&s, "jobs", |r| r.consumers.len() == 2).await;
    s.stop().await;
}

/// `/history/<queue>` adds up what happened, step by step, and shows the length.
async fn history_adds_up(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.queue_history_step_secs = 1).await;
    for i in 0..5 {
        s.add("hist", &format!("v{i}")).await;
    }
    for _ in 0..2 {
        assert_eq!(s.get("/q/hist").await.0, 200);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let reply = loop {
        let reply: HistoryReply = serde_json::from_value(s.get_json("/history/hist").await).unwrap();
        let added: u64 = reply.points.iter().map(|p| p.added).sum();
        let taken: u64 = reply.points.iter().map(|p| p.taken).sum();
        if added == 5 && taken == 2 && reply.points.last().is_some_and(|p| p.len == 3) {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reply.step, 1);
    assert!(reply.points.windows(2).all(|w| w[0].t <= w[1].t), "{reply:?}");
    let empty: HistoryReply = serde_json::from_value(s.get_json("/history/never").await).unwrap();
    assert!(empty.points.is_empty());
    s.stop().await;
}

on_every_store!(consumers_list_every_stream, history_adds_up);

/// Two processes on one Redis: each lists the other's streams, and history counts the adds
/// made through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_history_span_processes() {
    let redis = common::redis::RedisServer::start();
    let url = redis.url();
    let a = TestServer::start_inner_on_redis(&url, |c| c.queue_history_step_secs = 1).await;
    let b = TestServer::start_inner_on_redis(&url, |c| c.queue_history_step_secs = 1).await;
    let (_consumer, _) = connect_async(b.ws_url("/ws/both")).await.unwrap();
    let (_observer, _) = connect_async(a.ws_url("/ws/both?observe=1")).await.unwrap();
    let listed = consumers_until(&a, "both", |r| r.consumers.len() == 2).await;
    let nodes: std::collections::BTreeSet<&str> = listed.consumers.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(nodes.len(), 2, "{listed:?}");
    for i in 0..3 {
        a.add("both", &format!("a{i}")).await;
        b.add("both", &format!("b{i}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let reply: HistoryReply = serde_json::from_value(a.get_json("/history/both").await).unwrap();
        let added: u64 = reply.points.iter().map(|p| p.added).sum();
        let delivered: u64 = reply.points.iter().map(|p| p.delivered).sum();
        if added == 6 && delivered == 6 && reply.points.last().is_some_and(|p| p.consumers == 1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
}
