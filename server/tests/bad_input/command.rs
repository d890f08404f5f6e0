//! `POST /queue` JSON commands: malformed documents, unknown commands, missing fields.

use super::*;

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

/// The unknown-command error of `/queue` lists every command `/queue` accepts, and only those.
async fn unknown_command_lists_the_accepted(store: StoreKind) {
    let s = seeded(store).await;
    let res = raw_command(&s, r#"{"cmd":"frobnicate","queue":"seed"}"#).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
    let listed: Vec<&str> = message.split("known are ").nth(1).unwrap_or_default().split(", ").collect();
    for cmd in ["add", "get", "take", "del", "reserve", "ack", "nack"] {
        assert!(listed.contains(&cmd), "{cmd} missing from {message:?}");
    }
    for cmd in &listed {
        let doc = json!({"cmd": cmd, "queue": "other", "key": "other:1", "value": "x"}).to_string();
        let res = raw_command(&s, doc).send().await.unwrap();
        let body: Value = res.json().await.unwrap_or_default();
        assert_ne!(body["error"]["code"], "unknown_command", "{message:?} lists {cmd}, which is refused");
    }
}

/// A WebSocket frame with a command other than `add` is answered with an error naming `add`
/// as the only command a frame may carry.
async fn websocket_unknown_command_lists_add(store: StoreKind) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let s = seeded(store).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/frames")).await.unwrap();
    ws.send(Message::text(r#"{"cmd":"take","value":"x"}"#)).await.unwrap();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("an answer");
    let body: Value = serde_json::from_str(&frame.unwrap().unwrap().to_string()).unwrap();
    assert_eq!(body["error"]["code"], "unknown_command", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("known are add"), "{message}");
}

crate::on_every_store!(
    malformed_json,
    unknown_command,
    unknown_command_lists_the_accepted,
    websocket_unknown_command_lists_add,
    missing_cmd,
    incomplete_commands,
    json_bad_queue_name,
    json_malformed_key,
    json_missing_fields,
);
