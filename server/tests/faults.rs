//! Faults and abuse on real processes and sockets, each bounded in time and printing its
//! counts: `kill -9` under publish load on Redis, SIGTERM under load (streams closed with a
//! close frame, nothing lost, leases given back), 5,000 WebSocket consumers on one server,
//! and a consumer that never reads not stalling the others.

mod common;
mod fault_util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::TestServer;
use fault_util::{drain, queue_of, Load, Proc};
use futures_util::{SinkExt, StreamExt};
use restmq_server::config::StoreKind;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Every acknowledged add survives `kill -9` of restmq and then of Redis (AOF, fsync always).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_publish_load_on_redis() {
    let mut redis = RedisServer::start_durable();
    let args = ["--store", "redis", "--redis-url", &redis.url()];
    let mut server = Proc::serve(&args);
    let load = Load::start(&server.url, &["durable"], 8);
    load.until_acked(1500, Duration::from_secs(60)).await;
    server.kill_9();
    let (sent, acked) = load.finish().await;
    redis.restart(); // SIGKILL, then back from its append-only file
    let server = Proc::serve(&args);
    let found = drain(&server.url, "durable").await;
    let missing: Vec<_> = acked.difference(&found).collect();
    report!(
        "kill -9 (redis): sent {sent}, acknowledged {}, found after restarts {}, missing {}",
        acked.len(),
        found.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// What a WebSocket consumer saw: message keys in order, and the close frame, if any.
#[derive(Default)]
struct Seen {
    keys: Vec<String>,
    acked: Vec<String>,
    close: Option<(u16, String)>,
}

/// Reads a consumer's frames until the stream ends; with `ack`, acknowledges messages whose
/// number is even and keeps the odd ones leased.
async fn consume(url: String, ack: bool) -> Seen {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut seen = Seen::default();
    while let Some(Ok(frame)) = ws.next().await {
        match frame {
            Message::Text(text) => {
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                let key = doc["key"].as_str().unwrap_or_else(|| panic!("{text}")).to_owned();
                let even =
                    key.rsplit(':').next().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n % 2 == 0);
                if ack && even {
                    let frame = serde_json::json!({"cmd": "ack", "key": key}).to_string();
                    if ws.send(Message::Text(frame.into())).await.is_ok() {
                        seen.acked.push(key.clone());
                    }
                }
                seen.keys.push(key);
            }
            Message::Close(frame) => {
                seen.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                break;
            }
            _ => {}
        }
    }
    seen
}

/// Reads a COMET stream to its end; returns the message keys and the last line.
async fn consume_comet(url: String) -> (Vec<String>, String) {
    let res = reqwest::get(url).await.unwrap();
    let mut body = res.bytes_stream();
    let (mut text, mut keys, mut last) = (String::new(), Vec::new(), String::new());
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\r\n") {
            let line: String = text.drain(..end + 2).collect();
            let doc: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
            if let Some(key) = doc["key"].as_str() {
                keys.push(key.to_owned());
            }
            last = line.trim_end().to_owned();
        }
    }
    (keys, last)
}

/// SIGTERM under load on the embedded store: nothing lost, streams closed, leases back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_embedded() {
    let dir = tempfile::tempdir().unwrap();
    sigterm_under_load("embedded", &["--store", "embedded", "--data-dir", dir.path().to_str().unwrap()])
        .await;
}

/// SIGTERM under load on Redis, where a lease not given back would outlive the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_redis() {
    let redis = RedisServer::start();
    sigterm_under_load("redis", &["--store", "redis", "--redis-url", &redis.url()]).await;
}

/// SIGTERM under load: streams end with a close frame, every add answered 200 was delivered
/// or is still there after a restart, and messages leased to `ack=1` consumers come back.
async fn sigterm_under_load(store: &str, args: &[&str]) {
    let mut server = Proc::serve(args);
    let streams: Vec<_> = (0..3).map(|_| tokio::spawn(consume(server.ws_url("/ws/grace"), false))).collect();
    let ackers: Vec<_> =
        (0..2).map(|_| tokio::spawn(consume(server.ws_url("/ws/work?ack=1"), true))).collect();
    let comet = tokio::spawn(consume_comet(format!("{}/c/grace", server.url)));
    let load = Load::start(&server.url, &["grace", "work"], 6);
    load.until_acked(1200, Duration::from_secs(60)).await;
    server.sigterm();
    let status = server.exit_within(Duration::from_secs(20)).await;
    assert!(status.success(), "restmq exited with {status}");
    let (sent, acked) = load.finish().await;

    let mut received = HashSet::new();
    for stream in streams {
        let seen = tokio::time::timeout(Duration::from_secs(10), stream).await.unwrap().unwrap();
        assert_eq!(seen.close, Some((1001, "shutdown".to_owned())), "a WebSocket close frame");
        received.extend(seen.keys);
    }
    let (comet_keys, last) = tokio::time::timeout(Duration::from_secs(10), comet).await.unwrap().unwrap();
    assert_eq!(last, r#"{"queue":"grace","closed":"shutdown"}"#, "the COMET close notice");
    received.extend(comet_keys);
    let (mut consumer_acked, mut held) = (HashSet::new(), HashSet::new());
    for acker in ackers {
        let seen = tokio::time::timeout(Duration::from_secs(10), acker).await.unwrap().unwrap();
        assert_eq!(seen.close, Some((1001, "shutdown".to_owned())), "an ack=1 close frame");
        held.extend(seen.keys.iter().filter(|k| !seen.acked.contains(k)).cloned());
        consumer_acked.extend(seen.acked);
    }

    let server = Proc::serve(args);
    let (grace, work) = (drain(&server.url, "grace").await, drain(&server.url, "work").await);
    let (acked_grace, acked_work): (HashSet<_>, HashSet<_>) =
        acked.iter().cloned().partition(|k| queue_of(k) == "grace");
    let lost_grace: Vec<_> =
        acked_grace.iter().filter(|k| !grace.contains(*k) && !received.contains(*k)).collect();
    let lost_work: Vec<_> =
        acked_work.iter().filter(|k| !work.contains(*k) && !consumer_acked.contains(*k)).collect();
    let twice: Vec<_> = grace.intersection(&received).collect();
    let not_back: Vec<_> = held.difference(&work).collect();
    report!(
        "SIGTERM ({store}): sent {sent}, acknowledged {} (grace {}, work {}); grace: streamed {}, \
         found after restart {}, lost {}, delivered and found {}; work: acked by consumers {}, \
         held unacked {}, found after restart {}, lost {}, held but not back {}",
        acked.len(),
        acked_grace.len(),
        acked_work.len(),
        received.len(),
        grace.len(),
        lost_grace.len(),
        twice.len(),
        consumer_acked.len(),
        held.len(),
        work.len(),
        lost_work.len(),
        not_back.len()
    );
    assert!(!received.is_empty() && !held.is_empty(), "the consumers got messages before the stop");
    assert!(lost_grace.is_empty(), "answered 200, never delivered, gone: {lost_grace:?}");
    assert!(twice.is_empty(), "streamed and still in the queue: {twice:?}");
    assert!(lost_work.is_empty(), "answered 200, never acked, gone: {lost_work:?}");
    assert!(not_back.is_empty(), "leased at shutdown, not back in the queue: {not_back:?}");
}

/// 5,000 WebSocket consumers are held on one server and each gets every broadcast message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_websocket_consumers() {
    const N: usize = 5000;
    // As root the hard limit itself can be raised where it is lower than needed.
    let need = 2 * N as u64 + 500;
    if rlimit::getrlimit(rlimit::Resource::NOFILE).is_ok_and(|(_, hard)| hard < need) {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, need, need);
    }
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(limit >= 2 * N as u64 + 500, "RLIMIT_NOFILE is {limit}: two sockets per consumer do not fit");
    let s = TestServer::start(StoreKind::Memory).await;
    let started = Instant::now();
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let url = s.ws_url("/ws/many");
    let mut sockets: Vec<_> = futures_util::stream::iter(0..N)
        .map(|_| tokio_tungstenite::connect_async_with_config(url.clone(), Some(config), false))
        .buffer_unordered(64)
        .map(|r| r.expect("WebSocket connect").0)
        .collect()
        .await;
    let connected = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumers(&s, "many").await != N as u64 {
        assert!(Instant::now() < deadline, "the server does not count {N} consumers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.add("many", "one").await;
    s.add("many", "two").await;
    let reads = sockets.iter_mut().map(|ws| async move {
        let mut keys = Vec::new();
        while keys.len() < 2 {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => keys.push(text.to_string()),
                Some(Ok(_)) => {}
                other => panic!("a consumer ended: {other:?}"),
            }
        }
        keys
    });
    let got = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(reads))
        .await
        .expect("every consumer got both messages in 60 s");
    let complete = got.iter().filter(|k| k[0].contains("\"many:1\"") && k[1].contains("\"many:2\"")).count();
    report!(
        "5,000 consumers: connected {} in {:.1} s, messages 2, consumers with both in order {complete}, \
         total {:.1} s (RLIMIT_NOFILE {limit})",
        sockets.len(),
        connected.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(complete, N);
    drop(sockets);
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumers(&s, "many").await != 0 {
        assert!(Instant::now() < deadline, "closed consumers are still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

/// A consumer that never reads its socket is cut off (its connection closed) after its
/// buffer and timeout; the others on the same broadcast queue get every message in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_does_not_stall_others() {
    const N: usize = 500;
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.consumer_buffer = 16;
        c.slow_consumer_secs = 1;
    })
    .await;
    // The slow one: a tiny receive window, and nobody ever reads it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(s.ws_url("/ws/slow"), stream).await.unwrap();
    let fast: Vec<_> = (0..3).map(|_| tokio::spawn(read_n(s.ws_url("/ws/slow"), N))).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumers(&s, "slow").await != 4 {
        assert!(Instant::now() < deadline, "four consumers did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let value = "x".repeat(16 * 1024);
    for _ in 0..N {
        s.add("slow", &value).await;
    }
    let mut still_open = Vec::new();
    for f in fast {
        let (keys, ws) =
            tokio::time::timeout(Duration::from_secs(30), f).await.expect("fast consumers in 30 s").unwrap();
        let expected: Vec<String> = (1..=N).map(|n| format!("slow:{n}")).collect();
        assert_eq!(keys, expected, "every message, in order");
        still_open.push(ws);
    }
    let elapsed = started.elapsed();
    assert_eq!(consumers(&s, "slow").await, 3, "the slow consumer was cut off");
    let (mut slow_got, mut close) = (0, None);
    let read_slow = async {
        while let Some(Ok(frame)) = slow.next().await {
            match frame {
                Message::Text(_) => slow_got += 1,
                Message::Close(f) => {
                    close = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                    break;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_slow).await.expect("the slow socket ends");
    report!(
        "slow consumer: {N} messages of 16 KiB; 3 fast consumers got all {N} in order in {:.1} s; \
         the slow one got {slow_got}, then close {close:?}",
        elapsed.as_secs_f64()
    );
    assert!(slow_got < N, "the slow consumer was cut off before the end");
    // It is cut at the socket: a close frame could not reach a client that does not read.
    assert_eq!(close, None, "the connection was cut, not closed politely");
    s.stop().await;
}

/// Connects a WebSocket consumer and reads `n` message keys; returns them and the socket.
async fn read_n(url: String, n: usize) -> (Vec<String>, WebSocket) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                keys.push(doc["key"].as_str().unwrap().to_owned());
            }
            Some(Ok(_)) => {}
            other => panic!("a fast consumer ended after {} messages: {other:?}", keys.len()),
        }
    }
    (keys, ws)
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The streaming consumers of `queue` (0 while it neither exists nor has any).
async fn consumers(s: &TestServer, queue: &str) -> u64 {
    match s.get(&format!("/stats/{queue}")).await {
        (404, _) => 0,
        (200, body) => {
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["consumers"].as_u64().unwrap()
        }
        other => panic!("/stats/{queue}: {other:?}"),
    }
}
