//! `Idempotency-Key` on Redis, exactly once: across processes sharing one Redis (concurrent
//! retries add one message), and across a first try that timed out while Redis was stalled
//! (the retry answers what the first try added, instead of adding again).

mod common;

use std::collections::BTreeSet;

use common::redis::RedisServer;
use common::TestServer;

/// `POST /q/<queue>` with `value` and `Idempotency-Key: key` through `s`: (status, body).
async fn post_keyed(s: &TestServer, queue: &str, key: &str, value: &str) -> (u16, String) {
    let req = s.http.post(s.url(&format!("/q/{queue}"))).header("idempotency-key", key);
    let res = req.form(&[("value", value)]).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Two processes, thirty concurrent publishes with one key: one message is added, every 200
/// answers its key, the others are 409 `idempotency_key_in_use`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_on_two_processes_add_once() {
    let redis = RedisServer::start();
    let (a, b) =
        (TestServer::start_on_redis(&redis.url()).await, TestServer::start_on_redis(&redis.url()).await);
    let sends = (0..30).map(|i| {
        let s = if i % 2 == 0 { &a } else { &b };
        async move { post_keyed(s, "orders", "order-42", &format!("try {i}")).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    let keys: BTreeSet<String> =
        answers.iter().filter(|(s, _)| *s == 200).map(|(_, body)| body.trim_end().to_owned()).collect();
    for (status, body) in &answers {
        assert!(
            *status == 200 || (*status == 409 && body.contains("idempotency_key_in_use")),
            "{status} {body}"
        );
    }
    assert_eq!(keys.len(), 1, "every 200 answers the same key: {answers:?}");
    assert_eq!(redis.cli(&["LLEN", "orders:queue"]).unwrap(), "1", "added once");
    // Later retries, on either process, get the first answer.
    assert_eq!(
        post_keyed(&b, "orders", "order-42", "again").await,
        (200, format!("{}\r\n", keys.first().unwrap()))
    );
    assert_eq!(redis.cli(&["LLEN", "orders:queue"]).unwrap(), "1");
}

/// A publish sent while Redis is stalled answers 504 `outcome_unknown` (it reaches Redis when
/// Redis wakes); a retry with the same key then answers the key it got, and adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_an_unknown_outcome_adds_once() {
    let redis = RedisServer::start();
    let s = TestServer::start_on_redis(&redis.url()).await;
    s.add("jobs", "before").await;
    redis.pause();
    let (status, body) = post_keyed(&s, "jobs", "job-7", "payload").await;
    redis.resume();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("outcome_unknown"), "{body}");
    let (status, body) = post_keyed(&s, "jobs", "job-7", "payload").await;
    assert_eq!((status, body.as_str()), (200, "jobs:2\r\n"), "the retry answers the first try's key");
    assert_eq!(redis.cli(&["LLEN", "jobs:queue"]).unwrap(), "2", "added once");
    assert_eq!(redis.cli(&["GET", "jobs:2"]).unwrap(), "payload");
    // Batches and delayed messages are answered the same way.
    let res = s.http.post(s.url("/q/jobs?batch=1")).header("idempotency-key", "b-1");
    let res = res.header("content-type", "application/json").body(r#"["x","y"]"#).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), r#"["jobs:3","jobs:4"]"#);
    let res = s.http.post(s.url("/q/jobs?batch=1")).header("idempotency-key", "b-1");
    let res = res.header("content-type", "application/json").body(r#"["x","y"]"#).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), r#"["jobs:3","jobs:4"]"#);
    let delayed = |s: &TestServer| {
        let req = s.http.post(s.url("/q/jobs")).header("idempotency-key", "d-1");
        req.form(&[("value", "later"), ("delay", "60")]).send()
    };
    assert_eq!(delayed(&s).await.unwrap().text().await.unwrap(), "jobs:5\r\n");
    assert_eq!(delayed(&s).await.unwrap().text().await.unwrap(), "jobs:5\r\n");
    assert_eq!(redis.cli(&["GET", "jobs:UUID"]).unwrap(), "5");
}
