//! Attack: `--max-queue-len` must bound every queue (README "Limits": "the check is atomic in
//! every store"); delayed adds slip past it and the queue grows without bound.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;

/// Delayed adds to a queue bounded at 2 must not leave it holding more than 2 messages.
async fn delayed_adds_respect_max_queue_len(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_queue_len = 2).await;
    let mut accepted = 0;
    for i in 0..6 {
        let (status, body) = s.post_form("/q/bounded", &[("value", &format!("d{i}")), ("delay", "1")]).await;
        match status {
            200 => accepted += 1,
            429 => {}
            other => panic!("delayed add {i}: {other} {body}"),
        }
    }
    // Let every delayed message become visible.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stats = s.get_json("/stats/bounded").await;
    let len = stats["len"].as_u64().unwrap();
    assert!(
        len <= 2,
        "queue bounded at 2 holds {len} messages ({accepted} delayed adds answered 200): {stats}"
    );
}

/// Redriving dead letters into a queue bounded at 2 must not leave it holding more than 2.
async fn redrive_respects_max_queue_len(store: StoreKind) {
    let s = TestServer::start_with(store, |c| {
        c.max_queue_len = 2;
        c.max_deliveries = 1;
    })
    .await;
    for v in ["a", "b"] {
        s.add("rb", v).await;
    }
    for _ in 0..2 {
        assert_eq!(s.get("/q/rb?reserve=1").await.0, 200);
    }
    // Both leases end unacknowledged: both messages go to `rb.dead`.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for v in ["c", "d"] {
        s.add("rb", v).await;
    }
    let (status, body) = s.post_form("/q/rb.dead/redrive", &[]).await;
    let stats = s.get_json("/stats/rb").await;
    let len = stats["len"].as_u64().unwrap();
    assert!(len <= 2, "queue bounded at 2 holds {len} messages after redrive ({status} {body}): {stats}");
}

on_every_store!(delayed_adds_respect_max_queue_len, redrive_respects_max_queue_len);
