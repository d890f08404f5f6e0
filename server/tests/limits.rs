//! The bound on streaming connections: past `--max-streams`, new COMET, SSE and WebSocket
//! consumers get `429 too_many_requests`; when one leaves, a new one gets in.

mod common;

use std::time::Duration;

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::Value;

/// Two streams are held; the third of each kind is refused with a JSON 429; one leaving
/// makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limit_refuses_then_admits() {
    let s = TestServer::start_with(StoreKind::Memory, |c| c.max_streams = 2).await;
    let (first, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/a")).await.unwrap();
    let second = s.http.get(s.url("/c/a")).send().await.unwrap();
    assert_eq!(second.status(), 200);
    for path in ["/c/a", "/sse/a"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 429, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "too_many_requests");
    }
    let refused = tokio_tungstenite::connect_async(s.ws_url("/ws/a")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("expected a 429 to the upgrade, got {:?}", other.map(|(_, r)| r.status())),
    }
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        if let Ok((_ws, _)) = tokio_tungstenite::connect_async(s.ws_url("/ws/a")).await {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "a stream was admitted once one left");
    drop(second);
}
