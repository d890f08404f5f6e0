//! Heartbeats on idle streams (`--heartbeat-secs`): a WebSocket peer that stops answering
//! pings is closed within two heartbeats and what it held goes back; a client that answers
//! stays; idle COMET streams carry empty lines that RestMQ's line clients skip, and SSE
//! streams comments.

mod common;

use std::time::{Duration, Instant};

use common::ws::next_json;
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket upgrade sent by hand on a raw socket; returns the socket after the `101`.
async fn raw_websocket(s: &TestServer, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the upgrade answer");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// Reads (never answering pings) until the server closes; how long that took.
async fn until_closed(mut stream: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the silent peer was not closed within {limit:?}"),
        }
    }
}

/// An `ack=1` WebSocket peer that reads but never answers a ping is closed within two
/// heartbeats (1 s here), and the messages leased to it are back in the queue at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_websocket_peer_is_closed_and_its_messages_go_back() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.heartbeat_secs = 1).await;
    s.add("hb", "one").await;
    s.add("hb", "two").await;
    let silent = raw_websocket(&s, "/ws/hb?ack=1").await;
    let took = until_closed(silent, Duration::from_secs(8)).await;
    assert!(took < Duration::from_secs(4), "closed after {took:?}: more than two heartbeats and a margin");
    let back = s.get_json("/q/hb").await;
    assert_eq!((back["key"].as_str(), back["value"].as_str()), (Some("hb:1"), Some("one")));
    assert_eq!(s.get_json("/stats/hb").await["len"], 1, "both messages came back (one now taken)");
}

/// A plain consumer that answers pings (tungstenite does) stays connected through several
/// heartbeats of silence and then gets the next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_websocket_peer_stays() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.heartbeat_secs = 1).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/calm")).await.unwrap();
    // Read (and so answer pings) for 3.5 heartbeats with no message.
    let quiet = tokio::time::timeout(Duration::from_millis(3500), async {
        while let Some(frame) = ws.next().await {
            assert!(frame.unwrap().is_ping(), "only pings while idle");
        }
    })
    .await;
    assert!(quiet.is_err(), "the connection ended while idle");
    s.add("calm", "still here").await;
    assert_eq!(next_json(&mut ws).await, json!({"key": "calm:1", "value": "still here"}));
}

/// An idle COMET stream carries empty lines each heartbeat; read as RestMQ's
/// `examples/mapreduce/reduce.py` reads (split on newlines, skip lines shorter than two
/// characters), it yields exactly the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_comet_carries_empty_lines_clients_skip() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.heartbeat_secs = 1).await;
    let mut comet = s.http.get(s.url("/c/lines")).send().await.unwrap();
    let mut text = String::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let chunk =
            tokio::time::timeout(Duration::from_secs(3), comet.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.matches("\r\n").count() >= 2, "two heartbeats at least: {text:?}");
    s.add("lines", "after the quiet").await;
    while !text.contains("after the quiet") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(3), comet.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let lines: Vec<serde_json::Value> =
        text.split('\n').filter(|l| l.len() >= 2).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, [json!({"key": "lines:1", "value": "after the quiet"})]);
}

/// An idle SSE stream carries a comment each heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sse_carries_comments() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.heartbeat_secs = 1).await;
    let mut sse = s.http.get(s.url("/sse/quiet")).send().await.unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(3), sse.chunk()).await.expect("a comment in time");
    let chunk = chunk.unwrap().unwrap();
    assert!(chunk.starts_with(b":"), "{chunk:?}");
}
