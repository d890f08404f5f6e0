//! A real server on the embedded store with one queue whose log files are garbage: it starts,
//! serves every other queue whole, quarantines the damaged one (its files moved aside, never
//! deleted) and says so in `/readyz` (still ready), `/stats/` and `/metrics`; the damaged
//! queue goes on, numbering past every key it answered.

mod common;

use std::path::Path;

use common::TestServer;
use restmq_server::config::StoreKind;

async fn start_in(data_dir: &Path) -> TestServer {
    let data_dir = data_dir.to_owned();
    TestServer::start_with(StoreKind::Embedded, move |c| c.data_dir = data_dir).await
}

/// Overwrites every file in `dir` with garbage of its own length.
fn garble(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, (0..len).map(|i| (i * 7 + 13) as u8).collect::<Vec<u8>>()).unwrap();
    }
}

/// Takes every message of `queue`, oldest first (bounded).
async fn drain(server: &TestServer, queue: &str) -> Vec<String> {
    let mut values = Vec::new();
    for _ in 0..100 {
        let (status, body) = server.get(&format!("/q/{queue}")).await;
        if status == 204 {
            return values;
        }
        assert_eq!(status, 200, "hard get: {body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        values.push(got["value"].as_str().unwrap().to_owned());
    }
    panic!("too many messages in {queue}");
}

/// The number of a key `<queue>:<n>`.
fn number(key: &str) -> u64 {
    key.rsplit_once(':').and_then(|(_, n)| n.parse().ok()).unwrap_or_else(|| panic!("a key: {key}"))
}

/// One damaged queue among healthy ones: the server starts and serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_damaged_queue_is_quarantined_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_in(&data).await;
    let mut answered = 0;
    // The damaged queue registers first: its log is `log/1`.
    for queue in ["damaged", "fine", "also"] {
        for i in 1..=5 {
            answered = answered.max(number(&server.add(queue, &format!("{queue}{i}")).await));
        }
    }
    server.stop().await;
    garble(&data.join("log").join("1"));

    let server = start_in(&data).await;
    let ready = server.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["quarantined"], 1, "counted, not named (no credential needed): {ready}");
    let stats = server.get_json("/stats/").await;
    let quarantined = &stats["quarantined"];
    assert_eq!(quarantined.as_array().map(Vec::len), Some(1), "{stats}");
    assert_eq!(quarantined[0]["queue"], "damaged");
    let aside = Path::new(quarantined[0]["path"].as_str().unwrap());
    assert!(
        aside.starts_with(data.join("log").join("quarantine")) && aside.join("state").exists(),
        "{aside:?}"
    );
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("\nrestmq_store_quarantined_queues 1\n"), "{metrics}");
    assert!(metrics.contains("\nrestmq_store_damaged_records_total "), "{metrics}");
    assert!(metrics.contains("\nrestmq_store_inline_segments_total "), "{metrics}");

    for queue in ["fine", "also"] {
        assert_eq!(drain(&server, queue).await, (1..=5).map(|i| format!("{queue}{i}")).collect::<Vec<_>>());
    }
    assert_eq!(drain(&server, "damaged").await, ["damaged1"], "its message in SQLite is served");
    let key = server.add("damaged", "after").await;
    assert!(number(&key) > answered, "{key}: past every key answered (up to {answered})");
    assert_eq!(drain(&server, "damaged").await, ["after"]);
    server.stop().await;
}

/// A server on a store with nothing damaged says nothing of quarantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_store_reports_no_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(&dir.path().join("data")).await;
    server.add("q", "v").await;
    let ready = server.get_json("/readyz").await;
    assert_eq!(ready, serde_json::json!({"status": "ready", "store": "embedded"}));
    assert!(server.get_json("/stats/").await.get("quarantined").is_none());
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics.contains("\nrestmq_store_quarantined_queues 0\n"), "{metrics}");
    server.stop().await;
}
