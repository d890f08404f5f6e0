//! The Redis store against a real `redis-server`: RestMQ's key layout checked with
//! `redis-cli`, data the original RestMQ left behind, two processes adding and popping at
//! once, Redis restarting under load, and Redis stalled (an answer means what it says).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::Value;

fn lines(out: Option<String>) -> Vec<String> {
    let mut v: Vec<String> =
        out.unwrap_or_default().lines().map(str::to_owned).filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

/// Every operation leaves exactly RestMQ's keys, and purge leaves only the counter and
/// settings (as RestMQ's purge, which deleted only the list; here the values go too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_layout_is_restmqs() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    assert_eq!(s.add("q", "v1").await, "q:1");
    assert_eq!(r.cli(&["SMEMBERS", "QUEUESET"]).unwrap(), "q");
    assert_eq!(r.cli(&["GET", "queuestat::q"]).unwrap(), "1", "a new queue is marked started, as RestMQ did");
    assert_eq!(r.cli(&["GET", "q:UUID"]).unwrap(), "1");
    assert_eq!(r.cli(&["GET", "q:1"]).unwrap(), "v1");
    assert_eq!(r.cli(&["LRANGE", "q:queue", "0", "-1"]).unwrap(), "q:1");
    assert_eq!(s.post_form("/p/q", &[("policy", "roundrobin")]).await.0, 200);
    assert_eq!(r.cli(&["GET", "q:queuepolicy"]).unwrap(), "2");
    assert_eq!(s.post_form("/control/q", &[("status", "stop")]).await.0, 200);
    assert_eq!(r.cli(&["GET", "queuestat::q"]).unwrap(), "0");
    s.get("/q/q?soft=1").await;
    s.get("/q/q?soft=1").await;
    assert_eq!(r.cli(&["GET", "q:1:refcount"]).unwrap(), "2");
    assert_eq!(s.get_json("/q/q").await["key"], "q:1");
    assert_eq!(
        lines(r.cli(&["KEYS", "q:*"])),
        ["q:UUID", "q:queuepolicy"],
        "a hard get removes value and count"
    );
    assert_eq!(s.post_form("/q/q", &[("value", "short"), ("ttl", "100")]).await.0, 200);
    let ttl: i64 = r.cli(&["TTL", "q:2"]).unwrap().parse().unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(s.http.delete(s.url("/q/q")).send().await.unwrap().status(), 200);
    let left: Vec<String> =
        lines(r.cli(&["KEYS", "*q*"])).into_iter().filter(|k| !k.starts_with("restmq|")).collect();
    assert_eq!(left, ["q:UUID", "q:queuepolicy", "queuestat::q"], "purge leaves no message key");
    assert_eq!(r.cli(&["SISMEMBER", "QUEUESET", "q"]).unwrap(), "1");
}

/// Concurrent single adds go to Redis together (fewer scripts than adds), yet each gets its
/// own number, its own value and its own ttl, queue by queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_share_scripts_but_not_keys() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    let _ = r.cli(&["CONFIG", "RESETSTAT"]);
    let sends = (0..300).map(|i| {
        let (queue, value) = (format!("c{}", i % 3), format!("v{i}"));
        let ttl = if i % 2 == 0 { "100" } else { "" };
        let s = &s;
        async move {
            let (status, key) = s.post_form(&format!("/q/{queue}"), &[("value", &value), ("ttl", ttl)]).await;
            assert_eq!(status, 200, "{key}");
            (queue, value, key.trim_end().to_owned(), !ttl.is_empty())
        }
    });
    let added = futures_util::future::join_all(sends).await;
    for q in ["c0", "c1", "c2"] {
        let mut ns: Vec<u64> = added
            .iter()
            .filter(|(queue, ..)| queue == q)
            .map(|(_, _, key, _)| key.strip_prefix(&format!("{q}:")).unwrap().parse().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (1..=100).collect::<Vec<u64>>(), "{q}: every add its own number");
        assert_eq!(r.cli(&["LLEN", &format!("{q}:queue")]).unwrap(), "100");
    }
    for (_, value, key, expires) in &added {
        assert_eq!(r.cli(&["GET", key]).unwrap(), *value, "{key}");
        let ttl: i64 = r.cli(&["TTL", key]).unwrap().parse().unwrap();
        assert_eq!(ttl > 0, *expires, "{key} has ttl {ttl}");
    }
    let stats = r.cli(&["INFO", "commandstats"]).unwrap();
    let scripts: u64 = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum();
    println!("300 concurrent adds: {scripts} script calls");
    assert!(scripts < 300, "adds were not coalesced: {scripts} script calls for 300 adds");
}

/// A Redis filled the way the original RestMQ did is served as is: same length, same
/// order, settings kept, and the counter continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_legacy_restmq_data() {
    let redis = RedisServer::start();
    for cmd in [
        &["SADD", "QUEUESET", "legacy"][..],
        &["SET", "legacy:UUID", "3"],
        &["SET", "legacy:1", "first"],
        &["SET", "legacy:2", "second"],
        &["SET", "legacy:3", "third"],
        &["LPUSH", "legacy:queue", "legacy:1", "legacy:2", "legacy:3"],
        &["SET", "legacy:queuepolicy", "2"],
        &["SET", "queuestat::legacy", "0"],
    ] {
        redis.cli(cmd).expect("redis-cli");
    }
    let s = TestServer::start_on_redis(&redis.url()).await;
    let stats = s.get_json("/stats/legacy").await;
    assert_eq!(
        (stats["len"].as_u64(), stats["policy"].as_u64(), stats["status"].as_u64()),
        (Some(3), Some(2), Some(0)),
        "RestMQ's raw codes: {stats}"
    );
    assert_eq!(
        (stats["policy_name"].as_str(), stats["state"].as_str()),
        (Some("roundrobin"), Some("paused"))
    );
    assert_eq!(s.get_json("/q/").await, serde_json::json!(["legacy"]));
    assert_eq!(s.add("legacy", "fourth").await, "legacy:4");
    let got: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(s.get_json("/q/legacy").await["value"].as_str().unwrap().to_owned());
        }
        v
    };
    assert_eq!(got, ["first", "second", "third", "fourth"]);
}

/// Two processes on one Redis, 400 parallel adds then parallel pops: every key distinct,
/// every message popped once, no leftover key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_add_and_pop_concurrently() {
    let redis = RedisServer::start();
    let servers = Arc::new([
        TestServer::start_on_redis(&redis.url()).await,
        TestServer::start_on_redis(&redis.url()).await,
    ]);
    let adds = (0..400).map(|i| {
        let servers = servers.clone();
        tokio::spawn(async move { servers[i % 2].add("conc", &format!("m{i}")).await })
    });
    let keys: Vec<String> =
        futures_util::future::join_all(adds).await.into_iter().map(Result::unwrap).collect();
    let added: HashSet<&String> = keys.iter().collect();
    assert_eq!(added.len(), 400, "every key distinct");
    let popped = Arc::new(Mutex::new(Vec::new()));
    let pops = (0..8).map(|w| {
        let (servers, popped) = (servers.clone(), popped.clone());
        tokio::spawn(async move {
            loop {
                let (status, body) = servers[w % 2].get("/q/conc").await;
                if status == 204 {
                    return;
                }
                let m: Value = serde_json::from_str(&body).unwrap();
                popped.lock().unwrap().push(m["key"].as_str().unwrap().to_owned());
            }
        })
    });
    futures_util::future::join_all(pops).await;
    let popped = popped.lock().unwrap().clone();
    let unique: HashSet<&String> = popped.iter().collect();
    println!(
        "two processes: added {}, popped {}, distinct popped {}",
        keys.len(),
        popped.len(),
        unique.len()
    );
    assert_eq!(popped.len(), 400, "each message popped exactly once");
    assert_eq!(unique, added);
    let left: Vec<String> =
        lines(redis.cli(&["KEYS", "*"])).into_iter().filter(|k| !k.starts_with("restmq|")).collect();
    assert_eq!(left, ["QUEUESET", "conc:UUID", "queuestat::conc"], "no orphan keys");
}

/// Redis killed and restarted under publish load: the server answers 503 with a JSON
/// error meanwhile, reconnects by itself, loses no add it answered 200, and a streaming
/// consumer gets messages again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_redis_restart() {
    let mut redis = RedisServer::start_durable();
    let s = Arc::new(TestServer::start_on_redis(&redis.url()).await);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let unavailable = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (s, acked, unavailable, stop) = (s.clone(), acked.clone(), unavailable.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let Ok(res) = s.http.post(s.url("/q/load")).form(&[("value", format!("m{i}"))]).send().await
                else {
                    continue;
                };
                match res.status().as_u16() {
                    200 => {
                        let key = res.text().await.unwrap().trim_end().to_owned();
                        acked.lock().unwrap().push(key);
                    }
                    503 => {
                        let body: Value = res.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "store_unavailable");
                        *unavailable.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    504 => {
                        // In flight when Redis died: it may or may not have been added.
                        let body: Value = res.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "outcome_unknown");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
        })
    };
    let wait_for = |n: usize| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "stuck below {n} acknowledged adds");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(200).await;
    assert_eq!(s.get("/readyz").await.0, 200);
    redis.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, body) = s.get("/readyz").await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].as_str()),
        (503, Some("store_unavailable"))
    );
    redis.restart();
    let before = acked.lock().unwrap().len();
    wait_for(before + 200).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();

    // A consumer connected after the restart gets everything that was acknowledged.
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/load")).await.unwrap();
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let mut found = HashSet::new();
    use futures_util::StreamExt;
    while !acked.is_subset(&found) {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await else { break };
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let m: Value = serde_json::from_str(&t).unwrap();
            found.insert(m["key"].as_str().unwrap().to_owned());
        }
    }
    let missing = acked.difference(&found).count();

    println!(
        "redis restart: acknowledged {}, 503 answers {}, delivered after restart {} ({} added but unanswered), missing {missing}",
        acked.len(),
        unavailable.lock().unwrap(),
        found.len(),
        found.difference(&acked).count()
    );
    assert!(*unavailable.lock().unwrap() > 0, "the server said 503 while Redis was down");
    assert_eq!(missing, 0, "acknowledged adds were lost");
}

/// Redis stalled (SIGSTOP) under publish load: an add answered `503 store_unavailable` was
/// not added, one answered `200` was, and one whose outcome the server could not know is
/// answered `504 outcome_unknown`, never 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_answers_mean_what_they_say() {
    let redis = RedisServer::start();
    let s = Arc::new(TestServer::start_on_redis(&redis.url()).await);
    let answers = Arc::new(Mutex::new(Vec::<(String, u16)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producers: Vec<_> = (0..16)
        .map(|p| {
            let (s, answers, stop) = (s.clone(), answers.clone(), stop.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let value = format!("p{p}-{i}");
                    let res = s.http.post(s.url("/q/stall")).form(&[("value", &value)]).send().await.unwrap();
                    let status = res.status().as_u16();
                    let body = res.text().await.unwrap();
                    match status {
                        200 => {}
                        503 => assert!(body.contains("store_unavailable"), "{body}"),
                        504 => assert!(body.contains("outcome_unknown"), "{body}"),
                        other => panic!("unexpected {other}: {body}"),
                    }
                    answers.lock().unwrap().push((value, status));
                }
            })
        })
        .collect();
    let count = |status: u16| count_in(&answers.lock().unwrap(), status);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(200) < 300 {
        assert!(Instant::now() < deadline, "no adds before the stall");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.pause();
    // A read cannot have an unknown outcome: while Redis is stalled it is simply unavailable.
    let (status, body) = s.get("/stats/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store_unavailable"), "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume();
    let before = count(200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(200) < before + 300 {
        assert!(Instant::now() < deadline, "adds did not resume after the stall");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in producers {
        p.await.unwrap();
    }
    let stored: HashSet<String> = lines(redis.cli(&["LRANGE", "stall:queue", "0", "-1"]))
        .iter()
        .filter_map(|key| redis.cli(&["GET", key]))
        .collect();
    let answers = answers.lock().unwrap();
    let lost: Vec<_> = answers.iter().filter(|(v, s)| *s == 200 && !stored.contains(v)).collect();
    let refused_but_stored: Vec<_> =
        answers.iter().filter(|(v, s)| *s == 503 && stored.contains(v)).collect();
    let unknown = answers.iter().filter(|(_, s)| *s == 504).count();
    println!(
        "stall: 200 {}, 503 {}, 504 {unknown} ({} of them stored)",
        count_in(&answers, 200),
        count_in(&answers, 503),
        answers.iter().filter(|(v, s)| *s == 504 && stored.contains(v)).count()
    );
    assert!(lost.is_empty(), "acknowledged adds missing: {lost:?}");
    assert!(refused_but_stored.is_empty(), "answered 503 yet stored: {refused_but_stored:?}");
    assert!(unknown > 0, "the stall left no add in doubt: the test did not exercise it");
}

fn count_in(answers: &[(String, u16)], status: u16) -> usize {
    answers.iter().filter(|(_, s)| *s == status).count()
}

/// A queue whose first message is delayed is marked started too, and a status set before the
/// first message is kept (RestMQ's `queue_add` wrote `queuestat::<q>` = 1 for a new queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_add_marks_the_queue_started() {
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    assert_eq!(s.post_form("/q/later", &[("value", "v"), ("delay", "60")]).await.0, 200);
    assert_eq!(r.cli(&["GET", "queuestat::later"]).unwrap(), "1");
    assert_eq!(s.post_form("/control/held", &[("status", "stop")]).await.0, 200);
    s.add("held", "v").await;
    assert_eq!(r.cli(&["GET", "queuestat::held"]).unwrap(), "0", "a pause set before the first add stays");
}

/// `QUEUESET` as RestMQ's companions leave it: the Sinatra mini-RestMQ's `<q>:queue` entries
/// name queue `<q>` (no phantom `q:queue`), and names this server refuses never break a
/// listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_queueset_entries() {
    let redis = RedisServer::start();
    for cmd in [
        // What the Sinatra app's POST /q/sin does.
        &["INCR", "sin:UUID"][..],
        &["SADD", "QUEUESET", "sin:queue"],
        &["SET", "sin:1", "from sinatra"],
        &["LPUSH", "sin:queue", "sin:1"],
        &["SADD", "QUEUESET", "bad name", "queuestat:x", "a/b", ""],
    ] {
        assert!(redis.cli(cmd).is_some(), "{cmd:?}");
    }
    let s = TestServer::start_on_redis(&redis.url()).await;
    assert_eq!(s.get_json("/q/").await, serde_json::json!(["sin"]));
    let stats = s.get_json("/stats/").await;
    assert_eq!(stats["count"], 1, "{stats}");
    assert_eq!(stats["queues"]["sin"]["len"], 1, "{stats}");
    assert_eq!(s.get_json("/q/sin").await["value"], "from sinatra");
    assert_eq!(s.get("/control/").await.0, 200);
    assert_eq!(s.get("/metrics").await.0, 200);
    // A queue really named `x:queue` (its own list exists) is listed as itself.
    s.add("x:queue", "own").await;
    let listed = s.get_json("/q/").await;
    assert!(listed.as_array().unwrap().contains(&serde_json::json!("x:queue")), "{listed}");
}

/// A message another program pushes in RestMQ's layout (RestMQ's Python core, the Sinatra app,
/// a script: `INCR`, `SET`, `LPUSH`, no restmq involved) reaches consumers already connected
/// within about a second, on WebSocket and COMET, broadcast and roundrobin alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_pushes_reach_connected_consumers() {
    use futures_util::StreamExt;
    let s = TestServer::start(StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    assert_eq!(s.post_form("/p/rr", &[("policy", "roundrobin")]).await.0, 200);
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url("/ws/bc")).await.unwrap();
    let mut comet = s.http.get(s.url("/c/rr")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // both are consumers now
    for (queue, value) in [("bc", "from python"), ("rr", "from sinatra")] {
        let n = r.cli(&["INCR", &format!("{queue}:UUID")]).unwrap();
        let key = format!("{queue}:{n}");
        assert!(r.cli(&["SET", &key, value]).is_some());
        assert!(r.cli(&["LPUSH", &format!("{queue}:queue"), &key]).is_some());
    }
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame within 5 s");
    let frame = frame.unwrap().unwrap().into_text().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&frame).unwrap(),
        serde_json::json!({"key": "bc:1", "value": "from python"})
    );
    let chunk = tokio::time::timeout(Duration::from_secs(5), comet.chunk()).await.expect("a line within 5 s");
    assert_eq!(&chunk.unwrap().unwrap()[..], b"{\"key\":\"rr:1\",\"value\":\"from sinatra\"}\r\n");
    assert_eq!(r.cli(&["LLEN", "bc:queue"]).unwrap(), "0");
}
