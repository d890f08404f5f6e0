//! Replay history is bounded by bytes, per queue and in total, and freed: a purge drops a
//! queue's history at once, and messages that age out are swept even when no new message
//! arrives. `restmq_history_bytes` on `/metrics` counts what is kept; replay never returns
//! what was dropped.

mod common;

use std::time::{Duration, Instant};

use common::ws::{next_json, Ws};
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Nothing more arrives within `ms`.
async fn silent(ws: &mut Ws, ms: u64) -> bool {
    tokio::time::timeout(Duration::from_millis(ms), ws.next()).await.is_err()
}

async fn connect(s: &TestServer, path: &str) -> Ws {
    tokio_tungstenite::connect_async(s.ws_url(path)).await.unwrap().0
}

/// `restmq_history_bytes` on `/metrics`.
async fn history_bytes(s: &TestServer) -> u64 {
    let (status, page) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let value = page.lines().find_map(|l| l.strip_prefix("restmq_history_bytes ")).expect("gauge");
    value.trim().parse().unwrap()
}

/// Waits (at most 10 s) for the history to hold no byte.
async fn wait_history_empty(s: &TestServer, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while history_bytes(s).await != 0 {
        assert!(Instant::now() < deadline, "{what}: history still holds {} bytes", history_bytes(s).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds `values` to `queue` while a consumer reads them, so they are broadcast and recorded.
async fn broadcast(s: &TestServer, queue: &str, values: &[String]) -> Vec<String> {
    let mut ws = connect(s, &format!("/ws/{queue}")).await;
    let mut keys = Vec::new();
    for value in values {
        keys.push(s.add(queue, value).await);
        assert_eq!(next_json(&mut ws).await["key"], keys[keys.len() - 1].as_str());
    }
    keys
}

/// What a consumer resuming after `since` is replayed: `(gap, keys)`, read until 500 ms
/// pass without a frame (at most 100 frames).
async fn replayed(s: &TestServer, queue: &str, since: &str) -> (Option<Value>, Vec<String>) {
    let mut ws = connect(s, &format!("/ws/{queue}?since={since}")).await;
    let (mut gap, mut keys) = (None, Vec::new());
    for _ in 0..100 {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await else {
            break;
        };
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame.get("gap") {
            Some(g) => gap = Some(g.clone()),
            None => keys.push(frame["key"].as_str().unwrap().to_owned()),
        }
    }
    (gap, keys)
}

/// Four broadcast queues of 8 KiB messages: each keeps at most its byte bound, all together
/// at most the total bound, and replay gives the newest kept messages after a gap notice.
async fn history_is_bounded_by_bytes(store: StoreKind) {
    const QUEUE_BYTES: u64 = 64 * 1024;
    const TOTAL_BYTES: u64 = 160 * 1024;
    let s = TestServer::start_with(store, |c| {
        c.history_queue_bytes = QUEUE_BYTES as usize;
        c.history_total_bytes = TOTAL_BYTES as usize;
    })
    .await;
    let values: Vec<String> = (0..20).map(|i| format!("{i:02}{}", "x".repeat(8 * 1024))).collect();
    let mut held = Vec::new();
    for q in 0..4 {
        broadcast(&s, &format!("h{q}"), &values).await;
        let (gap, keys) = replayed(&s, &format!("h{q}"), &format!("h{q}:1")).await;
        let kept = keys.len() as u64;
        assert!(kept >= 1 && kept * 8 * 1024 <= QUEUE_BYTES, "h{q} keeps {kept} messages of 8 KiB");
        let expected: Vec<String> = (21 - kept..=20).map(|n| format!("h{q}:{n}")).collect();
        assert_eq!(keys, expected, "the newest messages, in order");
        assert_eq!(gap, Some(json!({"from": format!("h{q}:2"), "to": format!("h{q}:{}", 20 - kept)})));
        held.push(history_bytes(&s).await);
    }
    for (q, held) in held.iter().enumerate() {
        assert!(*held > 0 && *held <= QUEUE_BYTES * (q as u64 + 1), "after h{q}: {held} bytes");
        assert!(*held <= TOTAL_BYTES, "after h{q}: {held} bytes, over the total bound");
    }
    eprintln!("{store:?}: 4 × 20 × 8 KiB broadcast; bytes kept after each queue: {held:?}");
}

/// A purge frees the queue's history at once, and a resuming consumer is not replayed the
/// purged messages (keys go on after a purge, as in RestMQ).
async fn purge_frees_history(store: StoreKind) {
    let s = TestServer::start(store).await;
    let old: Vec<String> = (1..=5).map(|i| format!("old{i}")).collect();
    broadcast(&s, "p", &old).await;
    assert_eq!(s.http.delete(s.url("/q/p")).send().await.unwrap().status(), 200);
    let keys = broadcast(&s, "p", &["new1".to_owned(), "new2".to_owned()]).await;
    assert_eq!(keys, ["p:6", "p:7"]);
    let mut ws = connect(&s, "/ws/p?since=p:6").await;
    assert_eq!(next_json(&mut ws).await, json!({"key": "p:7", "value": "new2"}), "only the new message");
    assert!(silent(&mut ws, 300).await, "nothing purged comes back");
    drop(ws);
    let kept = history_bytes(&s).await;
    assert_eq!(s.http.delete(s.url("/q/p")).send().await.unwrap().status(), 200);
    wait_history_empty(&s, "after the purge").await;
    eprintln!("{store:?}: {kept} bytes of history before the purge, none after");
}

/// Messages older than `--history-age-secs` are dropped by the sweep with no new message to
/// trigger it; replay then only names the gap.
async fn aged_history_is_swept(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.history_age_secs = 1).await;
    let values: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    broadcast(&s, "aged", &values).await;
    assert!(history_bytes(&s).await > 0);
    wait_history_empty(&s, "after aging out").await;
    let (gap, keys) = replayed(&s, "aged", "aged:1").await;
    assert_eq!(gap, Some(json!({"from": "aged:2", "to": "aged:5"})));
    assert!(keys.is_empty(), "nothing aged out is replayed: {keys:?}");
}

on_every_store!(history_is_bounded_by_bytes, purge_frees_history, aged_history_is_swept);
