//! Queue administration end to end (SPEC §1): policy (`/p`), pause and resume (`/control`)
//! and figures (`/stats`).

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

fn store_name(store: StoreKind) -> &'static str {
    match store {
        StoreKind::Memory => "memory",
        StoreKind::Embedded => "embedded",
        StoreKind::Redis => "redis",
    }
}

/// The figures `/stats` should show for a queue.
#[allow(clippy::too_many_arguments)]
fn figures(
    name: &str,
    len: u64,
    status: &str,
    policy: &str,
    consumers: u64,
    added: u64,
    taken: u64,
    delivered: u64,
) -> Value {
    let code = |word: &str| match word {
        "started" | "broadcast" => json!(1),
        "paused" => json!(0),
        "roundrobin" => json!(2),
        _ => json!(""),
    };
    let policy_name = if policy.is_empty() { "broadcast" } else { policy };
    let state = if status.is_empty() { "started" } else { status };
    json!({
        "queue": name, "name": name, "len": len, "status": code(status), "policy": code(policy),
        "state": state, "policy_name": policy_name,
        "consumers": consumers, "added": added, "taken": taken, "delivered": delivered,
    })
}

/// GET /p/<q> answers broadcast for a queue whose policy was never set.
async fn policy_defaults_to_broadcast(store: StoreKind) {
    let s = TestServer::start(store).await;
    let got = send(s.http.get(s.url("/p/fresh"))).await;
    assert_eq!(got, (200, JSON.into(), "{\"queue\":\"fresh\",\"value\":\"broadcast\"}\r\n".into()));
    s.add("used", "x").await;
    assert_eq!(s.get("/p/used").await, (200, "{\"queue\":\"used\",\"value\":\"broadcast\"}\r\n".into()));
}

/// POST /p/<q> sets roundrobin and back to broadcast, answering `OK\r\n` each time.
async fn policy_set_and_read_back(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("pq", "x").await;
    let set = |p: &'static str| s.http.post(s.url("/p/pq")).form(&[("policy", p)]);
    assert_eq!(send(set("roundrobin")).await, (200, TEXT.into(), "OK\r\n".into()));
    assert_eq!(s.get("/p/pq").await.1, "{\"queue\":\"pq\",\"value\":\"roundrobin\"}\r\n");
    assert_eq!(s.get_json("/stats/pq").await["policy"], 2);
    assert_eq!(send(set("broadcast")).await, (200, TEXT.into(), "OK\r\n".into()));
    assert_eq!(s.get("/p/pq").await.1, "{\"queue\":\"pq\",\"value\":\"broadcast\"}\r\n");
    assert_eq!(s.get_json("/stats/pq").await["policy"], 1);
    let by_query = s.http.post(s.url("/p/pq?policy=roundrobin"));
    assert_eq!(send(by_query).await, (200, TEXT.into(), "OK\r\n".into()));
    assert_eq!(s.get("/p/pq").await.1, "{\"queue\":\"pq\",\"value\":\"roundrobin\"}\r\n");
    assert_eq!(s.get_json("/j/pq").await["len"], 1, "setting a policy leaves the messages");
}

/// GET /control/<q> says started by default, in RestMQ's shape (`status` holds `{queue,status}`
/// with 1 or 0, `state` the word); stop/start answer `{"stat":…}` with 0 and 1; all end `\r\n`.
async fn control_get_and_set(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("cq", "x").await;
    let got = send(s.http.get(s.url("/control/cq"))).await;
    let started = "{\"queue\":\"cq\",\"status\":{\"queue\":\"cq\",\"status\":1},\"state\":\"started\"}\r\n";
    let paused = "{\"queue\":\"cq\",\"status\":{\"queue\":\"cq\",\"status\":0},\"state\":\"paused\"}\r\n";
    assert_eq!(got, (200, JSON.into(), started.into()));
    let set = |st: &'static str| s.http.post(s.url("/control/cq")).form(&[("status", st)]);
    let stat = |n: u8| format!("{{\"stat\":{{\"queue\":\"cq\",\"status\":{n}}}}}\r\n");
    assert_eq!(send(set("stop")).await, (200, JSON.into(), stat(0)));
    assert_eq!(s.get("/control/cq").await.1, paused);
    assert_eq!(s.get_json("/stats/cq").await["status"], 0);
    assert_eq!(send(set("stop")).await.2, stat(0), "stop twice");
    assert_eq!(send(set("start")).await, (200, JSON.into(), stat(1)));
    assert_eq!(s.get("/control/cq").await.1, started);
    assert_eq!(s.get_json("/stats/cq").await["status"], 1);
}

/// A paused queue still serves REST gets: pause only shapes streaming delivery.
async fn pause_does_not_block_rest_gets(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("held", "v").await;
    s.post_form("/control/held", &[("status", "stop")]).await;
    s.post_form("/p/held", &[("policy", "roundrobin")]).await;
    assert_eq!(s.get("/q/held").await, (200, "{\"key\":\"held:1\",\"value\":\"v\",\"count\":0}\r\n".into()));
}

/// GET /control/ and /control list every queue's status, in RestMQ's shape.
async fn control_lists_every_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    let empty = "{\"queues\":{},\"count\":0}\r\n";
    assert_eq!(send(s.http.get(s.url("/control/"))).await, (200, JSON.into(), empty.into()));
    s.add("a", "x").await;
    s.add("c", "x").await;
    s.post_form("/control/b", &[("status", "stop")]).await;
    let want = concat!(
        r#"{"queues":{"a":{"queue":"a","status":1},"b":{"queue":"b","status":0},"#,
        r#""c":{"queue":"c","status":1}},"count":3}"#,
        "\r\n"
    );
    assert_eq!(send(s.http.get(s.url("/control/"))).await, (200, JSON.into(), want.into()));
    assert_eq!(s.get("/control").await, (200, want.into()));
}

/// A policy or control call creates the queue: it appears in /q/, /control/ and /stats/, with
/// RestMQ's raw codes (`""` for what was never set).
async fn policy_and_control_create_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    assert_eq!(s.post_form("/p/bypolicy", &[("policy", "roundrobin")]).await, (200, "OK\r\n".into()));
    assert_eq!(s.get_json("/q/").await, json!(["bypolicy"]));
    s.post_form("/control/bycontrol", &[("status", "start")]).await;
    assert_eq!(s.get_json("/q/").await, json!(["bycontrol", "bypolicy"]));
    let stats = s.get_json("/stats/").await;
    assert_eq!(stats["count"], 2);
    // On Redis, as in RestMQ, only a queue's first message or a control call writes its status.
    let status = if store == StoreKind::Redis { "" } else { "started" };
    assert_eq!(stats["queues"]["bypolicy"], figures("bypolicy", 0, status, "roundrobin", 0, 0, 0, 0));
    assert_eq!(stats["queues"]["bycontrol"], figures("bycontrol", 0, "started", "", 0, 0, 0, 0));
    assert_eq!(s.add("bypolicy", "first").await, "bypolicy:1");
    assert_eq!(s.get_json("/stats/bypolicy").await["status"], 1);
}

/// Purging a queue removes its messages and keeps its policy, pause and key counter, as RestMQ
/// did; the answer is `status` 1 when it held messages, 0 when there was nothing to remove.
async fn purge_keeps_settings(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("r", "x").await;
    s.post_form("/p/r", &[("policy", "roundrobin")]).await;
    s.post_form("/control/r", &[("status", "stop")]).await;
    let purged = send(s.http.delete(s.url("/q/r"))).await;
    assert_eq!(purged.2, "{\"queue\":\"r\",\"status\":1}\r\n");
    assert_eq!(send(s.http.delete(s.url("/q/r"))).await.2, "{\"queue\":\"r\",\"status\":0}\r\n");
    assert_eq!(s.get_json("/p/r").await["value"], "roundrobin");
    assert_eq!(s.get_json("/control/r").await["state"], "paused");
    assert_eq!(s.get_json("/control/").await["count"], 1);
    assert_eq!(s.get_json("/stats/r").await["len"], 0);
    assert_eq!(s.add("r", "y").await, "r:2", "keys are never reused");
}

/// /stats/ (and /stats) give `count`, every queue's figures and the store kind.
async fn stats_shape(store: StoreKind) {
    let s = TestServer::start(store).await;
    let (status, content_type, body) = send(s.http.get(s.url("/stats/"))).await;
    assert_eq!((status, content_type.as_str()), (200, JSON));
    let want = json!({"count": 0, "queues": {}, "store": store_name(store)});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), want);

    for v in ["1", "2", "3"] {
        s.add("q", v).await;
    }
    s.get("/q/q").await;
    s.get("/q/q?soft=1").await;
    s.add("other", "x").await;
    s.post_form("/p/other", &[("policy", "roundrobin")]).await;
    s.post_form("/control/other", &[("status", "stop")]).await;
    let want = json!({
        "count": 2,
        "queues": {
            "q": figures("q", 2, "started", "", 0, 3, 1, 0),
            "other": figures("other", 1, "paused", "roundrobin", 0, 1, 0, 0),
        },
        "store": store_name(store),
    });
    assert_eq!(s.get_json("/stats/").await, want);
    assert_eq!(s.get_json("/stats").await, want);
}

/// /stats/ counts connected streaming consumers and the messages handed to them.
async fn stats_count_consumers_and_deliveries(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.post_form("/control/live", &[("status", "start")]).await;
    assert_eq!(s.get_json("/stats/live").await["consumers"], 0);
    let mut comet = s.http.get(s.url("/c/live")).send().await.unwrap();
    assert_eq!(comet.status(), 200);
    assert_eq!(s.get_json("/stats/").await["queues"]["live"]["consumers"], 1, "the COMET consumer counts");
    s.add("live", "pushed").await;
    let chunk = tokio::time::timeout(Duration::from_secs(5), comet.chunk()).await.unwrap().unwrap().unwrap();
    assert_eq!(&chunk[..], b"{\"key\":\"live:1\",\"value\":\"pushed\"}\r\n");
    let stats = s.get_json("/stats/live").await;
    assert_eq!(stats, figures("live", 0, "started", "", 1, 1, 0, 1));
}

/// /stats/<q> gives one queue's figures; an unknown queue answers `len` 0, as RestMQ did, and
/// is not created.
async fn stats_one_queue(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("one", "a").await;
    s.add("one", "b").await;
    let (status, content_type, body) = send(s.http.get(s.url("/stats/one"))).await;
    assert_eq!((status, content_type.as_str()), (200, JSON));
    let want = figures("one", 2, "started", "", 0, 2, 0, 0);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), want);
    let (status, content_type, body) = send(s.http.get(s.url("/stats/unknown"))).await;
    assert_eq!((status, content_type.as_str()), (200, JSON), "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), figures("unknown", 0, "", "", 0, 0, 0, 0));
    assert_eq!(s.get_json("/q/").await, json!(["one"]), "asking does not create the queue");
}

/// `callback=cb` wraps /p, /control and /stats answers as `cb(<json>);\r\n` (RestMQ's form).
async fn jsonp_on_admin_routes(store: StoreKind) {
    let s = TestServer::start(store).await;
    s.add("jq", "x").await;
    let stats = s.get("/stats/jq").await.1;
    let all = s.get("/stats/").await.1;
    let cases = [
        ("/p/jq?callback=cb".to_owned(), "cb({\"queue\":\"jq\",\"value\":\"broadcast\"});\r\n".to_owned()),
        (
            "/control/jq?callback=cb".to_owned(),
            "cb({\"queue\":\"jq\",\"status\":{\"queue\":\"jq\",\"status\":1},\"state\":\"started\"});\r\n"
                .to_owned(),
        ),
        (
            "/control/?callback=a.b".to_owned(),
            "a.b({\"queues\":{\"jq\":{\"queue\":\"jq\",\"status\":1}},\"count\":1});\r\n".to_owned(),
        ),
        ("/stats/jq?callback=cb".to_owned(), format!("cb({stats});\r\n")),
        ("/stats/?callback=$cb".to_owned(), format!("$cb({all});\r\n")),
    ];
    for (path, want) in cases {
        assert_eq!(send(s.http.get(s.url(&path))).await, (200, JS.into(), want), "GET {path}");
    }
}

on_every_store!(
    policy_defaults_to_broadcast,
    policy_set_and_read_back,
    control_get_and_set,
    pause_does_not_block_rest_gets,
    control_lists_every_queue,
    policy_and_control_create_queue,
    purge_keeps_settings,
    stats_shape,
    stats_count_consumers_and_deliveries,
    stats_one_queue,
    jsonp_on_admin_routes,
);
