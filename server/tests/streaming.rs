//! Streaming delivery over real sockets: COMET, WebSocket and SSE; broadcast, roundrobin,
//! pause, purge and backlog.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::TestServer;
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, StreamExt};
use restmq_server::config::StoreKind;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

async fn connect(s: &TestServer, queue: &str) -> Ws {
    let (ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/{queue}"))).await.expect("ws connect");
    // Let the server register the consumer before the test adds anything.
    wait_for_consumers(s, queue, None).await;
    ws
}

/// Waits until `/stats/<queue>` shows `n` consumers (or at least one when `None`).
async fn wait_for_consumers(s: &TestServer, queue: &str, n: Option<u64>) {
    for _ in 0..200 {
        let (status, body) = s.get(&format!("/stats/{queue}")).await;
        if status == 200 {
            let got = serde_json::from_str::<Value>(&body).unwrap()["consumers"].as_u64().unwrap();
            if n.map_or(got > 0, |n| got == n) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("queue {queue} never had {n:?} consumers");
}

/// The next text frame as JSON.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await.expect("frame in time").expect("open").unwrap();
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Asserts no text frame arrives within `ms`.
async fn assert_silent(ws: &mut Ws, ms: u64) {
    if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_millis(ms), ws.next()).await {
        panic!("unexpected message {t}");
    }
}

/// A WebSocket consumer gets the backlog oldest first, then live messages at once.
async fn websocket_backlog_then_live(store: StoreKind) {
    let s = TestServer::start(store).await;
    for i in 1..=3 {
        s.add("jobs", &format!("old{i}")).await;
    }
    let mut ws = connect(&s, "jobs").await;
    for i in 1..=3 {
        let m = next_json(&mut ws).await;
        assert_eq!(
            (m["key"].as_str().unwrap(), m["value"].as_str().unwrap()),
            (&*format!("jobs:{i}"), &*format!("old{i}"))
        );
    }
    let key = s.add("jobs", "live").await;
    assert_eq!(next_json(&mut ws).await, serde_json::json!({"key": key, "value": "live"}));
    assert_eq!(s.get("/q/jobs").await.0, 204, "streaming delivery consumes messages");
}

/// Broadcast: every consumer gets every message, once, in key order.
async fn broadcast_reaches_everyone(store: StoreKind) {
    let s = TestServer::start(store).await;
    let mut a = connect(&s, "news").await;
    let mut b = connect(&s, "news").await;
    wait_for_consumers(&s, "news", Some(2)).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(s.add("news", &format!("n{i}")).await);
    }
    for ws in [&mut a, &mut b] {
        for key in &sent {
            assert_eq!(next_json(ws).await["key"], key.as_str());
        }
        assert_silent(ws, 200).await;
    }
}

/// Roundrobin: 20 messages split between two consumers, no duplicate, no loss, in order.
async fn roundrobin_splits(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/p/work", &[("policy", "roundrobin")]).await.0, 200);
    let mut a = connect(&s, "work").await;
    let mut b = connect(&s, "work").await;
    wait_for_consumers(&s, "work", Some(2)).await;
    let sent: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..20 {
            v.push(s.add("work", &format!("w{i}")).await);
        }
        v
    };
    let mut got = Vec::new();
    for ws in [&mut a, &mut b] {
        let mut mine = Vec::new();
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            let m: Value = serde_json::from_str(&t).unwrap();
            mine.push(m["key"].as_str().unwrap().split(':').nth(1).unwrap().parse::<u64>().unwrap());
        }
        assert!(!mine.is_empty(), "each consumer gets a share");
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "in key order: {mine:?}");
        got.extend(mine);
    }
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(got.len(), 20, "no duplicate, no loss: {got:?}");
    assert_eq!(unique.len(), sent.len());
}

/// Pause holds delivery with the connection open; start resumes it in order.
async fn pause_holds_delivery(store: StoreKind) {
    let s = TestServer::start(store).await;
    let mut ws = connect(&s, "p").await;
    assert_eq!(s.post_form("/control/p", &[("status", "stop")]).await.0, 200);
    let k1 = s.add("p", "one").await;
    let k2 = s.add("p", "two").await;
    assert_silent(&mut ws, 300).await;
    assert_eq!(s.get_json("/stats/p").await["len"], 2, "messages accumulate while paused");
    assert_eq!(s.post_form("/control/p", &[("status", "start")]).await.0, 200);
    assert_eq!(next_json(&mut ws).await["key"], k1.as_str());
    assert_eq!(next_json(&mut ws).await["key"], k2.as_str());
}

/// Purge tells and closes every streaming consumer of the queue.
async fn purge_closes_consumers(store: StoreKind) {
    let s = TestServer::start(store).await;
    let mut ws = connect(&s, "gone").await;
    let mut comet = s.http.get(s.url("/c/gone")).send().await.unwrap();
    wait_for_consumers(&s, "gone", Some(2)).await;
    let res = s.http.delete(s.url("/q/gone")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let frame = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    match frame {
        Message::Close(Some(close)) => assert_eq!(close.reason.as_str(), "purged"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let line = tokio::time::timeout(WAIT, comet.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&line).unwrap(), "{\"queue\":\"gone\",\"closed\":\"purged\"}\r\n");
    assert!(tokio::time::timeout(WAIT, comet.chunk()).await.unwrap().unwrap().is_none(), "COMET stream ends");
}

/// COMET sends its headers at once, then one line per message; JSONP wraps each line.
async fn comet_lines_and_jsonp(store: StoreKind) {
    let s = TestServer::start(store).await;
    let plain = tokio::time::timeout(WAIT, s.http.get(s.url("/c/feed")).send())
        .await
        .expect("headers at once")
        .unwrap();
    let mut jsonp = s.http.get(s.url("/c/feed?callback=app.onData")).send().await.unwrap();
    assert_eq!(plain.headers()["content-type"], "text/plain; charset=utf-8");
    wait_for_consumers(&s, "feed", Some(2)).await;
    let key = s.add("feed", "v\"1").await;
    let mut plain = plain;
    let line = tokio::time::timeout(WAIT, plain.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        format!("{{\"key\":\"{key}\",\"value\":\"v\\\"1\"}}\r\n")
    );
    let line = tokio::time::timeout(WAIT, jsonp.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        format!("app.onData({{\"key\":\"{key}\",\"value\":\"v\\\"1\"}});\r\n")
    );
}

/// SSE: `text/event-stream`, `id:` is the key, `data:` the message JSON.
async fn sse_events(store: StoreKind) {
    let s = TestServer::start(store).await;
    let k1 = s.add("ev", "before").await;
    let res = s.http.get(s.url("/sse/ev")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut events = res.bytes_stream().eventsource();
    let e = tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(e.id, k1);
    assert_eq!(
        serde_json::from_str::<Value>(&e.data).unwrap(),
        serde_json::json!({"key": k1, "value": "before"})
    );
    let k2 = s.add("ev", "after").await;
    let e = tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((e.id.as_str(), e.event.as_str()), (k2.as_str(), "message"));
}

/// A consumer that leaves is counted out, and later messages wait in the queue.
async fn leaving_consumer_is_counted_out(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/control/left", &[("status", "start")]).await.0, 200);
    let mut ws = connect(&s, "left").await;
    ws.send(Message::Close(None)).await.unwrap();
    wait_for_consumers(&s, "left", Some(0)).await;
    let key = s.add("left", "kept").await;
    let got = s.get_json("/q/left").await;
    assert_eq!(got["key"], key.as_str());
}

on_every_store!(
    websocket_backlog_then_live,
    broadcast_reaches_everyone,
    roundrobin_splits,
    pause_holds_delivery,
    purge_closes_consumers,
    comet_lines_and_jsonp,
    sse_events,
    leaving_consumer_is_counted_out,
);
