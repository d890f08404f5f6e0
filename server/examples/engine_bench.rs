//! The storage-engine comparison behind the embedded store (BENCHMARKS.md, "Embedded store
//! engine"): appends of N messages in group commits of 64, then pops oldest-first in the same
//! group size, on redb (fsynced commits, as the first embedded store; and `Durability::None`,
//! which a crash of the process may lose) and SQLite in WAL mode (`synchronous=NORMAL`, in the
//! kernel at each commit, and `FULL`, fsynced at each commit).
//!
//! `cargo run --release -p restmq-server --example engine_bench -- [N] [BYTES]`

use std::time::Instant;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use rusqlite::{params, Connection};

const T: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("m");
const GROUP: usize = 64;

/// One engine's run: append and pop rates.
type Run<'a> = Box<dyn Fn() -> (f64, f64) + 'a>;

fn redb_run(dir: &std::path::Path, n: usize, value: &[u8], durability: Durability) -> (f64, f64) {
    let db = Database::create(dir.join(format!("{durability:?}.redb"))).unwrap();
    let start = Instant::now();
    for g in (0..n).step_by(GROUP) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability);
        {
            let mut t = txn.open_table(T).unwrap();
            for i in g..(g + GROUP).min(n) {
                t.insert(i as u64, value).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in (0..n).step_by(GROUP) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability);
        {
            let mut t = txn.open_table(T).unwrap();
            for _ in 0..GROUP {
                let Some(first) = t.first().unwrap().map(|(k, _)| k.value()) else { break };
                t.remove(first).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    (append, n as f64 / start.elapsed().as_secs_f64())
}

fn sqlite_run(dir: &std::path::Path, n: usize, value: &[u8], synchronous: &str) -> (f64, f64) {
    let conn = Connection::open(dir.join(format!("{synchronous}.sqlite"))).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};
         CREATE TABLE m(id INTEGER PRIMARY KEY, q INTEGER, n INTEGER, v BLOB);
         CREATE INDEX m_order ON m(q, n);"
    ))
    .unwrap();
    let start = Instant::now();
    for g in (0..n).step_by(GROUP) {
        conn.execute_batch("BEGIN").unwrap();
        let mut insert = conn.prepare_cached("INSERT INTO m(q, n, v) VALUES (1, ?1, ?2)").unwrap();
        for i in g..(g + GROUP).min(n) {
            insert.execute(params![i as i64, value]).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    let append = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in (0..n).step_by(GROUP) {
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..GROUP {
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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let bytes: usize = args.next().map_or(200, |a| a.parse().unwrap());
    let value = vec![b'x'; bytes];
    let dir = tempfile::tempdir_in(".").unwrap();
    println!("| engine | survives kill -9 | append msgs/s | pop msgs/s |");
    println!("|---|---|--:|--:|");
    let rows: [(&str, &str, Run<'_>); 4] = [
        (
            "redb, fsync per commit",
            "yes",
            Box::new(|| redb_run(dir.path(), n, &value, Durability::Immediate)),
        ),
        ("redb, Durability::None", "no", Box::new(|| redb_run(dir.path(), n, &value, Durability::None))),
        ("SQLite WAL, synchronous=FULL", "yes", Box::new(|| sqlite_run(dir.path(), n, &value, "FULL"))),
        ("SQLite WAL, synchronous=NORMAL", "yes", Box::new(|| sqlite_run(dir.path(), n, &value, "NORMAL"))),
    ];
    for (name, crash, run) in rows {
        let (append, pop) = run();
        println!("| {name} | {crash} | {append:.0} | {pop:.0} |");
    }
}
