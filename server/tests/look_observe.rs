//! Observers (`?observe=1` on `/ws`, `/sse`, `/c`): they see every add in key order and take
//! nothing, beside a roundrobin consumer, on every store and across two processes on one
//! Redis; an `observe`-only token looks and cannot take.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::ws::{next_json, Ws};
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;

async fn ws(s: &TestServer, path: &str) -> Ws {
    tokio_tungstenite::connect_async(s.ws_url(path)).await.unwrap().0
}

/// Keys (numbers) of the next `count` messages of `ws`.
async fn keys_of(ws: &mut Ws, count: usize) -> Vec<u64> {
    let mut keys = Vec::new();
    while keys.len() < count {
        let frame = next_json(ws).await;
        let key = frame["key"].as_str().unwrap_or_else(|| panic!("not a message: {frame}"));
        keys.push(key.rsplit_once(':').unwrap().1.parse().unwrap());
    }
    keys
}

/// Adds `count` messages from four concurrent producers through `servers` in turn.
async fn add_concurrently(servers: &[&TestServer], queue: &str, count: usize) {
    let mut tasks = Vec::new();
    for t in 0..4 {
        let targets: Vec<(reqwest::Client, String)> =
            servers.iter().map(|s| (s.http.clone(), s.url(&format!("/q/{queue}")))).collect();
        tasks.push(tokio::spawn(async move {
            for i in (t..count).step_by(4) {
                let (http, url) = &targets[i % targets.len()];
                let res = http.post(url).form(&[("value", format!("v{i}"))]).send().await.unwrap();
                assert_eq!(res.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// An observer and a roundrobin consumer on one queue: the consumer gets every message once,
/// the observer sees every add in key order, and what is left is what the consumer left.
async fn observer_beside_a_consumer(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/p/jobs", &[("policy", "roundrobin")]).await.0, 200);
    let mut observer = ws(&s, "/ws/jobs?observe=1").await;
    let mut consumer = ws(&s, "/ws/jobs").await;
    s.metric_reaches("restmq_observers{queue=\"jobs\"}", 1.0, Duration::from_secs(10)).await;
    s.metric_reaches("restmq_consumers{queue=\"jobs\"}", 1.0, Duration::from_secs(10)).await;

    add_concurrently(&[&s], "jobs", 200).await;
    let seen = keys_of(&mut observer, 200).await;
    assert_eq!(seen, (1..=200).collect::<Vec<u64>>(), "the observer sees every add, in key order");
    let taken: BTreeSet<u64> = keys_of(&mut consumer, 200).await.into_iter().collect();
    assert_eq!(taken.len(), 200, "the consumer got every message exactly once");
    drop(consumer);
    s.metric_reaches("restmq_consumers{queue=\"jobs\"}", 0.0, Duration::from_secs(10)).await;
    assert_eq!(s.get_json("/stats/jobs").await["len"], 0);

    // No consumer now, and paused: the observer still sees adds, and takes none.
    assert_eq!(s.post_form("/control/jobs", &[("status", "stop")]).await.0, 200);
    for i in 0..3 {
        s.add("jobs", &format!("late{i}")).await;
    }
    assert_eq!(keys_of(&mut observer, 3).await, vec![201, 202, 203]);
    assert_eq!(s.get_json("/stats/jobs").await["len"], 3, "the observer took nothing");
    s.metric_reaches("restmq_messages_observed_total{queue=\"jobs\"}", 203.0, Duration::from_secs(10)).await;
    s.metric_reaches("restmq_messages_delivered_total{queue=\"jobs\"}", 200.0, Duration::from_secs(10)).await;
    s.stop().await;
}

/// COMET and SSE observers see adds (batches and delayed ones included) and leave them.
async fn comet_and_sse_observers_take_nothing(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("obs", "before").await;
    let mut comet = s.http.get(s.url("/c/obs?observe=1")).send().await.unwrap();
    let sse = s.http.get(s.url("/sse/obs?observe=1")).send().await.unwrap();
    assert_eq!((comet.status().as_u16(), sse.status().as_u16()), (200, 200));
    s.metric_reaches("restmq_observers{queue=\"obs\"}", 2.0, Duration::from_secs(10)).await;
    s.add("obs", "one").await;
    let (status, _) = s.post_raw("/q/obs?batch=1", "application/json", r#"["two","three"]"#).await;
    assert_eq!(status, 200);
    assert_eq!(s.post_form("/q/obs", &[("value", "later"), ("delay", "60")]).await.0, 200);

    let mut text = String::new();
    while text.matches("\"key\"").count() < 4 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), comet.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    for (n, v) in [(2, "one"), (3, "two"), (4, "three"), (5, "later")] {
        assert!(text.contains(&format!(r#"{{"key":"obs:{n}","value":"{v}"}}"#)), "{text}");
    }
    assert!(!text.contains("before"), "an observer sees adds from when it joined: {text}");
    let mut events = sse.bytes_stream();
    let mut sse_text = String::new();
    while sse_text.matches("id: obs:").count() < 4 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap().unwrap();
        sse_text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(sse_text.contains("id: obs:5"), "{sse_text}");
    assert_eq!(s.get_json("/stats/obs").await["len"], 4, "nothing taken (the delayed one waits)");
    let (status, body) = s.get("/q/obs").await;
    assert_eq!((status, body.contains("before")), (200, true), "the worker still gets the first: {body}");
    s.stop().await;
}

/// `observe=1` with `ack=1` makes no sense: 400, nothing joins.
async fn observe_with_ack_is_refused(store: StoreKind) {
    let s = TestServer::start(store).await;
    for path in ["/c/q?observe=1&ack=1", "/sse/q?observe=1&ack=1"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/q?observe=1&ack=1")).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    s.stop().await;
}

on_every_store!(
    observer_beside_a_consumer,
    comet_and_sse_observers_take_nothing,
    observe_with_ack_is_refused
);

/// Two processes on one Redis: an observer on the first sees the adds made through both, a
/// roundrobin consumer on the second gets each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_adds_of_every_process() {
    let redis = common::redis::RedisServer::start();
    let (a, b) =
        (TestServer::start_on_redis(&redis.url()).await, TestServer::start_on_redis(&redis.url()).await);
    assert_eq!(a.post_form("/p/shared", &[("policy", "roundrobin")]).await.0, 200);
    let mut observer = ws(&a, "/ws/shared?observe=1").await;
    let mut consumer = ws(&b, "/ws/shared").await;
    a.metric_reaches("restmq_observers{queue=\"shared\"}", 1.0, Duration::from_secs(10)).await;
    b.metric_reaches("restmq_consumers{queue=\"shared\"}", 1.0, Duration::from_secs(10)).await;

    add_concurrently(&[&a, &b], "shared", 200).await;
    assert_eq!(keys_of(&mut observer, 200).await, (1..=200).collect::<Vec<u64>>());
    let taken: BTreeSet<u64> = keys_of(&mut consumer, 200).await.into_iter().collect();
    assert_eq!(taken.len(), 200);
    drop(consumer);
    b.metric_reaches("restmq_consumers{queue=\"shared\"}", 0.0, Duration::from_secs(10)).await;
    b.add("shared", "left").await;
    assert_eq!(keys_of(&mut observer, 1).await, vec![201]);
    assert_eq!(a.get_json("/stats/shared").await["len"], 1);
    a.stop().await;
    b.stop().await;
}

/// A token with only `observe`: observers, browse and soft gets pass; takes do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observe_token_looks_and_cannot_take() {
    let (s, _dir) = TestServer::start_with_tokens(common::OBSERVE_TOKENS).await;
    let root = s.http.post(s.url("/q/jobs")).bearer_auth("t-root").form(&[("value", "secret work")]);
    assert_eq!(root.send().await.unwrap().status(), 200);
    let status = |method: reqwest::Method, path: &str| {
        let req = s.http.request(method, s.url(path)).bearer_auth("t-look");
        async move { req.send().await.unwrap().status().as_u16() }
    };
    use reqwest::Method;
    assert_eq!(status(Method::GET, "/browse/jobs").await, 200);
    assert_eq!(status(Method::GET, "/q/jobs?soft=1").await, 200);
    assert_eq!(status(Method::HEAD, "/q/jobs").await, 200);
    let observer = s.http.get(s.url("/c/jobs?observe=1")).bearer_auth("t-look").send().await.unwrap();
    assert_eq!(observer.status(), 200);
    drop(observer);
    for (method, path) in [
        (Method::GET, "/q/jobs"),
        (Method::GET, "/q/jobs?reserve=30"),
        (Method::GET, "/q/jobs?soft=1&reserve=30"),
        (Method::GET, "/c/jobs"),
        (Method::GET, "/sse/jobs"),
        (Method::DELETE, "/q/jobs"),
        (Method::POST, "/q/jobs"),
        (Method::GET, "/browse/other"),
    ] {
        assert_eq!(status(method.clone(), path).await, 403, "{method} {path}");
    }
    // A soft flag in the query does not cover a body that asks for more.
    let sneaky = s.http.get(s.url("/q/jobs?soft=1")).bearer_auth("t-look").form(&[("soft", "0")]);
    assert_eq!(sneaky.send().await.unwrap().status(), 403);
    let mut ws_req = s.ws_url("/ws/jobs").into_client_request().unwrap();
    ws_req.headers_mut().insert("authorization", "Bearer t-look".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(ws_req).await.is_err(), "a consuming WebSocket");
    let mut ws_req = s.ws_url("/ws/jobs?observe=1").into_client_request().unwrap();
    ws_req.headers_mut().insert("authorization", "Bearer t-look".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(ws_req).await.is_ok(), "an observing WebSocket");
    let left = s.http.get(s.url("/stats/jobs")).bearer_auth("t-root").send().await.unwrap();
    let left: serde_json::Value = left.json().await.unwrap();
    assert_eq!(left["len"], 1, "nothing was taken");
    s.stop().await;
}

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
