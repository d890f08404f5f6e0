//! Connections: header-read and idle timeouts, the connection cap and the room it keeps for
//! health checks, and a shutdown bounded by `--shutdown-grace-secs` whatever clients do.

mod common;
mod fault_util;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestServer;
use fault_util::Proc;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection: how long that took, or `None` if it was still
/// open after `limit`.
async fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, closed).await.ok().map(|()| started.elapsed())
}

/// A socket that sent `bytes` and nothing more.
async fn stalled(addr: SocketAddr, bytes: &[u8]) -> Option<TcpStream> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await.ok()?.ok()?;
    stream.write_all(bytes).await.ok()?;
    Some(stream)
}

/// Reads one whole response (head and `content-length` body) from a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = stream.read(&mut buf).await.expect("read a response");
            assert!(n > 0, "closed before the response was complete: {text:?}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("a response within 10 s")
}

/// Sends a request head one byte every 200 ms (at most 15 s); returns whether the server
/// closed the connection meanwhile.
async fn trickle(addr: SocketAddr) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 64];
    for &byte in head.iter().take(75) {
        tokio::select! {
            read = stream.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { return true },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(&[byte]).await.is_err() {
                    return true;
                }
            }
        }
    }
    false
}

/// A partial request line, a silent connection and headers trickled a byte at a time are all
/// closed once the header-read timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_closed() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.header_read_timeout_secs = 1).await;
    let mut partial = stalled(s.addr, b"GET /heal").await.expect("connect");
    let mut silent = stalled(s.addr, b"").await.expect("connect");
    let trickler = tokio::spawn(trickle(s.addr));
    let partial_closed = wait_closed(&mut partial, Duration::from_secs(10)).await;
    let silent_closed = wait_closed(&mut silent, Duration::from_secs(10)).await;
    eprintln!("header timeout 1 s: partial request line closed after {partial_closed:?}");
    assert!(partial_closed.is_some(), "a partial request line kept its connection 10 s");
    assert!(silent_closed.is_some(), "a connection that sent nothing stayed open 10 s");
    assert!(trickler.await.unwrap(), "a trickling request head kept its connection 15 s");
    assert_eq!(s.get("/healthz").await.0, 200);
}

/// An idle keep-alive connection lives past the header-read timeout (it is not reading a
/// request), answers its next request, and is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 3;
    })
    .await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stream.write_all(request).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"), "idle past the header timeout");
    let closed = wait_closed(&mut stream, Duration::from_secs(15)).await;
    eprintln!("idle timeout 3 s: idle keep-alive connection closed after {closed:?}");
    assert!(closed.is_some(), "an idle keep-alive connection stayed open 15 s");
}

/// COMET and WebSocket consumers that wait longer than both timeouts stay connected and get
/// the next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_streams_are_not_idle() {
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 1;
    })
    .await;
    let comet = s.http.get(s.url("/c/quiet")).send().await.unwrap();
    assert_eq!(comet.status(), 200);
    let mut comet = comet.bytes_stream();
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/quiet")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.add("quiet", "still-here").await;
    let chunk = tokio::time::timeout(Duration::from_secs(10), comet.next()).await.expect("COMET message");
    assert!(String::from_utf8_lossy(&chunk.unwrap().unwrap()).contains("still-here"));
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("WebSocket message");
    assert!(frame.unwrap().unwrap().to_string().contains("still-here"));
}

/// With more stalled sockets than `--max-connections`, `/healthz` still answers: the
/// connection that has waited longest for a request makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_pass_the_connection_cap() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.max_connections = 16).await;
    let mut held = Vec::new();
    for _ in 0..100 {
        held.extend(stalled(s.addr, b"GET /heal").await);
    }
    assert!(held.len() > 16, "only {} stalled sockets connected", held.len());
    let health = tokio::time::timeout(Duration::from_secs(10), s.get("/healthz")).await;
    assert_eq!(health.expect("/healthz answered within 10 s").0, 200);
}

/// `restmq serve --store memory [args]` in a shell limited to `files` open files; returns it
/// and its address.
fn spawn_limited(files: u32, args: &[&str]) -> (Proc, SocketAddr) {
    let script = format!("ulimit -n {files} && exec \"$0\" serve --store memory --listen 127.0.0.1:0 \"$@\"");
    let mut command = Command::new("sh");
    command.args(["-c", &script, env!("CARGO_BIN_EXE_restmq")]).args(args);
    let server = Proc::spawn(command);
    let addr = server.url.trim_start_matches("http://").parse().expect("address");
    (server, addr)
}

/// 400 stalled sockets against a server limited to 256 open files; `/healthz` on a new
/// connection must still answer.
async fn health_checks_pass_with_256_files(args: &[&str]) {
    rlimit::increase_nofile_limit(2048).expect("raise this test's open-file limit");
    let (_server, addr) = spawn_limited(256, args);
    // A new connection for each request: a pooled one would already be accepted.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://{addr}/healthz");
    assert_eq!(http.get(&url).send().await.expect("/healthz before").status(), 200);
    let mut held = Vec::new();
    for _ in 0..400 {
        held.extend(stalled(addr, b"GET /heal").await);
    }
    assert!(held.len() > 256, "only {} stalled sockets connected", held.len());
    let asked = Instant::now();
    let health = http.get(&url).send().await.expect("/healthz answered within 10 s");
    eprintln!(
        "256 open files {args:?}, {} stalled sockets: /healthz answered in {:?}",
        held.len(),
        asked.elapsed()
    );
    assert_eq!(health.status(), 200);
}

/// A server limited to 256 open files keeps answering `/healthz` while 400 stalled sockets
/// try to take every file descriptor it has (its default cap stays below the limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_pass_when_file_descriptors_run_out() {
    health_checks_pass_with_256_files(&[]).await;
}

/// With a cap above the open-file limit, `accept` runs out of file descriptors: the loop
/// survives it, makes room, and `/healthz` still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_pass_when_accept_fails_with_emfile() {
    health_checks_pass_with_256_files(&["--max-connections", "1000"]).await;
}

/// Stopping takes no longer than the grace plus a margin whatever clients do: a half-sent
/// request line, a half-sent body, an idle keep-alive connection, and COMET and WebSocket
/// consumers that never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_by_the_grace() {
    const GRACE: u64 = 2;
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.shutdown_grace_secs = GRACE;
        c.slow_consumer_secs = 600;
    })
    .await;
    let _partial = stalled(s.addr, b"GET /heal").await.expect("connect");
    let body = b"POST /q/half HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nvalue=abc";
    let _half_body = stalled(s.addr, body).await.expect("connect");
    let mut idle = stalled(s.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("connect");
    read_response(&mut idle).await;
    // Consumers that never read, with more queued for them than socket buffers hold.
    let mut comet = stalled(s.addr, b"GET /c/deaf HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("connect");
    let mut head = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_secs(5), comet.read(&mut head)).await;
    let (_ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/deaf")).await.unwrap();
    let big = "x".repeat(900 * 1024);
    for _ in 0..32 {
        s.add("deaf", &big).await;
    }
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), s.stop()).await.expect("the server stopped within 60 s");
    let took = started.elapsed();
    eprintln!("grace {GRACE} s: stopped in {took:?}");
    assert!(took < Duration::from_secs(GRACE + 4), "stopping took {took:?} with a grace of {GRACE} s");
}

/// A URI too long (414), too many headers (431) and malformed requests (400) get the JSON
/// error body with their status, where hyper alone answers with an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_requests_get_json_errors() {
    let s = TestServer::start(StoreKind::Memory).await;
    let cases = [
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)), 414, "uri_too_long"),
        (format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-A: b\r\n".repeat(150)), 431, "headers_too_large"),
        ("GARBAGE\r\n\r\n".to_owned(), 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_owned(), 400, "bad_request"),
    ];
    for (request, status, code) in cases {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with(&format!("HTTP/1.1 {status} ")), "{code}: {response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{code}: {e}: {response}"));
        assert_eq!(body["error"]["code"], code, "{response}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{response}");
    }
    assert_eq!(s.get("/healthz").await.0, 200);
}
