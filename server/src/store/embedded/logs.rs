//! The embedded store's queue logs (see `queue_log`): where a plain add goes without a
//! transaction, and what a hard get takes from while SQLite holds no waiting message of the
//! queue. A queue's log holds the newest of its waiting messages. Browse, recent keys, soft
//! gets and deletes by key read and mark the log in place (a delete is a *hole*: a row of
//! `holes` and a number in the queue's set, skipped by every read, gone once the head passes
//! it; a soft read's count is a row of `log_reads`); any other operation on the queue first
//! *drains* the log into SQLite (`Db::drain`), so SQLite's operations see every message. A
//! drain writes the rows and the queue's `drained` mark (the last number it moved) in the
//! batch's transaction; the log's head moves past them once that is committed and fsynced,
//! and messages a crash left behind under the mark are dropped at start-up.
//!
//! A log that cannot be read at start-up is quarantined (moved aside, see [`Quarantined`]):
//! one damaged queue never stops the store.
//!
//! Bounded: at most [`MAX_LOGS`] logs are open; the queues past that add through SQLite.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use restmq_shared::QueueName;
use rusqlite::{params, Connection};

use super::catalog::{Catalog, QueueMeta, NUMBERS_AHEAD};
use super::crash::around;
use super::engine::sync_wal;
use super::queue_log::{self, QueueLog, LEAST_RECORD, MAX_SEGMENT};
use super::DB_FILE;
use crate::config::Fsync;

/// The most queue logs open at once.
pub const MAX_LOGS: usize = 256;
/// The directory of the logs inside the data directory.
pub const LOG_DIR: &str = "log";
/// The file in [`LOG_DIR`] that says the last stop was clean (every log synced).
pub const CLEAN: &str = "clean";
/// The directory in [`LOG_DIR`] where logs that cannot be read are moved (see `Quarantined`).
pub const QUARANTINE: &str = "quarantine";
/// How far past the last number its files name a quarantined log's queue numbers on, besides
/// a bound on its records (`Traces::count_bound`): the records of a whole newest segment lost
/// (of the smallest records), and the gap of an unclean stop.
pub const QUARANTINE_AHEAD: u64 = MAX_SEGMENT as u64 / LEAST_RECORD + NUMBERS_AHEAD;

/// Records of the queue logs lost to damage (a checksum that fails, a frame that cannot be
/// read) since the process started: each one is also logged at WARN with its queue, file and
/// offset. Read by `/metrics`.
pub static DAMAGED_RECORDS: AtomicU64 = AtomicU64::new(0);

/// What the syncer needs of the logs: each one's directory and whether it was written since
/// its last sync, and their file work (spares made, segments placed, synced and removed: see
/// `queue_log`), which the syncer's thread does.
#[derive(Default)]
pub struct Unsynced {
    pub any: AtomicBool,
    pub logs: Mutex<Vec<(PathBuf, Arc<AtomicBool>)>>,
    pub files: Arc<queue_log::Background>,
    /// The syncer's fsyncs of the WAL, numbered: how many began, and the last one finished (they
    /// run one at a time). A drain's head move waits for one that began after its commit (see
    /// `Logs::committed`).
    wal_begun: AtomicU64,
    wal_done: AtomicU64,
}

impl Unsynced {
    /// Fsyncs the WAL of the database at `path` (see `engine::sync_wal`), numbered.
    pub fn sync_wal(&self, path: &Path) {
        let this = self.wal_begun.fetch_add(1, Ordering::AcqRel) + 1;
        sync_wal(path);
        self.wal_done.store(this, Ordering::Release);
    }

    /// Fsyncs the logs written since the last call, after `sync_wal` (so that a head moved
    /// past messages a drain put in SQLite is on disk only after the WAL holding them).
    pub fn sync(&self, sync_wal: impl FnOnce()) {
        if !self.any.swap(false, Ordering::AcqRel) {
            return;
        }
        let due: Vec<PathBuf> = {
            let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
            logs.iter()
                .filter(|(_, dirty)| dirty.swap(false, Ordering::AcqRel))
                .map(|(d, _)| d.clone())
                .collect()
        };
        sync_wal();
        sync_dirs(&due);
    }
}

/// One open log and what SQLite knows of it.
pub struct Log {
    pub log: QueueLog,
    /// The last message number moved into SQLite (committed).
    pub drained: u64,
    /// The last number moved by the open transaction's drains: `drained` but while a drain
    /// is uncommitted. A second drain in the same transaction starts after it, so that no
    /// message is moved twice; back to `drained` on a rollback.
    pub draining: u64,
    /// The log was written since the syncer last synced it.
    dirty: Arc<AtomicBool>,
    unsynced: Arc<Unsynced>,
}

/// The open logs, by queue id.
pub struct Logs {
    dir: PathBuf,
    pub open: HashMap<i64, Log>,
    /// The logs drained in the open transaction (their `draining` marks): their heads move
    /// once it is committed.
    pub pending: Vec<i64>,
    pub unsynced: Arc<Unsynced>,
    /// Heads to move past their drained messages, oldest first: each log's id and the count
    /// of the syncer's WAL fsyncs that covers its drain's commit.
    due: std::collections::VecDeque<(i64, u64)>,
    /// The database, whose WAL a drain's commit is fsynced in before its log's head moves
    /// (`None` under `--fsync never`).
    wal: Option<PathBuf>,
    /// Per queue, the least its counter may be, as found at start-up (see `open`): kept for
    /// the catalog read back after a rollback.
    floors: HashMap<i64, u64>,
    quarantined: Vec<Quarantined>,
    /// Holes dropped by `attach` (passed by the head, on drained or lost records) whose rows are
    /// still in SQLite: a passing not written before a crash or a failed batch. Taken into
    /// `Db::passed_holes`, deleted with the next write batch.
    pub stale_holes: Vec<(i64, u64)>,
}

/// A queue's log that could not be read at start-up, moved aside: the queue goes on from its
/// messages in SQLite (its log's are kept in `path`), numbering past any its log may have
/// answered, and a new log is made at its next plain add — but while its log stays in place
/// (then it adds through SQLite until a restart; a log read again then serves its messages
/// after those added meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub queue: QueueName,
    pub id: i64,
    /// Where its files are: `<data>/log/quarantine/<id>-<since>`, or still in place when the
    /// failure was not damage or they could not be moved (then read again at the next start).
    pub path: PathBuf,
    /// When it was quarantined (Unix seconds).
    pub since: u64,
    /// Why its log could not be read.
    pub error: String,
}

/// An error met while reading a log: the SQLite error it carries (an insert's), or the I/O
/// error as one.
pub fn sql_error(error: io::Error) -> rusqlite::Error {
    if !error.get_ref().is_some_and(|inner| inner.is::<rusqlite::Error>()) {
        return rusqlite::Error::ToSqlConversionFailure(Box::new(error));
    }
    match error.into_inner().map(|inner| inner.downcast::<rusqlite::Error>()) {
        Some(Ok(sql)) => *sql,
        Some(Err(other)) => rusqlite::Error::ToSqlConversionFailure(other),
        None => rusqlite::Error::ToSqlConversionFailure("the queue's log".into()),
    }
}

impl Log {
    /// Marks the log written, for the syncer.
    pub fn written(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        self.unsynced.any.store(true, Ordering::Release);
    }
}

impl Logs {
    /// Opens the logs of the catalog's queues found in `<data_dir>/log`, drops what a drain
    /// committed before a crash left on them, and counts the rest as waiting. A log that
    /// cannot be read is quarantined (see [`Quarantined`]): the other queues are served.
    ///
    /// Numbers are never given twice: each queue's counter goes past every number its log's
    /// files name, and after a stop that was not clean (no [`CLEAN`] file) past a gap of
    /// [`NUMBERS_AHEAD`] after its log's last (a power loss may have cut the log's last
    /// numbers, which consumers may have seen; log adds do not write the queue's row, whose
    /// counter covers every number given through SQLite).
    pub fn open(data_dir: &Path, conn: &Connection, catalog: &mut Catalog, fsync: Fsync) -> io::Result<Self> {
        let dir = data_dir.join(LOG_DIR);
        if !dir.is_dir() {
            around("directory: create", || std::fs::create_dir_all(&dir))?;
            sync_dir(data_dir)?;
        }
        // Gone from the disk before any log is written: a power loss after this start's adds
        // must not find the last stop's mark (numbers would be given again).
        let clean = around("logs: unlink the clean mark", || std::fs::remove_file(dir.join(CLEAN))).is_ok();
        if clean {
            sync_dir(&dir)?;
        }
        let wal = (fsync != Fsync::Never).then(|| data_dir.join(DB_FILE));
        // What a drain committed before the stop is durable before heads move past it.
        if let Some(wal) = &wal {
            sync_wal(wal);
        }
        let mut logs = Self {
            dir,
            open: HashMap::new(),
            pending: Vec::new(),
            unsynced: Default::default(),
            due: Default::default(),
            wal,
            floors: HashMap::new(),
            quarantined: Vec::new(),
            stale_holes: Vec::new(),
        };
        logs.quarantined = logs.quarantined_before(catalog);
        let drained = read_drained(conn).map_err(io::Error::other)?;
        for (queue, meta) in &mut catalog.queues {
            let path = logs.path(meta.id);
            if !path.exists() {
                continue;
            }
            let traces = queue_log::traces(&path);
            if !traces.begun {
                // Its creation failed (a full disk): no message; made again at its next add.
                continue;
            }
            let drained = drained.get(&meta.id).copied().unwrap_or(0);
            match QueueLog::open_in(&path, 0, &logs.unsynced.files) {
                Ok(log) => {
                    let last = log.last_number().max(traces.marked);
                    let floor = if clean { last } else { last.saturating_add(NUMBERS_AHEAD) };
                    logs.floors.insert(meta.id, floor);
                    logs.insert(meta.id, log, drained);
                }
                Err(error) => logs.quarantine(conn, queue, meta, traces.marked.max(drained), &traces, error),
            }
        }
        logs.attach(catalog);
        Ok(logs)
    }

    /// Takes the log of `queue` out of use (its files could not be read): its counter goes
    /// [`QUARANTINE_AHEAD`] past every number its files may have answered and is written to
    /// its row (fsynced but under `--fsync never`), then the log's directory is renamed into
    /// `<data>/log/quarantine/` (never deleted). The queue goes on through SQLite. Logged at ERROR; listed by `quarantined`.
    fn quarantine(
        &mut self,
        conn: &Connection,
        queue: &QueueName,
        meta: &mut QueueMeta,
        known: u64,
        traces: &queue_log::Traces,
        error: io::Error,
    ) {
        let path = self.path(meta.id);
        let ahead = QUARANTINE_AHEAD.saturating_add(traces.count_bound);
        let floor = meta.counter.max(known).saturating_add(ahead);
        meta.counter = floor;
        self.floors.insert(meta.id, floor);
        // The counter on disk first: once the log is aside, nothing else holds its numbers.
        let saved = conn
            .execute(
                "UPDATE queues SET counter = max(counter, ?2) WHERE id = ?1",
                params![meta.id, floor as i64],
            )
            .map_err(io::Error::other);
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = self.dir.join(QUARANTINE).join(format!("{}-{since}", meta.id));
        // Only damage moves a log aside; another failure (no file descriptor left, no memory
        // to map) may pass: the log stays in place, unused this run, and is opened again at the
        // next start.
        let damaged = matches!(error.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof);
        let moved = saved.and_then(|_| {
            meta.saved = meta.saved.max(floor);
            if !damaged {
                return Err(io::Error::other("not damaged: left in place"));
            }
            if let Some(wal) = &self.wal {
                sync_wal(wal);
            }
            let quarantine = aside.parent().expect("in the quarantine directory");
            std::fs::create_dir_all(quarantine)?;
            std::fs::rename(&path, &aside)?;
            std::fs::File::open(quarantine)?.sync_all()?;
            std::fs::File::open(&self.dir)?.sync_all()
        });
        let path = match moved {
            Ok(()) => {
                tracing::error!(
                    queue = %queue, id = meta.id, path = %path.display(), moved_to = %aside.display(), %error,
                    "embedded store: a queue's log cannot be read: quarantined (its messages in SQLite are served, its numbers go on past it)"
                );
                aside
            }
            Err(moving) => {
                tracing::error!(
                    queue = %queue, id = meta.id, path = %path.display(), %error, error_moving = %moving,
                    "embedded store: a queue's log cannot be read and stays in place: not used until a restart reads it"
                );
                path
            }
        };
        let error = error.to_string();
        self.quarantined.push(Quarantined { queue: queue.clone(), id: meta.id, path, since, error });
    }

    /// The logs quarantined by earlier runs, still in `<data>/log/quarantine/` (named
    /// `<queue id>-<unix time>`), of the catalog's queues.
    fn quarantined_before(&self, catalog: &Catalog) -> Vec<Quarantined> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(QUARANTINE)) else { return Vec::new() };
        let names: HashMap<i64, &QueueName> = catalog.queues.iter().map(|(q, m)| (m.id, q)).collect();
        let mut found: Vec<Quarantined> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let (id, since) = path.file_name()?.to_str()?.split_once('-')?;
                let (id, since) = (id.parse().ok()?, since.parse().ok()?);
                let queue = (*names.get(&id)?).clone();
                Some(Quarantined {
                    queue,
                    id,
                    path,
                    since,
                    error: "quarantined by an earlier run".to_owned(),
                })
            })
            .collect();
        found.sort_by_key(|q| (q.since, q.id));
        found
    }

    /// The queues whose log is quarantined (this run's and earlier runs' still aside).
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantined
    }

    /// At a clean stop, once every log is synced: the next start numbers on without a gap.
    pub fn closed_cleanly(&self) {
        let marked = around("logs: create the clean mark", || std::fs::File::create(self.dir.join(CLEAN)))
            .and_then(|file| around("logs: fsync the clean mark", || file.sync_all()))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(error) = marked {
            tracing::warn!(%error, "embedded store: cannot mark the logs closed cleanly");
        }
    }

    fn path(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Counts each log's messages into its queue (after a catalog was read from SQLite):
    /// waiting, `logged`, and the counter past the log's last number and its floor.
    pub fn attach(&mut self, catalog: &mut Catalog) {
        for meta in catalog.queues.values_mut() {
            meta.counter = meta.counter.max(self.floors.get(&meta.id).copied().unwrap_or(0));
            // Not open: its rows stay (a log left in place is read again at the next start).
            let Some(log) = self.open.get_mut(&meta.id) else {
                meta.holes.clear();
                continue;
            };
            meta.counter = meta.counter.max(log.log.last_number());
            // Messages a drain moved stay (and are skipped by gets) if they cannot go yet.
            if let Err(error) = log.log.take_through(log.drained) {
                tracing::warn!(%error, queue = meta.id, "embedded store: cannot drop a drained log's messages yet");
            }
            // Holes the head passed, or on messages a drain moved, are gone.
            let (first, last) = (log.log.head().map(|(n, _)| n), log.log.last_number());
            let (floor, id) = (log.drained, meta.id);
            let stale = &mut self.stale_holes;
            // A head that cannot be read now (its next segment not mapped) says nothing of them.
            let unknown = first.is_none() && !log.log.is_empty();
            meta.holes.retain(|&n| {
                let kept = unknown || first.is_some_and(|first| n >= first) && n > floor && n <= last;
                if !kept {
                    stale.push((id, n));
                }
                kept
            });
            // And those on a record lost to damage: a hole is a record the log holds (without
            // damage, every number kept is one: the log is not read again).
            if let Some(&newest) = meta.holes.last().filter(|_| log.log.lost() > 0) {
                let mut held = std::collections::BTreeSet::new();
                let visited = log.log.visit(usize::MAX, |n, _| {
                    if meta.holes.contains(&n) {
                        held.insert(n);
                    }
                    Ok(n < newest)
                });
                match visited {
                    Ok(()) => {
                        stale.extend(meta.holes.difference(&held).map(|&n| (id, n)));
                        meta.holes = held;
                    }
                    Err(error) => {
                        tracing::warn!(%error, queue = meta.id, "embedded store: cannot read a log's holes")
                    }
                }
            }
            meta.logged = log.log.len().saturating_sub(meta.holes.len() as u64);
            meta.waiting += meta.logged;
        }
    }

    /// The open log of queue `id`, opened (new, numbering after `after`) if there is room.
    pub fn get_or_open(&mut self, id: i64, after: u64) -> io::Result<Option<&mut Log>> {
        if !self.open.contains_key(&id) {
            // A quarantined log not moved aside is not used this run.
            let left = |q: &Quarantined| q.id == id && q.path == self.path(id);
            if self.open.len() >= MAX_LOGS || self.quarantined.iter().any(left) {
                return Ok(None);
            }
            // A new log's directory, state page and first segment are made here, inline: once
            // per queue (at its first plain add), not per rollover.
            let log = QueueLog::open_in(&self.path(id), after, &self.unsynced.files)?;
            if log.last_number() > after {
                // Not this queue's (no log of it was found at start-up): never adopted.
                tracing::warn!(
                    queue = id,
                    "embedded store: a stray queue log is in the way; adds go through SQLite"
                );
                return Ok(None);
            }
            self.insert(id, log, 0);
        }
        Ok(self.open.get_mut(&id))
    }

    fn insert(&mut self, id: i64, log: QueueLog, drained: u64) {
        let dirty = Arc::new(AtomicBool::new(false));
        self.unsynced.logs.lock().unwrap_or_else(|p| p.into_inner()).push((self.path(id), dirty.clone()));
        self.open.insert(id, Log { log, drained, draining: drained, dirty, unsynced: self.unsynced.clone() });
    }

    /// After a commit: the drained messages are SQLite's (gets skip them on the log), and
    /// they leave their logs once the WAL holding them is fsynced by the syncer (at once under
    /// `--fsync never`), so that no power loss finds a log's head moved past messages SQLite
    /// lost — and no request waits for that fsync (see `settle`).
    pub fn committed(&mut self) {
        // Covered by the next fsync to begin.
        let covered = self.unsynced.wal_begun.load(Ordering::Acquire) + 1;
        for id in std::mem::take(&mut self.pending) {
            let Some(log) = self.open.get_mut(&id) else { continue };
            log.drained = log.draining;
            self.due.push_back((id, if self.wal.is_some() { covered } else { 0 }));
        }
        self.settle();
    }

    /// Moves the heads of the logs whose drains are fsynced past their drained messages
    /// (the syncer fsyncs them after the WAL). Cheap while none is due.
    pub fn settle(&mut self) {
        if self.due.is_empty() {
            return;
        }
        let synced = self.unsynced.wal_done.load(Ordering::Acquire);
        while let Some(&(id, _)) = self.due.front().filter(|(_, covered)| *covered <= synced) {
            self.due.pop_front();
            let Some(log) = self.open.get_mut(&id) else { continue };
            log.written();
            if let Err(error) = log.log.take_through(log.drained) {
                tracing::warn!(%error, queue = id, "embedded store: cannot move a drained log's head (done at start-up)");
            }
        }
    }

    /// After a rollback: nothing of the open transaction's drains happened.
    pub fn rolled_back(&mut self) {
        for id in std::mem::take(&mut self.pending) {
            if let Some(log) = self.open.get_mut(&id) {
                log.draining = log.drained;
            }
        }
    }
}

impl Quarantined {
    /// As `/stats/` shows it.
    pub fn shown(&self) -> crate::store::QuarantinedQueue {
        crate::store::QuarantinedQueue {
            queue: self.queue.to_string(),
            path: self.path.display().to_string(),
            since: self.since,
            error: self.error.clone(),
        }
    }
}

/// The `drained` mark of every queue that has one.
fn read_drained(conn: &Connection) -> rusqlite::Result<HashMap<i64, u64>> {
    let mut stmt = conn.prepare("SELECT queue, drained FROM logs")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

/// Writes queue `id`'s `drained` mark in the open transaction.
pub fn write_drained(conn: &Connection, id: i64, n: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO logs(queue, drained) VALUES (?1, ?2) ON CONFLICT(queue) DO UPDATE SET drained = excluded.drained",
    )?
    .execute(params![id, n as i64])
    .map(drop)
}

/// Writes `dir`'s entries (files created or removed) to the disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    around("directory: fsync", || std::fs::File::open(dir)?.sync_all())
}

/// Fsyncs the files of each log in `dirs` (see `QueueLog::files_to_sync`): pages written
/// through the maps are the file's, so `fdatasync` writes them.
fn sync_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        let files = QueueLog::files_to_sync(dir).unwrap_or_else(|error| {
            tracing::warn!(%error, dir = %dir.display(), "embedded store: cannot list a log's files to fsync");
            Vec::new()
        });
        for path in files {
            match std::fs::File::open(&path).and_then(|file| around("logs: fdatasync", || file.sync_data())) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "embedded store: fsync of a log failed")
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "logs_review_tests.rs"]
mod review_tests;
