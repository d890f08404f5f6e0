//! Headless Chromium driven over WebDriver: each [`Browser`] starts its own `chromedriver` on a
//! free port (in its own process group, killed with it), with a fresh profile directory and
//! the flags that keep Chromium off the network. A missing Chromium or driver fails the test.

use std::env;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::{eventually, Server};

/// Waits on the page are bounded by this unless a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);

/// Finds `names[0]` (or the next name) on `PATH`, or fails the test saying what to install.
fn executable(names: &[&str], package: &str) -> PathBuf {
    let path = env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{} not found on PATH: the browser tests need Debian's `{package}` (scripts/setup.sh installs it)",
        names.join(" / ")
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Chromium's browser log (`console.error`, uncaught exceptions, failed loads), through
/// chromedriver's log endpoint.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

/// A Chrome DevTools Protocol command, through chromedriver.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// One headless Chromium session, on a page of `server`.
pub struct Browser {
    client: Option<Client>,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session (1280×900) ready to open pages of `server`.
    pub async fn start(server: &Server) -> Self {
        let chromium = executable(&["chromium", "chromium-browser"], "chromium");
        let chromedriver = executable(&["chromedriver"], "chromium-driver");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("profile dir");
        // From here on, dropping `browser` stops the driver whatever happens.
        let mut browser = Self { client: None, base: server.url(""), driver, _profile: profile };
        let client = connect(port, &chromium, browser._profile.path(), &server.http).await;
        client.set_window_size(1280, 900).await.expect("window size");
        browser.client = Some(client);
        browser
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Opens `path` (e.g. `/#/dashboard`) and waits for the app to render its navigation.
    pub async fn open(&self, path: &str) {
        self.client()
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        self.wait_for("header nav", "the app to start").await;
    }

    /// Runs `script` in the page (its `arguments` are `args`) and returns its result.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client().execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;";
        self.js(script, vec![json!(css)]).await.as_str().map(str::to_owned)
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> u64 {
        self.js("return document.querySelectorAll(arguments[0]).length;", vec![json!(css)])
            .await
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str, what: &str) {
        eventually(what, WAIT, || async { (self.count(css).await > 0).then_some(()) }).await;
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        eventually(what, WAIT, || async { self.text(css).await.filter(|t| ok(t)) }).await
    }

    /// Waits until the number in the text of `css` is `n`.
    pub async fn wait_number(&self, css: &str, n: u64, limit: Duration) {
        let what = format!("{css} to read {n}");
        eventually(&what, limit, || async {
            let text = self.text(css).await?;
            (text.trim().parse::<u64>().ok()? == n).then_some(())
        })
        .await;
    }

    /// The number in the text of `css` (0 when missing).
    pub async fn number(&self, css: &str) -> u64 {
        self.text(css).await.and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let element =
            self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the field matching `css`, after erasing what it holds with Backspace
    /// (as a user would: every keystroke fires `input`).
    pub async fn fill(&self, css: &str, text: &str) {
        let element =
            self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        let held = element.prop("value").await.ok().flatten().unwrap_or_default().chars().count();
        element.click().await.unwrap_or_else(|e| panic!("focus {css}: {e}"));
        // End, then one Backspace per character held.
        let keys = format!("\u{E010}{}{text}", "\u{E003}".repeat(held));
        element.send_keys(&keys).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Runs a Chrome DevTools Protocol command and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let command = Cdp(json!({ "cmd": cmd, "params": params }));
        self.client().issue_cmd(command).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Runs `script` in every page this session opens from now on, before the page's own.
    pub async fn before_each_page(&self, script: &str) {
        self.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script })).await;
    }

    /// The page's errors since the last call: `SEVERE` entries of the browser log.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self.client().issue_cmd(BrowserLog).await.expect("browser log");
        let entries = log.as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// CPU seconds used so far by this session's Chromium renderer processes (the pages).
    pub fn renderer_cpu_secs(&self) -> f64 {
        let group = self.driver.id().to_string();
        let ticks_per_sec = 100.0; // USER_HZ on Linux
        let mut total = 0.0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let dir = entry.path();
            let (Ok(stat), Ok(cmdline)) =
                (std::fs::read_to_string(dir.join("stat")), std::fs::read_to_string(dir.join("cmdline")))
            else {
                continue;
            };
            // Fields after the parenthesised command name: state ppid pgrp … utime(14) stime(15).
            let fields: Vec<&str> =
                stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
            if fields.get(2) == Some(&group.as_str()) && cmdline.contains("--type=renderer") {
                let ticks: f64 =
                    fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
                total += ticks / ticks_per_sec;
            }
        }
        total
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client().screenshot().await.expect("screenshot")
    }

    /// Ends the session (Chromium exits) and the driver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the Chromium it started share the driver's process group.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, chromium: &Path, profile: &Path, http: &reqwest::Client) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())]);
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args.collect::<Vec<_>>() },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(capabilities) = capabilities else { unreachable!() };
    let url = format!("http://127.0.0.1:{port}/");
    eventually("chromedriver to answer", Duration::from_secs(20), || async {
        let res = http.get(format!("{url}status")).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    builder.connect(&url).await.unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"))
}
