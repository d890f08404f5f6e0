//! Attack on the Redis store: `del` of a leased message deletes its value but leaves
//! `<q>:<n>|deliveries` behind for good (SPEC §5: "no orphan keys"), and the count
//! carries over to the next message that gets that key.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

async fn command(s: &TestServer, doc: Value) -> Value {
    let res = s.http.post(s.url("/queue")).json(&doc).send().await.unwrap();
    assert_eq!(res.status(), 200, "{doc}");
    res.json().await.unwrap()
}

/// Deleting a leased message leaves no key of it once its lease has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_of_a_leased_message_leaves_no_orphan_key() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    s.add("od", "old").await;
    assert_eq!(s.get_json("/q/od?reserve=1").await["key"], "od:1");
    let deleted = command(&s, json!({"cmd": "del", "queue": "od", "key": "od:1"})).await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    tokio::time::sleep(Duration::from_millis(1800)).await; // the lease ends, the expiry pass runs
    let keys = r.cli(&["KEYS", "od:1*"]).unwrap_or_default();
    assert!(keys.trim().is_empty(), "keys of a deleted message are left in Redis: {keys:?}");
}

/// A message's first delivery counts 1, whatever an earlier message with its key went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_delivery_counts_one_after_purge() {
    let s = TestServer::start(StoreKind::Redis).await;
    s.add("oc", "old").await;
    assert_eq!(s.get_json("/q/oc?reserve=1").await["key"], "oc:1");
    command(&s, json!({"cmd": "del", "queue": "oc", "key": "oc:1"})).await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(s.http.delete(s.url("/q/oc")).send().await.unwrap().status(), 200);
    s.add("oc", "new").await;
    let leased = s.get_json("/q/oc?reserve=60").await;
    assert_eq!(leased["deliveries"], 1, "a new message's first delivery: {leased}");
}

/// An add with `ttl` that answers an error has added nothing (SPEC §5: one atomic step).
// Here the second step (indexing the ttl) fails after the first added the message; a failure
// between the steps, as Redis going away (503 "not done"), does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ttl_add_adds_nothing() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    // Stand-in for a failure between the add script and the ttl index it is followed by.
    assert_eq!(r.cli(&["SET", "wt:|ttl", "not a sorted set"]).unwrap(), "OK");
    let (status, body) = s.post_form("/q/wt", &[("value", "v"), ("ttl", "100")]).await;
    let (after, taken) = s.get("/q/wt").await;
    assert!(
        status == 200 || after == 204,
        "the add answered {status} {body}, yet the message was added: {after} {taken}"
    );
}

/// An empty, paused queue named `<q>:queue` stays in `GET /q/` while queue `<q>` has messages.
// Queue `<q>`'s list is the key `<q>:queue`, which the listing takes for the Sinatra layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_named_like_another_queues_list_stays_listed() {
    let s = TestServer::start(StoreKind::Redis).await;
    s.add("zz", "z").await;
    s.add("zz:queue", "w").await;
    assert_eq!(s.post_form("/control/zz:queue", &[("status", "stop")]).await.0, 200);
    assert_eq!(s.get("/q/zz:queue").await.0, 200);
    let listed = s.get_json("/q/").await;
    assert!(
        listed.as_array().unwrap().iter().any(|q| q == "zz:queue"),
        "the paused queue zz:queue is missing from the list: {listed}"
    );
}

/// A purge racing adds with a `ttl` leaves no entry that is never swept (`len` 0 once all expired).
// README: an expired message "stops counting in `len` at once". Purge is a script and then a
// separate `DEL` of the ttl index, which drops the index entry of an add landing in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_racing_ttl_adds_leaves_no_unswept_entry() {
    let s = TestServer::start(StoreKind::Redis).await;
    let mut lens = Vec::new();
    // Each round: one purge in the middle of a burst of adds. A stale entry can only come from
    // a queue's last purge, so every round uses a queue of its own.
    for round in 0..250u64 {
        let queue = format!("race{round}");
        let adders: Vec<_> = (0..4)
            .map(|t| {
                let (http, url) = (s.http.clone(), s.url(&format!("/q/{queue}")));
                tokio::spawn(async move {
                    for i in 0..8 {
                        let value = format!("v{t}-{i}");
                        let _ = http.post(&url).form(&[("value", value.as_str()), ("ttl", "1")]).send().await;
                    }
                })
            })
            .collect();
        let (http, url) = (s.http.clone(), s.url(&format!("/q/{queue}")));
        let purger = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(round % 6)).await;
            let _ = http.delete(&url).send().await;
        });
        for task in adders {
            task.await.unwrap();
        }
        purger.await.unwrap();
        lens.push(queue);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await; // every ttl has run out, sweeps ran
    let mut stuck = Vec::new();
    for queue in &lens {
        let (status, body) = s.get(&format!("/stats/{queue}")).await;
        if status == 200 {
            let len = serde_json::from_str::<Value>(&body).unwrap()["len"].as_u64().unwrap();
            if len > 0 {
                stuck.push(format!("{queue}: len {len}"));
            }
        }
    }
    assert!(stuck.is_empty(), "expired messages still counted after a purge race: {stuck:?}");
}

/// A message pushed by another program in RestMQ's layout reaches a connected consumer (SPEC §3).
// `INCR <q>:UUID`, `SET <q>:<n>`, `LPUSH <q>:queue`, as RestMQ's Python core does; SPEC says
// within about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externally_pushed_messages_reach_connected_consumers() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    s.add("ext", "made by restmq").await;
    assert_eq!(s.get("/q/ext").await.0, 200);
    let mut res = s.http.get(s.url("/c/ext")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = r.cli(&["INCR", "ext:UUID"]).unwrap();
    r.cli(&["SET", &format!("ext:{n}"), "pushed by RestMQ's python core"]).unwrap();
    r.cli(&["LPUSH", "ext:queue", &format!("ext:{n}")]).unwrap();
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(chunk)) = res.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("python core") {
                return;
            }
        }
    })
    .await;
    assert!(seen.contains("python core"), "nothing reached the connected consumer in 3 s: {seen:?}");
}
