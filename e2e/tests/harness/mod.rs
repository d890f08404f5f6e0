//! Test harness: a restmq server in-process serving the built web app, a headless Chromium
//! per test ([`browser`]), and bounded waiting. Tests run one at a time (they share two cores
//! and measure timing), each under an overall time limit. Each test binary (`browser.rs`,
//! `mapreduce.rs`) uses a part of it.

#![allow(dead_code)]

pub mod browser;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use restmq_server::config::{ServeConfig, StoreKind};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The longest a whole test may take.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Serialises the tests of this binary.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs one browser test on its own runtime, alone, within [`TEST_LIMIT`].
pub fn run<F: Future<Output = ()>>(test: F) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        if tokio::time::timeout(TEST_LIMIT, test).await.is_err() {
            panic!("the test did not finish within {TEST_LIMIT:?}");
        }
    });
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("e2e/ is inside the repository").to_path_buf()
}

/// The built web app; the tests fail at once if it is missing.
fn dist_dir() -> PathBuf {
    let dist = repo_root().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: build the web app first (`trunk build --release`, which `cargo xtask test` runs)",
        dist.display()
    );
    dist
}

/// A restmq server on 127.0.0.1:0 (memory store) serving `dist/`; stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server, letting `tweak` change its configuration first.
    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServeConfig::defaults();
        config.store = StoreKind::Memory;
        config.data_dir = dir.path().join("data");
        config.web_dir = dist_dir();
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let listener = TcpListener::bind(config.listen).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = restmq_server::run(config, listener, shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = server.await {
                eprintln!("the server failed: {error:#}");
            }
        });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let server = Self { addr, http, shutdown, _dir: dir };
        eventually("the server to answer GET /healthz", Duration::from_secs(10), || async {
            let res = server.http.get(server.url("/healthz")).send().await.ok()?;
            res.status().is_success().then_some(())
        })
        .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /q/<queue>` with `value`, as curl would; returns the key.
    pub async fn add(&self, queue: &str, value: &str) -> String {
        let res = self.http.post(self.url(&format!("/q/{queue}"))).form(&[("value", value)]).send().await;
        let res = res.unwrap_or_else(|e| panic!("POST /q/{queue}: {e}"));
        assert_eq!(res.status(), 200, "POST /q/{queue}");
        res.text().await.unwrap().trim_end().to_owned()
    }

    /// `GET path` as JSON, asserting 200.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.http.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// One queue's figures from `/stats/`, if the queue exists.
    pub async fn queue_stats(&self, queue: &str) -> Option<serde_json::Value> {
        self.get_json("/stats/").await["queues"].get(queue).cloned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing the test with `what` after
/// `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
