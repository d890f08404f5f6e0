//! restmq on a local three-master Redis Cluster: each queue's keys share one hash slot
//! (`{queue}` tags), and adds, gets, streaming and purge work across the masters.

mod common;

use std::time::Duration;

use common::redis::{create_cluster, wait_cluster_ok, RedisServer};
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use serde_json::Value;

/// Starts three cluster-enabled nodes and joins them into one cluster with no replicas.
fn start_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_cluster_node()).collect();
    create_cluster(&nodes, 0);
    wait_cluster_ok(&nodes);
    nodes
}

/// Queues hash to different masters, each queue's keys to one slot; every operation works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_queues_on_a_cluster() {
    let nodes = start_cluster();
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let s = TestServer::start_with(StoreKind::Memory, |c| {
        c.store = StoreKind::Redis;
        c.redis_cluster = true;
        c.redis_url = urls.join(",");
    })
    .await;
    let queues = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    for q in queues {
        assert_eq!(s.add(q, &format!("{q}-1")).await, format!("{q}:1"));
        assert_eq!(s.add(q, &format!("{q}-2")).await, format!("{q}:2"));
    }
    let slots: Vec<String> = queues
        .iter()
        .map(|q| nodes[0].cli(&["CLUSTER", "KEYSLOT", &format!("{{{q}}}:queue")]).unwrap())
        .collect();
    let distinct: std::collections::HashSet<_> = slots.iter().collect();
    assert!(distinct.len() > 1, "the queues spread over slots: {slots:?}");
    for q in queues {
        let slot = |key: String| nodes[0].cli(&["CLUSTER", "KEYSLOT", &key]).unwrap();
        let list_slot = slot(format!("{{{q}}}:queue"));
        for key in [format!("{{{q}}}:1"), format!("{{{q}}}:UUID"), format!("queuestat::{{{q}}}")] {
            assert_eq!(slot(key), list_slot, "one slot per queue");
        }
    }
    assert_eq!(s.get_json("/q/").await.as_array().unwrap().len(), queues.len());
    assert_eq!(s.get_json("/q/beta").await["value"], "beta-1");
    assert_eq!(s.get_json("/q/beta?soft=1").await["count"], 1);
    assert_eq!(s.get_json("/stats/gamma").await["len"], 2);
    assert_eq!(s.post_form("/p/gamma", &[("policy", "roundrobin")]).await.0, 200);
    assert_eq!(s.get_json("/p/gamma").await["value"], "roundrobin");

    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/alpha")).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        if got.len() == 2 {
            s.add("alpha", "alpha-3").await;
        }
        let msg =
            tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("message").unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            got.push(serde_json::from_str::<Value>(&t).unwrap()["value"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, ["alpha-1", "alpha-2", "alpha-3"]);

    assert_eq!(s.http.delete(s.url("/q/delta")).send().await.unwrap().status(), 200);
    assert_eq!(s.get("/q/delta").await.0, 204);
    // As in RestMQ, a purged queue keeps its counter and stays listed: keys go on.
    assert!(s.get_json("/q/").await.as_array().unwrap().contains(&Value::from("delta")));
    assert_eq!(s.get_json("/stats/delta").await["len"], 0);
    assert_eq!(s.add("delta", "after").await, "delta:3", "keys are never reused");
}
