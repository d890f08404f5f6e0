//! Helpers of the fault tests: a real `restmq serve` process (killed with SIGKILL or stopped
//! with SIGTERM, reaped on drop), publish load that records every acknowledged key, and
//! draining a queue.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Like `println!`, but shown in the test output even when the test passes: libtest
/// captures `println!`, not direct writes to stderr.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A `restmq serve` process, killed and reaped on drop (also when a test fails).
pub struct Proc {
    child: Child,
    pub url: String,
}

impl Proc {
    /// Starts `restmq serve ARGS --listen 127.0.0.1:0` and waits for it to print its URL.
    pub fn serve(args: &[&str]) -> Self {
        Self::serve_with_env(args, &[])
    }

    /// Like [`Proc::serve`], with these environment variables set.
    pub fn serve_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_restmq"));
        command.arg("serve").args(args).args(["--listen", "127.0.0.1:0"]).envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Runs `command` (a `restmq serve` that listens on port 0, however it is started) and
    /// waits for it to print its URL.
    pub fn spawn(mut command: Command) -> Self {
        let child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn restmq");
        let mut proc = Self { child, url: String::new() };
        let mut lines = BufReader::new(proc.child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let line = lines.next().expect("server exited before it was ready").unwrap();
            if let Some(at) = line.find("http://") {
                proc.url = line[at..].split_whitespace().next().unwrap().trim_end_matches('/').to_owned();
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return proc;
            }
        }
        panic!("restmq did not report its URL in time");
    }

    /// The process id, to read its `/proc` figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.url.replacen("http://", "ws://", 1))
    }

    /// SIGKILL, as `kill -9` does, then reap.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, as a service manager sends to stop it.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit by itself; panics after `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "restmq did not exit within {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Producers that POST to their queues until the server stops answering 200, recording
/// every key it acknowledged.
pub struct Load {
    pub sent: Arc<AtomicUsize>,
    pub acked: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `producers` tasks, producer `p` posting to `queues[p % queues.len()]`.
    pub fn start(url: &str, queues: &[&str], producers: usize) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let (sent, acked) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let tasks = (0..producers)
            .map(|p| {
                let (http, sent, acked) = (http.clone(), sent.clone(), acked.clone());
                let target = format!("{url}/q/{}", queues[p % queues.len()]);
                tokio::spawn(async move {
                    for i in 0.. {
                        sent.fetch_add(1, Ordering::Relaxed);
                        let value = format!("p{p}-{i}");
                        let Ok(res) = http.post(&target).form(&[("value", &value)]).send().await else {
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
        Self { sent, acked, tasks }
    }

    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` adds were acknowledged; panics after `limit`.
    pub async fn until_acked(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.acked_count() < n {
            assert!(Instant::now() < deadline, "only {} adds acknowledged in {limit:?}", self.acked_count());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every producer to give up (the server is gone); returns (sent, acknowledged keys).
    pub async fn finish(self) -> (usize, HashSet<String>) {
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("producers end").unwrap();
        }
        let acked = self.acked.lock().unwrap().iter().cloned().collect();
        (self.sent.load(Ordering::Relaxed), acked)
    }
}

/// Hard-gets every message of `queue`; returns their keys.
pub async fn drain(url: &str, queue: &str) -> HashSet<String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut found = HashSet::new();
    loop {
        let res = http.get(format!("{url}/q/{queue}")).send().await.unwrap();
        if res.status() == 204 {
            return found;
        }
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(found.insert(body["key"].as_str().unwrap().to_owned()), "a key twice: {body}");
    }
}

/// The queue of a key `q:n`.
pub fn queue_of(key: &str) -> &str {
    key.rsplit_once(':').map_or(key, |(q, _)| q)
}
