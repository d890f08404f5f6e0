//! Attacks on the per-handler access rules (`guard(Rule::…)`, `Deferred`): every route and
//! frame with every kind of credential — requests that should be refused for lack of a right,
//! and correct requests that must still pass. What an observe-only token may do is in
//! `attack_guard_looking.rs`.

mod common;

use std::time::Duration;

use common::guard::{add, server, status, waiting, ws_status, TOKENS};
use common::TestServer;
use futures_util::SinkExt;
use restmq_server::config::StoreKind;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A percent-encoded queue name is checked as the name the handler uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_queue_names_are_checked_decoded() {
    let (s, _dir) = server().await;
    add(&s, "jobs", "v").await;
    add(&s, "other", "v").await;
    let look = |path: &str| s.http.get(s.url(path)).bearer_auth("t-look");
    assert_eq!(status(look("/q/job%73?soft=1")).await, 200, "jobs, encoded, soft");
    assert_eq!(status(look("/q/job%73")).await, 403, "jobs, encoded, hard");
    assert_eq!(status(look("/q/%6Fther?soft=1")).await, 403, "other, encoded");
    let cons = |path: &str| s.http.get(s.url(path)).bearer_auth("t-cons");
    assert_eq!(status(cons("/q/other")).await, 403);
    assert_eq!(status(cons("/q/jobs%2Eother")).await, 204, "jobs.other is in jobs.*");
    assert!(waiting(&s, "other").await);
}

/// `POST /`: the queue in the query and another in the body; the last (body) wins, and the
/// check must be on that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_post_checks_the_queue_the_handler_uses() {
    let (s, _dir) = server().await;
    let req = s
        .http
        .post(s.url("/?queue=jobs.a"))
        .bearer_auth("t-prod")
        .form(&[("queue", "other"), ("value", "smuggled")]);
    assert_eq!(status(req).await, 403, "query jobs.a, body other");
    assert!(!waiting(&s, "other").await, "smuggled into other");
    // The other way round: the body names the allowed queue; it wins and passes.
    let req = s
        .http
        .post(s.url("/?queue=other"))
        .bearer_auth("t-prod")
        .form(&[("queue", "jobs.a"), ("value", "ok")]);
    assert_eq!(status(req).await, 200);
    assert!(!waiting(&s, "other").await);
    // Multipart body.
    let form = reqwest::multipart::Form::new().text("queue", "other").text("value", "smuggled");
    let req = s.http.post(s.url("/?queue=jobs.a")).bearer_auth("t-prod").multipart(form);
    assert_eq!(status(req).await, 403, "multipart");
    assert!(!waiting(&s, "other").await, "smuggled into other by multipart");
    // A correct producer passes with the queue in the query only.
    let req = s.http.post(s.url("/?queue=jobs.b&value=v")).bearer_auth("t-prod");
    assert_eq!(status(req).await, 200);
    // The token only in the form body is not a token.
    let req = s.http.post(s.url("/")).form(&[("queue", "jobs.b"), ("value", "v"), ("token", "t-prod")]);
    assert_eq!(status(req).await, 401);
    // Malformed (no queue): 401 without token, 400 with a valid one.
    assert_eq!(status(s.http.post(s.url("/")).form(&[("value", "v")])).await, 401);
    assert_eq!(status(s.http.post(s.url("/")).bearer_auth("t-look").form(&[("value", "v")])).await, 400);
}

/// `GET /?queue=` is a hard get: consume on that queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_get_checks_consume() {
    let (s, _dir) = server().await;
    add(&s, "other", "v").await;
    assert_eq!(status(s.http.get(s.url("/?queue=other")).bearer_auth("t-cons")).await, 403);
    assert_eq!(status(s.http.get(s.url("/?queue=jobs.a")).bearer_auth("t-cons")).await, 204);
    assert_eq!(status(s.http.get(s.url("/?queue=other")).bearer_auth("t-prod")).await, 403);
    assert_eq!(status(s.http.get(s.url("/?queue=other"))).await, 401);
    assert_eq!(status(s.http.get(s.url("/"))).await, 200, "web app stays open");
    assert!(waiting(&s, "other").await);
}

/// `POST /queue`: raw JSON, `body` and `msg` fields, each naming a foreign queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_commands_check_the_command_the_handler_runs() {
    let (s, _dir) = server().await;
    add(&s, "other", "v").await;
    let raw = |doc: &str, token: &str| {
        s.http
            .post(s.url("/queue"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(doc.to_owned())
    };
    assert_eq!(status(raw(r#"{"cmd":"take","queue":"other"}"#, "t-cons")).await, 403);
    assert_eq!(
        status(raw(r#"{"cmd":"take","queue":"jobs.a","queue":"other"}"#, "t-cons")).await,
        403,
        "dup key"
    );
    assert_eq!(
        status(raw(r#"{"cmd":"get","queue":"jobs"}"#, "t-look")).await,
        403,
        "README: get needs consume"
    );
    assert_eq!(status(raw(r#"{"cmd":"add","queue":"other","value":"x"}"#, "t-prod")).await, 403);
    assert_eq!(status(raw(r#"{"cmd":"purge","queue":"jobs.a"}"#, "t-cons")).await, 403);
    assert_eq!(status(raw(r#"{"cmd":"take","queue":"jobs.a"}"#, "t-cons")).await, 200);
    // body field wins over msg: the check must follow it.
    let form = s.http.post(s.url("/queue")).bearer_auth("t-cons").form(&[
        ("msg", r#"{"cmd":"take","queue":"jobs.a"}"#),
        ("body", r#"{"cmd":"take","queue":"other"}"#),
    ]);
    assert_eq!(status(form).await, 403, "body and msg");
    // body in the query, another in the form: last wins.
    let form = s
        .http
        .post(s.url("/queue?body=%7B%22cmd%22%3A%22take%22%2C%22queue%22%3A%22jobs.a%22%7D"))
        .bearer_auth("t-cons")
        .form(&[("body", r#"{"cmd":"take","queue":"other"}"#)]);
    assert_eq!(status(form).await, 403, "query body then form body");
    // A del of another queue's key through an allowed queue.
    assert_eq!(
        status(raw(r#"{"cmd":"del","queue":"jobs.a","key":"other:1"}"#, "t-cons")).await / 100,
        4,
        "foreign key"
    );
    assert!(waiting(&s, "other").await, "other was touched");
    // Malformed JSON: 401 without a token, 400 with one.
    let bad = s.http.post(s.url("/queue")).header("content-type", "application/json").body("{");
    assert_eq!(status(bad).await, 401);
    assert_eq!(status(raw("{", "t-look")).await, 400);
}

/// Ack and nack through an allowed queue with a foreign key are refused and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_and_nack_of_foreign_keys() {
    let (s, _dir) = server().await;
    add(&s, "other", "v").await;
    let res = s.http.get(s.url("/q/other?reserve=30")).bearer_auth("t-root").send().await.unwrap();
    let leased: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    let key = leased["key"].as_str().unwrap().to_owned();
    let ack = s.http.delete(s.url(&format!("/q/jobs.a/{key}"))).bearer_auth("t-cons");
    assert_eq!(status(ack).await / 100, 4);
    let nack = s.http.post(s.url(&format!("/q/jobs.a/{key}"))).bearer_auth("t-cons");
    assert_eq!(status(nack).await / 100, 4);
    let ack = s.http.delete(s.url(&format!("/q/other/{key}"))).bearer_auth("t-cons");
    assert_eq!(status(ack).await, 403);
    // The lease is still held: root can ack it.
    let res = s.http.delete(s.url(&format!("/q/other/{key}"))).bearer_auth("t-root").send().await.unwrap();
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(body["done"], true, "{body}");
}

/// Redrive needs admin on `<q>.dead` and produce on `<q>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_needs_admin_and_produce() {
    let (s, _dir) = server().await;
    let post = |path: &str, token: &str| s.http.post(s.url(path)).bearer_auth(token);
    assert_eq!(
        status(post("/q/jobs.a.dead/redrive", "t-jadm")).await,
        403,
        "admin without produce on jobs.a"
    );
    assert_eq!(status(post("/q/jobs.a.dead/redrive", "t-prod")).await, 403, "produce without admin");
    assert_eq!(status(post("/q/jobs.a.dead/redrive", "t-cons")).await, 403);
    assert_eq!(status(post("/q/jobs.a.dead/redrive", "t-root")).await, 200);
    // Without `.dead`: admin suffices to be answered (the broker refuses it as no dead letter).
    let code = status(post("/q/jobs.a/redrive", "t-jadm")).await;
    assert!(code == 400 || code == 404, "not a dead-letter queue: {code}");
    assert_eq!(status(post("/q/jobs.a/redrive", "t-cons")).await, 403);
}

/// WebSocket `add` frames are checked as `POST /q/<q>`: observe-only and consume-only tokens
/// cannot add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_add_frames_need_produce() {
    let (s, _dir) = server().await;
    for (path, token) in
        [("/ws/jobs?observe=1", "t-look"), ("/ws/jobs.a", "t-cons"), ("/ws/jobs.a?observe=1", "t-cons")]
    {
        let url = s.ws_url(&format!("{path}{}token={token}", if path.contains('?') { "&" } else { "?" }));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade accepted");
        ws.send(Message::Text(r#"{"cmd":"add","value":"smuggled"}"#.into())).await.unwrap();
        let reply = common::ws::next_json(&mut ws).await;
        assert_eq!(reply["error"]["code"], "forbidden", "{path} {token}: {reply}");
        drop(ws);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting(&s, "jobs").await);
    assert!(!waiting(&s, "jobs.a").await);
}

/// CORS preflight is answered before any token check; actual requests still need one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_needs_no_token_but_requests_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(&path, TOKENS).unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.auth.auth_tokens = Some(path);
        c.auth.cors_origin = vec!["https://app.example".to_owned()];
    })
    .await;
    let pre = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/q/jobs.a"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization");
    let res = pre.send().await.unwrap();
    assert!(res.status().is_success(), "preflight: {}", res.status());
    assert!(res.headers().get("access-control-allow-origin").is_some());
    let post =
        s.http.post(s.url("/q/jobs.a")).header("origin", "https://app.example").form(&[("value", "v")]);
    let res = post.send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("access-control-allow-origin").is_some(), "CORS on errors");
    // OPTIONS without preflight headers is not a way around the guard.
    let opt = s.http.request(reqwest::Method::OPTIONS, s.url("/q/jobs.a?value=v"));
    let code = status(opt).await;
    assert!(code != 200 || !waiting(&s, "jobs.a").await, "OPTIONS added: {code}");
    assert!(!waiting(&s, "jobs.a").await);
}

/// Bad and missing tokens: 401; a token on another glob: 403; header beats query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_globs() {
    let (s, _dir) = server().await;
    assert_eq!(status(s.http.post(s.url("/q/jobs.a")).form(&[("value", "v")])).await, 401);
    assert_eq!(
        status(s.http.post(s.url("/q/jobs.a")).bearer_auth("nope").form(&[("value", "v")])).await,
        401
    );
    assert_eq!(status(s.http.post(s.url("/q/jobs.a?token=nope")).form(&[("value", "v")])).await, 401);
    assert_eq!(
        status(s.http.post(s.url("/q/jobs")).bearer_auth("t-prod").form(&[("value", "v")])).await,
        403,
        "jobs is not jobs.*"
    );
    assert_eq!(
        status(s.http.post(s.url("/q/jobsx.a")).bearer_auth("t-prod").form(&[("value", "v")])).await,
        403
    );
    // Header token without the right, query token with it: the header is used.
    let req = s.http.post(s.url("/q/other?token=t-root")).bearer_auth("t-prod").form(&[("value", "v")]);
    assert_eq!(status(req).await, 403);
    // Empty `token=` falls back to an earlier non-empty one? Only the last non-empty counts.
    assert_eq!(
        status(s.http.post(s.url("/q/jobs.a?token=t-prod&token=")).form(&[("value", "v")])).await,
        200
    );
    // Admin routes with a queue-scoped admin token: per-queue ones pass, global ones do not.
    let get = |p: &str| s.http.get(s.url(p)).bearer_auth("t-jadm");
    assert_eq!(status(get("/stats/jobs.a")).await, 200);
    assert_eq!(status(get("/stats/")).await, 403);
    assert_eq!(status(get("/q/")).await, 403);
    assert_eq!(status(get("/metrics")).await, 403);
    assert_eq!(status(get("/j/other")).await, 403);
    assert_eq!(status(s.http.get(s.url("/healthz"))).await, 200);
    // collectd: produce on its own queue, not on any other.
    let collectd = s
        .http
        .post(s.url("/collectd/data"))
        .bearer_auth("t-prod")
        .header("content-type", "application/json")
        .body("[]");
    assert_eq!(status(collectd).await, 403);
}

/// `acl.conf`: a [rest:consumer] password does not open [rest:producer] routes, and a
/// producer password does not open a hard get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_conf_sections_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl.conf");
    std::fs::write(
        &path,
        "[rest:producer]\nusername = prod\npassword = pp\n\n[rest:consumer]\nusername = cons\npassword = cc\n\n\
         [comet:consumer]\nusername = comet\npassword = co\n\n[websocket:consumer]\nusername = ws\npassword = ww\n",
    )
    .unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.auth.acl = Some(path)).await;
    let post = |u: &str, p: &str| s.http.post(s.url("/q/a")).basic_auth(u, Some(p)).form(&[("value", "v")]);
    assert_eq!(status(post("cons", "cc")).await, 401);
    assert_eq!(status(post("prod", "pp")).await, 200);
    assert_eq!(status(s.http.get(s.url("/q/a?soft=1")).basic_auth("prod", Some("pp"))).await, 401);
    assert_eq!(
        status(s.http.delete(s.url("/q/a")).basic_auth("cons", Some("cc"))).await,
        401,
        "purge is a producer"
    );
    assert_eq!(status(s.http.get(s.url("/c/a")).basic_auth("cons", Some("cc"))).await, 401, "comet section");
    assert_eq!(status(s.http.get(s.url("/?queue=a")).basic_auth("prod", Some("pp"))).await, 401, "root get");
    let form = s.http.post(s.url("/")).basic_auth("cons", Some("cc")).form(&[("queue", "a"), ("value", "v")]);
    assert_eq!(status(form).await, 401, "root add");
    let cmd = s
        .http
        .post(s.url("/queue"))
        .basic_auth("cons", Some("cc"))
        .form(&[("body", r#"{"cmd":"add","queue":"a","value":"v"}"#)]);
    assert_eq!(status(cmd).await, 401, "JSON add");
    assert_eq!(status(s.http.get(s.url("/q/a")).basic_auth("cons", Some("cc"))).await, 200);
    // WebSocket consumer credentials do not let add frames through ([rest:producer]).
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = s.ws_url("/ws/a").into_client_request().unwrap();
    req.headers_mut().insert("cookie", "auth=ws:ww".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws credentials");
    ws.send(Message::Text(r#"{"cmd":"add","value":"smuggled"}"#.into())).await.unwrap();
    let reply = common::ws::next_json(&mut ws).await;
    assert_eq!(reply["error"]["code"], "unauthorized", "{reply}");
}

/// With `acl.conf` Basic auth and tokens both on, a correct client sends Basic credentials and
/// `?token=`: it must pass (the Basic header is not mistaken for a bad bearer token), and a
/// wrong query token still fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_query_token() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.conf");
    std::fs::write(&acl, "[rest:producer]\nusername = prod\npassword = pp\n").unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, TOKENS).unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.auth.acl = Some(acl);
        c.auth.auth_tokens = Some(tokens);
    })
    .await;
    let post = |q: &str| s.http.post(s.url(q)).basic_auth("prod", Some("pp")).form(&[("value", "v")]);
    assert_eq!(status(post("/q/jobs.a?token=t-prod")).await, 200);
    assert_eq!(status(post("/?queue=jobs.a&token=t-prod")).await, 200, "root add");
    assert_eq!(status(post("/q/jobs.a?token=t-cons")).await, 403);
    assert_eq!(status(post("/q/jobs.a")).await, 401, "no token");
    let bare = s.http.post(s.url("/q/jobs.a?token=t-prod")).form(&[("value", "v")]);
    assert_eq!(status(bare).await, 401, "no Basic");
}

/// A denied address is refused everywhere: guarded routes, open routes, unknown paths, the
/// web app's files, wrong methods, WebSocket upgrades and CORS-less OPTIONS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_address_is_refused_on_every_path() {
    let net = |s: &str| s.parse::<restmq_server::auth::IpNet>().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.auth.deny_ip = vec![net("127.0.0.1")]).await;
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/index.html"),
        ("GET", "/no/such/route"),
        ("PUT", "/q/jobs"),
        ("OPTIONS", "/q/jobs"),
        ("POST", "/queue"),
        ("POST", "/collectd/data"),
        ("GET", "/q/jobs"),
        ("HEAD", "/q/jobs"),
    ] {
        let req = s.http.request(method.parse().unwrap(), s.url(path));
        assert_eq!(status(req).await, 403, "{method} {path}");
    }
    let err = tokio_tungstenite::connect_async(s.ws_url("/ws/jobs")).await.unwrap_err();
    assert_eq!(ws_status(err), 403);
}

/// Without a valid token, unknown paths and wrong methods do not leak anything but also
/// do not need a token (404/405, not 401), while every queue route asks for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queue_route_needs_a_token() {
    let (s, _dir) = server().await;
    for (method, path) in [
        ("GET", "/q/jobs"),
        ("HEAD", "/q/jobs"),
        ("GET", "/q/jobs?soft=1"),
        ("POST", "/q/jobs"),
        ("DELETE", "/q/jobs"),
        ("POST", "/q/jobs/jobs:1"),
        ("DELETE", "/q/jobs/jobs:1"),
        ("POST", "/q/jobs.dead/redrive"),
        ("GET", "/j/jobs"),
        ("GET", "/q/"),
        ("GET", "/q"),
        ("GET", "/p/jobs"),
        ("POST", "/p/jobs"),
        ("GET", "/control/"),
        ("GET", "/control/jobs"),
        ("POST", "/control/jobs"),
        ("GET", "/stats/"),
        ("GET", "/stats/jobs"),
        ("GET", "/stats"),
        ("GET", "/nodes"),
        ("GET", "/nodes/pick"),
        ("GET", "/metrics"),
        ("GET", "/browse/jobs"),
        ("GET", "/history/jobs"),
        ("GET", "/consumers/jobs"),
        ("GET", "/c/jobs?observe=1"),
        ("GET", "/sse/jobs?observe=1"),
        ("HEAD", "/c/jobs"),
        ("GET", "/?queue=jobs"),
        ("HEAD", "/?queue=jobs"),
        ("POST", "/?queue=jobs&value=v"),
        ("POST", "/queue"),
        ("POST", "/collectd/data"),
        ("POST", "/collectd/event"),
    ] {
        let req = s.http.request(method.parse().unwrap(), s.url(path));
        assert_eq!(status(req).await, 401, "{method} {path} without a token");
        let req = s.http.request(method.parse().unwrap(), s.url(path)).bearer_auth("bad");
        assert_eq!(status(req).await, 401, "{method} {path} with a bad token");
    }
    assert_eq!(status(s.http.get(s.url("/healthz"))).await, 200);
    assert_eq!(status(s.http.get(s.url("/readyz"))).await, 200);
}
