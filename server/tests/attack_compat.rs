//! Attack: RestMQ's answers that SPEC §1 requires unchanged ("existing RestMQ clients must
//! work unchanged"): `GET /control/<q>` and `GET /stats/<q>` of a queue that does not exist.

mod common;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

/// `GET /control/<q>` answers RestMQ's `{"queue":"q","status":{"queue":"q","status":0|1}}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_get_has_restmq_shape() {
    let s = TestServer::start(StoreKind::Memory).await;
    s.add("cq", "x").await;
    s.post_form("/control/cq", &[("status", "stop")]).await;
    let body: Value = s.get_json("/control/cq").await;
    assert_eq!(body["status"]["status"], json!(0), "RestMQ clients read status.status: {body}");
    assert_eq!(body["status"]["queue"], json!("cq"), "{body}");
}

/// `GET /stats/<q>` of a queue that does not exist is `200` with `len` 0, as RestMQ answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_unknown_queue_is_len_zero() {
    let s = TestServer::start(StoreKind::Memory).await;
    let (status, body) = s.get("/stats/never-made").await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["queue"].clone(), body["len"].clone()), (json!("never-made"), json!(0)), "{body}");
}

/// `GET /stats/` gives each queue's `status` and `policy` as RestMQ's raw values (`0`/`1`, `1`/`2`).
// Readable strings may only be added beside them (SPEC §1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_keep_restmq_raw_status_and_policy() {
    let s = TestServer::start(StoreKind::Memory).await;
    s.add("sp", "x").await;
    s.post_form("/p/sp", &[("policy", "roundrobin")]).await;
    s.post_form("/control/sp", &[("status", "stop")]).await;
    let stats = s.get_json("/stats/").await;
    let q = &stats["queues"]["sp"];
    let raw = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|t| t.parse().ok()));
    assert_eq!((raw(&q["status"]), raw(&q["policy"])), (Some(0), Some(2)), "RestMQ's raw values: {q}");
}

/// `DELETE /q/<q>` answers RestMQ's `{"queue":"q","status":1}\r\n`, line end included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_answer_ends_with_crlf() {
    let s = TestServer::start(StoreKind::Memory).await;
    s.add("pc", "x").await;
    let body = s.http.delete(s.url("/q/pc")).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "{\"queue\":\"pc\",\"status\":1}\r\n");
}
