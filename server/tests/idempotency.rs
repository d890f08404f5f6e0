//! `Idempotency-Key` bounds: keys are at most 200 visible-ASCII bytes (else 400, nothing
//! added, on every store), and the memory that remembers answers is bounded by bytes without
//! ever forgetting an answer inside its window (new keys get 429 while it is full).

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use reqwest::header::HeaderValue;
use restmq_server::config::StoreKind;
use serde_json::Value;

/// `POST /q/<queue>` with `value` and an `Idempotency-Key` of raw bytes: (status, body, headers).
async fn post_keyed(s: &TestServer, queue: &str, key: &[u8]) -> (u16, String, reqwest::header::HeaderMap) {
    let key = HeaderValue::from_bytes(key).expect("a header value reqwest can send");
    let req = s.http.post(s.url(&format!("/q/{queue}"))).header("idempotency-key", key);
    let res = req.form(&[("value", "v")]).send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.text().await.unwrap(), headers)
}

fn error_code(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    body["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// A queue's length (0 for a queue that does not exist: `/stats/<queue>` answers 404).
async fn len(s: &TestServer, queue: &str) -> u64 {
    let (status, body) = s.get(&format!("/stats/{queue}")).await;
    if status == 404 {
        return 0;
    }
    serde_json::from_str::<Value>(&body).unwrap()["len"].as_u64().unwrap()
}

/// A key over 200 bytes, repeated, or with bytes that are not visible ASCII (spaces, tabs,
/// UTF-8) gets 400 `invalid_idempotency_key` and adds nothing, on every route that takes
/// one; a key of exactly 200 bytes deduplicates.
async fn bad_keys_are_refused(store: StoreKind) {
    let s = TestServer::start(store).await;
    let long = "k".repeat(201);
    for bad in [long.as_bytes(), "café".as_bytes(), b"two words", b"tab\there", b"\xff"] {
        let (status, body, _) = post_keyed(&s, "idem", bad).await;
        assert_eq!((status, error_code(&body).as_str()), (400, "invalid_idempotency_key"), "{bad:?}: {body}");
    }
    let twice = s.http.post(s.url("/q/idem")).header("idempotency-key", "a").header("idempotency-key", "b");
    let res = twice.form(&[("value", "v")]).send().await.unwrap();
    assert_eq!(res.status(), 400, "two keys");
    let by_argument = s.http.post(s.url("/")).header("idempotency-key", long.as_str());
    let res = by_argument.form(&[("queue", "idem"), ("value", "v")]).send().await.unwrap();
    assert_eq!(res.status(), 400, "POST /");
    let batch = s.http.post(s.url("/q/idem")).header("idempotency-key", long.as_str());
    let res = batch.header("content-type", "application/x-ndjson").body("\"a\"\n").send().await.unwrap();
    assert_eq!(res.status(), 400, "batch");
    assert_eq!(len(&s, "idem").await, 0, "nothing added");
    let longest = "K".repeat(200);
    let (status, first, _) = post_keyed(&s, "idem", longest.as_bytes()).await;
    assert_eq!((status, first.as_str()), (200, "idem:1\r\n"));
    let (status, retry, _) = post_keyed(&s, "idem", longest.as_bytes()).await;
    assert_eq!((status, retry.as_str()), (200, "idem:1\r\n"), "200 bytes are remembered");
    assert_eq!(len(&s, "idem").await, 1);
}

/// With `--idempotency-max-bytes` full of answers still inside their window, a new key gets
/// 429 `too_many_requests` with `Retry-After` and adds nothing, while every remembered key
/// still gets its first answer; once the window (10 s) has passed, new keys are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_memory_refuses_new_keys_and_forgets_none() {
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.idempotency_max_bytes = 4096;
        c.idempotency_secs = 10;
    })
    .await;
    let started = Instant::now();
    let mut accepted = 0;
    let refusal = loop {
        assert!(accepted < 1000, "4096 bytes never filled");
        let (status, body, headers) = post_keyed(&s, "full", format!("key-{accepted}").as_bytes()).await;
        if status != 200 {
            break (status, body, headers);
        }
        accepted += 1;
        assert_eq!(body, format!("full:{accepted}\r\n"));
    };
    let (status, body, headers) = refusal;
    assert_eq!((status, error_code(&body).as_str()), (429, "too_many_requests"), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=11).contains(&retry_after), "Retry-After {retry_after}");
    assert!(accepted >= 5, "only {accepted} keys fit in 4096 bytes");
    for i in 0..accepted {
        let (status, body, _) = post_keyed(&s, "full", format!("key-{i}").as_bytes()).await;
        assert_eq!((status, body), (200, format!("full:{}\r\n", i + 1)), "key-{i} is still remembered");
    }
    assert_eq!(len(&s, "full").await, accepted, "the refused key and the retries added nothing");
    let (_, metrics) = s.get("/metrics").await;
    assert!(metrics.contains("restmq_idempotency_refused_total 1\n"), "{metrics}");
    let bytes = metrics.lines().find_map(|l| l.strip_prefix("restmq_idempotency_bytes ")).unwrap();
    assert!((1..=4096).contains(&bytes.parse::<u64>().unwrap()), "{bytes} bytes");
    // A precondition, not a speed claim: everything above ran inside the 10 s window.
    assert!(started.elapsed() < Duration::from_secs(10), "the test machine stalled for seconds");
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let (status, _, _) = post_keyed(&s, "full", b"after-the-window").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "new keys still refused 25 s later");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A JSON-protocol `add` (`POST /queue`) with an `Idempotency-Key` is published once: the
/// retry gets the first key, as on `POST /q/<queue>`, and a bad key is refused there too.
async fn json_protocol_add_is_idempotent(store: StoreKind) {
    let s = TestServer::start(store).await;
    let add = |key: &'static str| {
        let req = s.http.post(s.url("/queue")).header("idempotency-key", key);
        req.header("content-type", "application/json").body(r#"{"cmd":"add","queue":"cmd","value":"v"}"#)
    };
    for _ in 0..2 {
        let res = add("order-7").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["key"], "cmd:1");
    }
    assert_eq!(add("other").send().await.unwrap().json::<Value>().await.unwrap()["key"], "cmd:2");
    assert_eq!(add("two words").send().await.unwrap().status(), 400);
    assert_eq!(len(&s, "cmd").await, 2, "one message per key");
}

on_every_store!(bad_keys_are_refused, json_protocol_add_is_idempotent);
