//! The embedded store on a full disk: its data directory is a small tmpfs filled by a filler
//! file. Adds are refused with `507 insufficient_storage`, nothing refused is ever visible
//! (length, gets, after a restart), other writes fail cleanly, `/readyz` says so, and writes
//! resume once space returns.
//!
//! The tests mount a tmpfs, so they need root (as the test machines run); a failed mount
//! fails the test.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestServer;
use restmq_server::config::StoreKind;

const QUEUE: &str = "disk";
/// Concurrent adders, so refused adds share commits with others as under load.
const ADDERS: usize = 8;
/// Adds each adder tries at most.
const MAX_ADDS: usize = 5_000;
/// Room left on the tmpfs once filled, for adds to fill.
const LEAVE: u64 = 1024 * 1024;
/// Padding that makes each message take room.
const PAD: usize = 2_000;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (these tests need root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes the filler file until the filesystem is full, then gives back `leave` bytes, so
    /// that some adds still fit and the disk fills up under them.
    fn fill(&self, leave: u64) {
        let mut file = std::fs::File::create(self.filler()).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        // Bounded: the tmpfs is far smaller than this many chunks.
        for _ in 0..100_000 {
            if let Err(e) = file.write_all(&chunk).and_then(|()| file.flush()) {
                assert_eq!(e.raw_os_error(), Some(28), "the filler stops at ENOSPC: {e}");
                let len = file.metadata().expect("filler size").len();
                file.set_len(len.saturating_sub(leave)).expect("shrink the filler");
                return;
            }
        }
        panic!("the tmpfs never filled up");
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

async fn start_on(fs: &Tmpfs) -> TestServer {
    let data_dir = fs.data_dir();
    let server = TestServer::start_with(StoreKind::Embedded, move |c| c.data_dir = data_dir).await;
    wait_ready(&server).await;
    server
}

/// Waits (bounded) until `/readyz` answers 200.
async fn wait_ready(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server.get("/readyz").await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz still {status} after 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the adds got: values (and keys) acknowledged and values refused.
#[derive(Default)]
struct Outcome {
    acked: BTreeSet<String>,
    keys: BTreeSet<String>,
    refused: BTreeSet<String>,
}

/// Adds from [`ADDERS`] tasks at once until each has been refused; every refusal must be
/// `507 insufficient_storage`. Values start with `round`, so that each is unique.
async fn add_until_refused(server: &TestServer, round: &str) -> Outcome {
    let url = server.url(&format!("/q/{QUEUE}"));
    let tasks: Vec<_> = (0..ADDERS)
        .map(|t| {
            let (http, url, round) = (server.http.clone(), url.clone(), round.to_owned());
            tokio::spawn(async move {
                let mut out = Outcome::default();
                let deadline = Instant::now() + Duration::from_secs(60);
                for i in 0..MAX_ADDS {
                    assert!(Instant::now() < deadline, "adder {t}: no refusal within 60 s");
                    let value = format!("{round}{t}-{i}-{}", "x".repeat(PAD));
                    let res = http.post(&url).form(&[("value", &value)]).send().await.unwrap();
                    let status = res.status().as_u16();
                    let body = res.text().await.unwrap();
                    match status {
                        200 => {
                            assert!(out.acked.insert(value));
                            out.keys.insert(body.trim_end().to_owned());
                        }
                        507 => {
                            assert!(body.contains("\"insufficient_storage\""), "507 body: {body}");
                            out.refused.insert(value);
                            break;
                        }
                        _ => panic!("add answered {status}: {body}"),
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Outcome::default();
    for task in tasks {
        let out = task.await.unwrap();
        all.acked.extend(out.acked);
        all.keys.extend(out.keys);
        all.refused.extend(out.refused);
    }
    assert!(!all.refused.is_empty(), "no add was refused");
    all
}

/// Adds until refused while another client reads the newest keys (`/j/<queue>`) as fast
/// as it can: every key it saw must be one of an acknowledged add.
async fn add_until_refused_watched(server: &TestServer, round: &str) -> Outcome {
    let stop = tokio_util::sync::CancellationToken::new();
    let (http, url, done) = (server.http.clone(), server.url(&format!("/j/{QUEUE}")), stop.clone());
    let watcher = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        for _ in 0..1_000_000 {
            if done.is_cancelled() || Instant::now() > deadline {
                break;
            }
            let recent: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
            for key in recent["keys"].as_array().into_iter().flatten() {
                seen.insert(key.as_str().unwrap().to_owned());
            }
        }
        seen
    });
    let outcome = add_until_refused(server, round).await;
    stop.cancel();
    let seen = watcher.await.unwrap();
    let unknown: Vec<_> = seen.iter().filter(|key| !outcome.keys.contains(*key)).collect();
    assert!(unknown.is_empty(), "keys seen that no acknowledged add got: {unknown:?}");
    outcome
}

/// The queue's length from `/stats/<queue>`.
async fn len(server: &TestServer) -> u64 {
    server.get_json(&format!("/stats/{QUEUE}")).await["len"].as_u64().unwrap()
}

/// Takes every message of the queue (bounded), oldest first.
async fn drain(server: &TestServer, max: usize) -> Vec<String> {
    let mut values = Vec::new();
    for _ in 0..=max {
        let (status, body) = server.get(&format!("/q/{QUEUE}")).await;
        if status == 204 {
            return values;
        }
        assert_eq!(status, 200, "hard get: {body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        values.push(got["value"].as_str().unwrap().to_owned());
    }
    panic!("more than {max} messages in the queue");
}

/// The queue holds exactly the acknowledged values, none refused, each once.
async fn assert_holds_exactly(server: &TestServer, acked: &BTreeSet<String>, refused: &BTreeSet<String>) {
    let values = drain(server, acked.len() + refused.len()).await;
    let got: BTreeSet<String> = values.iter().cloned().collect();
    assert_eq!(got.len(), values.len(), "a message came out twice");
    let lost = acked.difference(&got).count();
    let ghosts = got.intersection(refused).count();
    let strangers = got.difference(acked).count();
    assert_eq!((lost, ghosts, strangers), (0, 0, 0), "(acknowledged lost, refused present, unknown)");
}

/// The queue's policy and status answers.
async fn settings(server: &TestServer) -> (serde_json::Value, serde_json::Value) {
    (server.get_json(&format!("/p/{QUEUE}")).await, server.get_json(&format!("/control/{QUEUE}")).await)
}

/// `/readyz` answers 503 `insufficient_storage`.
async fn assert_not_ready(server: &TestServer) {
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "/readyz while full: {body}");
    assert!(body.contains("\"insufficient_storage\""), "/readyz says why: {body}");
}

/// Refuses every write while full, changing nothing, and `/readyz` says why.
async fn assert_refuses_writes(server: &TestServer, acked: usize) {
    let before = settings(server).await;
    assert_not_ready(server).await;
    assert_eq!(len(server).await, acked as u64, "the length counts only acknowledged adds");
    let writes = [
        server.post_form(&format!("/p/{QUEUE}"), &[("policy", "roundrobin")]).await,
        server.post_form(&format!("/control/{QUEUE}"), &[("status", "stop")]).await,
        server.get(&format!("/q/{QUEUE}?reserve=30")).await,
        server.get(&format!("/q/{QUEUE}")).await,
        server
            .post_raw(
                "/queue",
                "application/json",
                &format!(r#"{{"cmd":"add","queue":"{QUEUE}","value":"v"}}"#),
            )
            .await,
    ];
    for (status, body) in writes {
        assert_eq!(status, 507, "a write while full: {body}");
        assert!(body.contains("\"insufficient_storage\""), "{body}");
    }
    let res = server.http.delete(server.url(&format!("/q/{QUEUE}"))).send().await.unwrap();
    assert_eq!(res.status(), 507, "purge while full");
    assert_eq!(settings(server).await, before, "policy and status unchanged");
    assert_eq!(len(server).await, acked as u64, "nothing taken, purged or added");
}

/// A full disk refuses adds with 507 and other writes (ack included) cleanly, shows no
/// refused add, keeps leases, and once space returns `/readyz` is 200, writes work, and a
/// restart keeps exactly what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_cleanly_and_recovers() {
    let fs = Tmpfs::mount("12m");
    let server = start_on(&fs).await;
    server.add(QUEUE, "leased").await;
    let leased = server.get_json(&format!("/q/{QUEUE}?reserve=60")).await;
    let ack = server.url(&format!("/q/{QUEUE}/{}", leased["key"].as_str().unwrap()));

    fs.fill(LEAVE);
    let mut outcome = add_until_refused_watched(&server, "a").await;
    assert_refuses_writes(&server, outcome.acked.len()).await;
    let res = server.http.delete(&ack).send().await.unwrap();
    assert_eq!(res.status(), 507, "ack while full");
    // Past a few recovery tries, the still-full disk is still reported, and nothing changed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_not_ready(&server).await;
    assert_eq!(len(&server).await, outcome.acked.len() as u64);

    fs.free();
    let freed = Instant::now();
    wait_ready(&server).await;
    eprintln!(
        "acknowledged {}, refused {}, ready {:?} after freeing space",
        outcome.acked.len(),
        outcome.refused.len(),
        freed.elapsed()
    );
    let res = server.http.delete(&ack).send().await.unwrap();
    assert_eq!(res.status(), 200, "the lease outlived the episode; ack works again");
    server.add(QUEUE, "after").await;
    outcome.acked.insert("after".to_owned());
    assert_eq!(len(&server).await, outcome.acked.len() as u64);
    server.stop().await;

    let server = start_on(&fs).await;
    assert_holds_exactly(&server, &outcome.acked, &outcome.refused).await;
    server.add(QUEUE, "later").await;
    server.stop().await;
}

/// A server stopped while its disk is full restarts on the still-full disk with exactly the
/// acknowledged messages, refuses adds again without showing them, and after space returns
/// and another restart holds every acknowledged message and none of the refused ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_full_disk_keeps_exactly_the_acknowledged() {
    let fs = Tmpfs::mount("12m");
    let server = start_on(&fs).await;
    server.add(QUEUE, "before").await;
    fs.fill(LEAVE);
    let mut outcome = add_until_refused(&server, "a").await;
    outcome.acked.insert("before".to_owned());
    server.stop().await;

    let server = start_on(&fs).await;
    assert_eq!(len(&server).await, outcome.acked.len() as u64, "restarted on the full disk");
    let again = add_until_refused(&server, "b").await;
    outcome.acked.extend(again.acked);
    outcome.refused.extend(again.refused);
    assert_not_ready(&server).await;
    assert_eq!(len(&server).await, outcome.acked.len() as u64);
    server.stop().await;

    fs.free();
    let server = start_on(&fs).await;
    assert_eq!(len(&server).await, outcome.acked.len() as u64);
    assert_holds_exactly(&server, &outcome.acked, &outcome.refused).await;
    server.stop().await;
}

/// A queue's first log add on a full disk is refused and leaves an empty `state` file (its
/// blocks refused): a restart while the disk is still full starts and serves reads, and once
/// space returns the queue adds again, its log made anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_an_empty_state_on_a_full_disk_serves_reads() {
    let fs = Tmpfs::mount("12m");
    let server = start_on(&fs).await;
    server.add(QUEUE, "before").await;
    fs.fill(0);
    let (status, body) = server.post_form(&format!("/q/{QUEUE}"), &[("value", "refused")]).await;
    assert_eq!(status, 507, "{body}");
    let state = fs.data_dir().join("log").join("1").join("state");
    assert_eq!(
        std::fs::metadata(&state).map(|m| m.len()).ok(),
        Some(0),
        "the refused log left an empty state"
    );
    server.stop().await;

    let data_dir = fs.data_dir();
    let server = TestServer::start_with(StoreKind::Embedded, move |c| c.data_dir = data_dir).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        match server.http.get(server.url(&format!("/stats/{QUEUE}"))).send().await {
            Ok(res) if res.status() == 200 => break res.json::<serde_json::Value>().await.unwrap(),
            answered => assert!(Instant::now() < deadline, "no stats 30 s after the restart: {answered:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats["len"], 1, "{stats}");
    let recent = server.get_json(&format!("/j/{QUEUE}")).await;
    assert_eq!(recent["keys"], serde_json::json!([format!("{QUEUE}:1")]), "{recent}");
    server.stop().await;

    fs.free();
    let server = start_on(&fs).await;
    server.add(QUEUE, "later").await;
    assert_eq!(drain(&server, 10).await, ["before", "later"]);
    server.stop().await;
}
