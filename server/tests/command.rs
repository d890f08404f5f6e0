//! RestMQ's JSON protocol on `POST /queue` (SPEC §2): the three ways to send a command and
//! the `add`, `get`, `take` and `del` answers.

mod common;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};

const JSON: &str = "application/json";

/// How a command document reaches the server.
#[derive(Clone, Copy, Debug)]
enum Via {
    BodyField,
    MsgField,
    RawJson,
}

/// Sends `doc` to `POST /queue` and returns (status, content type, body).
async fn cmd_via(s: &TestServer, via: Via, doc: &str) -> (u16, String, String) {
    let req = s.http.post(s.url("/queue"));
    let req = match via {
        Via::BodyField => req.form(&[("body", doc)]),
        Via::MsgField => req.form(&[("msg", doc)]),
        Via::RawJson => req.header("content-type", "application/json").body(doc.to_owned()),
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type =
        res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

/// Sends `doc` as form field `body`, asserting a 200 JSON answer, and returns the body.
async fn cmd(s: &TestServer, doc: &str) -> String {
    let (status, content_type, body) = cmd_via(s, Via::BodyField, doc).await;
    assert_eq!((status, content_type.as_str()), (200, JSON), "{doc} → {body}");
    body
}

/// `GET /j/<queue>` as JSON: the newest keys and the length.
async fn recent(s: &TestServer, queue: &str) -> Value {
    s.get_json(&format!("/j/{queue}")).await
}

/// `add` works with the document in form field `body`, in `msg`, and as a raw JSON body.
async fn add_every_way(store: StoreKind) {
    let s = TestServer::start(store).await;
    for (n, via) in [Via::BodyField, Via::MsgField, Via::RawJson].into_iter().enumerate() {
        let doc = format!(r#"{{"cmd":"add","queue":"c","value":"v{n}"}}"#);
        let want = format!(r#"{{"queue":"c","key":"c:{}","value":"v{n}"}}"#, n + 1);
        assert_eq!(cmd_via(&s, via, &doc).await, (200, JSON.into(), want), "{via:?}");
    }
    for n in 0..3 {
        let want = format!("{{\"key\":\"c:{}\",\"value\":\"v{n}\",\"count\":0}}\r\n", n + 1);
        assert_eq!(s.get("/q/c").await, (200, want));
    }
}

/// `get`, `take` and `del` are understood in every one of the three carriers too.
async fn other_commands_every_way(store: StoreKind) {
    let s = TestServer::start(store).await;
    for via in [Via::BodyField, Via::MsgField, Via::RawJson] {
        s.add("w", "x").await;
        s.add("w", "y").await;
        let got = cmd_via(&s, via, r#"{"cmd":"get","queue":"w"}"#).await.2;
        let key = serde_json::from_str::<Value>(&got).unwrap()["key"].as_str().unwrap().to_owned();
        assert_eq!(got, format!(r#"{{"queue":"w","key":"{key}","value":"x","count":1}}"#), "{via:?}");
        let taken = cmd_via(&s, via, r#"{"cmd":"take","queue":"w"}"#).await.2;
        assert_eq!(taken, format!(r#"{{"queue":"w","key":"{key}","value":"x"}}"#), "{via:?}");
        let last = recent(&s, "w").await["keys"][0].as_str().unwrap().to_owned();
        let doc = format!(r#"{{"cmd":"del","queue":"w","key":"{last}"}}"#);
        let deleted = cmd_via(&s, via, &doc).await.2;
        assert_eq!(deleted, format!(r#"{{"queue":"w","key":"{last}","deleted":true}}"#), "{via:?}");
        assert_eq!(recent(&s, "w").await["len"], 0, "{via:?}");
    }
}

/// `get` is a soft get: the same oldest message with count 1, 2, 3, still in the queue.
async fn get_is_soft_and_counts(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("g", "first").await;
    s.add("g", "second").await;
    for count in 1..=3 {
        let want = format!(r#"{{"queue":"g","key":"g:1","value":"first","count":{count}}}"#);
        assert_eq!(cmd(&s, r#"{"cmd":"get","queue":"g"}"#).await, want);
    }
    assert_eq!(recent(&s, "g").await, json!({"queue": "g", "len": 2, "keys": ["g:2", "g:1"]}));
    assert_eq!(s.get("/q/g?soft=1").await.1, "{\"key\":\"g:1\",\"value\":\"first\",\"count\":4}\r\n");
}

/// `take` removes the oldest message, in key order, then answers `{"error":"empty queue"}`.
async fn take_is_hard(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("t", "a").await;
    s.add("t", "b").await;
    assert_eq!(cmd(&s, r#"{"cmd":"take","queue":"t"}"#).await, r#"{"queue":"t","key":"t:1","value":"a"}"#);
    assert_eq!(cmd(&s, r#"{"cmd":"take","queue":"t"}"#).await, r#"{"queue":"t","key":"t:2","value":"b"}"#);
    assert_eq!(cmd(&s, r#"{"cmd":"take","queue":"t"}"#).await, r#"{"error":"empty queue"}"#);
    assert_eq!(s.get("/q/t").await, (204, String::new()));
}

/// `get` and `take` on an empty or unknown queue answer `{"error":"empty queue"}`.
async fn empty_queue_answer(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(cmd(&s, r#"{"cmd":"get","queue":"nothing"}"#).await, r#"{"error":"empty queue"}"#);
    assert_eq!(cmd(&s, r#"{"cmd":"take","queue":"nothing"}"#).await, r#"{"error":"empty queue"}"#);
    assert_eq!(s.get_json("/q/").await, json!([]));
}

/// `del` removes exactly the named key of its own queue; a second `del` says `false`.
async fn del_own_key(store: StoreKind) {
    let s = TestServer::start(store).await;
    for v in ["a", "b", "c"] {
        s.add("d", v).await;
    }
    let del = r#"{"cmd":"del","queue":"d","key":"d:2"}"#;
    assert_eq!(cmd(&s, del).await, r#"{"queue":"d","key":"d:2","deleted":true}"#);
    assert_eq!(recent(&s, "d").await, json!({"queue": "d", "len": 2, "keys": ["d:3", "d:1"]}));
    assert_eq!(cmd(&s, del).await, r#"{"queue":"d","key":"d:2","deleted":false}"#);
    let missing = r#"{"cmd":"del","queue":"d","key":"d:99"}"#;
    assert_eq!(cmd(&s, missing).await, r#"{"queue":"d","key":"d:99","deleted":false}"#);
    assert_eq!(s.get("/q/d").await.1, "{\"key\":\"d:1\",\"value\":\"a\",\"count\":0}\r\n");
    assert_eq!(s.get("/q/d").await.1, "{\"key\":\"d:3\",\"value\":\"c\",\"count\":0}\r\n");
}

/// `del` of another queue's key is refused with 400 `invalid_key`, and nothing is deleted.
async fn del_foreign_key_refused(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("mine", "m").await;
    s.add("theirs", "t").await;
    for via in [Via::BodyField, Via::MsgField, Via::RawJson] {
        let (status, content_type, body) =
            cmd_via(&s, via, r#"{"cmd":"del","queue":"mine","key":"theirs:1"}"#).await;
        assert_eq!((status, content_type.as_str()), (400, JSON), "{via:?}: {body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(err["error"]["code"], "invalid_key", "{body}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    assert_eq!(recent(&s, "theirs").await, json!({"queue": "theirs", "len": 1, "keys": ["theirs:1"]}));
    assert_eq!(recent(&s, "mine").await, json!({"queue": "mine", "len": 1, "keys": ["mine:1"]}));
    assert_eq!(s.get("/q/theirs").await.1, "{\"key\":\"theirs:1\",\"value\":\"t\",\"count\":0}\r\n");
}

/// Object and array values are stored as their compact JSON text; scalars as their text.
async fn structured_values_become_text(store: StoreKind) {
    let s = TestServer::start(store).await;
    let cases = [
        (r#"{ "a" : [1, 2], "b" : {"c" : "d"} }"#, r#"{"a":[1,2],"b":{"c":"d"}}"#),
        (r#"[1, "two", null, true]"#, r#"[1,"two",null,true]"#),
        ("42", "42"),
        (r#""123""#, "123"),
    ];
    for (n, (value, text)) in cases.iter().enumerate() {
        let doc = format!(r#"{{"cmd":"add","queue":"s","value":{value}}}"#);
        let want = json!({"queue": "s", "key": format!("s:{}", n + 1), "value": text});
        assert_eq!(serde_json::from_str::<Value>(&cmd(&s, &doc).await).unwrap(), want, "{value}");
    }
    for (n, (_, text)) in cases.iter().enumerate() {
        let got: Value = serde_json::from_str(s.get("/q/s").await.1.trim_end()).unwrap();
        assert_eq!(got, json!({"key": format!("s:{}", n + 1), "value": text, "count": 0}));
    }
}

/// Unicode and CRLF inside a JSON-protocol value survive the round trip unchanged.
async fn text_values_survive(store: StoreKind) {
    let s = TestServer::start(store).await;
    let doc = json!({"cmd": "add", "queue": "u", "value": "日本語 ✓ 🎉\r\n\"quoted\""}).to_string();
    let added: Value = serde_json::from_str(&cmd(&s, &doc).await).unwrap();
    assert_eq!(added["value"], "日本語 ✓ 🎉\r\n\"quoted\"");
    let taken: Value = serde_json::from_str(&cmd(&s, r#"{"cmd":"take","queue":"u"}"#).await).unwrap();
    assert_eq!(taken, json!({"queue": "u", "key": "u:1", "value": "日本語 ✓ 🎉\r\n\"quoted\""}));
}

on_every_store!(
    add_every_way,
    other_commands_every_way,
    get_is_soft_and_counts,
    take_is_hard,
    empty_queue_answer,
    del_own_key,
    del_foreign_key_refused,
    structured_values_become_text,
    text_values_survive,
);
