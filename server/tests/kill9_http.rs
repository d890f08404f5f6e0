//! `kill -9` of a real `restmq serve --store embedded` under publish load: every message
//! answered 200 is there after a restart on the same data directory.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed and reaped on drop (also when a test fails).
struct Server(Child);

impl Server {
    /// SIGKILL, as `kill -9` does, then reap.
    fn kill_9(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `restmq` binary on a free port; returns it and its base URL.
fn spawn_server(data_dir: &std::path::Path) -> (Server, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_restmq"))
        .args(["serve", "--store", "embedded", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn restmq");
    let mut child = Server(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("server exited before it was ready").unwrap();
        if let Some(at) = line.find("http://") {
            let url = line[at..].split_whitespace().next().unwrap().trim_end_matches('/').to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url);
        }
    }
    panic!("restmq did not report its URL in time");
}

/// Publishes from 8 connections until 1,500 adds were acknowledged, kills the server with
/// SIGKILL, restarts it, and finds every acknowledged key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_adds_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_server(dir.path());
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

    let (mut child, url) = spawn_server(dir.path());
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
        "kill -9 (embedded): sent {}, acknowledged {}, found after restart {}, missing {}",
        sent.load(std::sync::atomic::Ordering::Relaxed),
        acked.len(),
        found.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
