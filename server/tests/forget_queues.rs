//! A queue that is gone leaves nothing behind in the process: after 2,000 queues are added
//! and purged (and a consumer came and left a queue that never existed), `/metrics` has no
//! series of them and `restmq_tracked_queues` is back down, on every store. A queue the
//! store still knows keeps its state even when empty: its series, pause and policy stay.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;

const QUEUES: usize = 2_000;

/// The `/metrics` page.
async fn metrics(s: &TestServer) -> String {
    let (status, page) = s.get("/metrics").await;
    assert_eq!(status, 200);
    page
}

/// A gauge without labels, if the page has it.
fn gauge(page: &str, name: &str) -> Option<u64> {
    let prefix = format!("{name} ");
    page.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| v.trim().parse().unwrap())
}

/// Lines of `page` about the queues named `gone-…` or `ghost`.
fn dead_series(page: &str) -> usize {
    page.lines().filter(|l| l.contains("queue=\"gone-") || l.contains("queue=\"ghost\"")).count()
}

/// Runs `f` over `0..QUEUES`, 32 at a time.
async fn each_queue<F: std::future::Future<Output = ()>>(f: impl FnMut(usize) -> F) {
    futures_util::stream::iter(0..QUEUES).map(f).buffer_unordered(32).collect::<Vec<()>>().await;
}

/// The process state of purged queues and of a consumer's never-created queue is forgotten
/// (their settings stay in the store); a queue emptied by gets keeps its state.
async fn purged_queues_are_forgotten(store: StoreKind) {
    let s = TestServer::start(store).await;
    // A queue that stays: paused, roundrobin, emptied by a hard get.
    assert_eq!(s.post_form("/control/kept", &[("status", "stop")]).await.0, 200);
    assert_eq!(s.post_form("/p/kept", &[("policy", "roundrobin")]).await.0, 200);
    s.add("kept", "v").await;
    assert_eq!(s.get("/q/kept").await.0, 200);
    // A consumer of a queue that never gets a message, gone again.
    let (ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/ghost")).await.unwrap();
    drop(ws);
    each_queue(|i| {
        let s = &s;
        async move {
            s.add(&format!("gone-{i}"), "v").await;
        }
    })
    .await;
    let before = metrics(&s).await;
    assert!(dead_series(&before) >= 8 * QUEUES, "eight series per queue while they live");
    each_queue(|i| {
        let s = &s;
        async move {
            let res = s.http.delete(s.url(&format!("/q/gone-{i}"))).send().await.unwrap();
            assert_eq!(res.status(), 200);
        }
    })
    .await;
    // As in RestMQ, a purged queue keeps its counter and settings in the store: still listed.
    assert_eq!(s.get_json("/stats/").await["count"], QUEUES + 1);

    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let page = metrics(&s).await;
        if dead_series(&page) == 0 && gauge(&page, "restmq_tracked_queues") == Some(1) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "{} series of gone queues, {:?} queues tracked",
            dead_series(&page),
            gauge(&page, "restmq_tracked_queues")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("restmq_messages_added_total{queue=\"kept\"} 1"), "kept keeps its counters");
    assert!(page.contains("restmq_queue_length{queue=\"kept\"} 0"));
    assert_eq!(s.get_json("/control/kept").await["state"], "paused", "still paused");
    assert_eq!(s.get_json("/p/kept").await["value"], "roundrobin");
    assert_eq!(s.add("gone-0", "again").await, "gone-0:2", "a purged queue's keys go on");
    eprintln!(
        "{store:?}: /metrics {} lines with {QUEUES} queues, {} after purging them; {:?} tracked queues",
        before.lines().count(),
        page.lines().count(),
        gauge(&page, "restmq_tracked_queues")
    );
}

on_every_store!(purged_queues_are_forgotten);
