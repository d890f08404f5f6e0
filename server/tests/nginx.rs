//! restmq behind Debian's nginx with the shipped `contrib/nginx.conf` (its upstream, port and
//! read timeouts changed for the test: 2 s against a 1 s heartbeat): REST through the proxy,
//! COMET and SSE not buffered, idle WebSocket, COMET and SSE consumers that outlive three proxy
//! read timeouts and then get a message, and the client address seen through
//! `--trusted-proxy`. A missing nginx fails the test (scripts/setup.sh installs it).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::ws::next_json;
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::auth::IpNet;
use restmq_server::config::StoreKind;
use serde_json::json;

/// The proxy's read timeout in the test; three of them pass while the consumers idle.
const READ_TIMEOUT_SECS: u64 = 2;

/// An nginx in front of `upstream`, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: std::net::SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let site =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/nginx.conf")).unwrap();
        let site = site
            .replace("server 127.0.0.1:8888;", &format!("server {upstream};"))
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace("75s;", &format!("{READ_TIMEOUT_SECS}s;"));
        assert!(site.contains(&format!("listen 127.0.0.1:{port};")), "the shipped site changed shape");
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        let main = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {0}/nginx.pid;\nerror_log {0}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {0}/body;\n  proxy_temp_path {0}/proxy;\n\
             fastcgi_temp_path {0}/fastcgi;\n  uwsgi_temp_path {0}/uwsgi;\n  scgi_temp_path {0}/scgi;\n\
             include {0}/site.conf;\n}}\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .args([
                "-p",
                &dir.path().display().to_string(),
                "-c",
                &dir.path().join("nginx.conf").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start /usr/sbin/nginx ({e}): scripts/setup.sh installs Debian's nginx")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next chunk of a streaming body, within `limit`.
async fn chunk(res: &mut reqwest::Response, limit: Duration) -> String {
    let got =
        tokio::time::timeout(limit, res.chunk()).await.expect("a chunk in time").unwrap().expect("open");
    String::from_utf8(got.to_vec()).unwrap()
}

/// Reads `res` until `want` shows up, within `limit`; everything read.
async fn read_until(res: &mut reqwest::Response, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut text = String::new();
    while !text.contains(want) {
        text.push_str(&chunk(res, deadline.saturating_duration_since(Instant::now())).await);
    }
    text
}

/// Everything a client does through the shipped nginx site works, idle streams included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_shipped_nginx_site() {
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.heartbeat_secs = 1;
        c.auth.trusted_proxy = vec!["127.0.0.1".parse::<IpNet>().unwrap()];
        c.auth.allow_ip = ["127.0.0.1", "198.51.100.0/24"].map(|n| n.parse::<IpNet>().unwrap()).to_vec();
    })
    .await;
    let nginx = Nginx::start(s.addr);
    let http = reqwest::Client::new();

    // REST through the proxy.
    let added = http.post(nginx.url("/q/rest")).form(&[("value", "via nginx")]).send().await.unwrap();
    assert_eq!(added.text().await.unwrap(), "rest:1\r\n");
    let got = http.get(nginx.url("/q/rest")).send().await.unwrap().text().await.unwrap();
    assert_eq!(got, "{\"key\":\"rest:1\",\"value\":\"via nginx\",\"count\":0}\r\n");

    // `--allow-ip` judges the client nginx forwards (`--trusted-proxy`), not nginx itself.
    let from =
        |client: &'static str| http.get(nginx.url("/healthz")).header("x-forwarded-for", client).send();
    assert_eq!(from("203.0.113.9").await.unwrap().status(), 403, "a client outside --allow-ip");
    assert_eq!(from("198.51.100.7").await.unwrap().status(), 200, "a client inside --allow-ip");

    // COMET and SSE lines arrive at once, not buffered.
    let mut comet = http.get(nginx.url("/c/live")).send().await.unwrap();
    let mut sse = http.get(nginx.url("/sse/live")).send().await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/idle", nginx.port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.add("live", "prompt").await;
    let line = read_until(&mut comet, "prompt", Duration::from_millis(1500)).await;
    assert!(line.contains("{\"key\":\"live:1\",\"value\":\"prompt\"}\r\n"), "{line:?}");
    let event = read_until(&mut sse, "prompt", Duration::from_millis(1500)).await;
    assert!(event.contains("data: {\"key\":\"live:1\",\"value\":\"prompt\"}"), "{event:?}");

    // Three proxy read timeouts of silence, then a message reaches each consumer.
    let quiet = Duration::from_secs(3 * READ_TIMEOUT_SECS + 1);
    let idle_ws = tokio::time::timeout(quiet, async {
        while let Some(frame) = ws.next().await {
            assert!(frame.unwrap().is_ping(), "only pings while idle");
        }
    });
    let (ws_idle, _) = tokio::join!(idle_ws, async {
        let started = Instant::now();
        while started.elapsed() < quiet {
            let left = quiet.saturating_sub(started.elapsed()) + Duration::from_secs(2);
            chunk(&mut comet, left).await; // heartbeats; the stream stays open
        }
    });
    assert!(ws_idle.is_err(), "the WebSocket ended while idle");
    s.add("live", "after the quiet").await;
    s.add("idle", "after the quiet").await;
    let line = read_until(&mut comet, "after the quiet", Duration::from_secs(3)).await;
    assert!(line.contains("{\"key\":\"live:2\",\"value\":\"after the quiet\"}\r\n"), "{line:?}");
    let event = read_until(&mut sse, "after the quiet", Duration::from_secs(3)).await;
    assert!(event.contains("\"key\":\"live:2\""), "the SSE stream outlived the proxy timeouts: {event:?}");
    assert_eq!(next_json(&mut ws).await, json!({"key": "idle:1", "value": "after the quiet"}));
}
