//! Attack: a consumer resuming with `since=<key>` drops every waiting message numbered at or
//! below that key, as if the history had replayed it, though it never was in the history: a
//! delayed message (or one given back by a lease or another consumer) is taken from the
//! queue and delivered to nobody.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;

/// Reads a COMET stream for `for_ms` and returns what came.
async fn comet(s: &TestServer, path: &str, for_ms: u64) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_millis(for_ms), async {
        let mut res = s.http.get(s.url(path)).send().await.unwrap();
        while let Ok(Some(chunk)) = res.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    seen
}

/// A delayed message that became visible while the consumer was away reaches it on resume.
async fn resume_delivers_a_delayed_message(store: StoreKind) {
    let s = TestServer::start(store).await;
    let consumer = tokio::spawn({
        let s_url = s.url("/c/dz");
        let http = s.http.clone();
        async move {
            let mut seen = String::new();
            let _ = tokio::time::timeout(Duration::from_millis(1000), async {
                let mut res = http.get(s_url).send().await.unwrap();
                while let Ok(Some(chunk)) = res.chunk().await {
                    seen.push_str(&String::from_utf8_lossy(&chunk));
                }
            })
            .await;
            seen
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = s.post_form("/q/dz", &[("value", "delayed"), ("delay", "1")]).await;
    assert_eq!((status, body.as_str()), (200, "dz:1\r\n"));
    assert_eq!(s.add("dz", "plain").await, "dz:2");
    let first = consumer.await.unwrap();
    assert!(first.contains("\"dz:2\""), "{first}");
    // The delayed message becomes visible; the consumer comes back after its last key.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut seen = comet(&s, "/c/dz?since=dz:2", 1500).await;
    while let (200, body) = s.get("/q/dz").await {
        seen.push_str(&body);
    }
    assert!(seen.contains("delayed"), "dz:1 was taken and delivered to nobody: got {seen:?}");
}

/// A message whose lease ran out while the consumer was away reaches it on resume.
async fn resume_delivers_a_message_back_from_a_lease(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.add("lz", "leased").await, "lz:1");
    assert_eq!(s.get_json("/q/lz?reserve=1").await["key"], "lz:1"); // a worker that dies
    let consumer = tokio::spawn({
        let (http, url) = (s.http.clone(), s.url("/c/lz"));
        async move {
            let mut seen = String::new();
            let _ = tokio::time::timeout(Duration::from_millis(700), async {
                let mut res = http.get(url).send().await.unwrap();
                while let Ok(Some(chunk)) = res.chunk().await {
                    seen.push_str(&String::from_utf8_lossy(&chunk));
                }
            })
            .await;
            seen
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.add("lz", "plain").await, "lz:2");
    let first = consumer.await.unwrap();
    assert!(first.contains("\"lz:2\""), "{first}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // the lease ends: lz:1 is back
    let mut seen = comet(&s, "/c/lz?since=lz:2", 1500).await;
    while let (200, body) = s.get("/q/lz").await {
        seen.push_str(&body);
    }
    assert!(seen.contains("leased"), "lz:1 was taken and delivered to nobody: got {seen:?}");
}

on_every_store!(resume_delivers_a_delayed_message, resume_delivers_a_message_back_from_a_lease);
