//! RestMQ's REST routes end to end (SPEC §1): adding with every argument source, hard and
//! soft gets, purge, the queue list, `/j`, JSONP, opaque values and TTL.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const JS: &str = "application/javascript; charset=utf-8";

/// Sends a request and returns (status, content type, body).
async fn send(req: reqwest::RequestBuilder) -> (u16, String, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

/// Hard-gets the oldest message of `queue` and returns its parsed JSON, asserting 200.
async fn take(s: &TestServer, queue: &str) -> Value {
    let (status, content_type, body) = send(s.http.get(s.url(&format!("/q/{queue}")))).await;
    assert_eq!((status, content_type.as_str()), (200, JSON), "GET /q/{queue}: {body}");
    let json = body.strip_suffix("\r\n").unwrap_or_else(|| panic!("no CRLF after {body:?}"));
    serde_json::from_str(json).unwrap()
}

/// The queue names of `GET /q/`.
async fn queues(s: &TestServer) -> Value {
    s.get_json("/q/").await
}

/// POST /q/<q> with a urlencoded form answers `text/plain` `q:N\r\n`, numbering from 1 per queue.
async fn add_form_numbers_per_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    let form = |v: &'static str| s.http.post(s.url("/q/a")).form(&[("value", v)]);
    assert_eq!(send(form("one")).await, (200, TEXT.into(), "a:1\r\n".into()));
    assert_eq!(send(form("two")).await, (200, TEXT.into(), "a:2\r\n".into()));
    let other = s.http.post(s.url("/q/b")).form(&[("value", "x")]);
    assert_eq!(send(other).await, (200, TEXT.into(), "b:1\r\n".into()));
    assert_eq!(send(form("three")).await, (200, TEXT.into(), "a:3\r\n".into()));
    let colon = s.http.post(s.url("/q/syslogd:web-1")).form(&[("value", "x")]);
    assert_eq!(send(colon).await, (200, TEXT.into(), "syslogd:web-1:1\r\n".into()));
    assert_eq!(take(&s, "a").await, json!({"key": "a:1", "value": "one", "count": 0}));
}

/// POST /q/<q> takes `value` (and `msg`) from a multipart/form-data body.
async fn add_multipart(store: StoreKind) {
    let s = TestServer::start(store).await;
    let form = reqwest::multipart::Form::new().text("value", "from multipart");
    assert_eq!(send(s.http.post(s.url("/q/m")).multipart(form)).await, (200, TEXT.into(), "m:1\r\n".into()));
    let form = reqwest::multipart::Form::new().text("other", "ignored").text("msg", "multipart msg");
    assert_eq!(send(s.http.post(s.url("/q/m")).multipart(form)).await, (200, TEXT.into(), "m:2\r\n".into()));
    assert_eq!(take(&s, "m").await["value"], "from multipart");
    assert_eq!(take(&s, "m").await["value"], "multipart msg");
}

/// POST /q/<q>?value=… takes the value from the query string when there is no form.
async fn add_query_string(store: StoreKind) {
    let s = TestServer::start(store).await;
    let req = s.http.post(s.url("/q/qs?value=from%20query&ttl=60"));
    assert_eq!(send(req).await, (200, TEXT.into(), "qs:1\r\n".into()));
    assert_eq!(take(&s, "qs").await, json!({"key": "qs:1", "value": "from query", "count": 0}));
}

/// `msg` is an alias of `value`, and `value` is preferred when both are given.
async fn msg_is_alias_of_value(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/q/al", &[("msg", "old style")]).await, (200, "al:1\r\n".into()));
    assert_eq!(s.post_form("/q/al", &[("msg", "not me"), ("value", "me")]).await, (200, "al:2\r\n".into()));
    assert_eq!(take(&s, "al").await["value"], "old style");
    assert_eq!(take(&s, "al").await["value"], "me");
}

/// A form field wins over the same argument in the query string.
async fn form_wins_over_query(store: StoreKind) {
    let s = TestServer::start(store).await;
    let req = s.http.post(s.url("/q/fw?value=query")).form(&[("value", "form")]);
    assert_eq!(send(req).await.2, "fw:1\r\n");
    let req = s.http.post(s.url("/?queue=wrong&value=query")).form(&[("queue", "fw"), ("value", "form2")]);
    assert_eq!(send(req).await.2, "fw:2\r\n");
    assert_eq!(take(&s, "fw").await["value"], "form");
    assert_eq!(take(&s, "fw").await["value"], "form2");
    assert_eq!(queues(&s).await, json!(["fw"]));
}

/// When an argument is repeated, the last one wins, in the query and in the form.
async fn last_repeat_wins(store: StoreKind) {
    let s = TestServer::start(store).await;
    let req = s
        .http
        .post(s.url("/q/lr"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("value=first&value=second&value=last");
    assert_eq!(send(req).await.2, "lr:1\r\n");
    assert_eq!(send(s.http.post(s.url("/q/lr?value=a&value=b"))).await.2, "lr:2\r\n");
    let form = reqwest::multipart::Form::new().text("value", "m1").text("value", "m2");
    assert_eq!(send(s.http.post(s.url("/q/lr")).multipart(form)).await.2, "lr:3\r\n");
    assert_eq!(take(&s, "lr").await["value"], "last");
    assert_eq!(take(&s, "lr").await["value"], "b");
    assert_eq!(take(&s, "lr").await["value"], "m2");
}

/// An empty argument counts as missing: `value=` falls back to `msg`, an empty form field to
/// the query string.
async fn empty_counts_as_missing(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/q/em", &[("value", ""), ("msg", "the msg")]).await, (200, "em:1\r\n".into()));
    let req = s.http.post(s.url("/q/em?value=from%20query")).form(&[("value", "")]);
    assert_eq!(send(req).await.2, "em:2\r\n");
    let req = s.http.post(s.url("/q/em?value=v&value=")).form(&[("other", "x")]);
    assert_eq!(send(req).await.2, "em:3\r\n");
    assert_eq!(take(&s, "em").await["value"], "the msg");
    assert_eq!(take(&s, "em").await["value"], "from query");
    assert_eq!(take(&s, "em").await["value"], "v");
}

/// POST / with `queue` and `value` adds like POST /q/<queue>, sharing its numbering.
async fn post_root_adds(store: StoreKind) {
    let s = TestServer::start(store).await;
    let req = s.http.post(s.url("/")).form(&[("queue", "root"), ("value", "v1")]);
    assert_eq!(send(req).await, (200, TEXT.into(), "root:1\r\n".into()));
    assert_eq!(s.add("root", "v2").await, "root:2");
    let req = s.http.post(s.url("/")).form(&[("queue", "root"), ("msg", "v3")]);
    assert_eq!(send(req).await, (200, TEXT.into(), "root:3\r\n".into()));
    assert_eq!(queues(&s).await, json!(["root"]));
    assert_eq!(take(&s, "root").await, json!({"key": "root:1", "value": "v1", "count": 0}));
}

/// GET /q/<q> answers the exact RestMQ body, removes the message, then answers 204.
async fn hard_get_exact_body_and_removes(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("q", "hi").await;
    let got = send(s.http.get(s.url("/q/q"))).await;
    assert_eq!(got, (200, JSON.into(), "{\"key\":\"q:1\",\"value\":\"hi\",\"count\":0}\r\n".into()));
    let (status, _, body) = send(s.http.get(s.url("/q/q"))).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(s.get_json("/j/q").await, json!({"queue": "q", "len": 0, "keys": []}));
}

/// Hard gets return messages oldest first, each exactly once.
async fn oldest_first(store: StoreKind) {
    let s = TestServer::start(store).await;
    for v in ["a", "b", "c", "d"] {
        s.add("order", v).await;
    }
    for (n, v) in ["a", "b", "c", "d"].iter().enumerate() {
        let want = json!({"key": format!("order:{}", n + 1), "value": v, "count": 0});
        assert_eq!(take(&s, "order").await, want);
    }
    assert_eq!(s.get("/q/order").await, (204, String::new()));
}

/// `soft=1` peeks the oldest message without removing it; `count` goes 1, 2, 3.
async fn soft_get_counts_reads(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("soft", "first").await;
    s.add("soft", "second").await;
    for count in 1..=3 {
        let want = format!("{{\"key\":\"soft:1\",\"value\":\"first\",\"count\":{count}}}\r\n");
        assert_eq!(send(s.http.get(s.url("/q/soft?soft=1"))).await, (200, JSON.into(), want));
    }
    assert_eq!(s.get_json("/j/soft").await["len"], 2);
    assert_eq!(take(&s, "soft").await, json!({"key": "soft:1", "value": "first", "count": 0}));
    assert_eq!(s.get("/q/soft?soft=1").await.1, "{\"key\":\"soft:2\",\"value\":\"second\",\"count\":1}\r\n");
    assert_eq!(s.get("/q/soft?soft=0").await.1, "{\"key\":\"soft:2\",\"value\":\"second\",\"count\":0}\r\n");
    assert_eq!(s.get("/q/soft?soft=1").await, (204, String::new()));
}

/// A get on an empty or never-used queue answers 204 with an empty body and creates nothing.
async fn empty_queue_is_204(store: StoreKind) {
    let s = TestServer::start(store).await;
    for path in ["/q/never", "/q/never?soft=1", "/?queue=never", "/q/never?callback=cb"] {
        let (status, _, body) = send(s.http.get(s.url(path))).await;
        assert_eq!((status, body.as_str()), (204, ""), "GET {path}");
    }
    assert_eq!(queues(&s).await, json!([]));
    s.add("drained", "x").await;
    take(&s, "drained").await;
    assert_eq!(s.get("/q/drained").await, (204, String::new()));
}

/// GET /?queue=q is a hard get of q, with the same exact body.
async fn root_get_with_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("rq", "hello").await;
    s.add("rq", "world").await;
    let got = send(s.http.get(s.url("/?queue=rq"))).await;
    assert_eq!(got, (200, JSON.into(), "{\"key\":\"rq:1\",\"value\":\"hello\",\"count\":0}\r\n".into()));
    assert_eq!(s.get("/?queue=rq&soft=1").await.1, "{\"key\":\"rq:2\",\"value\":\"world\",\"count\":1}\r\n");
    assert_eq!(s.get_json("/j/rq").await["len"], 1);
}

/// GET / without `queue` serves an HTML page and touches no queue.
async fn root_get_serves_html(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("keep", "x").await;
    let (status, content_type, body) = send(s.http.get(s.url("/"))).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.to_ascii_lowercase().starts_with("<!doctype html>"), "{body}");
    assert_eq!(s.get_json("/j/keep").await["len"], 1);
}

/// DELETE /q/<q> purges its messages: `{"queue":"q","status":1}\r\n`; the queue stays listed with
/// its counter (as in RestMQ), others are untouched.
async fn purge_removes_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("doomed", "1").await;
    s.add("doomed", "2").await;
    s.add("kept", "k").await;
    assert_eq!(queues(&s).await, json!(["doomed", "kept"]));
    let purged = send(s.http.delete(s.url("/q/doomed"))).await;
    assert_eq!(purged, (200, JSON.into(), "{\"queue\":\"doomed\",\"status\":1}\r\n".into()));
    assert_eq!(queues(&s).await, json!(["doomed", "kept"]), "still listed, as in RestMQ");
    assert_eq!(s.get("/q/doomed").await, (204, String::new()));
    assert_eq!(s.get_json("/j/doomed").await, json!({"queue": "doomed", "len": 0, "keys": []}));
    assert_eq!(take(&s, "kept").await, json!({"key": "kept:1", "value": "k", "count": 0}));
    assert_eq!(s.add("doomed", "3").await, "doomed:3", "keys are never reused");
}

/// GET /q/ and GET /q list the queue names as a sorted JSON array.
async fn list_queues_sorted(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(send(s.http.get(s.url("/q/"))).await, (200, JSON.into(), "[]".into()));
    for q in ["zeta", "alpha", "syslogd:web-1", "Mid.q", "a_b@c"] {
        s.add(q, "x").await;
    }
    let want = r#"["Mid.q","a_b@c","alpha","syslogd:web-1","zeta"]"#;
    assert_eq!(send(s.http.get(s.url("/q/"))).await, (200, JSON.into(), want.into()));
    assert_eq!(send(s.http.get(s.url("/q"))).await, (200, JSON.into(), want.into()));
}

/// GET /j/<q> lists the newest 10 keys, newest first, with the queue length.
async fn recent_keys_newest_ten(store: StoreKind) {
    let s = TestServer::start(store).await;
    for i in 1..=12 {
        s.add("j", &format!("m{i}")).await;
    }
    let keys: Vec<String> = (3..=12).rev().map(|n| format!("j:{n}")).collect();
    let (status, content_type, body) = send(s.http.get(s.url("/j/j"))).await;
    assert_eq!((status, content_type.as_str()), (200, JSON));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"queue": "j", "len": 12, "keys": keys}));
    take(&s, "j").await;
    take(&s, "j").await;
    take(&s, "j").await;
    let keys: Vec<String> = (4..=12).rev().map(|n| format!("j:{n}")).collect();
    assert_eq!(s.get_json("/j/j").await, json!({"queue": "j", "len": 9, "keys": keys}));
    assert_eq!(s.get_json("/j/other").await, json!({"queue": "other", "len": 0, "keys": []}));
    assert_eq!(queues(&s).await, json!(["j"]), "reading /j does not create a queue");
}

/// `callback=cb` wraps GET answers as exactly `cb(<json>);` with a JavaScript content type.
async fn jsonp_on_get_routes(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("p", "one").await;
    s.add("p", "two").await;
    s.add("p", "three").await;
    let cases = [
        ("/q/p?soft=1&callback=cb", r#"cb({"key":"p:1","value":"one","count":1});"#),
        ("/q/p?callback=cb", r#"cb({"key":"p:1","value":"one","count":0});"#),
        ("/?queue=p&callback=app.on_data", r#"app.on_data({"key":"p:2","value":"two","count":0});"#),
        ("/q/?callback=$", r#"$(["p"]);"#),
        ("/q?callback=_x1", r#"_x1(["p"]);"#),
        ("/j/p?callback=jQuery123_456", r#"jQuery123_456({"queue":"p","len":1,"keys":["p:3"]});"#),
    ];
    for (path, want) in cases {
        let want = format!("{want}\r\n"); // RestMQ's JSONP lines end as its JSON lines do
        assert_eq!(send(s.http.get(s.url(path))).await, (200, JS.into(), want), "GET {path}");
    }
}

/// Values are opaque text: numbers, JSON-looking text, unicode and CRLF come back unchanged.
async fn values_are_opaque(store: StoreKind) {
    let s = TestServer::start(store).await;
    let values = [
        "123",
        "true",
        r#"{"a":1}"#,
        "héllo wörld ✓ 日本語 🎉",
        "line1\r\nline2\r\n",
        "  spaced  ",
        "a&b=c%20d+e",
    ];
    for v in values {
        s.add("opaque", v).await;
    }
    assert_eq!(s.get("/q/opaque").await.1, "{\"key\":\"opaque:1\",\"value\":\"123\",\"count\":0}\r\n");
    for (i, v) in values.iter().enumerate().skip(1) {
        let got = take(&s, "opaque").await;
        assert_eq!(got, json!({"key": format!("opaque:{}", i + 1), "value": v, "count": 0}));
    }
    let form = reqwest::multipart::Form::new().text("value", "multi\r\nline ✓");
    send(s.http.post(s.url("/q/opaque")).multipart(form)).await;
    assert_eq!(take(&s, "opaque").await["value"], "multi\r\nline ✓");
}

/// A message added with `ttl=1` is gone after 1.2 s; the next message is served instead.
async fn ttl_expires(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/q/ttl", &[("value", "short"), ("ttl", "1")]).await, (200, "ttl:1\r\n".into()));
    assert_eq!(s.get("/q/ttl?soft=1").await.1, "{\"key\":\"ttl:1\",\"value\":\"short\",\"count\":1}\r\n");
    assert_eq!(s.post_form("/q/ttl", &[("value", "long"), ("ttl", "600")]).await, (200, "ttl:2\r\n".into()));
    assert_eq!(
        s.post_form("/q/alone", &[("value", "short"), ("ttl", "1")]).await,
        (200, "alone:1\r\n".into())
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(take(&s, "ttl").await, json!({"key": "ttl:2", "value": "long", "count": 0}));
    assert_eq!(s.get("/q/ttl").await, (204, String::new()));
    assert_eq!(s.get("/q/alone?soft=1").await, (204, String::new()));
    assert_eq!(s.get("/q/alone").await, (204, String::new()));
}

/// Concurrent hard gets hand out every message exactly once.
async fn concurrent_hard_gets_deliver_once(store: StoreKind) {
    let s = TestServer::start(store).await;
    for i in 1..=100 {
        s.add("race", &format!("m{i}")).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url) = (s.http.clone(), s.url("/q/race"));
        tasks.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            loop {
                let res = http.get(&url).send().await.unwrap();
                if res.status() == 204 {
                    return keys;
                }
                let got: Value = serde_json::from_str(res.text().await.unwrap().trim_end()).unwrap();
                let key = got["key"].as_str().unwrap().to_owned();
                assert_eq!(got["value"], format!("m{}", &key["race:".len()..]));
                keys.push(key);
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by_key(|k| k["race:".len()..].parse::<u64>().unwrap());
    let want: Vec<String> = (1..=100).map(|n| format!("race:{n}")).collect();
    assert_eq!(all, want);
}

/// Concurrent adds to one queue get distinct keys 1..=N, none lost.
async fn concurrent_adds_get_distinct_keys(store: StoreKind) {
    let s = TestServer::start(store).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (http, url) = (s.http.clone(), s.url("/q/many"));
        tasks.push(tokio::spawn(async move {
            let res = http.post(&url).form(&[("value", format!("v{i}"))]).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }));
    }
    let mut keys = Vec::new();
    for task in tasks {
        let body = task.await.unwrap();
        keys.push(body.strip_suffix("\r\n").unwrap()["many:".len()..].parse::<u64>().unwrap());
    }
    keys.sort_unstable();
    assert_eq!(keys, (1..=50).collect::<Vec<u64>>());
    assert_eq!(s.get_json("/j/many").await["len"], 50);
}

/// A HEAD request does not consume a message or count a soft read.
async fn head_does_not_consume(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("h", "one").await;
    assert_eq!(s.http.head(s.url("/q/h")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.head(s.url("/?queue=h")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.head(s.url("/q/h?soft=1")).send().await.unwrap().status(), 200);
    assert_eq!(
        s.get("/q/h?soft=1").await,
        (200, "{\"key\":\"h:1\",\"value\":\"one\",\"count\":1}\r\n".into())
    );
    assert_eq!(s.get("/q/h").await, (200, "{\"key\":\"h:1\",\"value\":\"one\",\"count\":0}\r\n".into()));
    assert_eq!(s.http.head(s.url("/q/h")).send().await.unwrap().status(), 204);
}

/// A ttl too large to mean anything is refused, not wrapped into an instant expiry.
async fn huge_ttl_is_refused(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, body) = s.post_form("/q/t", &[("value", "x"), ("ttl", "18446744073709552")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(s.post_form("/q/t", &[("value", "x"), ("ttl", "315360000")]).await.0, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.get("/q/t").await, (200, "{\"key\":\"t:1\",\"value\":\"x\",\"count\":0}\r\n".into()));
}

on_every_store!(
    head_does_not_consume,
    huge_ttl_is_refused,
    concurrent_hard_gets_deliver_once,
    concurrent_adds_get_distinct_keys,
    add_form_numbers_per_queue,
    add_multipart,
    add_query_string,
    msg_is_alias_of_value,
    form_wins_over_query,
    last_repeat_wins,
    empty_counts_as_missing,
    post_root_adds,
    hard_get_exact_body_and_removes,
    oldest_first,
    soft_get_counts_reads,
    empty_queue_is_204,
    root_get_with_queue,
    root_get_serves_html,
    purge_removes_queue,
    list_queues_sorted,
    recent_keys_newest_ten,
    jsonp_on_get_routes,
    values_are_opaque,
    ttl_expires,
);
