//! Attack: on the embedded store an `Idempotency-Key` is forgotten when the server restarts,
//! so the retry a client sends after a crash or redeploy (the very case it retries for) adds
//! the message a second time.
mod common;
use common::TestServer;
use restmq_server::config::StoreKind;
/// A retry with the same `Idempotency-Key` after a restart answers the first key and adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_survives_a_restart_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let publish = |s: &TestServer| {
        s.http.post(s.url("/q/orders")).header("Idempotency-Key", "order-42").form(&[("value", "pay 10")])
    };
    let first = TestServer::start_with(StoreKind::Embedded, |c| c.data_dir = data.clone()).await;
    let res = publish(&first).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let first_key = res.text().await.unwrap();
    first.stop().await;
    let second = TestServer::start_with(StoreKind::Embedded, |c| c.data_dir = data.clone()).await;
    let res = publish(&second).send().await.unwrap();
    let retry_key = res.text().await.unwrap();
    let len = second.get_json("/stats/orders").await["len"].as_u64().unwrap();
    assert_eq!((retry_key.as_str(), len), (first_key.as_str(), 1), "the retry after a restart added again");
}
