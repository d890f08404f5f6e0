//! Test helpers: a real restmq server on 127.0.0.1:0 for each store backend, stopped on drop.
#![allow(dead_code)]

pub mod guard;
pub mod redis;
pub mod store;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use restmq_server::config::{ServeConfig, StoreKind};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running server; dropping it shuts it down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    /// The Redis this server owns, if it started its own.
    pub redis: Option<redis::RedisServer>,
}

impl TestServer {
    /// Starts a server on `store` with default settings.
    pub async fn start(store: StoreKind) -> Self {
        Self::start_with(store, |_| {}).await
    }

    /// Starts a server on `store`, letting `tweak` change the configuration first. On
    /// `StoreKind::Redis` it starts its own `redis-server`.
    pub async fn start_with(store: StoreKind, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let redis = (store == StoreKind::Redis).then(redis::RedisServer::start);
        let url = redis.as_ref().map(redis::RedisServer::url);
        let mut server = Self::start_inner(store, |config| {
            if let Some(url) = url {
                config.redis_url = url;
            }
            tweak(config);
        })
        .await;
        server.redis = redis;
        server
    }

    /// Starts a server on a Redis that others share (several processes, one Redis).
    pub async fn start_on_redis(url: &str) -> Self {
        Self::start_inner(StoreKind::Redis, |config| config.redis_url = url.to_owned()).await
    }

    /// Starts a server on a shared Redis, letting `tweak` change the configuration first.
    pub async fn start_inner_on_redis(url: &str, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_inner(StoreKind::Redis, |config| {
            config.redis_url = url.to_owned();
            tweak(config);
        })
        .await
    }

    async fn start_inner(store: StoreKind, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServeConfig::defaults();
        config.store = store;
        config.data_dir = dir.path().join("data");
        config.web_dir = dir.path().join("web");
        config.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let listener = TcpListener::bind(config.listen).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(restmq_server::run(config, listener, shutdown.clone()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Self { addr, http, shutdown, handle: Some(handle), _dir: dir, redis: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// `POST /q/<queue>` with `value`; returns the key.
    pub async fn add(&self, queue: &str, value: &str) -> String {
        let res =
            self.http.post(self.url(&format!("/q/{queue}"))).form(&[("value", value)]).send().await.unwrap();
        assert_eq!(res.status(), 200, "add to {queue}");
        res.text().await.unwrap().trim_end().to_owned()
    }

    /// `GET path` → (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// `POST path` with a form → (status, body).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let res = self.http.post(self.url(path)).form(form).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// `POST path` with `body` as `content_type`: (status, body).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, String) {
        let req = self.http.post(self.url(path)).header("content-type", content_type);
        let res = req.body(body.to_owned()).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// `GET path` parsed as JSON, asserting 200.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Waits up to `within` until `/metrics` shows `series` (name and labels) at `value`.
    pub async fn metric_reaches(&self, series: &str, value: f64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
            let now =
                text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()));
            if now == Some(value) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{series} is {now:?}, not {value}:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A memory-store server checking the bearer tokens of `tokens` (a token file's JSON);
    /// the directory holding the file is returned to live as long as the server.
    pub async fn start_with_tokens(tokens: &str) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, tokens).unwrap();
        let server = Self::start_with(StoreKind::Memory, |c| c.auth.auth_tokens = Some(path)).await;
        (server, dir)
    }

    /// Shuts the server down and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server run");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `t-root` may do anything anywhere; `t-look` may only observe queue `jobs`.
pub const OBSERVE_TOKENS: &str = r#"{"tokens": [
    {"name": "root", "token": "t-root", "queues": ["*"], "rights": ["produce", "consume", "admin"]},
    {"name": "window", "token": "t-look", "queues": ["jobs"], "rights": ["observe"]}
]}"#;

/// Generates one `#[tokio::test]` per store backend for each listed async test function
/// taking a `StoreKind`.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(restmq_server::config::StoreKind::Memory).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(restmq_server::config::StoreKind::Embedded).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(restmq_server::config::StoreKind::Redis).await
                }
            )*
        }
    };
}
