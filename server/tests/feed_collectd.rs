//! RestMQ's collectd endpoint: `POST /collectd/data` and `/collectd/event` with collectd's
//! plain text, `write_http` JSON and notification bodies, filters, errors and counters.

mod common;
mod feed_util;

use common::TestServer;
use feed_util::{feed_stats, take_json};
use restmq_server::config::StoreKind;
use serde_json::json;

/// PUTVAL lines (as write_http's Command format sends them) become one message per value list
/// in `collectd_data`; the answer lists their keys; `/stats/` shows the collectd feed.
#[tokio::test]
async fn putval_text() {
    let s = TestServer::start(StoreKind::Embedded).await;
    assert!(s.get_json("/stats/").await.get("feeds").is_none(), "no feeds listed before use");
    let body = "PUTVAL \"web-1/cpu-0/cpu-idle\" interval=10 1700000000:98.5\n\
                PUTVAL web-1/load/load interval=10 1700000000:0.5:0.25:0.1\n";
    assert_eq!(
        s.post_raw("/collectd/data", "text/plain", body).await,
        (200, "collectd_data:1\r\ncollectd_data:2\r\n".into())
    );
    let got = take_json(&s, "collectd_data", 2, 5).await;
    assert_eq!(
        got[0],
        json!({
            "host": "web-1", "plugin": "cpu", "plugin_instance": "0", "type": "cpu", "type_instance": "idle",
            "interval": 10, "time": 1700000000, "values": [98.5],
        })
    );
    assert_eq!(got[1]["values"], json!([0.5, 0.25, 0.1]));
    let stats = feed_stats(&s, "collectd:collectd_data").await;
    assert_eq!(
        stats,
        json!({"kind": "collectd", "queue": "collectd_data", "published": 2, "filtered": 0, "errors": 0, "reconnects": 0})
    );
}

/// write_http's JSON array: each element is one message, whatever the content type says.
#[tokio::test]
async fn write_http_json() {
    let s = TestServer::start(StoreKind::Memory).await;
    let body = json!([
        {"values": [1901474177], "dstypes": ["counter"], "dsnames": ["value"], "time": 1280959128,
         "interval": 10, "host": "leeloo.octo.it", "plugin": "cpu", "plugin_instance": "0",
         "type": "cpu", "type_instance": "idle"},
        {"values": [2], "host": "b", "plugin": "load"}
    ]);
    let (status, keys) = s.post_raw("/collectd/data", "application/json", &body.to_string()).await;
    assert_eq!((status, keys.lines().count()), (200, 2));
    assert_eq!(take_json(&s, "collectd_data", 2, 5).await, body.as_array().unwrap().clone());
}

/// A notification, sent as RestMQ's README did (`curl -d`, a form content type), lands in
/// `collectd_event` with lowercased headers and the message text (also as RestMQ's `event_text`).
#[tokio::test]
async fn event_notification() {
    let s = TestServer::start(StoreKind::Memory).await;
    let body = "Severity: WARNING\nTime: 1288548727\nHost: box\nPlugin: df\n\nDisk is above 90%.\n";
    let (status, keys) = s.post_raw("/collectd/event", "application/x-www-form-urlencoded", body).await;
    assert_eq!((status, keys.as_str()), (200, "collectd_event:1\r\n"));
    assert_eq!(
        take_json(&s, "collectd_event", 1, 5).await[0],
        json!({
            "severity": "WARNING", "time": "1288548727", "host": "box", "plugin": "df", "message": "Disk is above 90%.",
            "event_text": "Disk is above 90%.",
        })
    );
}

/// A body that is neither collectd text nor JSON is a 400 with the error body; nothing is added.
#[tokio::test]
async fn bad_bodies_are_refused() {
    let s = TestServer::start(StoreKind::Memory).await;
    for (path, body) in [("/collectd/data", "hello"), ("/collectd/data", "[1,"), ("/collectd/event", "\n\n")]
    {
        let (status, answer) = s.post_raw(path, "text/plain", body).await;
        assert_eq!(status, 400, "{path} {body:?}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["code"], "invalid_argument");
    }
    assert_eq!(s.get("/q/collectd_data").await.0, 204);
    assert_eq!(s.get("/collectd/data").await.0, 405);
}

/// A `collectd:` feed spec renames the queues and filters: only cpu value lists are kept.
#[tokio::test]
async fn spec_filters_and_renames() {
    let spec = "collectd:data=metrics,event=alerts,filter=plugin=cpu".parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;
    let body = "PUTVAL h/cpu-0/cpu-user 1:5\nPUTVAL h/memory/memory-used 1:7\nPUTVAL h/cpu-1/cpu-user 1:6\n";
    assert_eq!(
        s.post_raw("/collectd/data", "text/plain", body).await,
        (200, "metrics:1\r\nmetrics:2\r\n".into())
    );
    let got = take_json(&s, "metrics", 2, 5).await;
    assert_eq!((got[0]["values"].clone(), got[1]["plugin_instance"].clone()), (json!([5]), json!("1")));
    let stats = feed_stats(&s, "collectd:metrics").await;
    assert_eq!((stats["published"].as_u64(), stats["filtered"].as_u64()), (Some(2), Some(1)));
}
