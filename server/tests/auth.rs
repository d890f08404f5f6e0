//! Access control against a real server: bearer tokens on every route (WebSocket included),
//! RestMQ's `acl.conf` with Basic auth and reloading, address lists, `X-Forwarded-For` from
//! trusted proxies only, and CORS.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::StreamExt;
use reqwest::{Method, RequestBuilder};
use restmq_server::auth::IpNet;
use restmq_server::config::{ServeConfig, StoreKind};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const TOKENS: &str = r#"{"tokens": [
    {"name": "root", "token": "t-root", "queues": ["*"], "rights": ["produce", "consume", "admin"]},
    {"name": "producer", "token": "t-prod", "queues": ["jobs.*"], "rights": ["produce"]},
    {"name": "consumer", "token": "t-cons", "queues": ["jobs.*"], "rights": ["consume"]},
    {"name": "jobs-admin", "token": "t-jadm", "queues": ["jobs.*"], "rights": ["admin"]}
]}"#;

const BASIC_CHALLENGE: &str = r#"Basic realm="RestMQ Restricted Access""#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A server on the memory store; `dir` holds the configuration files and must outlive it.
async fn start(dir: &Path, tweak: impl FnOnce(&mut ServeConfig, &Path)) -> TestServer {
    TestServer::start_with(StoreKind::Memory, |config| tweak(config, dir)).await
}

async fn with_tokens(dir: &Path) -> TestServer {
    start(dir, |c, d| c.auth.auth_tokens = Some(write(d, "tokens.json", TOKENS))).await
}

/// Sends and returns the status and the error code of a JSON error body (if any).
async fn status_and_code(req: RequestBuilder) -> (u16, Option<String>, reqwest::header::HeaderMap) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = if status == 200 && headers.get("content-type").is_some_and(|v| v != "application/json") {
        String::new() // streams (COMET, SSE) never end: do not read them
    } else {
        res.text().await.unwrap_or_default()
    };
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    (status, code, headers)
}

/// A route to try: method, path, form fields, and the status expected with a token
/// (0 = anything but 401 and 403).
type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, u16);

fn request(s: &TestServer, method: &Method, path: &str, form: &[(&str, &str)]) -> RequestBuilder {
    let req = s.http.request(method.clone(), s.url(path));
    if form.is_empty() {
        req
    } else {
        req.form(form)
    }
}

/// Every route but `/healthz`, `/readyz` and the web app answers 401 `unauthorized` with a
/// Bearer challenge without a token, and does its work with a token holding every right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_token_and_works_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_tokens(dir.path()).await;
    let add = r#"{"cmd":"add","queue":"jobs.a","value":"v"}"#;
    let get = r#"{"cmd":"get","queue":"jobs.a"}"#;
    let take = r#"{"cmd":"take","queue":"jobs.a"}"#;
    let del = r#"{"cmd":"del","queue":"jobs.a","key":"jobs.a:1"}"#;
    let collectd = "PUTVAL host/load/load interval=10 1700000000:0.1:0.2:0.3\n";
    let cases: Vec<Case<'_>> = vec![
        (Method::POST, "/q/jobs.a", vec![("value", "1")], 200),
        (Method::POST, "/", vec![("queue", "jobs.a"), ("value", "2")], 200),
        (Method::GET, "/q/jobs.a?soft=1", vec![], 200),
        (Method::GET, "/q/jobs.a", vec![], 200),
        (Method::GET, "/?queue=jobs.a", vec![], 200),
        (Method::GET, "/q/jobs.a", vec![], 204),
        (Method::POST, "/queue", vec![("body", add)], 200),
        (Method::POST, "/queue", vec![("body", get)], 200),
        (Method::POST, "/queue", vec![("body", take)], 200),
        (Method::POST, "/queue", vec![("body", del)], 200),
        (Method::GET, "/q/", vec![], 200),
        (Method::GET, "/j/jobs.a", vec![], 200),
        (Method::GET, "/p/jobs.a", vec![], 200),
        (Method::POST, "/p/jobs.a", vec![("policy", "broadcast")], 200),
        (Method::GET, "/control/", vec![], 200),
        (Method::GET, "/control/jobs.a", vec![], 200),
        (Method::POST, "/control/jobs.a", vec![("status", "start")], 200),
        (Method::GET, "/stats/", vec![], 200),
        (Method::GET, "/stats/jobs.a", vec![], 200),
        (Method::GET, "/nodes", vec![], 0),
        (Method::GET, "/c/jobs.a", vec![], 200),
        (Method::GET, "/sse/jobs.a", vec![], 200),
        (Method::GET, "/q", vec![], 200),
        (Method::GET, "/control", vec![], 200),
        (Method::GET, "/stats", vec![], 200),
        (Method::GET, "/nodes/pick", vec![], 0),
        (Method::GET, "/metrics", vec![], 200),
        (Method::GET, "/browse/jobs.a", vec![], 200),
        (Method::GET, "/history/jobs.a", vec![], 200),
        (Method::GET, "/consumers/jobs.a", vec![], 200),
        (Method::POST, "/q/jobs.a/jobs.a:1", vec![], 0),
        (Method::DELETE, "/q/jobs.a/jobs.a:1", vec![], 0),
        (Method::POST, "/q/jobs.a.dead/redrive", vec![], 0),
        (Method::POST, "/collectd/event", vec![], 0),
        (Method::DELETE, "/q/jobs.a", vec![], 200),
    ];
    for (method, path, form, expected) in &cases {
        let (status, code, headers) = status_and_code(request(&s, method, path, form)).await;
        assert_eq!((status, code.as_deref()), (401, Some("unauthorized")), "{method} {path} without a token");
        assert_eq!(headers["www-authenticate"], r#"Bearer realm="restmq""#, "{method} {path}");
        let (status, code, _) = status_and_code(request(&s, method, path, form).bearer_auth("t-root")).await;
        match expected {
            0 => assert!(status != 401 && status != 403, "{method} {path} with a token: {status} {code:?}"),
            _ => assert_eq!(status, *expected, "{method} {path} with a token: {code:?}"),
        }
    }
    let collectd_req = || s.http.post(s.url("/collectd/data")).body(collectd);
    assert_eq!(status_and_code(collectd_req()).await.0, 401, "collectd without a token");
    assert_eq!(status_and_code(collectd_req().bearer_auth("t-root")).await.0, 200, "collectd with a token");
    for open in ["/healthz", "/readyz", "/"] {
        assert_eq!(s.get(open).await.0, 200, "{open} stays open");
    }
    assert_eq!(status_and_code(s.http.get(s.url("/app-missing.js"))).await.1.as_deref(), Some("not_found"));
}

/// A valid token without the right, or whose patterns miss the queue, gets 403 `forbidden`;
/// an unknown token gets 401; the `token` query parameter works like the header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_limited_to_their_rights_and_queues() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_tokens(dir.path()).await;
    let post = |path: &str, token: &str| s.http.post(s.url(path)).bearer_auth(token).form(&[("value", "x")]);
    let get = |path: &str, token: &str| s.http.get(s.url(path)).bearer_auth(token);
    let command =
        |json: &str, token: &str| s.http.post(s.url("/queue")).bearer_auth(token).form(&[("body", json)]);
    let forbidden = (403, Some("forbidden".to_owned()));
    let outcome = |r: (u16, Option<String>, _)| (r.0, r.1);

    assert_eq!(outcome(status_and_code(post("/q/jobs.a", "t-prod")).await), (200, None));
    assert_eq!(outcome(status_and_code(post("/q/other", "t-prod")).await), forbidden, "pattern misses");
    assert_eq!(outcome(status_and_code(get("/q/jobs.a", "t-prod")).await), forbidden, "no consume");
    assert_eq!(outcome(status_and_code(get("/q/jobs.a?soft=1", "t-cons")).await).0, 200);
    assert_eq!(outcome(status_and_code(post("/q/jobs.a", "t-cons")).await), forbidden, "no produce");
    let take = r#"{"cmd":"take","queue":"jobs.a"}"#;
    let add = r#"{"cmd":"add","queue":"jobs.a","value":"v"}"#;
    assert_eq!(outcome(status_and_code(command(take, "t-prod")).await), forbidden, "JSON take");
    assert_eq!(outcome(status_and_code(command(add, "t-prod")).await).0, 200, "JSON add");
    assert_eq!(outcome(status_and_code(command(take, "t-cons")).await).0, 200, "JSON take");
    assert_eq!(outcome(status_and_code(command(add, "t-cons")).await), forbidden, "JSON add");
    let purge = || s.http.delete(s.url("/q/jobs.a"));
    assert_eq!(outcome(status_and_code(purge().bearer_auth("t-cons")).await), forbidden, "purge needs admin");
    assert_eq!(outcome(status_and_code(purge().bearer_auth("t-jadm")).await).0, 200);
    assert_eq!(outcome(status_and_code(get("/p/jobs.a", "t-jadm")).await).0, 200, "admin on jobs.*");
    assert_eq!(outcome(status_and_code(get("/stats/", "t-jadm")).await), forbidden, "listings need `*`");
    assert_eq!(outcome(status_and_code(get("/stats/", "t-root")).await).0, 200);
    let ack = |token: &str| s.http.delete(s.url("/q/jobs.a/jobs.a:99")).bearer_auth(token);
    assert_eq!(outcome(status_and_code(ack("t-prod")).await), forbidden, "ack needs consume");
    assert!(![401, 403].contains(&status_and_code(ack("t-cons")).await.0), "ack with consume");
    let redrive = |token: &str| s.http.post(s.url("/q/jobs.a.dead/redrive")).bearer_auth(token);
    assert_eq!(outcome(status_and_code(redrive("t-cons")).await), forbidden, "redrive needs admin");
    assert_eq!(outcome(status_and_code(redrive("t-jadm")).await), forbidden, "redrive also produces");
    assert!(![401, 403].contains(&status_and_code(redrive("t-root")).await.0), "redrive with both");
    let (status, code, _) = status_and_code(get("/q/jobs.a", "t-wrong")).await;
    assert_eq!((status, code.as_deref()), (401, Some("unauthorized")));
    let by_query = s.http.post(s.url("/q/jobs.b?token=t-prod")).form(&[("value", "q")]);
    assert_eq!(status_and_code(by_query).await.0, 200, "token in the query");
    let by_query = s.http.post(s.url("/q/jobs.b?token=t-nope")).form(&[("value", "q")]);
    assert_eq!(status_and_code(by_query).await.0, 401, "bad token in the query");
}

/// The WebSocket upgrade is refused with 401 without a token and 403 with one lacking
/// `consume`, and is accepted with `?token=`, after which messages arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_tokens(dir.path()).await;
    let refused = |err: WsError| match err {
        WsError::Http(res) => res.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/jobs.w")).await.unwrap_err();
    assert_eq!(refused(err), 401);
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/jobs.w?token=t-prod")).await.unwrap_err();
    assert_eq!(refused(err), 403);
    let mut req = s.ws_url("/ws/jobs.w").into_client_request().unwrap();
    req.headers_mut().insert("authorization", "Bearer t-cons".parse().unwrap());
    let (header_ws, _) = tokio_tungstenite::connect_async(req).await.expect("header token accepted");
    drop(header_ws);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url("/ws/jobs.w?token=t-cons")).await.expect("accepted");
    let post = s.http.post(s.url("/q/jobs.w")).bearer_auth("t-prod").form(&[("value", "hello")]);
    assert_eq!(post.send().await.unwrap().status(), 200);
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await.expect("open").unwrap() {
                Message::Text(text) => return serde_json::from_str::<Value>(&text).unwrap(),
                _ => continue,
            }
        }
    })
    .await
    .expect("a frame in time");
    assert_eq!(frame["value"], "hello");
}

const ACL: &str = "# RestMQ ACL\n[rest:producer]\nusername = lero\npassword = s3cret\n\n\
    [rest:consumer]\n#hosts_allow = 127.0.0.1\n\n[comet:consumer]\nhosts_deny = 127.0.0.1\n\n\
    [websocket:consumer]\nusername = ws\npassword = pw\n";

/// An `acl.conf` section with `username`/`password` demands Basic auth, answering 401 with
/// RestMQ's exact challenge; sections without rules stay open; `hosts_deny` refuses 127.0.0.1;
/// WebSocket clients may use RestMQ's `auth=user:password` cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_conf_basic_auth_and_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), |c, d| c.auth.acl = Some(write(d, "acl.conf", ACL))).await;
    let post = || s.http.post(s.url("/q/acl")).form(&[("value", "v")]);
    let (status, code, headers) = status_and_code(post()).await;
    assert_eq!((status, code.as_deref()), (401, Some("unauthorized")));
    assert_eq!(headers["www-authenticate"], BASIC_CHALLENGE);
    let (status, _, headers) = status_and_code(post().basic_auth("lero", Some("wrong"))).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], BASIC_CHALLENGE);
    assert_eq!(status_and_code(post().basic_auth("lero", Some("s3cret"))).await.0, 200);
    assert_eq!(s.get("/q/acl").await.0, 200, "rest:consumer has no rules");
    let (status, code, _) = status_and_code(s.http.get(s.url("/c/acl"))).await;
    assert_eq!((status, code.as_deref()), (403, Some("forbidden")), "comet:consumer denies 127.0.0.1");
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/acl")).await.unwrap_err();
    assert!(matches!(err, WsError::Http(ref r) if r.status() == 401), "{err}");
    let mut req = s.ws_url("/ws/acl").into_client_request().unwrap();
    req.headers_mut().insert("cookie", "auth=ws:pw".parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("cookie credentials accepted");
}

/// Waits (at most 10 s) until `POST /q/reload` answers `want`.
async fn wait_for_post_status(s: &TestServer, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = s.post_form("/q/reload", &[("value", "v")]).await.0;
        if status == want {
            return;
        }
        assert!(Instant::now() < deadline, "POST still answers {status}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Editing `acl.conf` takes effect without a restart, both ways; a broken edit keeps the
/// rules in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_conf_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "acl.conf", "[rest:producer]\n#hosts_deny = 127.0.0.1\n");
    let s = start(dir.path(), |c, _| c.auth.acl = Some(path.clone())).await;
    assert_eq!(s.post_form("/q/reload", &[("value", "v")]).await.0, 200);
    std::fs::write(&path, "[rest:producer]\nhosts_deny = 127.0.0.1\n").unwrap();
    wait_for_post_status(&s, 403).await;
    std::fs::write(&path, "[rest:producer]\nthis is not ini\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.post_form("/q/reload", &[("value", "v")]).await.0, 403, "a broken file changes nothing");
    std::fs::write(&path, "[rest:producer]\nhosts_allow = 127.0.0.0/8\n").unwrap();
    wait_for_post_status(&s, 200).await;
}

/// `--deny-ip 127.0.0.1` refuses every request from it with 403, health checks included;
/// `--allow-ip` admits only the listed blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_lists_deny_and_allow() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let denied = start(dir.path(), |c, _| c.auth.deny_ip = vec![net("127.0.0.1")]).await;
    for path in ["/q/x", "/healthz", "/"] {
        let (status, code, _) = status_and_code(denied.http.get(denied.url(path))).await;
        assert_eq!((status, code.as_deref()), (403, Some("forbidden")), "{path}");
    }
    let allowed = start(dir.path(), |c, _| c.auth.allow_ip = vec![net("127.0.0.0/8"), net("::1")]).await;
    assert_eq!(allowed.post_form("/q/x", &[("value", "v")]).await.0, 200);
    let elsewhere = start(dir.path(), |c, _| c.auth.allow_ip = vec![net("10.0.0.0/8")]).await;
    assert_eq!(elsewhere.get("/q/x").await.0, 403);
}

/// `X-Forwarded-For` decides the client address only when the peer is a trusted proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_honoured_only_from_trusted_proxies() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let forwarded = |s: &TestServer, from: &str| s.http.get(s.url("/q/fwd")).header("x-forwarded-for", from);
    let untrusted = start(dir.path(), |c, _| c.auth.deny_ip = vec![net("203.0.113.0/24")]).await;
    assert_eq!(status_and_code(forwarded(&untrusted, "203.0.113.7")).await.0, 204, "header ignored");
    let trusted = start(dir.path(), |c, _| {
        c.auth.deny_ip = vec![net("203.0.113.0/24")];
        c.auth.allow_ip = vec![net("198.51.100.0/24")];
        c.auth.trusted_proxy = vec![net("127.0.0.1")];
    })
    .await;
    assert_eq!(status_and_code(forwarded(&trusted, "203.0.113.7")).await.0, 403, "denied client");
    assert_eq!(status_and_code(forwarded(&trusted, "198.51.100.9")).await.0, 204, "allowed client");
    assert_eq!(status_and_code(forwarded(&trusted, "203.0.113.7, 198.51.100.9")).await.0, 204, "nearest hop");
    assert_eq!(trusted.get("/q/fwd").await.0, 403, "the proxy itself is not allowed");
    assert_eq!(status_and_code(forwarded(&trusted, "garbage")).await.0, 400);
}

/// CORS preflights are answered for configured origins (before any token check), not for
/// others; without `--cors-origin` nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), |c, d| {
        c.auth.cors_origin = vec!["https://app.example".to_owned()];
        c.auth.auth_tokens = Some(write(d, "tokens.json", TOKENS));
    })
    .await;
    let preflight = |s: &TestServer, origin: &str| {
        s.http
            .request(Method::OPTIONS, s.url("/q/jobs.a"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
    };
    let res = preflight(&s, "https://app.example").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let res = preflight(&s, "https://evil.example").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let refused =
        s.http.get(s.url("/q/jobs.a")).header("origin", "https://app.example").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], "https://app.example", "errors readable");

    let any = start(dir.path(), |c, _| c.auth.cors_origin = vec!["*".to_owned()]).await;
    let res = preflight(&any, "https://whoever.example").send().await.unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let plain = start(dir.path(), |_, _| {}).await;
    let res = preflight(&plain, "https://app.example").send().await.unwrap();
    assert_eq!(res.status(), 405, "no CORS unless configured");
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// With no auth flag every route is open as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), |_, _| {}).await;
    assert_eq!(s.post_form("/q/open", &[("value", "v")]).await.0, 200);
    assert_eq!(s.get("/stats/").await.0, 200);
    assert_eq!(s.http.delete(s.url("/q/open")).send().await.unwrap().status(), 200);
    tokio_tungstenite::connect_async(s.ws_url("/ws/open")).await.expect("open WebSocket");
}
