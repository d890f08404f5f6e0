//! The storage-engine comparison behind the embedded store (BENCHMARKS.md, "Embedded store
//! engine"): appends of N messages in group commits of 64, then pops oldest-first in the same
//! group size, on redb (fsynced commits, as the first embedded store; and `Durability::None`,
//! which a crash of the process may lose) and SQLite in WAL mode (`synchronous=NORMAL`, in the
//! kernel at each commit, and `FULL`, fsynced at each commit); with the `fjall-bench` feature
//! also fjall (its journal written to the kernel at each commit, `PersistMode::Buffer`; pops
//! read from a head cursor kept in memory, as a queue on an LSM must, past the tombstones).
//! Then the same with a commit per message (no group), the cost of writing each add inline.
//!
//! `cargo run --release -p restmq-server --example engine_bench [--features fjall-bench] -- [N] [BYTES]`

use std::time::Instant;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use rusqlite::{params, Connection};

const T: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("m");

/// One engine's run with commits of a given size: append and pop rates.
type Run<'a> = Box<dyn Fn(usize) -> (f64, f64) + 'a>;

/// An engine as the table shows it: name, whether a commit survives `kill -9`, whether each
/// commit is fsynced (hundreds of times slower: not run with a commit per message), its run.
type Row<'a> = (&'a str, &'a str, bool, Run<'a>);

fn redb_run(
    dir: &std::path::Path,
    n: usize,
    value: &[u8],
    durability: Durability,
    group: usize,
) -> (f64, f64) {
    let db = Database::create(dir.join(format!("{durability:?}-{group}.redb"))).unwrap();
    let start = Instant::now();
    for g in (0..n).step_by(group) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability);
        {
            let mut t = txn.open_table(T).unwrap();
            for i in g..(g + group).min(n) {
                t.insert(i as u64, value).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in (0..n).step_by(group) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability);
        {
            let mut t = txn.open_table(T).unwrap();
            for _ in 0..group {
                let Some(first) = t.first().unwrap().map(|(k, _)| k.value()) else { break };
                t.remove(first).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    (append, n as f64 / start.elapsed().as_secs_f64())
}

fn sqlite_run(dir: &std::path::Path, n: usize, value: &[u8], synchronous: &str, group: usize) -> (f64, f64) {
    let conn = Connection::open(dir.join(format!("{synchronous}-{group}.sqlite"))).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};
         CREATE TABLE m(id INTEGER PRIMARY KEY, q INTEGER, n INTEGER, v BLOB);
         CREATE INDEX m_order ON m(q, n);"
    ))
    .unwrap();
    let start = Instant::now();
    for g in (0..n).step_by(group) {
        conn.execute_batch("BEGIN").unwrap();
        let mut insert = conn.prepare_cached("INSERT INTO m(q, n, v) VALUES (1, ?1, ?2)").unwrap();
        for i in g..(g + group).min(n) {
            insert.execute(params![i as i64, value]).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in (0..n).step_by(group) {
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..group {
            let mut head = conn.prepare_cached("SELECT id, v FROM m WHERE q = 1 ORDER BY n LIMIT 1").unwrap();
            let Ok((id, _v)) = head.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            else {
                break;
            };
            conn.prepare_cached("DELETE FROM m WHERE id = ?1").unwrap().execute([id]).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    (append, n as f64 / start.elapsed().as_secs_f64())
}

#[cfg(feature = "fjall-bench")]
fn fjall_run(dir: &std::path::Path, n: usize, value: &[u8], group: usize) -> (f64, f64) {
    use fjall::{KeyspaceCreateOptions, PersistMode};
    let db = fjall::Database::builder(dir.join(format!("fjall-{group}"))).open().unwrap();
    let t = db.keyspace("m", KeyspaceCreateOptions::default).unwrap();
    let start = Instant::now();
    for g in (0..n).step_by(group) {
        let mut batch = db.batch();
        for i in g..(g + group).min(n) {
            batch.insert(&t, (i as u64).to_be_bytes(), value);
        }
        batch.commit().unwrap();
        db.persist(PersistMode::Buffer).unwrap();
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut head = 0u64;
    for _ in (0..n).step_by(group) {
        let mut batch = db.batch();
        for kv in t.range(head.to_be_bytes()..).take(group) {
            let (key, _value) = kv.into_inner().unwrap();
            head = u64::from_be_bytes(key[..8].try_into().unwrap()) + 1;
            batch.remove(&t, key);
        }
        batch.commit().unwrap();
        db.persist(PersistMode::Buffer).unwrap();
    }
    assert_eq!(head, n as u64, "every message popped");
    (append, n as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let bytes: usize = args.next().map_or(200, |a| a.parse().unwrap());
    let value = vec![b'x'; bytes];
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = dir.path();
    #[cfg_attr(not(feature = "fjall-bench"), allow(unused_mut))]
    let mut rows: Vec<Row<'_>> = vec![
        (
            "redb, fsync per commit",
            "yes",
            true,
            Box::new(|g| redb_run(path, n, &value, Durability::Immediate, g)),
        ),
        ("redb, Durability::None", "no", false, Box::new(|g| redb_run(path, n, &value, Durability::None, g))),
        ("SQLite WAL, synchronous=FULL", "yes", true, Box::new(|g| sqlite_run(path, n, &value, "FULL", g))),
        (
            "SQLite WAL, synchronous=NORMAL",
            "yes",
            false,
            Box::new(|g| sqlite_run(path, n, &value, "NORMAL", g)),
        ),
    ];
    #[cfg(feature = "fjall-bench")]
    rows.push(("fjall, PersistMode::Buffer", "yes", false, Box::new(|g| fjall_run(path, n, &value, g))));
    for group in [64, 1] {
        println!("\ncommits of {group}:\n");
        println!("| engine | survives kill -9 | append msgs/s | pop msgs/s |");
        println!("|---|---|--:|--:|");
        for (name, crash, fsyncs, run) in &rows {
            if group == 1 && *fsyncs {
                continue;
            }
            let (append, pop) = run(group);
            println!("| {name} | {crash} | {append:.0} | {pop:.0} |");
        }
    }
}
