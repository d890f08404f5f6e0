//! Resume and replay on broadcast queues: `since=<key>` on WebSocket, COMET and SSE, and
//! SSE's `Last-Event-ID`, replay exactly what was missed, then live messages; when the
//! history no longer reaches back, an explicit gap notice comes first.

mod common;

use std::time::Duration;

use common::ws::{next_json, Ws};
use common::TestServer;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

/// Connects a broadcast consumer that reads `count` messages, so they enter the history.
async fn consume(s: &TestServer, queue: &str, count: usize) -> (Ws, Vec<String>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/{queue}"))).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..count {
        keys.push(s.add(queue, &format!("m{}", i + 1)).await);
        assert_eq!(next_json(&mut ws).await["key"], keys[i].as_str());
    }
    (ws, keys)
}

/// A WebSocket consumer resuming with `since` gets exactly the missed messages, then live.
async fn websocket_since(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (_a, keys) = consume(&s, "feed", 5).await;
    let (mut b, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/feed?since={}", keys[1]))).await.unwrap();
    for key in &keys[2..] {
        assert_eq!(next_json(&mut b).await["key"], key.as_str());
    }
    let live = s.add("feed", "live").await;
    assert_eq!(next_json(&mut b).await, json!({"key": live, "value": "live"}), "no duplicate before live");
}

/// When the history was trimmed past `since`, a gap notice names what cannot be replayed.
async fn gap_when_history_is_short(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.history_len = 3).await;
    let (_a, keys) = consume(&s, "short", 10).await;
    let (mut c, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/short?since=short:2")).await.unwrap();
    assert_eq!(next_json(&mut c).await, json!({"gap": {"from": "short:3", "to": "short:7"}}));
    for key in &keys[7..] {
        assert_eq!(next_json(&mut c).await["key"], key.as_str());
    }
}

/// SSE resumes from `Last-Event-ID`; COMET from `since`.
async fn sse_last_event_id_and_comet_since(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (_a, keys) = consume(&s, "ev", 4).await;
    let res = s.http.get(s.url("/sse/ev")).header("Last-Event-ID", keys[1].as_str()).send().await.unwrap();
    let mut events = res.bytes_stream().eventsource();
    for key in &keys[2..] {
        let e = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(e.id, *key);
    }
    let mut comet = s.http.get(s.url(&format!("/c/ev?since={}", keys[2]))).send().await.unwrap();
    let mut text = String::new();
    while !text.ends_with("\r\n") || text.lines().count() < 1 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), comet.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(text, format!("{{\"key\":\"{}\",\"value\":\"m4\"}}\r\n", keys[3]));
}

/// `since` must be a key of the same queue.
async fn since_must_match_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, body) = s.get("/c/one?since=other:3").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "invalid_key");
}

/// Keys go on after a purge (as in RestMQ), so a `since` from before the purge names a real
/// earlier key: the consumer gets the new messages, none skipped.
async fn since_from_before_a_purge(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("p", "old1").await;
    s.add("p", "old2").await;
    assert_eq!(s.http.delete(s.url("/q/p")).send().await.unwrap().status(), 200);
    let fresh = s.add("p", "new1").await;
    assert_eq!(fresh, "p:3");
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/p?since=p:2")).await.unwrap();
    assert_eq!(next_json(&mut ws).await, json!({"key": "p:3", "value": "new1"}));
}

on_every_store!(
    since_from_before_a_purge,
    websocket_since,
    gap_when_history_is_short,
    sse_last_event_id_and_comet_since,
    since_must_match_queue
);
