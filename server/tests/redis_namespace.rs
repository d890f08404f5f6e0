//! The Redis key namespace, as a property over generated queue names (reserved words, `:`
//! and `.` runs, other queues' names plus suffixes) on a real Redis: each queue run alone
//! writes a key set that no other queue's set meets, the server's own keys hold only queue
//! names, and all the queues run together answer exactly as each did alone. Also: the names
//! RestMQ's layout makes ambiguous are refused, and an earlier restmq's keys move at start.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::redis::RedisServer;
use common::TestServer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redis::AsyncCommands;
use restmq_shared::QueueName;

/// Words of RestMQ's layout and of restmq's own keys, and numbers.
const WORDS: &[&str] = &[
    "restmq",
    "QUEUESET",
    "queue",
    "queuepolicy",
    "UUID",
    "refcount",
    "deliveries",
    "idem",
    "ttl",
    "leased",
    "delayed",
    "dead",
    "nodes",
    "node",
    "bus",
    "queuestat",
    "a",
    "1",
    "7",
];

/// Keys the server owns: exact names, and the prefix of per-process presence hashes.
const SERVER_KEYS: &[&str] = &["QUEUESET", "restmq|delayed", "restmq|ttl", "restmq|leased", "restmq|nodes"];
const SERVER_PREFIX: &str = "restmq|node|";

fn is_server_key(key: &str) -> bool {
    SERVER_KEYS.contains(&key) || key.starts_with(SERVER_PREFIX)
}

/// One request of the scenario and what it answered.
type Answers = Vec<(u16, String)>;

/// Every kind of key a queue can own: plain, ttl, idempotent (twice), delayed, soft-read,
/// leased, policy and status; then a look at what is left. Each step for every queue before
/// the next step, so that queues run together interleave.
async fn scenario(s: &TestServer, queues: &[String], idem: &str) -> BTreeMap<String, Answers> {
    let mut answers: BTreeMap<String, Answers> = queues.iter().map(|q| (q.clone(), Vec::new())).collect();
    for step in 0..10 {
        for q in queues {
            let url = s.url(&format!("/q/{q}"));
            let value = format!("{q}|{step}");
            let req = match step {
                0 => s.http.post(&url).form(&[("value", value.as_str())]),
                1 => s.http.post(&url).form(&[("value", value.as_str()), ("ttl", "100")]),
                2 | 3 => s.http.post(&url).header("Idempotency-Key", idem).form(&[("value", value.as_str())]),
                4 => s.http.post(&url).form(&[("value", value.as_str()), ("delay", "300")]),
                5 => s.http.get(format!("{url}?soft=1")),
                6 => s.http.get(format!("{url}?reserve=60")),
                7 => s.http.post(s.url(&format!("/p/{q}"))).form(&[("policy", "roundrobin")]),
                8 => s.http.post(s.url(&format!("/control/{q}"))).form(&[("status", "stop")]),
                _ => s.http.get(s.url(&format!("/stats/{q}"))),
            };
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            answers.get_mut(q).unwrap().push((status, body));
        }
    }
    for (q, list) in &answers {
        for (i, (status, body)) in list.iter().enumerate() {
            assert_eq!(*status, 200, "queue {q:?} step {i}: {body}");
        }
    }
    answers
}

/// Every key in Redis, with a description of what the server-owned ones hold.
async fn keys(conn: &mut redis::aio::MultiplexedConnection) -> (BTreeSet<String>, Vec<(String, String)>) {
    let all: Vec<String> = conn.keys("*").await.unwrap();
    let mut server = Vec::new();
    for key in all.iter().filter(|k| is_server_key(k)) {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(conn).await.unwrap();
        server.push((key.clone(), kind));
    }
    (all.into_iter().collect(), server)
}

/// Runs `queues` on a fresh server over an emptied Redis: the answers and the keys left.
async fn run(
    redis: &RedisServer,
    conn: &mut redis::aio::MultiplexedConnection,
    queues: &[String],
    idem: &str,
) -> (BTreeMap<String, Answers>, BTreeSet<String>) {
    let () = redis::cmd("FLUSHALL").query_async(conn).await.unwrap();
    let s = TestServer::start_on_redis(&redis.url()).await;
    let answers = scenario(&s, queues, idem).await;
    s.stop().await;
    let (all, server) = keys(conn).await;
    for (key, kind) in &server {
        let expected = match key.as_str() {
            "QUEUESET" | "restmq|delayed" | "restmq|ttl" | "restmq|leased" => "set",
            "restmq|nodes" => "zset",
            _ => "hash",
        };
        assert_eq!(kind, expected, "server key {key:?} holds a {kind} after {queues:?}");
        if kind == "set" {
            let members: BTreeSet<String> = conn.smembers(key).await.unwrap();
            let names: BTreeSet<String> = queues.iter().cloned().collect();
            assert!(members.is_subset(&names), "{key:?} holds {members:?}, not only queue names {names:?}");
        }
    }
    (answers, all)
}

/// The property for one set of names: alone, no two queues share a key and none writes a
/// server key; together, every queue answers as alone and the keys are the union.
async fn check(redis: &RedisServer, names: Vec<String>, idem: String) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut owned: BTreeMap<String, String> = BTreeMap::new();
    let mut alone = BTreeMap::new();
    for q in &names {
        let (answers, all) = run(redis, &mut conn, std::slice::from_ref(q), &idem).await;
        for key in all.into_iter().filter(|k| !is_server_key(k)) {
            if let Some(other) = owned.insert(key.clone(), q.clone()) {
                panic!("queues {other:?} and {q:?} both write key {key:?} (idempotency key {idem:?})");
            }
        }
        alone.extend(answers);
    }
    let (together, all) = run(redis, &mut conn, &names, &idem).await;
    for q in &names {
        assert_eq!(together[q], alone[q], "queue {q:?} answers differently beside {names:?}");
    }
    let queue_keys: BTreeSet<String> = all.into_iter().filter(|k| !is_server_key(k)).collect();
    let expected: BTreeSet<String> = owned.into_keys().collect();
    assert_eq!(queue_keys, expected, "keys of {names:?} together are not the union of each alone");
}

/// A generated name: a word, then up to three more joined by `:`, `::`, `.` or `..`.
fn name() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(WORDS);
    let sep = proptest::sample::select(&[":", "::", ".", "..", ":1:", "-", "@"][..]);
    (word.clone(), proptest::collection::vec((sep, word), 0..3)).prop_map(|(first, rest)| {
        rest.into_iter().fold(first.to_owned(), |mut name, (sep, word)| {
            name.push_str(sep);
            name.push_str(word);
            name
        })
    })
}

/// A few names, each maybe followed by a copy of itself plus a suffix RestMQ's keys use.
fn names() -> impl Strategy<Value = Vec<String>> {
    let suffix =
        proptest::sample::select(&[":queue", ":1", ":idem", ":idem:x", ".dead", ":UUID", ":1:refcount"][..]);
    proptest::collection::vec((name(), proptest::option::of(suffix)), 1..4).prop_map(|picked| {
        let mut out = BTreeSet::new();
        for (name, suffix) in picked {
            if let Some(suffix) = suffix {
                out.insert(format!("{name}{suffix}"));
            }
            out.insert(name);
        }
        out.into_iter().filter(|n| QueueName::try_from(n.as_str()).is_ok()).collect()
    })
}

fn idempotency_key() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &["1", "7", "x:queue", "queue", "restmq:leased", "k|deliveries", "a:1:refcount"][..],
    )
    .prop_map(str::to_owned)
}

/// The cases the adversarial pass found, then generated ones.
#[test]
fn queues_and_server_never_share_a_key() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let redis = RedisServer::start();
    let found = [
        (vec!["restmq", "jobs"], "1"),
        (vec!["a", "a:idem"], "1"),
        (vec!["a", "a:idem:x"], "x:queue"),
        (vec!["q", "q:1", "q:queue", "q.dead"], "7"),
    ];
    for (names, idem) in found {
        let names = names.into_iter().map(str::to_owned).collect();
        rt.block_on(check(&redis, names, idem.to_owned()));
    }
    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    let result = runner.run(&(names(), idempotency_key()), |(names, idem)| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), check(&redis, names, idem))
                .await
                .expect("case timed out")
        });
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// Names that RestMQ's `queuestat::<q>` keys make ambiguous are refused on every route that
/// takes a name, and change nothing: queue `7`'s status cannot be set by publishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queuestat_names_are_refused() {
    let s = TestServer::start(restmq_server::config::StoreKind::Redis).await;
    let r = s.redis.as_ref().unwrap();
    s.add("7", "work").await;
    for path in ["/q/queuestat:", "/q/queuestat::7", "/p/queuestat:", "/control/queuestat:x"] {
        let (status, body) =
            s.post_form(path, &[("value", "0"), ("policy", "roundrobin"), ("status", "stop")]).await;
        assert_eq!(status, 400, "{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_queue_name", "{path}");
    }
    let (status, body) = s.post_form("/", &[("queue", "queuestat:"), ("value", "0")]).await;
    assert_eq!(status, 400, "{body}");
    assert_ne!(r.cli(&["GET", "queuestat::7"]).unwrap(), "0", "queue 7 is still started");
    assert!(r.cli(&["KEYS", "queuestat:*"]).unwrap().lines().all(|k| k == "queuestat::7"));
}

/// Keys an earlier restmq wrote under names a queue could produce move to the new namespace
/// at start: a lease can still be acknowledged with its delivery count kept, a delayed
/// message still becomes visible, and no key of the old forms is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_layout_moves_at_start() {
    let redis = RedisServer::start();
    let far = (std::time::SystemTime::now() + Duration::from_secs(600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let soon = (std::time::SystemTime::now() + Duration::from_millis(500))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    for cmd in [
        &["SADD", "QUEUESET", "jobs", "later"][..],
        &["SET", "jobs:UUID", "2"],
        &["SET", "jobs:1", "leased one"],
        &["SET", "jobs:1:deliveries", "2"],
        &["SET", "jobs:2", "back in line"],
        &["SET", "jobs:2:deliveries", "1"],
        &["LPUSH", "jobs:queue", "jobs:2"],
        &["ZADD", "jobs:leased", &far, "jobs:1"],
        &["SADD", "restmq:leased", "jobs"],
        &["SET", "later:UUID", "1"],
        &["SET", "later:1", "soon"],
        &["ZADD", "later:delayed", &soon, "later:1"],
        &["SADD", "restmq:delayed", "later"],
        &["ZADD", "restmq:nodes", "0", "gone"],
    ] {
        assert!(redis.cli(cmd).is_some(), "{cmd:?}");
    }
    let s = TestServer::start_on_redis(&redis.url()).await;
    assert_eq!(s.get("/readyz").await.0, 200, "serving, so the store has opened (and moved the keys)");
    let keys: BTreeSet<String> = redis.cli(&["KEYS", "*"]).unwrap().lines().map(str::to_owned).collect();
    for old in ["restmq:leased", "restmq:delayed", "restmq:nodes", "jobs:leased", "later:delayed"] {
        assert!(!keys.contains(old), "{old} is left: {keys:?}");
    }
    assert!(keys.iter().all(|k| !k.ends_with(":deliveries")), "{keys:?}");
    assert_eq!(redis.cli(&["GET", "jobs:1|deliveries"]).unwrap(), "2");
    assert_eq!(redis.cli(&["GET", "jobs:2|deliveries"]).unwrap(), "1");
    assert_eq!(redis.cli(&["SMEMBERS", "restmq|leased"]).unwrap(), "jobs");

    let res = s.http.delete(s.url("/q/jobs/jobs:1")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the moved lease is acknowledged");
    let reserved = s.get_json("/q/jobs?reserve=30").await;
    assert_eq!((reserved["key"].as_str(), reserved["deliveries"].as_u64()), (Some("jobs:2"), Some(2)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = s.get("/q/later").await;
        if status == 200 {
            assert!(body.contains("soon"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the moved delayed message never became visible");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
