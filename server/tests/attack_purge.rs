//! Attack: purge must keep the key counter, policy and pause (SPEC §1, `DELETE /q/<queue>`:
//! "the key counter, policy and paused state stay … keys are never reused, a paused queue
//! stays paused"). Reusing keys makes handles taken before a purge name new messages.

mod common;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

async fn command(s: &TestServer, doc: Value) -> Value {
    let res = s.http.post(s.url("/queue")).json(&doc).send().await.unwrap();
    assert_eq!(res.status(), 200, "{doc}");
    res.json().await.unwrap()
}

/// A `del` of a key read before a purge must not delete a message added after it.
async fn del_of_a_pre_purge_key_spares_a_new_message(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.add("pq", "old").await, "pq:1");
    let peeked = command(&s, json!({"cmd": "get", "queue": "pq"})).await;
    assert_eq!(peeked["key"], "pq:1");
    assert_eq!(s.http.delete(s.url("/q/pq")).send().await.unwrap().status(), 200);
    let fresh = s.add("pq", "new, never read").await;
    // Keys are never reused (SPEC §1); today the new message gets `pq:1` again.
    let _ = fresh;
    // The worker that peeked `old` now deletes it by its key, as RestMQ clients do.
    command(&s, json!({"cmd": "del", "queue": "pq", "key": "pq:1"})).await;
    let (status, body) = s.get("/q/pq").await;
    assert_eq!(status, 200, "the message added after the purge was deleted by a stale key: {body}");
    assert!(body.contains("new, never read"), "{body}");
}

/// A paused queue stays paused through a purge, and keeps its policy.
async fn purge_keeps_pause_and_policy(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("pp", "x").await;
    s.post_form("/p/pp", &[("policy", "roundrobin")]).await;
    s.post_form("/control/pp", &[("status", "stop")]).await;
    assert_eq!(s.http.delete(s.url("/q/pp")).send().await.unwrap().status(), 200);
    let policy: Value = serde_json::from_str(&s.get("/p/pp").await.1).unwrap();
    let status: Value = serde_json::from_str(&s.get("/control/pp").await.1).unwrap();
    assert_eq!(
        (policy["value"].clone(), status["state"].clone()),
        (json!("roundrobin"), json!("paused")),
        "purge must keep policy and pause: {policy} {status}"
    );
}

/// Reads a COMET stream for `for_ms` and returns what came.
async fn comet(s: &TestServer, path: &str, for_ms: u64) -> String {
    let mut seen = String::new();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(for_ms), async {
        let mut res = s.http.get(s.url(path)).send().await.unwrap();
        while let Ok(Some(chunk)) = res.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    seen
}

/// A consumer resuming with `since=<its last key>` after a purge loses none of the new messages.
// The web client does exactly this when a purge closes it: every message added since is
// delivered to it or still queued, none is taken and dropped.
async fn resume_after_purge_loses_nothing(store: StoreKind) {
    let s = TestServer::start(store).await;
    let first = tokio::spawn({
        let (http, url) = (s.http.clone(), s.url("/c/rp"));
        async move {
            let mut res = http.get(url).send().await.unwrap();
            let mut seen = String::new();
            while let Ok(Some(chunk)) = res.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            seen
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.add("rp", "old1").await;
    s.add("rp", "old2").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(s.http.delete(s.url("/q/rp")).send().await.unwrap().status(), 200);
    let before = tokio::time::timeout(std::time::Duration::from_secs(5), first).await.unwrap().unwrap();
    assert!(before.contains("old2") && before.contains("purged"), "{before}");
    for v in ["new1", "new2", "new3"] {
        s.add("rp", v).await;
    }
    let mut seen = comet(&s, "/c/rp?since=rp:2", 1500).await;
    while let (200, body) = s.get("/q/rp").await {
        seen.push_str(&body);
    }
    for v in ["new1", "new2", "new3"] {
        assert!(seen.contains(v), "{v} was neither delivered nor left in the queue: got {seen:?}");
    }
}

on_every_store!(
    del_of_a_pre_purge_key_spares_a_new_message,
    purge_keeps_pause_and_policy,
    resume_after_purge_loses_nothing
);
