//! Durability under `kill -9`: a child process adds messages to an embedded store and prints
//! each acknowledged key; the parent SIGKILLs it mid-stream, reopens the store and checks
//! that every acknowledged message is there, and that no number given before the kill is
//! given again (a queue's numbers are written ahead, not with every removal).
//!
//! The child is this test binary re-run with `RESTMQ_KILL9_CHILD=<dir>` and a filter that
//! selects [`child_writer`]; without that variable `child_writer` returns at once.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use restmq_server::store::{EmbeddedStore, QueueStore};
use restmq_shared::QueueName;

const CHILD_ENV: &str = "RESTMQ_KILL9_CHILD";
const QUEUE: &str = "durable";
/// A queue whose messages the child takes as soon as it adds them.
const TAKEN: &str = "taken";
/// Numbers of `TAKEN` to see taken before killing the child: well past the 1,024 numbers a
/// queue's row is written ahead, so that the row must have been written again.
const TAKE_BEFORE_KILL: u64 = 3_000;
/// Acknowledged adds to see before killing the child.
const KILL_AFTER: usize = 2_000;
/// Concurrent adders in the child, so commits are batched as under real load.
const WRITERS: usize = 16;
/// The whole test, child included, must finish within this.
const DEADLINE: Duration = Duration::from_secs(120);

/// Not a test on its own: the child process of `acknowledged_adds_survive_kill9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let store = EmbeddedStore::open(dir.as_ref()).unwrap();
    let queue = QueueName::try_from(QUEUE).unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (store, queue) = (store.clone(), queue.clone());
            tokio::spawn(async move {
                // Bounded, so a child whose parent died does not run for ever.
                let stop = Instant::now() + DEADLINE;
                for i in 0.. {
                    if Instant::now() > stop {
                        break;
                    }
                    let value = format!("w{t}-{i}");
                    println_raw(&format!("SENT {value}"));
                    let key = store.add(&queue, value.clone(), None).await.unwrap();
                    println_raw(&format!("ACK {key} {value}"));
                }
            })
        })
        .chain(std::iter::once({
            let (store, queue) = (store.clone(), QueueName::try_from(TAKEN).unwrap());
            tokio::spawn(async move {
                let stop = Instant::now() + DEADLINE;
                while Instant::now() < stop {
                    let key = store.add(&queue, "gone soon".to_owned(), None).await.unwrap();
                    assert_eq!(store.pop(&queue, 1).await.unwrap()[0].key, key);
                    println_raw(&format!("TOOK {}", key.n));
                }
            })
        }))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Writes a line straight to stdout, past libtest's capture, flushed.
fn println_raw(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// A child's line from its `SENT ` or `ACK `: libtest prints `test child_writer ... ` with
/// no line end before the test runs, so the first line carries it in front.
fn event(line: &str) -> &str {
    ["SENT ", "ACK ", "TOOK "].iter().find_map(|e| line.find(e)).map_or(line, |i| &line[i..])
}

/// Kills the child when dropped, so no failure path leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every add acknowledged before a SIGKILL is in the store after reopening.
#[tokio::test]
async fn acknowledged_adds_survive_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut sent = 0usize;
    let mut took = 0u64;
    let mut acked: HashMap<String, String> = HashMap::new();
    while acked.len() < KILL_AFTER || took < TAKE_BEFORE_KILL {
        let left = DEADLINE.saturating_sub(start.elapsed());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("child gave {} acks and took {took} before {e:?}", acked.len()));
        let line = event(&line);
        if line.starts_with("SENT ") {
            sent += 1;
        } else if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, value) = rest.split_once(' ').unwrap();
            assert!(acked.insert(key.to_owned(), value.to_owned()).is_none(), "key {key} acked twice");
        } else if let Some(n) = line.strip_prefix("TOOK ") {
            took = took.max(n.parse().unwrap());
        }
    }
    child.0.kill().unwrap(); // SIGKILL on Unix
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    // Lines already in the pipe when the child died count too.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        let line = event(&line);
        if line.starts_with("SENT ") {
            sent += 1;
        } else if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, value) = rest.split_once(' ').unwrap();
            acked.insert(key.to_owned(), value.to_owned());
        } else if let Some(n) = line.strip_prefix("TOOK ") {
            took = took.max(n.parse().unwrap());
        }
    }

    let store = EmbeddedStore::open(dir.path()).unwrap();
    let found = store.pop(&QueueName::try_from(QUEUE).unwrap(), usize::MAX).await.unwrap();
    let taken = QueueName::try_from(TAKEN).unwrap();
    let next = store.add(&taken, "after".to_owned(), None).await.unwrap().n;
    assert!(took > 0 && next > took, "{TAKEN}: number {next} after {took} was taken");
    let last_acked = acked.keys().map(|k| k.rsplit_once(':').unwrap().1.parse::<u64>().unwrap()).max();
    let next = store.add(&QueueName::try_from(QUEUE).unwrap(), "after".to_owned(), None).await.unwrap().n;
    assert!(last_acked.is_some_and(|last| next > last), "{QUEUE}: number {next} after {last_acked:?}");
    store.close().await.unwrap();
    let found: HashMap<String, String> = found.into_iter().map(|m| (m.key.to_string(), m.value)).collect();
    println!(
        "kill -9 durability: sent {sent}, acknowledged {}, found after reopen {} in {:?}",
        acked.len(),
        found.len(),
        start.elapsed()
    );
    let lost: Vec<_> = acked.keys().filter(|k| !found.contains_key(*k)).collect();
    assert!(lost.is_empty(), "{} acknowledged keys lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    for (key, value) in &acked {
        assert_eq!(&found[key], value, "value of {key}");
    }
    assert!(found.len() <= sent, "found more messages than were sent");
    let values: HashSet<_> = found.values().collect();
    assert_eq!(values.len(), found.len(), "no message stored twice");
}
