//! The `file` feed against real temp files: lines and NDJSON in order, pacing, looping,
//! filters and maps, and its counters in `/stats/`.

mod common;
mod feed_util;

use std::io::Write;
use std::time::{Duration, Instant};

use common::TestServer;
use feed_util::{drain, take, take_json, wait_stats};
use restmq_server::config::StoreKind;
use serde_json::json;

fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

async fn server_with(store: StoreKind, specs: &[String]) -> TestServer {
    let specs: Vec<_> = specs.iter().map(|s| s.parse().unwrap()).collect();
    TestServer::start_with(store, |c| c.feeds = specs).await
}

/// Every non-blank line arrives once, in file order; a JSON line is published as compact JSON.
#[tokio::test]
async fn lines_arrive_in_order() {
    let file = temp_file("alpha\n\n  \nbeta\r\n{ \"n\": 1 }\ngamma");
    let spec = format!("file:path={},queue=lines,rate=0", file.path().display());
    let s = server_with(StoreKind::Embedded, &[spec]).await;
    let got = take(&s, "lines", 4, 10).await;
    assert_eq!(got, ["alpha", "beta", r#"{"n":1}"#, "gamma"]);
    let stats = wait_stats(&s, "file:lines", 5, |f| f["published"] == 4).await;
    assert_eq!(
        stats,
        json!({"kind": "file", "queue": "lines", "published": 4, "filtered": 0, "errors": 0, "reconnects": 0})
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(drain(&s, "lines").await.is_empty(), "no line twice without loop");
}

/// `rate=20` spaces ten lines over about half a second instead of sending them at once.
#[tokio::test]
async fn rate_paces_lines() {
    let lines: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    let file = temp_file(&lines.join("\n"));
    let started = Instant::now();
    let spec = format!("file:path={},queue=paced,rate=20", file.path().display());
    let s = server_with(StoreKind::Memory, &[spec]).await;
    let got = take(&s, "paced", 10, 10).await;
    let elapsed = started.elapsed();
    assert_eq!(got, lines);
    assert!(elapsed >= Duration::from_millis(400), "ten lines at 20/s took only {elapsed:?}");
}

/// With `loop` the file starts again from the top after its last line.
#[tokio::test]
async fn loop_replays_the_file() {
    let file = temp_file("a\nb\n");
    let spec = format!("file:path={},queue=looped,rate=200,loop", file.path().display());
    let s = server_with(StoreKind::Memory, &[spec]).await;
    let got = take(&s, "looped", 7, 10).await;
    assert_eq!(got, ["a", "b", "a", "b", "a", "b", "a"]);
}

/// NDJSON: filters drop what does not match, the map keeps the listed fields, and a line that
/// is not JSON counts as an error without stopping the feed.
#[tokio::test]
async fn ndjson_filter_and_map() {
    let file = temp_file(
        "{\"level\":\"error\",\"msg\":\"disk full\",\"host\":\"a\"}\n\
         {\"level\":\"info\",\"msg\":\"ok\",\"host\":\"a\"}\n\
         not json\n\
         {\"level\":\"error\",\"msg\":\"cpu hot\",\"host\":\"b\",\"extra\":{\"t\":90}}\n\
         {\"level\":\"errorish\",\"msg\":\"no\",\"host\":\"c\"}\n",
    );
    let spec = format!(
        "file:path={},queue=errors,rate=0,format=ndjson,filter=level=error,map=msg,extra.t",
        file.path().display()
    );
    let s = server_with(StoreKind::Memory, &[spec]).await;
    let got = take_json(&s, "errors", 2, 10).await;
    assert_eq!(got, [json!({"msg": "disk full"}), json!({"msg": "cpu hot", "extra": {"t": 90}})]);
    let stats = wait_stats(&s, "file:errors", 5, |f| f["filtered"] == 2).await;
    assert_eq!((stats["published"].as_u64(), stats["errors"].as_u64()), (Some(2), Some(1)));
}

/// A missing file is an error in the counters, and the server still serves.
#[tokio::test]
async fn missing_file_counts_an_error() {
    let spec = "file:path=/nonexistent/restmq-test.txt,queue=none,name=broken".to_owned();
    let s = server_with(StoreKind::Memory, &[spec]).await;
    let stats = wait_stats(&s, "broken", 5, |f| f["errors"] == 1).await;
    assert_eq!(stats["published"], 0);
    assert_eq!(s.add("other", "x").await, "other:1");
}

/// A line over `--max-message-bytes` is skipped and counted as an error, as a POST of it
/// would get 413; the lines around it arrive.
#[tokio::test]
async fn oversize_lines_are_skipped() {
    let long = "x".repeat(100);
    let file = temp_file(&format!("short one\n{long}\nshort two\n"));
    let spec: Vec<_> = [format!("file:path={},queue=sized,rate=0", file.path().display())]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.feeds = spec;
        c.max_message_bytes = 64;
    })
    .await;
    assert_eq!(take(&s, "sized", 2, 10).await, ["short one", "short two"]);
    let stats = wait_stats(&s, "file:sized", 5, |f| f["published"] == 2 && f["errors"] == 1).await;
    assert_eq!(stats["errors"], 1, "{stats}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(drain(&s, "sized").await.is_empty(), "the long line never arrives");
}
