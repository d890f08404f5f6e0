//! At-least-once delivery on every store: leases over HTTP, the JSON protocol and
//! `ack=1` WebSockets; redelivery after the lease with the delivery count; nack; the
//! dead-letter queue and redrive; a consumer dying mid-batch loses nothing.

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use restmq_server::config::StoreKind;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn reserve(s: &TestServer, queue: &str, secs: u64) -> Option<Value> {
    let (status, body) = s.get(&format!("/q/{queue}?reserve={secs}")).await;
    match status {
        200 => Some(serde_json::from_str(&body).unwrap()),
        204 => None,
        other => panic!("reserve: {other} {body}"),
    }
}

/// A reserved message is out of the queue until acked; unacked it comes back to the head
/// after its lease with the delivery count; an ack is final and answered once.
async fn lease_expires_and_ack_is_final(store: StoreKind) {
    let s = TestServer::start(store).await;
    let k1 = s.add("jobs", "one").await;
    let k2 = s.add("jobs", "two").await;
    let m = reserve(&s, "jobs", 1).await.unwrap();
    assert_eq!((m["key"].as_str().unwrap(), m["deliveries"].as_u64()), (k1.as_str(), Some(1)));
    assert_eq!(s.get_json("/stats/jobs").await["len"], 1, "leased messages are out of the queue");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let again = reserve(&s, "jobs", 30).await.unwrap();
    assert_eq!(
        (again["key"].as_str().unwrap(), again["deliveries"].as_u64()),
        (k1.as_str(), Some(2)),
        "back at the head"
    );
    let res = s.http.delete(s.url(&format!("/q/jobs/{k1}"))).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queue": "jobs", "key": k1, "done": true}));
    let res = s.http.delete(s.url(&format!("/q/jobs/{k1}"))).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["done"], false, "acked once only");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get_json("/q/jobs").await["key"], k2.as_str(), "an acked message never comes back");
    assert_eq!(s.get("/q/jobs").await.0, 204);
}

/// Nack gives a message back to the head at once, its count kept.
async fn nack_returns_to_head(store: StoreKind) {
    let s = TestServer::start(store).await;
    let k1 = s.add("n", "one").await;
    s.add("n", "two").await;
    reserve(&s, "n", 30).await.unwrap();
    let (status, body) = s.post_form(&format!("/q/n/{k1}"), &[]).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["done"].as_bool()), (200, Some(true)));
    let m = reserve(&s, "n", 30).await.unwrap();
    assert_eq!((m["key"].as_str().unwrap(), m["deliveries"].as_u64()), (k1.as_str(), Some(2)));
}

/// After `--max-deliveries` the message moves to `<queue>.dead`; redrive brings it back.
async fn dead_letter_and_redrive(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_deliveries = 2).await;
    s.add("work", "poison").await;
    for _ in 0..2 {
        assert!(reserve(&s, "work", 1).await.is_some());
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(reserve(&s, "work", 1).await.is_none(), "gone from the queue");
    let dead = s.get_json("/q/work.dead?soft=1").await;
    assert_eq!(dead["value"], "poison");
    let (status, body) = s.post_form("/q/work.dead/redrive", &[]).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"queue": "work", "redriven": 1}))
    );
    assert_eq!(s.get_json("/q/work").await["value"], "poison");
    assert_eq!(s.get("/q/work.dead").await.0, 204);
    let (status, body) = s.post_form("/q/work/redrive", &[]).await;
    assert_eq!(status, 400, "only a .dead queue can be redriven: {body}");
}

/// The JSON protocol's reserve, ack and nack.
async fn json_protocol_leases(store: StoreKind) {
    let s = TestServer::start(store).await;
    let cmd = |doc: Value| {
        let s = &s;
        async move {
            let res = s.http.post(s.url("/queue")).json(&doc).send().await.unwrap();
            assert_eq!(res.status(), 200, "{doc}");
            res.json::<Value>().await.unwrap()
        }
    };
    let key = s.add("p", "v").await;
    let m = cmd(json!({"cmd": "reserve", "queue": "p", "lease": 30})).await;
    assert_eq!(m, json!({"queue": "p", "key": key, "value": "v", "deliveries": 1}));
    assert_eq!(cmd(json!({"cmd": "nack", "queue": "p", "key": key})).await["nacked"], true);
    let m = cmd(json!({"cmd": "reserve", "queue": "p"})).await;
    assert_eq!(m["deliveries"], 2);
    assert_eq!(cmd(json!({"cmd": "ack", "queue": "p", "key": key})).await["acked"], true);
    assert_eq!(cmd(json!({"cmd": "reserve", "queue": "p"})).await, json!({"error": "empty queue"}));
    let res = s
        .http
        .post(s.url("/queue"))
        .json(&json!({"cmd": "reserve", "queue": "p", "lease": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// An `ack=1` WebSocket consumer that dies holding unacknowledged messages loses none:
/// they go back at once, in order, and the next consumer gets them with count 2.
async fn websocket_consumer_dies_mid_batch(store: StoreKind) {
    let s = TestServer::start(store).await;
    let mut keys = Vec::new();
    for i in 0..10 {
        keys.push(s.add("batch", &format!("m{i}")).await);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/batch?ack=1")).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = msg {
            let m: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(m["deliveries"], 1);
            got.push(m["key"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, keys);
    for key in &keys[..4] {
        ws.send(Message::Text(json!({"cmd": "ack", "key": key}).to_string().into())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(ws); // dies holding 6 unacknowledged messages
    let (mut next, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/batch?ack=1")).await.unwrap();
    let mut redelivered = Vec::new();
    while redelivered.len() < 6 {
        let msg = tokio::time::timeout(Duration::from_secs(5), next.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = msg {
            let m: Value = serde_json::from_str(&t).unwrap();
            assert_eq!(m["deliveries"], 2, "{m}");
            redelivered.push(m["key"].as_str().unwrap().to_owned());
        }
    }
    println!("ack=1 consumer died: 10 sent, 4 acknowledged, 6 redelivered");
    assert_eq!(redelivered, keys[4..], "every unacknowledged message, in order");
}

on_every_store!(
    lease_expires_and_ack_is_final,
    nack_returns_to_head,
    dead_letter_and_redrive,
    json_protocol_leases,
    websocket_consumer_dies_mid_batch,
);
