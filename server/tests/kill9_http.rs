//! `kill -9` of a real `restmq serve --store embedded` under publish load: every message
//! answered 200 is there after a restart on the same data directory.

mod fault_util;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fault_util::Proc;

/// Starts the `restmq` binary on the embedded store in `data_dir` with `--fsync fsync`;
/// returns it and its base URL.
fn spawn_server(data_dir: &std::path::Path, fsync: &str) -> (Proc, String) {
    let dir = data_dir.display().to_string();
    let server = Proc::serve(&["--store", "embedded", "--data-dir", &dir, "--fsync", fsync]);
    let url = server.url.clone();
    (server, url)
}

/// With `--fsync always`, every add acknowledged before a SIGKILL is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_adds_survive_kill_9() {
    survive_kill_9("always").await;
}

/// With `--fsync everysec` (the default), every add acknowledged before a SIGKILL is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_adds_survive_kill_9_everysec() {
    survive_kill_9("everysec").await;
}

/// With `--fsync never`, every add acknowledged before a SIGKILL is there: it was in the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_adds_survive_kill_9_never() {
    survive_kill_9("never").await;
}

/// Publishes from 8 connections until 1,500 adds were acknowledged, kills the server with
/// SIGKILL, restarts it, and finds every acknowledged key.
async fn survive_kill_9(fsync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_server(dir.path(), fsync);
    let http = reqwest::Client::new();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers: Vec<_> = (0..8)
        .map(|p| {
            let (http, url, acked, sent) = (http.clone(), url.clone(), acked.clone(), sent.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let value = format!("p{p}-{i}");
                    let Ok(res) =
                        http.post(format!("{url}/q/durable")).form(&[("value", &value)]).send().await
                    else {
                        return;
                    };
                    if res.status() != 200 {
                        return;
                    }
                    let Ok(body) = res.text().await else { return };
                    acked.lock().unwrap().push(body.trim_end().to_owned());
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 1500 {
        assert!(Instant::now() < deadline, "too slow to reach 1,500 acknowledged adds");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill_9();
    for p in producers {
        let _ = p.await;
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();

    let (mut child, url) = spawn_server(dir.path(), fsync);
    let mut found = HashSet::new();
    loop {
        let res = http.get(format!("{url}/q/durable")).send().await.unwrap();
        if res.status() == 204 {
            break;
        }
        let body: serde_json::Value = res.json().await.unwrap();
        found.insert(body["key"].as_str().unwrap().to_owned());
    }
    child.kill_9();
    let missing: Vec<_> = acked.difference(&found).collect();
    println!(
        "kill -9 (embedded, --fsync {}): sent {}, acknowledged {}, found after restart {}, missing {}",
        fsync,
        sent.load(std::sync::atomic::Ordering::Relaxed),
        acked.len(),
        found.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// After a SIGKILL, numbering goes on past one gap of 1,024 (`NUMBERS_AHEAD`) after the last
/// key answered, not two, and `/j` lists only keys that exist, across the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_skips_one_gap_of_keys_and_j_lists_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let add = |url: String, value: &'static str| {
        let http = http.clone();
        async move {
            let res = http.post(format!("{url}/q/gap")).form(&[("value", value)]).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap().trim_end().to_owned()
        }
    };
    let (mut child, url) = spawn_server(dir.path(), "everysec");
    for value in ["a", "b", "c"] {
        add(url.clone(), value).await;
    }
    child.kill_9();

    let (mut child, url) = spawn_server(dir.path(), "everysec");
    assert_eq!(add(url.clone(), "d").await, "gap:1028", "3, then one gap of 1,024");
    let recent: serde_json::Value =
        http.get(format!("{url}/j/gap")).send().await.unwrap().json().await.unwrap();
    assert_eq!(recent["keys"], serde_json::json!(["gap:1028", "gap:3", "gap:2", "gap:1"]), "{recent}");
    child.kill_9();
}
