//! Attack: queues that never existed leave per-queue state and metric series behind for good
//! (SPEC §4: "per-queue state and metric series forgotten when a queue is gone"), so any
//! client grows the server's memory and `/metrics` without bound with made-up names.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;

/// Redriving, or briefly streaming from, queues that do not exist leaves nothing behind.
async fn ghost_queues_leave_no_series(store: StoreKind) {
    let s = TestServer::start(store).await;
    for i in 0..20 {
        let (status, body) = s.post_form(&format!("/q/ghost-r{i}.dead/redrive"), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    for i in 0..5 {
        // A COMET consumer that connects and leaves at once.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            let res = s.http.get(s.url(&format!("/c/ghost-c{i}"))).send().await.unwrap();
            drop(res);
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = metrics.lines().filter(|l| l.contains("ghost-")).count();
    let example = metrics.lines().find(|l| l.contains("ghost-")).unwrap_or_default();
    assert_eq!(series, 0, "series for queues that never existed, e.g. {example}");
}

on_every_store!(ghost_queues_leave_no_series);
