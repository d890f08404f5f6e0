//! Broadcast through failures: WebSocket consumers on two restmq processes, queues on every
//! master of a six-node Redis Cluster (three masters, three replicas) whose masters are
//! killed in turn under load, and a single Redis (AOF `always`) killed and restarted. Every
//! acknowledged message reaches every consumer exactly once or is still queued.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::{create_cluster, RedisServer};
use common::TestServer;
use futures_util::StreamExt;
use restmq_server::config::StoreKind;
use tokio_tungstenite::tungstenite::Message;

/// What one consumer received, with when.
type Received = Arc<Mutex<Vec<(String, Instant)>>>;

/// Streams `/ws/<queue>` of `server` into a list until the test ends.
fn consume(server: &TestServer, queue: &str) -> Received {
    let received: Received = Arc::default();
    let (url, into) = (server.ws_url(&format!("/ws/{queue}")), received.clone());
    tokio::spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                if let (Some(key), Some(value)) = (doc["key"].as_str(), doc["value"].as_str()) {
                    into.lock().unwrap().push((format!("{key}={value}"), Instant::now()));
                }
            }
        }
    });
    received
}

/// Adds to `queues` in turn through `servers` in turn, about `rate` a second (each add on its
/// own, so a slow one holds up no other), until `stop`; returns the acknowledged keys, how
/// many adds were refused, and the longest a refused add took.
fn load(
    servers: Vec<(reqwest::Client, String)>,
    queues: Vec<String>,
    rate: u64,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<(Vec<String>, usize, Duration)> {
    tokio::spawn(async move {
        let mut adds = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        for i in 0usize.. {
            tick.tick().await;
            if stop.is_cancelled() {
                break;
            }
            let (http, base) = servers[i % servers.len()].clone();
            let url = format!("{base}/q/{}", queues[i % queues.len()]);
            adds.spawn(async move {
                let started = Instant::now();
                match http.post(url).form(&[("value", format!("m{i}"))]).send().await {
                    Ok(res) if res.status() == 200 => Ok(res.text().await.unwrap().trim().to_owned()),
                    _ => Err(started.elapsed()),
                }
            });
        }
        let (mut acked, mut failed, mut slowest_failure) = (Vec::new(), 0, Duration::ZERO);
        while let Some(done) = adds.join_next().await {
            match done.unwrap() {
                Ok(key) => acked.push(key),
                Err(took) => {
                    failed += 1;
                    slowest_failure = slowest_failure.max(took);
                }
            }
        }
        (acked, failed, slowest_failure)
    })
}

/// Waits until no consumer has received anything for `quiet`.
async fn settle(consumers: &[Received], quiet: Duration) {
    loop {
        let last = consumers.iter().filter_map(|c| c.lock().unwrap().last().map(|(_, at)| *at)).max();
        if last.is_none_or(|at| at.elapsed() >= quiet) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The keys still waiting in `queue`.
async fn waiting(server: &TestServer, queue: &str) -> HashSet<String> {
    let (mut keys, mut after) = (HashSet::new(), None::<String>);
    loop {
        let path = match &after {
            Some(a) => format!("/browse/{queue}?limit=1000&after={a}"),
            None => format!("/browse/{queue}?limit=1000"),
        };
        let page = server.get_json(&path).await;
        for m in page["messages"].as_array().unwrap() {
            keys.insert(m["key"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return keys,
        }
    }
}

/// Checks every consumer of every queue: no duplicate, and each acknowledged key received or
/// still waiting. Returns the received keys per consumer.
async fn check(server: &TestServer, acked: &[String], consumers: &BTreeMap<String, Vec<Received>>) {
    for (queue, of_queue) in consumers {
        let still = waiting(server, queue).await;
        for (i, consumer) in of_queue.iter().enumerate() {
            let got: Vec<String> = consumer.lock().unwrap().iter().map(|(k, _)| k.clone()).collect();
            let keys: Vec<String> = got.iter().map(|kv| kv.split_once('=').unwrap().0.to_owned()).collect();
            let unique: HashSet<&String> = keys.iter().collect();
            if unique.len() != keys.len() {
                let mut seen = HashSet::new();
                let twice: Vec<&String> =
                    got.iter().filter(|kv| !seen.insert(kv.split_once('=').unwrap().0)).take(5).collect();
                let first: Vec<&String> = got
                    .iter()
                    .filter(|kv| {
                        twice.iter().any(|t| t.split_once('=').unwrap().0 == kv.split_once('=').unwrap().0)
                    })
                    .take(10)
                    .collect();
                panic!(
                    "consumer {i} of {queue} got {} messages twice, e.g. {first:?}",
                    keys.len() - unique.len()
                );
            }
            let lost: Vec<&String> = acked
                .iter()
                .filter(|k| k.starts_with(&format!("{queue}:")) && !unique.contains(k) && !still.contains(*k))
                .collect();
            assert!(
                lost.is_empty(),
                "consumer {i} of {queue}: acknowledged, neither received nor queued: {lost:?}"
            );
        }
    }
}

/// The longest time a consumer went without a message while the load ran.
fn longest_gap(consumer: &Received, from: Instant, to: Instant) -> Duration {
    let times: Vec<Instant> =
        consumer.lock().unwrap().iter().map(|(_, at)| *at).filter(|at| *at >= from && *at <= to).collect();
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

/// `CLUSTER NODES` as seen by `node`: (port, is master, first slot) of each live node.
fn masters(node: &RedisServer) -> Vec<(u16, u16, u16)> {
    let text = node.cli(&["CLUSTER", "NODES"]).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("master") && !l.contains("fail"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let port = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
            let range = fields.get(8)?;
            let (from, to) = range.split_once('-')?;
            Some((port, from.parse().ok()?, to.parse().ok()?))
        })
        .collect()
}

/// Whether every live node sees three healthy masters, none of them a killed one, and every
/// live replica is in sync with its master.
fn cluster_ok(nodes: &[RedisServer], dead: &HashSet<u16>) -> bool {
    nodes.iter().filter(|n| !dead.contains(&n.port)).all(|n| {
        let masters = masters(n);
        let replication = n.cli(&["INFO", "replication"]).unwrap_or_default();
        // A replica that has not synced yet would be promoted empty.
        let synced = !replication.contains("role:slave") || replication.contains("master_link_status:up");
        n.cli(&["CLUSTER", "INFO"]).unwrap_or_default().contains("cluster_state:ok")
            && synced
            && masters.len() == 3
            && masters.iter().all(|(port, _, _)| !dead.contains(port))
    })
}

async fn wait_cluster_ok(nodes: &[RedisServer], dead: &HashSet<u16>) -> Duration {
    let started = Instant::now();
    while !cluster_ok(nodes, dead) {
        if started.elapsed() > Duration::from_secs(60) {
            let live = nodes.iter().find(|n| !dead.contains(&n.port)).unwrap();
            panic!("the cluster did not recover:\n{}", live.cli(&["CLUSTER", "NODES"]).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Six nodes, three masters each with a replica.
fn start_six_node_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..6).map(|_| RedisServer::start_fast_cluster_node()).collect();
    create_cluster(&nodes, 1);
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_survives_killing_each_master() {
    let mut nodes = start_six_node_cluster();
    wait_cluster_ok(&nodes, &HashSet::new()).await;
    // One queue per master, named by the slot it hashes to.
    let layout = masters(&nodes[0]);
    let mut queues = Vec::new();
    for (port, from, to) in &layout {
        let name = (0..10_000)
            .map(|i| format!("fan{i}"))
            .find(|q| {
                let slot: u16 = nodes[0].cli(&["CLUSTER", "KEYSLOT", q]).unwrap().parse().unwrap();
                (*from..=*to).contains(&slot)
            })
            .unwrap();
        queues.push((name, *port));
    }
    // The bus subscribes to the first URL: make that a master, killed first.
    let mut urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let first_master = nodes.iter().position(|n| n.port == layout[0].0).unwrap();
    urls.swap(0, first_master);
    let start = || {
        let urls = urls.join(",");
        TestServer::start_with(StoreKind::Memory, move |c| {
            c.store = StoreKind::Redis;
            c.redis_cluster = true;
            c.redis_url = urls;
        })
    };
    let (a, b) = (start().await, start().await);
    let mut consumers: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for (queue, _) in &queues {
        consumers.insert(queue.clone(), vec![consume(&a, queue), consume(&b, queue)]);
    }
    let all: Vec<Received> = consumers.values().flatten().cloned().collect();
    tokio::time::sleep(Duration::from_millis(1500)).await; // both processes' cursors are set

    let stop = tokio_util::sync::CancellationToken::new();
    let servers = vec![(a.http.clone(), a.url("")), (b.http.clone(), b.url(""))];
    let producer = load(servers, queues.iter().map(|(q, _)| q.clone()).collect(), 150, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut report, mut dead) = (Vec::new(), HashSet::new());
    for (victim_queue, port) in queues.clone() {
        let victim = nodes.iter().position(|n| n.port == port).unwrap();
        let killed_at = Instant::now();
        eprintln!("killing {port}, master of {victim_queue}");
        nodes[victim].kill();
        dead.insert(port);
        let failover = wait_cluster_ok(&nodes, &dead).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let window_end = Instant::now();
        for (queue, of_queue) in &consumers {
            if *queue != victim_queue {
                for c in of_queue {
                    let gap = longest_gap(c, killed_at, window_end);
                    report.push(format!("{queue} (killed {victim_queue}'s master): longest gap {gap:?}"));
                    assert!(
                        gap < failover + Duration::from_secs(2),
                        "{queue} stalled {gap:?}, longer than another master's failover ({failover:?})"
                    );
                }
            }
        }
        report.push(format!("master of {victim_queue} killed: cluster ok again after {failover:?}"));
        // It stays down: a master restarted empty would take writes for its old slots until
        // it hears it was replaced, a Redis Cluster hazard that is not restmq's to test.
    }
    stop.cancel();
    let (acked, failed, slowest_failure) = producer.await.unwrap();
    settle(&all, Duration::from_secs(3)).await;
    eprintln!(
        "cluster failover: {} acknowledged, {failed} refused (the slowest refusal took {slowest_failure:?})\n{}",
        acked.len(),
        report.join("\n")
    );
    assert!(acked.len() > 1000, "the load ran: {}", acked.len());
    assert!(slowest_failure < Duration::from_secs(10), "a failing add took {slowest_failure:?}");
    check(&a, &acked, &consumers).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_survives_a_redis_restart() {
    let mut redis = RedisServer::start_durable();
    let server = TestServer::start_on_redis(&redis.url()).await;
    let consumers: BTreeMap<String, Vec<Received>> =
        BTreeMap::from([("news".to_owned(), vec![consume(&server, "news"), consume(&server, "news")])]);
    let all: Vec<Received> = consumers.values().flatten().cloned().collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let producer =
        load(vec![(server.http.clone(), server.url(""))], vec!["news".to_owned()], 150, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let (acked, failed, _) = producer.await.unwrap();
    settle(&all, Duration::from_secs(3)).await;
    eprintln!("redis restart: {} acknowledged, {failed} refused", acked.len());
    assert!(acked.len() > 400, "the load ran: {}", acked.len());
    check(&server, &acked, &consumers).await;
    server.stop().await;
}
