//! Malformed requests (SPEC §1 errors, §4 limits): each gets the right 4xx with a JSON
//! `{"error":{"code","message"}}` body, and none of them changes any queue.

mod common;

use common::TestServer;
use reqwest::{Method, RequestBuilder};
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

/// Sends `req` and checks the answer is `status` with a JSON error body of `code`.
async fn expect_error(req: RequestBuilder, status: u16, code: &str, what: &str) {
    let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let got_status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body = res.text().await.unwrap();
    check_error((got_status, content_type, body), status, code, what);
}

/// Checks an answer (status, content type, body) is `status` with a JSON error body of `code`.
fn check_error((got_status, content_type, body): (u16, String, String), status: u16, code: &str, what: &str) {
    assert_eq!(got_status, status, "{what}: {body}");
    assert_eq!(content_type, "application/json", "{what}: {body}");
    let doc: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    let message = doc["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{what}: no message in {body}");
    assert_eq!(doc, json!({"error": {"code": code, "message": message}}), "{what}");
}

/// Sends one HTTP/1.1 request over a plain socket and reads the answer, even when the
/// server answers and closes before it has read the whole body (as it does for a 413; an
/// HTTP client library would report the reset of its unfinished upload instead).
async fn raw_request(s: &TestServer, head: &str, body: Vec<u8>) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head =
        format!("{head}\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", s.addr, body.len());
    let upload = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&body).await; // the server may stop reading: that is the point
        writer
    });
    let mut answer = Vec::new();
    let mut buf = [0; 8192];
    let read = async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read).await.expect("an answer within 10 s");
    drop(upload.await);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// A server with queue `seed` holding two messages, set to roundrobin and paused.
async fn seeded(store: StoreKind) -> TestServer {
    seed(TestServer::start(store).await).await
}

async fn seed(s: TestServer) -> TestServer {
    s.add("seed", "one").await;
    s.add("seed", "two").await;
    assert_eq!(s.post_form("/p/seed", &[("policy", "roundrobin")]).await.0, 200);
    assert_eq!(s.post_form("/control/seed", &[("status", "stop")]).await.0, 200);
    s
}

/// Everything a bad request could have changed: queues, lengths, settings, counters, keys.
async fn snapshot(s: &TestServer) -> Value {
    json!({
        "stats": s.get_json("/stats/").await,
        "queues": s.get_json("/q/").await,
        "seed": s.get_json("/j/seed").await,
    })
}

fn form(s: &TestServer, method: Method, path: &str, fields: &[(&str, &str)]) -> RequestBuilder {
    s.http.request(method, s.url(path)).form(fields)
}

/// A JSON document posted raw to `/queue`.
fn raw_command(s: &TestServer, doc: impl Into<reqwest::Body>) -> RequestBuilder {
    s.http.post(s.url("/queue")).header("content-type", "application/json").body(doc)
}

/// Adding without a value (absent, empty, only other fields, not a form) is 400
/// `missing_argument` and adds nothing.
async fn missing_value(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let cases = [
        ("no body", s.http.post(s.url("/q/seed"))),
        ("empty value", form(&s, Method::POST, "/q/seed", &[("value", "")])),
        ("empty value and msg", form(&s, Method::POST, "/q/seed", &[("value", ""), ("msg", "")])),
        ("other field only", form(&s, Method::POST, "/q/seed", &[("other", "x")])),
        ("empty query value", s.http.post(s.url("/q/seed?value=&msg="))),
        ("plain text body", s.http.post(s.url("/q/seed")).header("content-type", "text/plain").body("hello")),
        (
            "multipart without value",
            s.http.post(s.url("/q/seed")).multipart(reqwest::multipart::Form::new().text("x", "y")),
        ),
        ("POST / without value", form(&s, Method::POST, "/", &[("queue", "seed")])),
        ("new queue without value", form(&s, Method::POST, "/q/fresh", &[("ttl", "5")])),
    ];
    for (what, req) in cases {
        expect_error(req, 400, "missing_argument", what).await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// POST / without a queue is 400 `missing_argument` naming `queue`, and adds nothing.
async fn missing_queue_on_post_root(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let cases = [
        ("value only", form(&s, Method::POST, "/", &[("value", "x")])),
        ("empty queue", form(&s, Method::POST, "/", &[("queue", ""), ("value", "x")])),
        ("nothing", s.http.post(s.url("/"))),
    ];
    for (what, req) in cases {
        expect_error(req, 400, "missing_argument", what).await;
    }
    let body = s.post_form("/", &[("value", "x")]).await.1;
    assert!(body.contains("queue"), "the message names the argument: {body}");
    assert_eq!(snapshot(&s).await, before);
}

/// Queue names that break the rules (space, 129 bytes, `/`, unicode, NUL, `+`) in the path
/// are 400 `invalid_queue_name` on every route, and nothing is created.
async fn bad_queue_names_in_path(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let too_long = "x".repeat(129);
    let names =
        ["a%20b", too_long.as_str(), "a%2Fb", "%C3%A9t%C3%A9", "%E6%97%A5", "a%00b", "a+b", "a%3Cb%3E"];
    for name in names {
        let cases = [
            (Method::POST, format!("/q/{name}"), Some(("value", "x"))),
            (Method::GET, format!("/q/{name}"), None),
            (Method::GET, format!("/q/{name}?soft=1"), None),
            (Method::DELETE, format!("/q/{name}"), None),
            (Method::GET, format!("/j/{name}"), None),
            (Method::GET, format!("/p/{name}"), None),
            (Method::POST, format!("/p/{name}"), Some(("policy", "roundrobin"))),
            (Method::GET, format!("/control/{name}"), None),
            (Method::POST, format!("/control/{name}"), Some(("status", "stop"))),
            (Method::GET, format!("/stats/{name}"), None),
            (Method::GET, format!("/c/{name}"), None),
            (Method::GET, format!("/ws/{name}"), None),
            (Method::GET, format!("/sse/{name}"), None),
        ];
        for (method, path, field) in cases {
            let what = format!("{method} {path}");
            let req = match field {
                Some(f) => form(&s, method, &path, &[f]),
                None => s.http.request(method, s.url(&path)),
            };
            expect_error(req, 400, "invalid_queue_name", &what).await;
        }
    }
    assert_eq!(snapshot(&s).await, before);
    let longest = "y".repeat(128);
    assert_eq!(s.add(&longest, "fits").await, format!("{longest}:1"), "128 bytes is allowed");
}

/// Bad queue names in arguments (POST / and GET /?queue=) are 400 `invalid_queue_name`.
async fn bad_queue_names_in_args(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let too_long = "z".repeat(129);
    for name in ["a b", too_long.as_str(), "a/b", "été", "日本", "a\0b", "a\nb", "q?x"] {
        let what = format!("POST / queue={name:?}");
        expect_error(
            form(&s, Method::POST, "/", &[("queue", name), ("value", "x")]),
            400,
            "invalid_queue_name",
            &what,
        )
        .await;
        let multipart = reqwest::multipart::Form::new().text("queue", name.to_owned()).text("value", "x");
        expect_error(s.http.post(s.url("/")).multipart(multipart), 400, "invalid_queue_name", &what).await;
        let what = format!("GET /?queue={name:?}");
        expect_error(s.http.get(s.url("/")).query(&[("queue", name)]), 400, "invalid_queue_name", &what)
            .await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// A `ttl` that is not a positive whole number of seconds is 400 `invalid_argument`.
async fn bad_ttl(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    for ttl in ["abc", "0", "-1", "1.5", " 1", "1s", "1e3", "99999999999999999999999"] {
        let what = format!("POST /q/seed ttl={ttl:?}");
        let req = form(&s, Method::POST, "/q/seed", &[("value", "x"), ("ttl", ttl)]);
        expect_error(req, 400, "invalid_argument", &what).await;
        let req = form(&s, Method::POST, "/", &[("queue", "fresh"), ("value", "x"), ("ttl", ttl)]);
        expect_error(req, 400, "invalid_argument", &format!("POST / ttl={ttl:?}")).await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// Malformed JSON on /queue, in any carrier, is 400 `malformed_json` and runs nothing.
async fn malformed_json(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let docs = [
        "{not json",
        r#"{"cmd":"take","queue":"seed""#,
        r#"{"cmd":"take","queue":"seed"} trailing"#,
        r#"{'cmd':'take','queue':'seed'}"#,
        "nope",
    ];
    for doc in docs {
        expect_error(form(&s, Method::POST, "/queue", &[("body", doc)]), 400, "malformed_json", doc).await;
        expect_error(form(&s, Method::POST, "/queue", &[("msg", doc)]), 400, "malformed_json", doc).await;
        expect_error(raw_command(&s, doc), 400, "malformed_json", doc).await;
    }
    expect_error(raw_command(&s, vec![0xff, 0xfe, b'{', 0x80]), 400, "malformed_json", "non-UTF-8").await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect_error(raw_command(&s, deep), 400, "malformed_json", "deeply nested").await;
    let deep_value =
        format!(r#"{{"cmd":"add","queue":"seed","value":{}1{}}}"#, "[".repeat(500), "]".repeat(500));
    expect_error(raw_command(&s, deep_value), 400, "malformed_json", "deeply nested value").await;
    assert_eq!(snapshot(&s).await, before);
}

/// An unknown or non-string `cmd` is 400 `unknown_command`.
async fn unknown_command(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    for cmd in
        [r#""frobnicate""#, r#""ADD""#, r#""Take""#, r#""""#, "5", "null", r#"["add"]"#, r#"{"add":1}"#]
    {
        let doc = format!(r#"{{"cmd":{cmd},"queue":"seed","value":"x","key":"seed:1"}}"#);
        expect_error(raw_command(&s, doc.clone()), 400, "unknown_command", &doc).await;
        expect_error(form(&s, Method::POST, "/queue", &[("body", &doc)]), 400, "unknown_command", &doc).await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// A command without `cmd`, or no command at all, is 400 `missing_argument`.
async fn missing_cmd(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let cases = [
        ("no cmd", raw_command(&s, r#"{"queue":"seed","value":"x"}"#)),
        ("empty object", raw_command(&s, "{}")),
        ("empty body field", form(&s, Method::POST, "/queue", &[("body", "")])),
        ("no body", s.http.post(s.url("/queue"))),
        ("other field", form(&s, Method::POST, "/queue", &[("value", r#"{"cmd":"take","queue":"seed"}"#)])),
    ];
    for (what, req) in cases {
        expect_error(req, 400, "missing_argument", what).await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// Commands missing their fields (`get` without queue, `add` without value, `del` without
/// key) are 400 with a JSON error and change nothing.
async fn incomplete_commands(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let docs = [
        r#"{"cmd":"get"}"#,
        r#"{"cmd":"take"}"#,
        r#"{"cmd":"add","queue":"seed"}"#,
        r#"{"cmd":"add","value":"x"}"#,
        r#"{"cmd":"del","queue":"seed"}"#,
        r#"{"cmd":"get","queue":5}"#,
        r#"{"cmd":"take","queue":null}"#,
    ];
    for doc in docs {
        let res = raw_command(&s, doc).send().await.unwrap();
        assert_eq!(res.status(), 400, "{doc}");
        let body: Value = res.json().await.unwrap();
        let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
        assert!(["missing_argument", "invalid_queue_name"].contains(&code.as_str()), "{doc}: {body}");
    }
    assert_eq!(snapshot(&s).await, before);
}

/// `POST /p` with a policy other than broadcast/roundrobin is 400 and changes nothing; a
/// refused call does not create the queue.
async fn bad_policy(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    for policy in ["fifo", "BROADCAST", "Roundrobin", "1", "2", " broadcast", "round robin"] {
        let what = format!("policy={policy:?}");
        expect_error(
            form(&s, Method::POST, "/p/seed", &[("policy", policy)]),
            400,
            "invalid_argument",
            &what,
        )
        .await;
        expect_error(
            form(&s, Method::POST, "/p/fresh", &[("policy", policy)]),
            400,
            "invalid_argument",
            &what,
        )
        .await;
    }
    expect_error(s.http.post(s.url("/p/seed")), 400, "missing_argument", "no policy").await;
    expect_error(form(&s, Method::POST, "/p/fresh", &[("policy", "")]), 400, "missing_argument", "empty")
        .await;
    assert_eq!(snapshot(&s).await, before);
    assert_eq!(s.get("/p/seed").await.1, r#"{"queue":"seed","value":"roundrobin"}"#);
}

/// `POST /control` with a status other than start/stop is 400 and changes nothing.
async fn bad_status(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    for status in ["pause", "started", "paused", "1", "0", "START", "stopped", "go"] {
        let what = format!("status={status:?}");
        let req = form(&s, Method::POST, "/control/seed", &[("status", status)]);
        expect_error(req, 400, "invalid_argument", &what).await;
        let req = form(&s, Method::POST, "/control/fresh", &[("status", status)]);
        expect_error(req, 400, "invalid_argument", &what).await;
    }
    expect_error(s.http.post(s.url("/control/seed")), 400, "missing_argument", "no status").await;
    expect_error(
        form(&s, Method::POST, "/control/fresh", &[("status", "")]),
        400,
        "missing_argument",
        "empty",
    )
    .await;
    assert_eq!(snapshot(&s).await, before);
    assert_eq!(s.get("/control/seed").await.1, r#"{"queue":"seed","status":"paused"}"#);
}

/// A JSONP callback that is not an identifier path is 400 `invalid_callback` on every GET
/// route, as JSON (not script), and the get it came with does not happen.
async fn invalid_callbacks(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let paths = [
        "/q/seed",
        "/q/seed?soft=1",
        "/?queue=seed",
        "/q/",
        "/q",
        "/j/seed",
        "/p/seed",
        "/control/seed",
        "/control/",
        "/stats/",
        "/stats/seed",
        "/c/seed",
    ];
    for path in paths {
        for cb in ["alert(1)", "a;b", "1x", "a-b", "a[0]", "</script><script>x", "a b", "x=1"] {
            let what = format!("GET {path} callback={cb:?}");
            expect_error(s.http.get(s.url(path)).query(&[("callback", cb)]), 400, "invalid_callback", &what)
                .await;
        }
    }
    expect_error(
        s.http.get(s.url("/q/seed")).query(&[("callback", "c".repeat(129))]),
        400,
        "invalid_callback",
        "long",
    )
    .await;
    assert_eq!(snapshot(&s).await, before);
    let first_read = "{\"key\":\"seed:1\",\"value\":\"one\",\"count\":1}\r\n";
    assert_eq!(s.get("/q/seed?soft=1").await, (200, first_read.into()), "no soft read was counted");
}

/// A value one byte over `max_message_bytes` is 413 `too_large` on every way to add, and
/// one exactly at the limit is accepted.
async fn oversize_value(store: StoreKind) {
    let s = seed(TestServer::start_with(store, |c| c.max_message_bytes = 1000).await).await;
    let before = snapshot(&s).await;
    let over = "x".repeat(1001);
    let over_unicode = "é".repeat(501); // 1002 bytes, 501 chars
    for value in [over.as_str(), over_unicode.as_str()] {
        let cases = [
            ("form", form(&s, Method::POST, "/q/seed", &[("value", value)])),
            ("msg", form(&s, Method::POST, "/q/seed", &[("msg", value)])),
            ("query", s.http.post(s.url("/q/seed")).query(&[("value", value)])),
            (
                "multipart",
                s.http
                    .post(s.url("/q/seed"))
                    .multipart(reqwest::multipart::Form::new().text("value", value.to_owned())),
            ),
            ("POST /", form(&s, Method::POST, "/", &[("queue", "seed"), ("value", value)])),
            ("new queue", form(&s, Method::POST, "/q/fresh", &[("value", value)])),
            ("/queue", raw_command(&s, json!({"cmd": "add", "queue": "seed", "value": value}).to_string())),
        ];
        for (what, req) in cases {
            expect_error(req, 413, "too_large", what).await;
        }
    }
    let object = json!({"cmd": "add", "queue": "seed", "value": {"k": "v".repeat(1000)}}).to_string();
    expect_error(raw_command(&s, object), 413, "too_large", "object value").await;
    assert_eq!(snapshot(&s).await, before);
    assert_eq!(s.add("seed", &"x".repeat(1000)).await, "seed:3", "exactly the limit is fine");
    assert_eq!(s.add("seed", &"é".repeat(500)).await, "seed:4", "1000 bytes of unicode is fine");
}

/// A body far beyond the body limit is 413 `too_large`, whatever its content type.
async fn oversize_body(store: StoreKind) {
    let s = seed(TestServer::start_with(store, |c| c.max_message_bytes = 1000).await).await;
    let before = snapshot(&s).await;
    let huge = "x".repeat(300_000);
    let multipart =
        format!("--b\r\nContent-Disposition: form-data; name=\"value\"\r\n\r\n{huge}\r\n--b--\r\n");
    let cases = [
        (
            "form",
            "POST /q/seed HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            format!("value={huge}"),
        ),
        ("multipart", "POST /q/seed HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b", multipart),
        ("text", "POST /q/seed HTTP/1.1\r\nContent-Type: text/plain", huge.clone()),
        ("no content type", "POST /q/seed HTTP/1.1", huge.clone()),
        ("json", "POST /queue HTTP/1.1\r\nContent-Type: application/json", huge.clone()),
        (
            "policy form",
            "POST /p/seed HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            format!("policy=broadcast&pad={huge}"),
        ),
        ("GET with body", "GET /q/seed HTTP/1.1\r\nContent-Type: text/plain", huge.clone()),
    ];
    for (what, head, body) in cases {
        check_error(raw_request(&s, head, body.into_bytes()).await, 413, "too_large", what);
    }
    assert_eq!(snapshot(&s).await, before);
}

/// A method a route does not take is 405 `method_not_allowed`, and creates nothing.
async fn wrong_method(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let cases = [
        (Method::PUT, "/q/x"),
        (Method::PATCH, "/q/seed"),
        (Method::PUT, "/q/seed"),
        (Method::DELETE, "/stats/"),
        (Method::POST, "/stats/seed"),
        (Method::PUT, "/p/x"),
        (Method::DELETE, "/control/seed"),
        (Method::GET, "/queue"),
        (Method::DELETE, "/queue"),
        (Method::POST, "/j/seed"),
        (Method::PUT, "/"),
        (Method::DELETE, "/q/"),
        (Method::POST, "/q/"),
        (Method::POST, "/c/x"),
        (Method::DELETE, "/ws/x"),
    ];
    for (method, path) in cases {
        let what = format!("{method} {path}");
        expect_error(
            form(&s, method, path, &[("value", "x"), ("policy", "broadcast")]),
            405,
            "method_not_allowed",
            &what,
        )
        .await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// A path no route has is a JSON 404 `not_found` for any method, never an HTML page.
async fn unknown_routes(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let cases = [
        (Method::GET, "/nope"),
        (Method::POST, "/nope"),
        (Method::DELETE, "/nope"),
        (Method::PUT, "/nope"),
        (Method::GET, "/nope/deeper/page.html"),
        (Method::GET, "/Q/seed"),
        (Method::GET, "/qq/seed"),
        (Method::GET, "/index.html"),
    ];
    for (method, path) in cases {
        let what = format!("{method} {path}");
        expect_error(form(&s, method, path, &[("queue", "seed"), ("value", "x")]), 404, "not_found", &what)
            .await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// GET /ws/<q> without a WebSocket upgrade is 426 `upgrade_required` and subscribes nothing.
async fn websocket_without_upgrade(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    expect_error(s.http.get(s.url("/ws/seed")), 426, "upgrade_required", "plain GET").await;
    expect_error(s.http.get(s.url("/ws/fresh")), 426, "upgrade_required", "new queue").await;
    let half = s.http.get(s.url("/ws/seed")).header("connection", "upgrade").header("upgrade", "websocket");
    expect_error(half, 426, "upgrade_required", "no key or version").await;
    assert_eq!(snapshot(&s).await, before);
}

/// Non-UTF-8 and garbage bodies, content types and paths get 4xx answers, never a panic or 5xx.
async fn garbage_does_not_panic(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let urlencoded = "application/x-www-form-urlencoded";
    let bad_multipart = "multipart/form-data; boundary=XYZ";
    let cases = [
        (
            s.http.post(s.url("/queue")).header("content-type", urlencoded).body(b"body=%FF%FE%00".to_vec()),
            400,
            "malformed_json",
        ),
        (
            s.http
                .post(s.url("/queue"))
                .header("content-type", "text/plain")
                .body(vec![0xc3, 0x28, 0xa0, 0xa1]),
            400,
            "malformed_json",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", bad_multipart).body("garbage"),
            400,
            "invalid_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", "multipart/form-data").body("garbage"),
            400,
            "invalid_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", "garbage/;;;=").body(vec![0xff; 64]),
            400,
            "missing_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", &[0xff_u8, 0xfe][..]).body("value=x"),
            400,
            "missing_argument",
        ),
        (
            s.http
                .post(s.url("/q/seed"))
                .header("content-type", urlencoded)
                .body(vec![0xff, b'&', b'=', 0xfe]),
            400,
            "missing_argument",
        ),
    ];
    for (n, (req, status, code)) in cases.into_iter().enumerate() {
        expect_error(req, status, code, &format!("garbage case {n}")).await;
    }
    assert_eq!(snapshot(&s).await, before);

    // Lossy but accepted: invalid UTF-8 in a form value is decoded with replacement characters.
    let res =
        s.http.post(s.url("/q/lossy")).header("content-type", urlencoded).body(b"value=%FF\xfe".to_vec());
    let status = res.send().await.unwrap().status().as_u16();
    assert!(status < 500, "non-UTF-8 form value: {status}");
    let part = reqwest::multipart::Part::bytes(vec![0xff, 0xfe, 0x00, 0x80]);
    let res = s.http.post(s.url("/q/lossy")).multipart(reqwest::multipart::Form::new().part("value", part));
    let status = res.send().await.unwrap().status().as_u16();
    assert!(status < 500, "non-UTF-8 multipart value: {status}");
    let status = s.get("/q/%FF%FE").await.0;
    assert_eq!(status, 400, "non-UTF-8 queue name in the path");
    assert_eq!(s.get_json("/j/seed").await["len"], 2, "the server still answers");
}

/// A deterministic xorshift64* generator, so the garbage loop is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes, percent-encoded (some left as plain letters) for a URL.
    fn url_text(&mut self, max: usize) -> String {
        self.bytes(max)
            .into_iter()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    /// A word the server knows, or random bytes.
    fn arg(&mut self, known: &[&str], max: usize) -> String {
        if self.below(2) == 0 {
            self.pick(known).to_owned()
        } else {
            self.url_text(max)
        }
    }
}

/// Hundreds of random requests (random bytes in paths, query strings and bodies, random
/// content types) all get answers below 500, errors as JSON, and the server keeps working.
async fn random_garbage_requests(store: StoreKind) {
    let s = seeded(store).await;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let routes = [
        "/",
        "/q/",
        "/q",
        "/q/{}",
        "/j/{}",
        "/p/{}",
        "/control/{}",
        "/control/",
        "/stats/",
        "/stats/{}",
        "/queue",
        "/ws/{}",
        "/nope/{}",
    ];
    let names = ["seed", "fz", "a:b", "", "x y", "..", "%2F"];
    let keys = ["value", "msg", "queue", "soft", "ttl", "callback", "policy", "status", "body", "cmd", "key"];
    let words = [
        "1",
        "0",
        "cb",
        "alert(1)",
        "broadcast",
        "roundrobin",
        "start",
        "stop",
        "seed",
        "fz",
        "x%20y",
        "%FF",
    ];
    let methods = [Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::PATCH];
    let content_types = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=b",
        "multipart/form-data",
        "application/json",
        "text/plain",
        "garbage/;;;=",
        "",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..400 {
        let route = rng.pick(&routes);
        let segment = rng.arg(&names, 24);
        let mut path = route.replace("{}", &segment);
        let pairs = rng.below(5);
        for p in 0..pairs {
            path.push(if p == 0 { '?' } else { '&' });
            path.push_str(&rng.arg(&keys, 8));
            path.push('=');
            path.push_str(&rng.arg(&words, 40));
        }
        let method = methods[rng.below(methods.len())].clone();
        let mut req = s.http.request(method.clone(), s.url(&path));
        if method != Method::GET || rng.below(4) == 0 {
            let content_type = rng.pick(&content_types);
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            let body = match rng.below(3) {
                0 => rng.bytes(2000),
                1 => format!(
                    "{}={}&{}={}",
                    rng.pick(&keys),
                    rng.url_text(60),
                    rng.pick(&keys),
                    rng.pick(&words)
                )
                .into_bytes(),
                _ => {
                    let cmd = rng.pick(&["add", "get", "take", "del", "nope"]);
                    let queue = rng.pick(&names);
                    let value = String::from_utf8_lossy(&rng.bytes(30)).into_owned();
                    json!({"cmd": cmd, "queue": queue, "value": value, "key": format!("{queue}:{}", rng.below(5))})
                        .to_string()
                        .into_bytes()
                }
            };
            req = req.body(body);
        }
        let what = format!("request {i}: {method} {path}");
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .unwrap_or_default();
        let body = res.bytes().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(status < 500, "{what}: {status} {}", String::from_utf8_lossy(&body));
        seen.insert(status);
        if status >= 400 {
            assert_eq!(content_type, "application/json", "{what}: {status}");
            let doc: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(doc["error"]["code"].is_string(), "{what}: {doc}");
        }
    }
    for status in [200, 400, 404, 405, 426] {
        assert!(seen.contains(&status), "the loop reached a {status} answer: {seen:?}");
    }
    let fresh = format!("after{}", rng.below(1000));
    assert_eq!(s.add(&fresh, "still alive").await, format!("{fresh}:1"));
    assert_eq!(s.get(&format!("/q/{fresh}")).await.0, 200);
    assert!(s.get_json("/stats/").await["store"].is_string());
}

/// A bad queue name in a JSON command is `invalid_queue_name`.
async fn json_bad_queue_name(store: StoreKind) {
    let s = seeded(store).await;
    for doc in [r#"{"cmd":"add","queue":"a b","value":"x"}"#, r#"{"cmd":"take","queue":"a/b"}"#] {
        expect_error(raw_command(&s, doc), 400, "invalid_queue_name", doc).await;
    }
}

/// A malformed key in `del` is `invalid_key`.
async fn json_malformed_key(store: StoreKind) {
    let s = seeded(store).await;
    for doc in
        [r#"{"cmd":"del","queue":"seed","key":"nonsense"}"#, r#"{"cmd":"del","queue":"seed","key":"seed:0"}"#]
    {
        expect_error(raw_command(&s, doc), 400, "invalid_key", doc).await;
    }
}

/// Missing command fields are `missing_argument`, like missing REST arguments.
async fn json_missing_fields(store: StoreKind) {
    let s = seeded(store).await;
    for doc in [
        r#"{"cmd":"get"}"#,
        r#"{"cmd":"add","queue":"q"}"#,
        r#"{"cmd":"add","queue":"q","value":""}"#,
        r#"{"cmd":"del","queue":"q"}"#,
    ] {
        expect_error(raw_command(&s, doc), 400, "missing_argument", doc).await;
    }
}

/// A non-UTF-8 queue name in the path is `invalid_queue_name`.
async fn path_non_utf8_name(store: StoreKind) {
    let s = seeded(store).await;
    expect_error(s.http.get(s.url("/q/%FF%FE")), 400, "invalid_queue_name", "GET /q/%FF%FE").await;
}

on_every_store!(
    json_bad_queue_name,
    json_malformed_key,
    json_missing_fields,
    path_non_utf8_name,
    missing_value,
    missing_queue_on_post_root,
    bad_queue_names_in_path,
    bad_queue_names_in_args,
    bad_ttl,
    malformed_json,
    unknown_command,
    missing_cmd,
    incomplete_commands,
    bad_policy,
    bad_status,
    invalid_callbacks,
    oversize_value,
    oversize_body,
    wrong_method,
    unknown_routes,
    websocket_without_upgrade,
    garbage_does_not_panic,
    random_garbage_requests,
);
