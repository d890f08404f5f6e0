//! `GET /metrics` after a short, known run: every per-queue counter, the gauges, the request
//! counter and the store histogram have exactly the values the run implies, on every store.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use tokio_tungstenite::tungstenite::Message;

/// A scraped page: `series{labels}` → value, plus the raw text.
struct Page {
    series: BTreeMap<String, f64>,
    text: String,
}

impl Page {
    /// The value of `series` (e.g. `restmq_queue_length{queue="a"}`); panics when absent.
    fn get(&self, series: &str) -> f64 {
        *self.series.get(series).unwrap_or_else(|| panic!("no {series} in:\n{}", self.text))
    }
}

/// Scrapes `/metrics`, checking the content type and that every line parses.
async fn scrape(s: &TestServer) -> Page {
    let res = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let text = res.text().await.unwrap();
    let mut series = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(series.insert(name.to_owned(), value).is_none(), "{name} twice");
    }
    Page { series, text }
}

/// The six per-queue counters of `queue`, in the order added, taken, delivered, acked,
/// redelivered, dead.
fn counters(page: &Page, queue: &str) -> [f64; 6] {
    ["added", "taken", "delivered", "acked", "redelivered", "dead"]
        .map(|c| page.get(&format!("restmq_messages_{c}_total{{queue=\"{queue}\"}}")))
}

async fn status_of(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// `GET /q/m1?reserve=SECS`, asserting 200; the key of the message.
async fn reserve(s: &TestServer, secs: u32) -> String {
    let (status, body) = s.get(&format!("/q/m1?reserve={secs}")).await;
    assert_eq!(status, 200, "reserve: {body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    doc["key"].as_str().unwrap().to_owned()
}

/// Adds, takes, reserves, acks, nacks, lets leases expire (one back, one dead), streams to
/// a WebSocket, then checks every figure on the page exactly.
async fn counters_after_a_known_run(store: StoreKind) {
    let s = TestServer::start_with(store, |c| c.max_deliveries = 2).await;
    let mut scrapes = 0;
    for i in 1..=5 {
        s.add("m1", &format!("v{i}")).await;
    }
    for _ in 0..2 {
        assert_eq!(s.get("/q/m1").await.0, 200, "take");
    }
    let (k3, k4) = (reserve(&s, 30).await, reserve(&s, 30).await);
    assert_eq!((k3.as_str(), k4.as_str()), ("m1:3", "m1:4"));
    assert_eq!(status_of(s.http.delete(s.url("/q/m1/m1:3"))).await.0, 200, "ack");
    assert_eq!(status_of(s.http.post(s.url("/q/m1/m1:4"))).await.0, 200, "nack");
    // m1:4 again (its second delivery: dead when it expires), then m1:5 (back when it expires).
    assert_eq!((reserve(&s, 1).await, reserve(&s, 1).await), ("m1:4".to_owned(), "m1:5".to_owned()));

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = scrape(&s).await;
        scrapes += 1;
        if counters(&page, "m1")[5] >= 1.0 && counters(&page, "m1")[4] >= 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "leases did not expire:\n{}", page.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/m2")).await.unwrap();
    for i in 1..=3 {
        s.add("m2", &format!("w{i}")).await;
    }
    for i in 1..=3 {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
        let Message::Text(text) = frame else { panic!("{frame:?}") };
        assert!(text.contains(&format!("\"m2:{i}\"")), "{text}");
    }

    // A frame can reach the client before the server's write returns and counts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = scrape(&s).await;
        if counters(&page, "m2")[2] >= 3.0 {
            break page; // counted by the next scrape, not by itself
        }
        scrapes += 1;
        assert!(Instant::now() < deadline, "three frames read, not counted:\n{}", page.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("/metrics on {store:?}:\n{}", page.text);
    assert_eq!(
        counters(&page, "m1"),
        [5.0, 2.0, 0.0, 1.0, 2.0, 1.0],
        "added taken delivered acked redelivered dead"
    );
    assert_eq!(counters(&page, "m2"), [3.0, 0.0, 3.0, 0.0, 0.0, 0.0]);
    assert_eq!(counters(&page, "m1.dead"), [0.0; 6]);
    assert_eq!(page.get("restmq_queue_length{queue=\"m1\"}"), 1.0, "m1:5 is back");
    assert_eq!(page.get("restmq_queue_length{queue=\"m1.dead\"}"), 1.0, "m1:4 is dead");
    assert_eq!(page.get("restmq_queue_length{queue=\"m2\"}"), 0.0);
    assert_eq!(page.get("restmq_consumers{queue=\"m2\"}"), 1.0);
    assert_eq!(page.get("restmq_consumers{queue=\"m1\"}"), 0.0);
    assert_eq!(page.get("restmq_connections"), 1.0);
    let requests = |route: &str, status: u16| {
        page.get(&format!("restmq_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"))
    };
    assert_eq!(requests("/q/{queue}", 200), 5.0 + 2.0 + 4.0 + 3.0, "adds, takes, reserves");
    assert_eq!(requests("/q/{queue}/{item}", 200), 2.0, "ack and nack");
    assert_eq!(requests("/ws/{queue}", 101), 1.0);
    assert_eq!(requests("/metrics", 200), f64::from(scrapes), "this scrape counts after it answers");
    let op = |suffix: &str, op: &str| page.get(&format!("restmq_store_op_seconds_{suffix}{{op=\"{op}\"}}"));
    assert_eq!(op("count", "add"), 8.0);
    assert_eq!(op("bucket", "add\",le=\"+Inf"), 8.0);
    assert_eq!((op("count", "reserve"), op("count", "ack"), op("count", "nack")), (4.0, 1.0, 1.0));
    assert!(op("sum", "add") > 0.0);
    let add_buckets: Vec<f64> = page
        .series
        .iter()
        .filter(|(k, _)| k.starts_with("restmq_store_op_seconds_bucket{op=\"add\""))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(add_buckets.len(), 18, "17 bounds and +Inf");
    for kind in ["counter", "gauge", "histogram"] {
        assert!(page.text.contains(&format!(" {kind}\n")), "a # TYPE … {kind} line");
    }

    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(&s).await;
        if page.get("restmq_connections") == 0.0 && page.get("restmq_consumers{queue=\"m2\"}") == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the closed WebSocket is still counted:\n{}", page.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

on_every_store!(counters_after_a_known_run);
