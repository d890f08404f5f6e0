//! RestMQ's own curl smoke sequence, end to end over real sockets.

mod common;

use common::TestServer;
use restmq_server::config::StoreKind;

/// POST /, POST /queue with `body=`, POST/GET /q, control stop/start, DELETE, policy, then
/// COMET: each step answers as SPEC §1 says.
async fn smoke_sequence(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.get("/healthz").await, (200, r#"{"status":"ok"}"#.into()));
    assert_eq!(s.get_json("/readyz").await["status"], "ready");
    assert_eq!(s.post_form("/", &[("queue", "test"), ("value", "first")]).await, (200, "test:1\r\n".into()));
    let (status, body) =
        s.post_form("/queue", &[("body", r#"{"cmd":"add","queue":"test","value":"second"}"#)]).await;
    assert_eq!((status, body.as_str()), (200, r#"{"queue":"test","key":"test:2","value":"second"}"#));
    assert_eq!(s.add("test", "hi").await, "test:3");
    assert_eq!(
        s.get("/q/test").await,
        (200, "{\"key\":\"test:1\",\"value\":\"first\",\"count\":0}\r\n".into())
    );
    let stopped = s.post_form("/control/test", &[("status", "stop")]).await;
    assert_eq!(stopped, (200, "{\"stat\":{\"queue\":\"test\",\"status\":0}}\r\n".into()));
    assert_eq!(s.get_json("/control/test").await["state"], "paused");
    let started = s.post_form("/control/test", &[("status", "start")]).await;
    assert_eq!(started, (200, "{\"stat\":{\"queue\":\"test\",\"status\":1}}\r\n".into()));
    let res = s.http.delete(s.url("/q/test")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "{\"queue\":\"test\",\"status\":1}\r\n");
    assert_eq!(s.get("/q/test").await.0, 204);
    assert_eq!(s.post_form("/p/test", &[("policy", "roundrobin")]).await, (200, "OK\r\n".into()));
    assert_eq!(s.get("/p/test").await.1, "{\"queue\":\"test\",\"value\":\"roundrobin\"}\r\n");
    assert_eq!(s.post_form("/p/test", &[("policy", "broadcast")]).await, (200, "OK\r\n".into()));
    assert_eq!(s.get("/p/test").await.1, "{\"queue\":\"test\",\"value\":\"broadcast\"}\r\n");

    let mut comet = s.http.get(s.url("/c/test")).send().await.unwrap();
    assert_eq!(comet.status(), 200);
    assert!(comet.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let key = s.add("test", "streamed").await;
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), comet.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&chunk).unwrap(),
        format!("{{\"key\":\"{key}\",\"value\":\"streamed\"}}\r\n")
    );
}

on_every_store!(smoke_sequence);
