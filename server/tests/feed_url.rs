//! The `url` feed against real local HTTP streams (a small axum app on 127.0.0.1:0): SSE and
//! NDJSON relayed in order, reconnecting with `Last-Event-ID` after the source drops, filters
//! and maps, and back-off while the source is down.

mod common;
mod feed_util;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::TestServer;
use feed_util::{take_json, wait_stats};
use futures_util::stream;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use serde_json::json;
use tokio::net::TcpListener;

/// What the source saw: the `Last-Event-ID` of each connection.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// Serves `app` on 127.0.0.1:0 for the rest of the test; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A body of `chunks`, then either the end or a stream that stays open.
fn body(chunks: Vec<String>, stay_open: bool) -> Body {
    let chunks = stream::iter(chunks.into_iter().map(|c| Ok::<_, Infallible>(Bytes::from(c))));
    if stay_open {
        Body::from_stream(chunks.chain(stream::pending()))
    } else {
        Body::from_stream(chunks)
    }
}

fn response(content_type: &str, body: Body) -> Response {
    Response::builder().header(CONTENT_TYPE, content_type).body(body).unwrap()
}

/// An NDJSON stream of `lines` that stays open.
async fn ndjson(lines: Vec<String>) -> Response {
    response("application/x-ndjson", body(lines, true))
}

/// The first connection gets events 1–3 and is closed; a reconnection with
/// `Last-Event-ID: 3` gets 4 and 5 and stays open.
async fn sse_source(headers: HeaderMap, seen: Seen) -> Response {
    let last = headers.get("last-event-id").map(|v| v.to_str().unwrap().to_owned());
    seen.lock().unwrap().push(last.clone());
    let event =
        |n: u32| format!("id: {n}\ndata: {{\"n\":{n},\n: a comment inside\ndata: \"src\":\"sse\"}}\n\n");
    let (events, open): (Vec<String>, bool) = match last.as_deref() {
        None => (std::iter::once("retry: 50\n\n".to_owned()).chain((1..=3).map(event)).collect(), false),
        Some("3") => ((4..=5).map(event).collect(), true),
        Some(_) => (Vec::new(), true),
    };
    response("text/event-stream", body(events, open))
}

/// SSE events are relayed in order across a dropped connection, which is resumed with
/// `Last-Event-ID`; the multi-line data is one JSON message; reconnects are counted.
#[tokio::test]
async fn sse_reconnects_with_last_event_id() {
    let seen = Seen::default();
    let app = Router::new().route("/events", {
        let seen = seen.clone();
        get(move |headers: HeaderMap| sse_source(headers, seen.clone()))
    });
    let base = serve(app).await;
    let spec = format!("url:url={base}/events,queue=sse").parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;

    let got = take_json(&s, "sse", 5, 10).await;
    let expected: Vec<_> = (1..=5).map(|n| json!({"n": n, "src": "sse"})).collect();
    assert_eq!(got, expected);
    assert_eq!(seen.lock().unwrap()[..2], [None, Some("3".to_owned())]);
    let stats = wait_stats(&s, "url:sse", 5, |f| f["published"] == 5).await;
    assert!(stats["reconnects"].as_u64().unwrap() >= 1, "{stats}");
}

/// NDJSON lines are relayed one by one, filtered by regex and mapped to the chosen fields;
/// the filtered ones are counted.
#[tokio::test]
async fn ndjson_filtered_and_mapped() {
    let lines: Vec<String> = [
        json!({"level": "error", "msg": "a", "n": 1}),
        json!({"level": "info", "msg": "b", "n": 2}),
        json!({"level": "err", "msg": "c", "n": 3}),
        json!({"level": "warn", "msg": "d", "n": 4}),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect();
    let app = Router::new().route("/logs", get(move || ndjson(lines.clone())));
    let base = serve(app).await;
    let spec = format!("url:url={base}/logs,queue=errs,filter=level~^err,map=msg,n").parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;

    let got = take_json(&s, "errs", 2, 10).await;
    assert_eq!(got, [json!({"msg": "a", "n": 1}), json!({"msg": "c", "n": 3})]);
    let stats = wait_stats(&s, "url:errs", 5, |f| f["filtered"] == 2).await;
    assert_eq!((stats["published"].as_u64(), stats["reconnects"].as_u64()), (Some(2), Some(0)));
}

/// While the source refuses connections the feed retries with growing delays (not in a busy
/// loop), counting errors and reconnects, and relays as soon as the source is up.
#[tokio::test]
async fn backs_off_while_the_source_is_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // nothing listens there now
    let spec = format!("url:url=http://{addr}/s,queue=later,max_backoff=1s").parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;

    let stats = wait_stats(&s, "url:later", 10, |f| f["reconnects"].as_u64() >= Some(2)).await;
    assert!(stats["errors"].as_u64() >= Some(2), "{stats}");
    // 0.5 s, 1 s, 1 s …: two reconnects take at least 1.5 s, so a busy loop would show many.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stats = feed_util::feed_stats(&s, "url:later").await;
    assert!(stats["reconnects"].as_u64() <= Some(4), "no back-off: {stats}");

    let lines = vec!["up\n".to_owned()];
    let app = Router::new().route("/s", get(move || ndjson(lines.clone())));
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    assert_eq!(feed_util::take(&s, "later", 1, 10).await, ["up"]);
}
