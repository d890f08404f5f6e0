//! The embedded store keeps its backlog on disk: a real `restmq serve` process's resident
//! memory stays flat while a queue grows from 10,000 to 200,000 messages, and a restart reads
//! the catalog (and the WAL), not the messages, before it answers.

mod fault_util;

use fault_util::Proc;

const QUEUE: &str = "backlog";
/// Messages per batch publish.
const BATCH: usize = 1_000;

/// A 200-byte message, unique by `i`.
fn message(i: usize) -> String {
    format!("{i:0>200}")
}

/// A field of `/proc/<pid>/<file>` (`VmRSS:` in `status`, `rchar:` in `io`), as a number
/// (kB for `VmRSS`, bytes for `rchar`).
fn proc_figure(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {file}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn serve(data_dir: &std::path::Path) -> Proc {
    let dir = data_dir.display().to_string();
    Proc::serve(&["--store", "embedded", "--data-dir", &dir, "--cache-mib", "8"])
}

/// Publishes messages `from..to` in batches.
async fn publish(http: &reqwest::Client, url: &str, from: usize, to: usize) {
    for start in (from..to).step_by(BATCH) {
        let body: String =
            (start..(start + BATCH).min(to)).map(|i| format!("\"{}\"\n", message(i))).collect();
        let res = http
            .post(format!("{url}/q/{QUEUE}"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

async fn len(http: &reqwest::Client, url: &str) -> u64 {
    let stats: serde_json::Value =
        http.get(format!("{url}/stats/{QUEUE}")).send().await.unwrap().json().await.unwrap();
    stats["len"].as_u64().unwrap()
}

/// RSS grows by far less than the backlog (190,000 × 200 bytes = 38 MB of bodies) while it
/// grows twentyfold; a restart reads a small part of the database before answering, and the
/// oldest message comes out first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_as_the_backlog_grows_and_startup_reads_no_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let http = reqwest::Client::new();
    publish(&http, &server.url, 0, 10_000).await;
    let small = proc_figure(server.pid(), "status", "VmRSS:");
    publish(&http, &server.url, 10_000, 200_000).await;
    assert_eq!(len(&http, &server.url).await, 200_000);
    let large = proc_figure(server.pid(), "status", "VmRSS:");
    report!("embedded backlog: VmRSS {small} kB at 10,000 messages, {large} kB at 200,000");
    assert!(
        large.saturating_sub(small) < 16 * 1024,
        "RSS grew by {} kB while the backlog grew by 38 MB of bodies",
        large - small
    );
    drop(server);

    let db_bytes: u64 =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    // Recovery after `kill -9` reads the WAL (up to the syncer's cap); beside it, a small part
    // of the database.
    let wal = std::fs::metadata(dir.path().join("restmq.sqlite-wal")).map_or(0, |m| m.len());
    let server = serve(dir.path());
    let http = reqwest::Client::new();
    let read_at_start = proc_figure(server.pid(), "io", "rchar:");
    report!(
        "embedded restart: read {read_at_start} bytes of a {db_bytes}-byte data directory ({wal} of WAL)"
    );
    assert!(
        read_at_start < wal + (db_bytes - wal) / 4,
        "start-up read {read_at_start} bytes of a {db_bytes}-byte data directory ({wal} of WAL)"
    );
    assert_eq!(len(&http, &server.url).await, 200_000);
    let first: serde_json::Value =
        http.get(format!("{}/q/{QUEUE}", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["value"], message(0));
}
