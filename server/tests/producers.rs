//! Producers on every store: NDJSON and JSON-array batches (all or nothing),
//! `Idempotency-Key` retries, per-queue length limits, and WebSocket add frames.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use restmq_server::config::{Overflow, StoreKind};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn len(s: &TestServer, queue: &str) -> u64 {
    let (status, body) = s.get(&format!("/stats/{queue}")).await;
    if status == 404 {
        return 0;
    }
    serde_json::from_str::<Value>(&body).unwrap()["len"].as_u64().unwrap()
}

/// NDJSON and JSON-array batches answer their keys; strings stay strings, the rest is
/// compact JSON text.
async fn batches_add_in_order(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, body) = s.post_raw("/q/b", "application/x-ndjson", "\"one\"\n{\"n\": 2}\n\n3\n").await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (200, json!(["b:1", "b:2", "b:3"])));
    let (status, body) = s.post_raw("/q/b?batch=1", "application/json", r#"["four", [5]]"#).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (200, json!(["b:4", "b:5"])));
    let mut values = Vec::new();
    for _ in 0..5 {
        values.push(s.get_json("/q/b").await["value"].as_str().unwrap().to_owned());
    }
    assert_eq!(values, ["one", r#"{"n":2}"#, "3", "four", "[5]"]);
}

/// One bad line refuses the whole batch and adds nothing.
async fn bad_batch_adds_nothing(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, body) = s.post_raw("/q/bad", "application/x-ndjson", "\"ok\"\nnot json\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "malformed_json");
    let (status, _) = s.post_raw("/q/bad?batch=1", "application/json", r#"{"not":"an array"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(len(&s, "bad").await, 0);
}

/// A retried POST with the same `Idempotency-Key` gets the first key and stores once.
async fn idempotent_retries(store: StoreKind) {
    let s = TestServer::start(store).await;
    let post = |key: &'static str| {
        let s = &s;
        async move {
            let res = s.http.post(s.url("/q/idem")).header("Idempotency-Key", key).form(&[("value", "x")]);
            res.send().await.unwrap().text().await.unwrap()
        }
    };
    assert_eq!(post("k1").await, "idem:1\r\n");
    assert_eq!(post("k1").await, "idem:1\r\n", "the retry gets the first answer");
    assert_eq!(post("k2").await, "idem:2\r\n");
    assert_eq!(len(&s, "idem").await, 2, "stored once per key");
}

/// `--max-queue-len` refuses adds with 429 when full, batches included (all or nothing).
async fn full_queue_refuses(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_queue_len = 3).await;
    for i in 0..3 {
        s.add("cap", &format!("m{i}")).await;
    }
    let (status, body) = s.post_form("/q/cap", &[("value", "over")]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "too_many_requests");
    s.get("/q/cap").await;
    let (status, _) = s.post_raw("/q/cap?batch=1", "application/json", r#"["a","b"]"#).await;
    assert_eq!(status, 429, "a batch that does not fit adds nothing");
    assert_eq!(len(&s, "cap").await, 2);
}

/// `--overflow drop-oldest` keeps the newest messages instead.
async fn full_queue_drops_oldest(store: StoreKind) {
    let s = TestServer::start_with(store, |c| {
        c.max_queue_len = 3;
        c.overflow = Overflow::DropOldest;
    })
    .await;
    for i in 1..=5 {
        s.add("roll", &format!("m{i}")).await;
    }
    assert_eq!(len(&s, "roll").await, 3);
    assert_eq!(s.get_json("/q/roll").await["value"], "m3");
}

/// A WebSocket client adds with `{"cmd":"add","value":…}` frames and is told the key.
async fn websocket_add_frames(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/prod")).await.unwrap();
    ws.send(Message::Text(json!({"cmd": "add", "value": {"t": 1}}).to_string().into())).await.unwrap();
    ws.send(Message::Text(r#"{"cmd":"drop"}"#.into())).await.unwrap();
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = msg {
            frames.push(serde_json::from_str::<Value>(&t).unwrap());
        }
    }
    assert!(frames.contains(&json!({"added": "prod:1"})), "{frames:?}");
    assert!(
        frames.contains(&json!({"key": "prod:1", "value": "{\"t\":1}"})),
        "the message was streamed: {frames:?}"
    );
    assert!(frames.iter().any(|f| f["error"]["code"] == "malformed_json"), "{frames:?}");
}

/// An add frame whose value is over `--max-message-bytes` is answered `too_large` and adds
/// nothing; one at the limit is added.
async fn websocket_add_frame_over_the_limit(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_message_bytes = 64).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/big")).await.unwrap();
    for value in ["x".repeat(65), "y".repeat(64)] {
        ws.send(Message::Text(json!({"cmd": "add", "value": value}).to_string().into())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = msg {
            let frame: Value = serde_json::from_str(&t).unwrap();
            if frame.get("key").is_none() {
                answers.push(frame); // not the streamed copy of the accepted one
            }
        }
    }
    assert_eq!(answers[0]["error"]["code"], "too_large", "{answers:?}");
    assert_eq!(answers[1], json!({"added": "big:1"}), "{answers:?}");
}

/// A message added with `delay` is invisible until then, and a streaming consumer gets it
/// when it becomes visible.
async fn delayed_messages_wait(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, key) = s.post_form("/q/later", &[("value", "soon"), ("delay", "1")]).await;
    assert_eq!((status, key.as_str()), (200, "later:1\r\n"));
    assert_eq!(s.get("/q/later").await.0, 204, "not visible yet");
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/later")).await.unwrap();
    let started = std::time::Instant::now();
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500), "delivered only once due");
    assert_eq!(msg.into_text().unwrap().as_str(), r#"{"key":"later:1","value":"soon"}"#);
    let (status, _) = s.post_form("/q/later", &[("value", "x"), ("delay", "0")]).await;
    assert_eq!(status, 400);
}

/// A delayed message survives a restart of the server (embedded and Redis stores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_message_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let redis = common::redis::RedisServer::start();
    for store in [StoreKind::Embedded, StoreKind::Redis] {
        let tweak = |c: &mut restmq_server::config::ServeConfig| {
            c.data_dir = data.clone();
            c.redis_url = redis.url();
        };
        let s = TestServer::start_with(store, tweak).await;
        assert_eq!(s.post_form("/q/restart", &[("value", "kept"), ("delay", "1")]).await.0, 200);
        s.stop().await;
        let s = TestServer::start_with(store, tweak).await;
        assert_eq!(s.get("/q/restart").await.0, 204, "{store:?}: still hidden");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(s.get_json("/q/restart").await["value"], "kept", "{store:?}");
        s.stop().await;
    }
}

/// A message whose ttl ran out is swept from its queue: it stops counting in `len` and
/// `/j` without any get meeting it.
async fn expired_messages_do_not_linger(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("ttl", "stays").await;
    assert_eq!(s.post_form("/q/ttl", &[("value", "goes"), ("ttl", "1")]).await.0, 200);
    assert_eq!(len(&s, "ttl").await, 2);
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if len(&s, "ttl").await == 1 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the expired message was swept");
    assert_eq!(s.get_json("/j/ttl").await["keys"], json!(["ttl:1"]));
    if let Some(redis) = &s.redis {
        assert_eq!(
            redis.cli(&["LRANGE", "ttl:queue", "0", "-1"]).unwrap(),
            "ttl:1",
            "no dangling list entry"
        );
    }
}

on_every_store!(
    expired_messages_do_not_linger,
    delayed_messages_wait,
    batches_add_in_order,
    bad_batch_adds_nothing,
    idempotent_retries,
    full_queue_refuses,
    full_queue_drops_oldest,
    websocket_add_frames,
    websocket_add_frame_over_the_limit,
);
