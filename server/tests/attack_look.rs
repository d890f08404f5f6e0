//! Attacks on looking without taking: observers fed a burst larger than their buffer, browse
//! pages over a Redis list that is out of number order (nacked and promoted delayed
//! messages), the consumers list of a process with more than 1,000 streams, and `HEAD` on
//! a consuming stream with an `observe`-only token.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use restmq_shared::BrowseReply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn page(s: &TestServer, path: &str) -> BrowseReply {
    serde_json::from_value(s.get_json(path).await).unwrap()
}

/// Pages through `/browse/<queue>` `limit` at a time from the start; every key shown.
async fn browse_all(s: &TestServer, queue: &str, limit: usize) -> Vec<u64> {
    let (mut seen, mut after) = (Vec::new(), None::<String>);
    for _ in 0..1000 {
        let path = match &after {
            Some(key) => format!("/browse/{queue}?limit={limit}&after={key}"),
            None => format!("/browse/{queue}?limit={limit}"),
        };
        let reply = page(s, &path).await;
        seen.extend(reply.messages.iter().map(|m| m.key.n));
        match reply.next {
            Some(next) => after = Some(next.to_string()),
            None => return seen,
        }
    }
    panic!("paging {queue} does not end: {seen:?}");
}

/// An observer that reads all along sees every message of one 1,000-message batch: a burst
/// larger than `--consumer-buffer` is not a slow reader (consumers get `--slow-consumer-secs`
/// to drain; an observer must too).
async fn observer_keeps_up_with_a_large_batch(store: StoreKind) {
    let s = TestServer::start(store).await;
    let sse = s.http.get(s.url("/sse/burst?observe=1")).send().await.unwrap();
    assert_eq!(sse.status(), 200);
    s.metric_reaches("restmq_observers{queue=\"burst\"}", 1.0, Duration::from_secs(30)).await;
    let mut events = sse.bytes_stream();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        while text.matches("id: burst:").count() < 1000 && !text.contains("event: close") {
            match tokio::time::timeout(Duration::from_secs(15), events.next()).await {
                Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        text
    });
    let batch: Vec<String> = (0..1000).map(|i| format!("b{i}")).collect();
    let body = serde_json::to_string(&batch).unwrap();
    let (status, answer) = s.post_raw("/q/burst?batch=1", "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
    let text = reader.await.unwrap();
    let seen = text.matches("id: burst:").count();
    let closed = text.lines().find(|l| l.contains("closed")).unwrap_or("");
    assert_eq!(seen, 1000, "the observer saw {seen} of 1000 and was ended: {closed}");
    assert_eq!(s.get_json("/stats/burst").await["len"], 1000, "the observer took nothing");
    s.stop().await;
}

/// Two leased messages nacked oldest first stand in the queue out of number order; paging
/// one at a time still shows every waiting message exactly once.
async fn browse_after_nacks_shows_every_message(store: StoreKind) {
    let s = TestServer::start(store).await;
    for v in ["a", "b", "c", "d", "e", "f"] {
        s.add("nk", v).await;
    }
    let first = s.get_json("/q/nk?reserve=300").await;
    let second = s.get_json("/q/nk?reserve=300").await;
    assert_eq!((first["key"].as_str(), second["key"].as_str()), (Some("nk:1"), Some("nk:2")));
    for key in ["nk:1", "nk:2"] {
        let (status, body) = s.post_form(&format!("/q/nk/{key}"), &[]).await;
        assert_eq!(status, 200, "nack {key}: {body}");
    }
    assert_eq!(s.get_json("/stats/nk").await["len"], 6);
    for limit in [1, 2, 3] {
        let seen = browse_all(&s, "nk", limit).await;
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(distinct, (1..=6).collect(), "limit={limit}: pages showed {seen:?}");
        assert_eq!(seen.len(), 6, "limit={limit}: a message shown twice: {seen:?}");
    }
    s.stop().await;
}

/// A delayed message becomes visible behind later adds (on Redis, at the list's newest end):
/// paging still shows it, with the others, exactly once.
async fn browse_shows_a_promoted_delayed_message(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, body) = s.post_form("/q/dl", &[("value", "late"), ("delay", "1")]).await;
    assert_eq!((status, body.trim_end()), (200, "dl:1"));
    for v in ["b", "c", "d"] {
        s.add("dl", v).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while s.get_json("/stats/dl").await["len"] != 4
        || page(&s, "/browse/dl?limit=10").await.messages.len() < 4
    {
        assert!(tokio::time::Instant::now() < deadline, "dl:1 never became visible");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for limit in [1, 2, 3] {
        let seen = browse_all(&s, "dl", limit).await;
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(distinct, (1..=4).collect(), "limit={limit}: pages showed {seen:?}");
        assert_eq!(seen.len(), 4, "limit={limit}: a message shown twice: {seen:?}");
    }
    s.stop().await;
}

/// Reads an SSE response until `done` holds for what arrived, or nothing comes for 5 s.
async fn sse_until(res: reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut events = res.bytes_stream();
    let mut text = String::new();
    while !done(&text) {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

/// A message dead-lettered into `<q>.dead` and one redriven back into `<q>` are added to
/// those queues (with new keys): their observers see them, as they see any other add.
async fn observers_see_dead_letters_and_redrives(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_deliveries = 1).await;
    let dead_obs = s.http.get(s.url("/sse/work.dead?observe=1")).send().await.unwrap();
    let live_obs = s.http.get(s.url("/sse/work?observe=1")).send().await.unwrap();
    s.metric_reaches("restmq_observers{queue=\"work.dead\"}", 1.0, Duration::from_secs(30)).await;
    s.metric_reaches("restmq_observers{queue=\"work\"}", 1.0, Duration::from_secs(30)).await;
    assert_eq!(s.add("work", "a").await, "work:1");
    assert_eq!(s.get_json("/q/work?reserve=1").await["key"], "work:1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while s.get_json("/stats/work.dead").await["len"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "work:1 was never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = s.post_form("/q/work.dead/redrive", &[]).await;
    assert_eq!(status, 200, "redrive: {body}");
    assert_eq!(s.add("work", "z").await, "work:3", "the redriven message took work:2");
    let dead_seen = sse_until(dead_obs, |t| t.contains("id: work.dead:1")).await;
    let live_seen = sse_until(live_obs, |t| t.contains("id: work:3")).await;
    let ids =
        |t: &str| t.lines().filter_map(|l| l.strip_prefix("id: ")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        (ids(&dead_seen), ids(&live_seen)),
        (vec!["work.dead:1".to_owned()], vec!["work:1".to_owned(), "work:2".to_owned(), "work:3".to_owned()]),
        "what the observers of work.dead and work saw"
    );
    s.stop().await;
}

/// `/history/<q>` counts every add: 5, a purge (after which the idle queue's state is
/// forgotten), then 8 more within one step make 13, not 5 + (8 - 5).
async fn history_counts_adds_across_a_purge(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.queue_history_step_secs = 6).await;
    let added = |h: &serde_json::Value| -> u64 {
        h["points"].as_array().unwrap().iter().map(|p| p["added"].as_u64().unwrap_or(0)).sum()
    };
    for i in 0..5 {
        s.add("hist", &format!("a{i}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while added(&s.get_json("/history/hist").await) < 5 {
        assert!(tokio::time::Instant::now() < deadline, "the first 5 adds were never sampled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.http.delete(s.url("/q/hist")).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await; // the sweep forgets the idle queue
    for i in 0..8 {
        s.add("hist", &format!("b{i}")).await;
    }
    let points = |h: &serde_json::Value| h["points"].as_array().unwrap().len();
    let before = points(&s.get_json("/history/hist").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let history = loop {
        let h = s.get_json("/history/hist").await;
        if points(&h) > before {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new sample");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(added(&history), 13, "adds in the history: {history}");
    s.stop().await;
}

on_every_store!(
    observer_keeps_up_with_a_large_batch,
    browse_after_nacks_shows_every_message,
    browse_shows_a_promoted_delayed_message,
    observers_see_dead_letters_and_redrives,
    history_counts_adds_across_a_purge
);

/// Opens a raw streaming request that is never read from.
async fn raw_stream(s: &TestServer, path: &str) -> tokio::net::TcpStream {
    let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    sock
}

/// One process, 1,000 observers on one queue and one consumer on each of ten others:
/// `/consumers/<q>` lists every stream of each queue, so together they list all 1,010 (the
/// 1,000 cap is for presence reports to other processes, and one busy queue must not hide
/// another's consumers on the process that serves them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_list_is_not_capped_across_queues() {
    let s = TestServer::start(StoreKind::Memory).await;
    let mut socks = Vec::new();
    for _ in 0..1000 {
        socks.push(raw_stream(&s, "/sse/busy?observe=1").await);
    }
    s.metric_reaches("restmq_observers{queue=\"busy\"}", 1000.0, Duration::from_secs(30)).await;
    for i in 0..10 {
        socks.push(raw_stream(&s, &format!("/sse/quiet{i}")).await);
    }
    for i in 0..10 {
        s.metric_reaches(&format!("restmq_consumers{{queue=\"quiet{i}\"}}"), 1.0, Duration::from_secs(30))
            .await;
    }
    let busy = s.get_json("/consumers/busy").await["consumers"].as_array().unwrap().len();
    let mut unlisted = Vec::new();
    for i in 0..10 {
        let listed = s.get_json(&format!("/consumers/quiet{i}")).await["consumers"].as_array().unwrap().len();
        if listed != 1 {
            unlisted.push(format!("quiet{i}"));
        }
    }
    assert!(
        busy == 1000 && unlisted.is_empty(),
        "1,010 streams on one process: /consumers/busy lists {busy} of 1000, and these queues \
         do not list their one consumer: {unlisted:?}"
    );
    drop(socks);
    s.stop().await;
}

/// `HEAD` on `/sse/<q>` and `/c/<q>` runs the consuming stream (axum answers HEAD with the
/// GET handler), yet the middleware counts every HEAD as a look: an `observe`-only token
/// must get `403` there, or at least the queue must be left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_stream_with_an_observe_token_takes_nothing() {
    let (s, _dir) = TestServer::start_with_tokens(common::OBSERVE_TOKENS).await;
    for i in 0..5 {
        let req = s.http.post(s.url("/q/jobs")).bearer_auth("t-root").form(&[("value", format!("w{i}"))]);
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    let mut refused = Vec::new();
    for path in ["/sse/jobs", "/c/jobs"] {
        // A raw HEAD, kept open a moment as a client that reads slowly would.
        let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let req = format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t-look\r\n\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await.unwrap().unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !head.starts_with("HTTP/1.1 403") {
            refused.push(format!("HEAD {path}: {}", head.lines().next().unwrap_or("")));
        }
    }
    let stats = s.http.get(s.url("/stats/jobs")).bearer_auth("t-root").send().await.unwrap();
    let stats: serde_json::Value = stats.json().await.unwrap();
    assert!(refused.is_empty(), "an observe-only token opened consuming streams: {refused:?}; {stats}");
    assert_eq!(stats["len"], 5, "an observe token took messages: {stats}");
    assert_eq!((stats["taken"].as_u64(), stats["delivered"].as_u64()), (Some(0), Some(0)), "{stats}");
    s.stop().await;
}
