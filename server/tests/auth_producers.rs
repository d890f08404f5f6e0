//! Every way to add passes the same producer rules: tokens and RestMQ's `acl.conf`
//! `[rest:producer]` alike, on REST, `/`, the JSON protocol, batches, delays, collectd,
//! WebSocket `add` frames and redrive (which produces into the live queue).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use restmq_server::config::{ServeConfig, StoreKind};
use restmq_server::feed::Sink;
use restmq_shared::QueueName;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const TOKENS: &str = r#"{"tokens": [
    {"name": "root", "token": "t-root", "queues": ["*"], "rights": ["produce", "consume", "admin"]},
    {"name": "consumer", "token": "t-cons", "queues": ["*"], "rights": ["consume"]},
    {"name": "t1-star", "token": "t-t1", "queues": ["t1.*"], "rights": ["produce", "consume", "admin"]},
    {"name": "t1-both", "token": "t-t1both", "queues": ["t1.*", "t1"], "rights": ["produce", "admin"]},
    {"name": "t1-live", "token": "t-t1live", "queues": ["t1"], "rights": ["produce", "admin"]}
]}"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(dir: &Path, tokens: bool, acl: Option<&str>) -> TestServer {
    let tokens = tokens.then(|| write(dir, "tokens.json", TOKENS));
    let acl = acl.map(|text| write(dir, "acl.conf", text));
    TestServer::start_with(StoreKind::Memory, |c: &mut ServeConfig| {
        c.auth.auth_tokens = tokens;
        c.auth.acl = acl;
    })
    .await
}

/// A figure of `/stats/<queue>` (read with the root token when tokens are on): `len`, or
/// `added` (what this server added, whether or not a streaming consumer took it since); 0
/// for a queue that does not exist (404).
async fn stat(s: &TestServer, queue: &str, figure: &str) -> u64 {
    let res = s.http.get(s.url(&format!("/stats/{queue}"))).bearer_auth("t-root").send().await.unwrap();
    if res.status() == 404 {
        return 0;
    }
    let body: Value = res.json().await.unwrap();
    body[figure].as_u64().unwrap_or_else(|| panic!("{figure}: {body}"))
}

async fn len(s: &TestServer, queue: &str) -> u64 {
    stat(s, queue, "len").await
}

async fn added(s: &TestServer, queue: &str) -> u64 {
    stat(s, queue, "added").await
}

/// Opens `/ws/<path>` with extra request headers.
async fn open(s: &TestServer, path: &str, headers: &[(&'static str, &str)]) -> Socket {
    let mut req = s.ws_url(path).into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.unwrap_or_else(|e| panic!("open {path}: {e}")).0
}

/// Sends `frame` and returns the first answer frame that is not a streamed message.
async fn answer(ws: &mut Socket, frame: Value) -> Value {
    ws.send(Message::Text(frame.to_string().into())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await.expect("socket open").expect("a frame") {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame.get("key").is_none() {
                        return frame;
                    }
                }
                _ => continue,
            }
        }
    })
    .await
    .expect("an answer within 5 s")
}

fn add_frame(value: &str) -> Value {
    json!({"cmd": "add", "value": value})
}

const DENY_PRODUCERS: &str = "[rest:producer]\nhosts_deny = 127.0.0.1\n";

/// With `[rest:producer]` denying the client, every way to add is refused and adds nothing:
/// REST, `/`, the JSON protocol (form and raw body), batches, delays, collectd, and WebSocket
/// `add` frames (plain and `ack=1` sockets), while consuming stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_producer_deny_covers_every_add() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), false, Some(DENY_PRODUCERS)).await;
    let add = r#"{"cmd":"add","queue":"d","value":"v"}"#;
    let collectd = "PUTVAL host/load/load interval=10 1700000000:0.1:0.2:0.3\n";
    let event = "PUTNOTIF severity=okay time=1700000000 message=hi\n";
    let requests = [
        s.http.post(s.url("/q/d")).form(&[("value", "v")]),
        s.http.post(s.url("/")).form(&[("queue", "d"), ("value", "v")]),
        s.http.post(s.url("/queue")).form(&[("body", add)]),
        s.http.post(s.url("/queue")).header("content-type", "application/json").body(add),
        s.http.post(s.url("/q/d")).header("content-type", "application/x-ndjson").body("\"a\"\n\"b\"\n"),
        s.http.post(s.url("/q/d?batch=1")).header("content-type", "application/json").body(r#"["a"]"#),
        s.http.post(s.url("/q/d")).form(&[("value", "v"), ("delay", "1")]),
        s.http.post(s.url("/q/d")).header("idempotency-key", "k").form(&[("value", "v")]),
        s.http.post(s.url("/q/d.dead/redrive")),
        s.http.post(s.url("/collectd/data")).body(collectd),
        s.http.post(s.url("/collectd/event")).body(event),
    ];
    for req in requests {
        let res = req.send().await.unwrap();
        let url = res.url().clone();
        assert_eq!(res.status(), 403, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{url}");
    }
    let mut ws = open(&s, "/ws/d", &[]).await;
    let refused = answer(&mut ws, add_frame("v")).await;
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("rest:producer"), "{refused}");
    let mut acked = open(&s, "/ws/d?ack=1", &[]).await;
    let refused = answer(&mut acked, add_frame("v")).await;
    assert!(refused.get("error").is_some(), "an ack socket takes no add frames: {refused}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the refused delay
    for queue in ["d", "collectd_data", "collectd_event"] {
        assert_eq!(added(&s, queue).await, 0, "{queue}: nothing added");
    }
}

/// A feed relaying over HTTP (`restmq feed --server URL`, [`Sink::http`]) posts to
/// `POST /q/<queue>` and meets the same rules: refused (403) by `[rest:producer]`, and 401
/// against a server with tokens, since the feed sends no credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_feed_sink_meets_the_producer_rules() {
    let dir = tempfile::tempdir().unwrap();
    let queue = QueueName::try_from("fed").unwrap();
    let denied = start(dir.path(), false, Some(DENY_PRODUCERS)).await;
    let err = Sink::http(&denied.url("")).publish(&queue, "v".to_owned(), None).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(added(&denied, "fed").await, 0);
    let tokens = start(dir.path(), true, None).await;
    let err = Sink::http(&tokens.url("")).publish(&queue, "v".to_owned(), None).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(added(&tokens, "fed").await, 0);
}

/// `[rest:producer]` with a password: a WebSocket `add` frame needs the same credentials as
/// `POST /q/<q>`, sent on the upgrade as Basic auth or RestMQ's `auth=` cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_producer_password_applies_to_add_frames() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), false, Some("[rest:producer]\nusername = lero\npassword = s3cret\n")).await;
    let mut anonymous = open(&s, "/ws/p", &[]).await;
    let refused = answer(&mut anonymous, add_frame("v")).await;
    assert_eq!(refused["error"]["code"], "unauthorized", "{refused}");
    let mut wrong = open(&s, "/ws/p", &[("authorization", "Basic bGVybzp3cm9uZw==")]).await; // lero:wrong
    assert_eq!(answer(&mut wrong, add_frame("v")).await["error"]["code"], "unauthorized");
    assert_eq!(added(&s, "p").await, 0, "refused frames add nothing");
    let mut basic = open(&s, "/ws/p", &[("authorization", "Basic bGVybzpzM2NyZXQ=")]).await; // lero:s3cret
    assert_eq!(answer(&mut basic, add_frame("a")).await, json!({"added": "p:1"}));
    let mut cookie = open(&s, "/ws/p", &[("cookie", "theme=x; auth=lero:s3cret")]).await;
    assert_eq!(answer(&mut cookie, add_frame("b")).await, json!({"added": "p:2"}));
    assert_eq!(added(&s, "p").await, 2);
}

/// Tokens and `acl.conf` together: a WebSocket `add` frame needs the token's `produce` right on
/// the socket's queue (header or `?token=`) and the address allowed by `[rest:producer]`;
/// `ack` and `nack` frames on an `ack=1` socket need only what opening it needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_frames_need_every_producer_rule() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), true, None).await;
    let mut consumer = open(&s, "/ws/w", &[("authorization", "Bearer t-cons")]).await;
    assert_eq!(answer(&mut consumer, add_frame("v")).await["error"]["code"], "forbidden");
    let mut by_query = open(&s, "/ws/w?token=t-cons", &[]).await;
    assert_eq!(answer(&mut by_query, add_frame("v")).await["error"]["code"], "forbidden");
    let mut root = open(&s, "/ws/w?token=t-root", &[]).await;
    assert_eq!(answer(&mut root, add_frame("v")).await, json!({"added": "w:1"}));
    let mut garbage = open(&s, "/ws/w?token=t-cons", &[]).await;
    let refused = answer(&mut garbage, json!({"cmd": "purge"})).await;
    assert_eq!(refused["error"]["code"], "forbidden", "no right, no parsing: {refused}");
    assert_eq!(added(&s, "w").await, 1);

    let res = s.http.post(s.url("/q/acks")).bearer_auth("t-root").form(&[("value", "v")]).send().await;
    assert_eq!(res.unwrap().status(), 200);
    let mut acked = open(&s, "/ws/acks?ack=1&token=t-cons", &[]).await;
    let leased = tokio::time::timeout(Duration::from_secs(5), acked.next()).await.unwrap().unwrap().unwrap();
    let leased: Value = serde_json::from_str(leased.to_text().unwrap()).unwrap();
    assert_eq!(leased["key"], "acks:1", "{leased}");
    acked.send(Message::Text(json!({"cmd": "ack", "key": "acks:1"}).to_string().into())).await.unwrap();
    let refused = answer(&mut acked, add_frame("v")).await;
    assert!(refused.get("error").is_some(), "no add on an ack socket: {refused}");
    assert_eq!(added(&s, "acks").await, 1, "nothing added by the frame");
    drop(acked);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(len(&s, "acks").await, 0, "acknowledged: not given back when the socket closed");
    drop(s);

    let both = start(dir.path(), true, Some(DENY_PRODUCERS)).await;
    let mut root = open(&both, "/ws/w?token=t-root", &[]).await;
    let refused = answer(&mut root, add_frame("v")).await;
    assert_eq!(refused["error"]["code"], "forbidden", "acl.conf still applies: {refused}");
    assert_eq!(added(&both, "w").await, 0);
}

/// `POST /q/<q>.dead/redrive` needs `produce` on `<q>` besides `admin` on `<q>.dead`: a token
/// for `t1.*` cannot launder messages into `t1` through `t1.dead`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_needs_produce_on_the_live_queue() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), true, None).await;
    let post = |path: &str, token: &str| s.http.post(s.url(path)).bearer_auth(token);
    let res = post("/q/t1.dead", "t-t1").form(&[("value", "injected")]).send().await.unwrap();
    assert_eq!(res.status(), 200, "t1.* covers t1.dead");
    let res = post("/q/t1.dead/redrive", "t-t1").send().await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("queue t1"), "{body}");
    let res = post("/q/t1.dead/redrive", "t-t1live").send().await.unwrap();
    assert_eq!(res.status(), 403, "produce on t1 without admin on t1.dead");
    assert_eq!((len(&s, "t1").await, len(&s, "t1.dead").await), (0, 1), "nothing moved");
    let res = post("/q/t1.dead/redrive", "t-t1both").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queue": "t1", "redriven": 1}));
    assert_eq!((len(&s, "t1").await, len(&s, "t1.dead").await), (1, 0));
}
