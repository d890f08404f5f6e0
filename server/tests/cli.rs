//! The `restmq` client commands end to end: the real binary against a real server.

mod common;
mod feed_util;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestServer;
use restmq_server::config::StoreKind;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What a finished command printed and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `restmq ARGS` against `server` with `stdin` as input; fails after 120 s.
async fn restmq(server: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_restmq"))
        .args(args)
        .env("RESTMQ_SERVER", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    tokio::spawn(async move {
        let _ = input.write_all(stdin.as_bytes()).await;
    });
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("restmq {args:?} did not finish"))
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    eprintln!("restmq {args:?} → {}\n{}", run.code, run.stderr);
    run
}

/// `seq 10000 | restmq push numbers -`, then `restmq tail numbers` prints all 10,000 in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_ten_thousand_lines_and_tail_them() {
    let s = TestServer::start(StoreKind::Memory).await;
    let lines: String = (1..=10_000).map(|i| format!("{i}\n")).collect();
    let started = Instant::now();
    let push = restmq(&s.url(""), &["push", "numbers", "-"], &lines).await;
    eprintln!("pushed 10,000 lines in {:?}", started.elapsed());
    assert_eq!(push.code, 0);
    assert!(push.stderr.contains("pushed 10000 messages to numbers"), "{}", push.stderr);
    assert_eq!(s.get_json("/stats/numbers").await["len"], 10_000);

    let tail = restmq(&s.url(""), &["tail", "numbers", "--count", "10000", "--timeout", "60"], "").await;
    assert_eq!(tail.code, 0);
    let got: Vec<Value> = tail.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.len(), 10_000);
    for (i, message) in got.iter().enumerate() {
        let n = i + 1;
        assert_eq!(message, &serde_json::json!({"key": format!("numbers:{n}"), "value": n.to_string()}));
    }
}

/// One value prints its key; `pop --soft` leaves it, `pop` takes it, then the queue is empty (exit 4).
#[tokio::test]
async fn push_and_pop_one_value() {
    let s = TestServer::start(StoreKind::Embedded).await;
    let url = s.url("");
    let push = restmq(&url, &["push", "jobs", "wash the car", "--ttl", "60"], "").await;
    assert_eq!((push.code, push.stdout.as_str()), (0, "jobs:1\n"));
    let soft = restmq(&url, &["pop", "jobs", "--soft", "--json"], "").await;
    assert_eq!(soft.stdout, "{\"key\":\"jobs:1\",\"value\":\"wash the car\",\"count\":1}\n");
    let pop = restmq(&url, &["pop", "jobs"], "").await;
    assert_eq!((pop.code, pop.stdout.as_str()), (0, "wash the car\n"));
    let empty = restmq(&url, &["pop", "jobs"], "").await;
    assert_eq!((empty.code, empty.stdout.as_str()), (4, ""));
    assert!(empty.stderr.contains("queue jobs is empty"), "{}", empty.stderr);
}

/// `policy`, `pause` and `resume` change what `/p` and `/control` report; `stats` shows it.
#[tokio::test]
async fn policy_pause_resume_and_stats() {
    let s = TestServer::start(StoreKind::Memory).await;
    let url = s.url("");
    assert_eq!(restmq(&url, &["policy", "work", "roundrobin"], "").await.code, 0);
    assert_eq!(s.get_json("/p/work").await["value"], "roundrobin");
    assert_eq!(restmq(&url, &["policy", "work"], "").await.stdout, "roundrobin\n");
    assert_eq!(restmq(&url, &["pause", "work"], "").await.code, 0);
    assert_eq!(s.get_json("/control/work").await["state"], "paused");
    let table = restmq(&url, &["stats"], "").await.stdout;
    let row = table.lines().find(|l| l.starts_with("work ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("paused") && row.contains("roundrobin"), "{row}");
    assert_eq!(restmq(&url, &["resume", "work"], "").await.code, 0);
    assert_eq!(s.get_json("/control/work").await["state"], "started");
    let json: Value = serde_json::from_str(&restmq(&url, &["stats", "--json"], "").await.stdout).unwrap();
    assert_eq!(
        (&json["queues"]["work"]["status"], &json["queues"]["work"]["state"]),
        (&json!(1), &json!("started"))
    );
    let bad = restmq(&url, &["policy", "work", "random"], "").await;
    assert_eq!(bad.code, 2, "clap refuses a policy the server would refuse");
}

/// A server that is down gives exit 3 and says so; a server error gives exit 1 with its code.
#[tokio::test]
async fn errors_and_exit_codes() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for args in [&["push", "q", "x"][..], &["pop", "q"], &["tail", "q"], &["stats"], &["pause", "q"]] {
        let run = restmq(&down, args, "").await;
        assert_eq!(run.code, 3, "{args:?}");
        assert!(run.stderr.contains("cannot reach the restmq server"), "{args:?}: {}", run.stderr);
    }
    let s = TestServer::start_with(StoreKind::Memory, |c| c.max_queue_len = 1).await;
    assert_eq!(restmq(&s.url(""), &["push", "full", "first"], "").await.code, 0);
    let refused = restmq(&s.url(""), &["push", "full", "second"], "").await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("429: too_many_requests"), "{}", refused.stderr);
    assert_eq!(restmq(&s.url(""), &["push", "bad/name", "x"], "").await.code, 2);
}

/// `tail --since` resumes after that key (what it already saw is not shown again), and
/// `--timeout` stops a tail that got fewer than `--count` (exit 4).
#[tokio::test]
async fn tail_since_and_timeout() {
    let s = TestServer::start(StoreKind::Memory).await;
    s.add("t", "one").await;
    let first = restmq(&s.url(""), &["tail", "t", "--count", "1", "--timeout", "5"], "").await;
    assert_eq!((first.code, first.stdout.as_str()), (0, "{\"key\":\"t:1\",\"value\":\"one\"}\n"));
    s.add("t", "two").await;
    let run =
        restmq(&s.url(""), &["tail", "t", "--since", "t:1", "--count", "2", "--timeout", "1"], "").await;
    assert_eq!(run.code, 4);
    assert_eq!(run.stdout, "{\"key\":\"t:2\",\"value\":\"two\"}\n");
    assert!(run.stderr.contains("timed out after 1 of 2 messages"), "{}", run.stderr);
}

/// `restmq feed SPEC --server URL` relays a file into a remote server over HTTP and ends
/// with the file.
#[tokio::test]
async fn standalone_feed_posts_over_http() {
    let s = TestServer::start(StoreKind::Memory).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.txt");
    std::fs::write(&path, "first\n{\"level\":\"error\"}\n{\"level\":\"info\"}\nlast\n").unwrap();
    let spec = format!("file:path={},queue=remote,rate=0,filter=level!=info", path.display());
    let run = restmq(&s.url(""), &["feed", &spec, "--server", &s.url("")], "").await;
    assert_eq!(run.code, 0);
    let got = feed_util::drain(&s, "remote").await;
    assert_eq!(got, ["first", "{\"level\":\"error\"}", "last"]);
}

/// `browse` lists waiting messages (all pages, or JSON), `tail --observe` sees adds and
/// takes none, and `consumers` lists the observer while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_consumers_and_observing_tail() {
    let s = TestServer::start(StoreKind::Memory).await;
    for i in 1..=120 {
        s.add("looked", &format!("value {i}")).await;
    }
    let table = restmq(&s.url(""), &["browse", "looked", "--all", "--limit", "50"], "").await;
    assert_eq!(table.code, 0);
    assert!(table.stdout.starts_with("120 waiting in looked\n"), "{}", table.stdout);
    let rows: Vec<&str> = table.stdout.lines().filter(|l| l.starts_with("looked:")).collect();
    assert_eq!(rows.len(), 120);
    assert!(rows[0].contains("value 1") && rows[119].starts_with("looked:120 "), "{rows:?}");
    let json =
        restmq(&s.url(""), &["browse", "looked", "--limit", "2", "--after", "looked:7", "--json"], "").await;
    let page: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(
        (page["messages"][0]["key"].as_str(), page["next"].as_str()),
        (Some("looked:8"), Some("looked:9"))
    );

    let server = s.url("");
    let tail = tokio::spawn(async move {
        restmq(&server, &["tail", "looked", "--observe", "--count", "2", "--timeout", "30"], "").await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let who = restmq(&s.url(""), &["consumers", "looked"], "").await;
        if who.stdout.lines().any(|l| l.starts_with("observer ") && l.contains(" ws ")) {
            break;
        }
        assert!(Instant::now() < deadline, "no observer listed:\n{}", who.stdout);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.add("looked", "new one").await;
    s.add("looked", "new two").await;
    let tail = tail.await.unwrap();
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    let seen: Vec<Value> = tail.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        seen,
        [json!({"key": "looked:121", "value": "new one"}), json!({"key": "looked:122", "value": "new two"})]
    );
    assert_eq!(s.get_json("/stats/looked").await["len"], 122, "looking took nothing");
}
