//! A streaming consumer whose client never reads is cut as slow: its socket is closed, the
//! connection gauge and the consumer count drop, and every message it held but had not
//! written goes back to the head of the queue, in order — on every store, over WebSocket,
//! COMET and SSE alike.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use restmq_server::config::StoreKind;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Messages added while the consumer does not read, and their size: far more than the
/// client's receive window, the server's socket buffer and the consumer's buffer hold.
const N: u64 = 300;
const VALUE_BYTES: usize = 16 * 1024;

/// The request that opens a consumer of `slow` over each transport.
fn request(path: &str, addr: std::net::SocketAddr) -> String {
    let upgrade = if path.starts_with("/ws/") {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{upgrade}\r\n")
}

/// `restmq_connections` on `/metrics`.
async fn connections(s: &TestServer) -> u64 {
    let (status, page) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let line = page.lines().find_map(|l| l.strip_prefix("restmq_connections ")).expect("gauge");
    line.trim().parse().unwrap()
}

/// Waits (at most `secs`) for `done` to hold, failing with `what`.
async fn wait_for<F: std::future::Future<Output = bool>>(secs: u64, what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a consumer on `path` from a raw TCP client with a tiny receive window that never
/// reads, adds `N` messages, and checks that the server cuts it and loses nothing. With a
/// buffer of 16 it fills; with 256 it does not, and the consumer is cut for not coming back
/// for more.
async fn never_reading_consumer_is_cut(store: StoreKind, path: &str, buffer: usize) {
    let s = TestServer::start_with(store, |c| {
        c.consumer_buffer = buffer;
        c.slow_consumer_secs = 1;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(s.addr).await.unwrap();
    client.write_all(request(path, s.addr).as_bytes()).await.unwrap();
    wait_for(10, "the consumer joins", || async {
        let (status, body) = s.get("/stats/slow").await;
        status == 200 && serde_json::from_str::<serde_json::Value>(&body).unwrap()["consumers"] == 1
    })
    .await;

    let started = Instant::now();
    let value = "x".repeat(VALUE_BYTES);
    for _ in 0..N {
        s.add("slow", &value).await;
    }
    wait_for(20, "the slow connection is closed", || async { connections(&s).await == 0 }).await;
    let cut_after = started.elapsed();
    assert_eq!(s.get_json("/stats/slow").await["consumers"], 0, "the consumer left /stats");

    // The server closed the socket: what the kernel still holds arrives, then the end.
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the client's socket ends ({} bytes read)", received.len());
    // Whole messages only (each ends `x"}`): a frame cut in the middle was not received.
    let seen = received.windows(3).filter(|w| w == b"x\"}").count() as u64;

    // What the consumer held but had not written is back: written + waiting = added.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (delivered, len) = loop {
        let stats = s.get_json("/stats/slow").await;
        let (delivered, len) = (stats["delivered"].as_u64().unwrap(), stats["len"].as_u64().unwrap());
        if delivered + len == N {
            break (delivered, len);
        }
        assert!(Instant::now() < deadline, "held messages back: {delivered} written + {len} waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(seen <= delivered, "the client saw {seen} messages, {delivered} were written");
    assert!(len > 0, "messages were held back");
    // The next consumer gets them in order: the queue is exactly the unwritten tail.
    for n in delivered + 1..=N {
        let got = s.get_json("/q/slow").await;
        assert_eq!(got["key"], format!("slow:{n}"), "back in order");
    }
    eprintln!(
        "{store:?} {path}, buffer {buffer}: cut {:.1} s after the first add; {delivered} written ({seen} reached the \
         client), {len} back in the queue",
        cut_after.as_secs_f64()
    );
    s.stop().await;
}

/// A WebSocket client that never reads is disconnected and loses nothing it was not sent.
async fn websocket_never_reading(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/ws/slow", 16).await;
}

/// A COMET client that never reads is disconnected and loses nothing it was not sent.
async fn comet_never_reading(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/c/slow", 16).await;
}

/// An SSE client that never reads is disconnected and loses nothing it was not sent.
async fn sse_never_reading(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/sse/slow", 16).await;
}

/// A WebSocket client that never reads is cut even though its buffer never fills.
async fn websocket_stalled_with_room(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/ws/slow", 256).await;
}

/// A COMET client that never reads is cut even though its buffer never fills.
async fn comet_stalled_with_room(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/c/slow", 256).await;
}

/// An SSE client that never reads is cut even though its buffer never fills.
async fn sse_stalled_with_room(store: StoreKind) {
    never_reading_consumer_is_cut(store, "/sse/slow", 256).await;
}

on_every_store!(
    websocket_never_reading,
    comet_never_reading,
    sse_never_reading,
    websocket_stalled_with_room,
    comet_stalled_with_room,
    sse_stalled_with_room
);
