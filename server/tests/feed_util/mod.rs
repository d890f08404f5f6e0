//! Helpers of the feed and CLI tests: waiting for messages, reading feed counters, free ports.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

use crate::common::TestServer;

/// Takes messages from `queue` (hard gets) until `n` arrived; panics after `secs` seconds.
pub async fn take(s: &TestServer, queue: &str, n: usize, secs: u64) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while got.len() < n {
        let (status, body) = s.get(&format!("/q/{queue}")).await;
        match status {
            200 => {
                let reply: Value = serde_json::from_str(&body).unwrap();
                got.push(reply["value"].as_str().unwrap().to_owned());
            }
            204 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{queue}: {} of {n} messages: {got:?}",
                    got.len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("GET /q/{queue}: {other}: {body}"),
        }
    }
    got
}

/// Like [`take`], each message parsed as JSON.
pub async fn take_json(s: &TestServer, queue: &str, n: usize, secs: u64) -> Vec<Value> {
    let values = take(s, queue, n, secs).await;
    values.iter().map(|v| serde_json::from_str(v).unwrap_or_else(|e| panic!("{e}: {v}"))).collect()
}

/// The messages left in `queue`, oldest first.
pub async fn drain(s: &TestServer, queue: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let (status, body) = s.get(&format!("/q/{queue}")).await;
        if status == 204 {
            return got;
        }
        assert_eq!(status, 200, "{body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        got.push(reply["value"].as_str().unwrap().to_owned());
    }
}

/// One feed's figures from `/stats/`.
pub async fn feed_stats(s: &TestServer, name: &str) -> Value {
    let stats = s.get_json("/stats/").await;
    stats["feeds"][name].clone()
}

/// Polls `/stats/` until `check` holds for the feed's figures; panics after `secs` seconds.
pub async fn wait_stats(s: &TestServer, name: &str, secs: u64, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let stats = feed_stats(s, name).await;
        if check(&stats) {
            return stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "feed {name}: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (as far as one can tell before binding).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
