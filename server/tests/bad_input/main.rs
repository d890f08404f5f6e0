//! Malformed requests (SPEC §1 errors, §4 limits): each gets the right 4xx with a JSON
//! `{"error":{"code","message"}}` body, and none of them changes any queue.

mod command;
#[path = "../common/mod.rs"]
mod common;
mod garbage;
mod rest;

use common::TestServer;
use reqwest::{Method, RequestBuilder};
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

/// Sends `req` and checks the answer is `status` with a JSON error body of `code`.
async fn expect_error(req: RequestBuilder, status: u16, code: &str, what: &str) {
    let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let got_status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = res.text().await.unwrap();
    check_error((got_status, content_type, body), status, code, what);
}

/// Checks an answer (status, content type, body) is `status` with a JSON error body of `code`.
fn check_error((got_status, content_type, body): (u16, String, String), status: u16, code: &str, what: &str) {
    assert_eq!(got_status, status, "{what}: {body}");
    assert_eq!(content_type, "application/json", "{what}: {body}");
    let doc: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    let message = doc["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{what}: no message in {body}");
    assert_eq!(doc, json!({"error": {"code": code, "message": message}}), "{what}");
}

/// Sends one HTTP/1.1 request over a plain socket and reads the answer, even when the
/// server answers and closes before it has read the whole body (as it does for a 413; an
/// HTTP client library would report the reset of its unfinished upload instead).
async fn raw_request(s: &TestServer, head: &str, body: Vec<u8>) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head =
        format!("{head}\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", s.addr, body.len());
    let upload = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await; // the server may stop reading: that is the point
        writer
    });
    let mut answer = Vec::new();
    let mut buf = [0; 8192];
    let read = async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("an answer within 10 s");
    drop(upload.await);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// A server with queue `seed` holding two messages, set to roundrobin and paused.
async fn seeded(store: StoreKind) -> TestServer {
    seed(TestServer::start(store).await).await
}

async fn seed(s: TestServer) -> TestServer {
    s.add("seed", "one").await;
    s.add("seed", "two").await;
    assert_eq!(s.post_form("/p/seed", &[("policy", "roundrobin")]).await.0, 200);
    assert_eq!(s.post_form("/control/seed", &[("status", "stop")]).await.0, 200);
    s
}

/// Everything a bad request could have changed: queues, lengths, settings, counters, keys.
async fn snapshot(s: &TestServer) -> Value {
    json!({
        "stats": s.get_json("/stats/").await,
        "queues": s.get_json("/q/").await,
        "seed": s.get_json("/j/seed").await,
    })
}

fn form(s: &TestServer, method: Method, path: &str, fields: &[(&str, &str)]) -> RequestBuilder {
    s.http.request(method, s.url(path)).form(fields)
}

/// A JSON document posted raw to `/queue`.
fn raw_command(s: &TestServer, doc: impl Into<reqwest::Body>) -> RequestBuilder {
    s.http.post(s.url("/queue")).header("content-type", "application/json").body(doc)
}
