//! The load generator's connections: keep-alive HTTP/1.1 over hyper's bare client connection
//! (no pool, one request in flight each), and WebSocket consumers over tokio-tungstenite.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::target::{json_number, Target};

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// `POST path` with `body`.
    pub async fn post(
        &mut self,
        path: &str,
        body: Bytes,
        ctype: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(request(Method::POST, path, body, ctype)).await
    }

    /// `GET path` asking for JSON.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(request(Method::GET, path, Bytes::new(), "")).await
    }
}

/// A request to the server under test (always 127.0.0.1).
pub fn request(method: Method, path: &str, body: Bytes, ctype: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header(HOST, "127.0.0.1");
    if ctype.is_empty() {
        builder = builder.header(ACCEPT, "application/json");
    } else {
        builder = builder.header(CONTENT_TYPE, ctype);
    }
    builder.body(Full::new(body)).expect("a valid request")
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket consumer of `queue`.
pub async fn subscribe(target: &Target, queue: &str) -> anyhow::Result<Ws> {
    let path = target.subscribe_path(queue).context("this target has no streaming consumers")?;
    let url = format!("ws://{}{path}", target.addr);
    // Frames are small: tungstenite's 128 KiB read buffer would cost the generator 640 MB
    // of touched memory at 5,000 consumers.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true) // no Nagle
        .await
        .with_context(|| url.clone())?;
    Ok(ws)
}

/// Waits until the server counts `want` consumers on `queue`, so no message goes out before
/// every consumer is really subscribed.
pub async fn await_consumers(target: &Target, queue: &str, want: u64, limit: Duration) -> anyhow::Result<()> {
    let Some((path, field)) = target.consumers_query(queue) else { return Ok(()) };
    let mut conn = HttpConn::connect(target.addr).await?;
    let deadline = Instant::now() + limit;
    let mut seen = None;
    while Instant::now() < deadline {
        let (_, body) = conn.get(&path).await?;
        seen = json_number(&body, field);
        if seen >= Some(want) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{}: {seen:?} of {want} consumers on {queue} after {limit:?}", target.name)
}
