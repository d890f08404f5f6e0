//! Property tests over bad input, sent over a real socket byte for byte: arbitrary queue
//! names on every route, arbitrary forms and query strings, arbitrary JSON commands. The
//! server never panics (every request gets an answer), never answers 5xx, and every 4xx is a
//! JSON `{"error":{"code","message"}}`; an invalid queue name is always 400
//! `invalid_queue_name`.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::TestServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use restmq_server::config::StoreKind;
use restmq_shared::QueueName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One answer: status, content type and body (de-chunked).
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// The server under test, and how many answers of each status it gave.
struct Target {
    server: TestServer,
    statuses: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
}

/// Sends one HTTP/1.1 request as raw bytes and reads the whole answer.
async fn send(t: &Target, method: &str, target: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
    let addr = t.server.addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("{method} {target}: no answer within 10 s"))
        .unwrap();
    let answer =
        parse(&raw).unwrap_or_else(|| panic!("{method} {target}: no HTTP answer (a panic?): {raw:?}"));
    *t.statuses.lock().unwrap().entry(answer.status).or_default() += 1;
    answer
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let mut body = raw[split + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        body = dechunk(&body)?;
    }
    Some(Answer { status, content_type: header("content-type").unwrap_or_default(), body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The property every answer has: no 5xx, and a 4xx is the JSON error body. Returns the
/// error code of a 4xx.
fn check(what: &str, a: &Answer) -> Option<String> {
    let body = String::from_utf8_lossy(&a.body);
    assert!(a.status < 500, "{what}: {} {body}", a.status);
    if a.status < 400 {
        return None;
    }
    assert_eq!(a.content_type, "application/json", "{what}: {} {body}", a.status);
    let doc: Value = serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    let code = doc["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}: no code: {body}"));
    assert!(doc["error"]["message"].is_string(), "{what}: no message: {body}");
    assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{what}: {body}");
    Some(code.to_owned())
}

/// Percent-encodes every byte but the unreserved ones, so any string fits in a path.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

/// Runs `cases` cases of `strategy` against a fresh memory-store server.
fn run<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(&Target, S::Value) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) where
    S::Value: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(TestServer::start(StoreKind::Memory));
    let t = Target { server, statuses: Default::default() };
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), test(&t, input)).await })
            .expect("a case in 60 s");
        Ok(())
    });
    let statuses = std::mem::take(&mut *t.statuses.lock().unwrap());
    let health = rt.block_on(send(&t, "GET", "/healthz", None, b""));
    // Straight to stderr, so the counts show even when the test passes.
    let _ = writeln!(
        std::io::stderr(),
        "{cases} cases, {} requests in {:.1} s, answers by status {statuses:?}; then /healthz {}",
        statuses.values().sum::<u64>(),
        started.elapsed().as_secs_f64(),
        health.status
    );
    result.unwrap();
    assert_eq!(health.status, 200, "the server survived");
    assert!(statuses.keys().all(|s| *s < 500), "no 5xx at all: {statuses:?}");
    rt.block_on(t.server.stop());
}

/// Queue names: mostly junk (any Unicode, control bytes, slashes, too long), some valid.
fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._:@-]{1,140}",
        any::<String>(),
        "[\\x00-\\x7f]{1,12}",
        "[a-z]{0,4}[/%?#&= +\\\\\"'<>;]{1,3}[a-z]{0,4}",
    ]
    .prop_filter("not empty", |n| !n.is_empty())
}

/// Any queue name on every route that takes one: an invalid one is always 400
/// `invalid_queue_name`, a valid one never 5xx.
#[test]
fn queue_names_on_every_route() {
    run(300, names(), |s, name| {
        Box::pin(async move {
            let valid = QueueName::try_from(name.as_str()).is_ok();
            let p = encode(&name);
            let add = json!({"cmd": "add", "queue": name, "value": "x"}).to_string();
            let mut requests: Vec<(&str, String, Option<&str>, Vec<u8>)> = vec![
                ("GET", format!("/q/{p}"), None, vec![]),
                ("GET", format!("/q/{p}?soft=1"), None, vec![]),
                ("POST", format!("/q/{p}"), FORM, b"value=x".to_vec()),
                ("DELETE", format!("/q/{p}"), None, vec![]),
                ("DELETE", format!("/q/{p}/{p}:1"), None, vec![]),
                ("POST", format!("/q/{p}/{p}:1"), None, vec![]),
                ("GET", format!("/j/{p}"), None, vec![]),
                ("GET", format!("/p/{p}"), None, vec![]),
                ("POST", format!("/p/{p}"), FORM, b"policy=roundrobin".to_vec()),
                ("GET", format!("/control/{p}"), None, vec![]),
                ("POST", format!("/control/{p}"), FORM, b"status=start".to_vec()),
                ("GET", format!("/stats/{p}"), None, vec![]),
                ("GET", format!("/ws/{p}"), None, vec![]),
                ("GET", format!("/?{}", form(&[("queue", &name)])), None, vec![]),
                ("POST", "/".to_owned(), FORM, form(&[("queue", &name), ("value", "x")]).into_bytes()),
                ("POST", "/queue".to_owned(), JSON, add.into_bytes()),
            ];
            if !valid {
                // Streams of a valid queue would stay open: only invalid names here.
                requests.push(("GET", format!("/c/{p}"), None, vec![]));
                requests.push(("GET", format!("/sse/{p}"), None, vec![]));
            }
            for (method, target, ct, body) in requests {
                let what = format!("{method} {target}");
                let code = check(&what, &send(s, method, &target, ct, &body).await);
                if !valid {
                    assert_eq!(code.as_deref(), Some("invalid_queue_name"), "{what}");
                }
            }
        })
    });
}

/// Argument names RestMQ's routes read, and some they do not.
fn arg_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "value", "msg", "queue", "ttl", "callback", "soft", "reserve", "policy", "status", "body", "cmd",
            "since", "ack", "batch", "delay", "key",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,8}",
    ]
}

/// Argument values: numbers at the edges, junk text, JSON fragments.
fn arg_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "",
            "0",
            "1",
            "-1",
            "broadcast",
            "roundrobin",
            "start",
            "stop",
            "q:1",
            "cb"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
        "\\{\"cmd\":\"[a-z]{0,7}\",\"queue\":\"[a-z:]{0,5}\"\\}",
    ]
}

/// A body: a well-formed form of random arguments, or raw junk bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec((arg_name(), arg_value()), 0..5).prop_map(|pairs| {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form(&pairs).into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// The content types a body is sent with.
fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "application/json",
            "application/x-ndjson",
            "text/plain",
            "application/x-www-form-urlencoded; charset=latin1",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}/[a-z+.-]{1,8}",
    ])
}

/// Forms and query strings of random arguments on every non-streaming route: never 5xx.
#[test]
fn forms_and_query_strings() {
    let routes = prop::sample::select(vec![
        ("POST", "/q/fz"),
        ("GET", "/q/fz"),
        ("DELETE", "/q/fz/fz:1"),
        ("POST", "/q/fz/fz:1"),
        ("POST", "/q/fz.dead/redrive"),
        ("POST", "/"),
        ("GET", "/"),
        ("POST", "/queue"),
        ("GET", "/p/fz"),
        ("POST", "/p/fz"),
        ("POST", "/control/fz"),
        ("GET", "/stats/fz"),
        ("GET", "/stats/"),
        ("GET", "/j/fz"),
        ("GET", "/q/"),
        ("POST", "/c/fz"),
    ]);
    let query = prop::collection::vec((arg_name(), arg_value()), 0..4);
    run(1000, (routes, query, content_type(), body()), |s, ((method, path), query, ct, body)| {
        Box::pin(async move {
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let target = if pairs.is_empty() { path.to_owned() } else { format!("{path}?{}", form(&pairs)) };
            let answer = send(s, method, &target, ct.as_deref(), &body).await;
            check(&format!("{method} {target} ({ct:?}, {} bytes)", body.len()), &answer);
        })
    });
}

/// Arbitrary JSON, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-z]{1,6}(:[0-9]{1,3})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON commands with any field values, and any JSON at all, as a raw body and as the
/// `body` form field: never 5xx; a well-formed command never 4xx on its cmd.
#[test]
fn json_commands() {
    let cmd = prop_oneof![
        prop::sample::select(vec!["add", "get", "take", "del", "reserve", "ack", "nack"])
            .prop_map(Value::from),
        any_json(),
    ];
    let queue = prop_oneof![names().prop_map(Value::from), "[a-z]{1,3}".prop_map(Value::from), any_json()];
    let value = prop_oneof![any::<String>().prop_map(Value::from), any_json()];
    let key =
        prop_oneof!["[a-z]{1,3}:[0-9]{1,3}".prop_map(Value::from), names().prop_map(Value::from), any_json()];
    let lease =
        prop_oneof![any::<u64>().prop_map(Value::from), (0u64..100).prop_map(Value::from), any_json()];
    let command = (cmd, queue, value, key, lease).prop_map(|(cmd, queue, value, key, lease)| {
        json!({"cmd": cmd, "queue": queue, "value": value, "key": key, "lease": lease})
    });
    let doc = prop_oneof![command, any_json()];
    run(1000, (doc, any::<bool>()), |s, (doc, as_form)| {
        Box::pin(async move {
            let text = doc.to_string();
            let answer = if as_form {
                send(s, "POST", "/queue", FORM, form(&[("body", &text)]).as_bytes()).await
            } else {
                send(s, "POST", "/queue", JSON, text.as_bytes()).await
            };
            check(&format!("POST /queue {text}"), &answer);
        })
    });
}
