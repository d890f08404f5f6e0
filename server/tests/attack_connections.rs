//! Attack: request bodies sent a byte at a time are never timed out, so sockets trickling
//! bodies fill `--max-connections` for good and `/healthz` on a new connection gets nothing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends a complete POST head, then its body one byte every 300 ms for up to 30 s.
async fn trickle_body(addr: SocketAddr) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
    else {
        return;
    };
    let head = b"POST /q/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\nvalue=";
    if stream.write_all(head).await.is_err() {
        return;
    }
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stream.write_all(b"a").await.is_err() {
            return;
        }
    }
}

/// With more body-trickling sockets than `--max-connections`, `/healthz` still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_do_not_lock_out_health_checks() {
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.max_connections = 8;
        c.header_read_timeout_secs = 1;
        c.idle_timeout_secs = 1;
        c.body_read_timeout_secs = 2;
    })
    .await;
    let trickling: Vec<_> = (0..12).map(|_| tokio::spawn(trickle_body(s.addr))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.http.get(s.url("/healthz")).send().await {
                Ok(res) => return res.status().as_u16(),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    })
    .await;
    for task in trickling {
        task.abort();
    }
    assert_eq!(health, Ok(200), "/healthz got no answer within 10 s while bodies trickle in");
}

/// A body that does not arrive within `--body-read-timeout-secs` is answered `408
/// request_timeout` (JSON), the connection is closed, and nothing is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_body_is_answered_408_and_adds_nothing() {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start_with(StoreKind::Memory, |c| c.body_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let head = b"POST /q/late HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nvalue=";
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was not closed within 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert_eq!(s.get("/q/late").await.0, 204, "nothing was added");
}
