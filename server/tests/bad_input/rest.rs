//! The REST routes: missing and malformed arguments, bad queue names, limits, methods and
//! routes that do not exist.

use super::*;

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
    assert_eq!(s.get_json("/p/seed").await["value"], "roundrobin");
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
    assert_eq!(s.get_json("/control/seed").await["state"], "paused");
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

/// A non-UTF-8 queue name in the path is `invalid_queue_name`.
async fn path_non_utf8_name(store: StoreKind) {
    let s = seeded(store).await;
    expect_error(s.http.get(s.url("/q/%FF%FE")), 400, "invalid_queue_name", "GET /q/%FF%FE").await;
}

crate::on_every_store!(
    missing_value,
    missing_queue_on_post_root,
    bad_queue_names_in_path,
    bad_queue_names_in_args,
    bad_ttl,
    bad_policy,
    bad_status,
    invalid_callbacks,
    oversize_value,
    oversize_body,
    wrong_method,
    unknown_routes,
    websocket_without_upgrade,
    path_non_utf8_name,
);
