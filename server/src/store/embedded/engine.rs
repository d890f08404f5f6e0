//! The `embedded` backend's one engine thread: it runs the store's operations in the order
//! they were sent, a batch of them in one SQLite transaction, and answers every operation of
//! a batch once the batch is committed (in the kernel; fsynced first with `--fsync always`).
//!
//! A batch that fails (a full disk, an I/O error) is rolled back whole and every operation in
//! it is answered with the failure; the catalog is read back from the database, so memory
//! holds exactly what is committed. Writes are then refused until a probe shows the disk
//! takes them again; reads go on.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::catalog::Catalog;
use super::ops::Db;
use crate::config::Fsync;
use crate::store::StoreError;

/// The most operations in one transaction.
const MAX_BATCH: usize = 1024;
/// How far behind the fsync of `--fsync everysec` may be.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The first wait before trying a refusing disk again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// The room the disk must have again before writes resume.
const PROBE_BYTES: usize = 256 * 1024;

/// Why the disk refused a commit. Every write is refused with it until the disk recovers.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The disk (or quota) is full, rather than failing otherwise.
    pub full: bool,
    pub reason: String,
}

impl Failure {
    pub fn of(error: &rusqlite::Error) -> Self {
        let full = matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::TooBig)
        );
        Self { full, reason: error.to_string() }
    }

    /// `507 insufficient_storage` for a full disk, `503 store_unavailable` for other failures.
    pub fn to_error(&self) -> StoreError {
        if self.full {
            StoreError::InsufficientStorage(self.reason.clone())
        } else {
            StoreError::Unavailable(self.reason.clone())
        }
    }
}

/// Answers an operation once its batch is committed (or not).
pub type Reply = Box<dyn FnOnce(Result<(), Failure>) + Send>;

/// What the engine thread holds besides the connection: failure, broken batch, paths.
pub struct Engine {
    pub db: Db,
    /// Set while the disk refuses writes.
    pub failure: Option<Failure>,
    /// The SQLite error that broke the open batch: the rest of it does not run.
    pub broken: Option<rusqlite::Error>,
    pub path: PathBuf,
    fsync: Fsync,
}

/// One operation: runs against the engine and returns how to answer it.
pub type Job = Box<dyn FnOnce(&mut Engine) -> Reply + Send>;

pub enum Cmd {
    /// An operation; `true` when it changes the store (refused while the disk is failing).
    Job(Job, bool),
    /// Sync and release the database, then answer.
    Close(oneshot::Sender<Result<(), Failure>>),
}

impl Engine {
    pub fn new(db: Db, path: PathBuf, fsync: Fsync) -> Self {
        Self { db, failure: None, broken: None, path, fsync }
    }

    /// Whether a job must not run: the batch broke, or it writes while the disk fails.
    pub fn refused(&self, write: bool) -> Option<StoreError> {
        if let Some(error) = &self.broken {
            return Some(Failure::of(error).to_error());
        }
        self.failure.as_ref().filter(|_| write).map(Failure::to_error)
    }

    /// Runs the thread's loop until closed or every sender is gone.
    pub fn run(mut self, rx: Receiver<Cmd>) {
        let (mut unsynced, mut synced) = (false, Instant::now());
        let (mut retry, mut next_try) = (FIRST_RETRY, Instant::now());
        let mut close = None;
        while close.is_none() {
            let wait = if self.failure.is_some() {
                next_try.saturating_duration_since(Instant::now())
            } else if unsynced && self.fsync == Fsync::Everysec {
                SYNC_EVERY.saturating_sub(synced.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            let mut jobs = Vec::new();
            let mut next = match rx.recv_timeout(wait) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Job(job, write) => jobs.push((job, write)),
                    Cmd::Close(ack) => {
                        close = Some(ack);
                        break;
                    }
                }
                if jobs.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                unsynced |= self.batch(jobs);
            }
            if self.failure.is_some() && Instant::now() >= next_try {
                if self.recover() {
                    retry = FIRST_RETRY;
                } else {
                    next_try = Instant::now() + retry;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            if unsynced && self.fsync == Fsync::Everysec && synced.elapsed() >= SYNC_EVERY {
                self.sync_wal();
                (unsynced, synced) = (false, Instant::now());
            }
        }
        // Closing the connection checkpoints the WAL into the database, synced.
        self.sync_wal();
        let result = self.db.conn.close().map_err(|(_, e)| Failure::of(&e));
        if let Some(ack) = close {
            let _ = ack.send(result);
        }
    }

    /// Runs `jobs` in one transaction and answers them. Returns whether anything was written.
    fn batch(&mut self, jobs: Vec<(Job, bool)>) -> bool {
        let writes = jobs.iter().any(|(_, write)| *write);
        if self.failure.is_some() || !writes {
            for (job, _) in jobs {
                job(self)(Ok(()));
            }
            return false;
        }
        if let Err(error) = self.db.conn.execute_batch("BEGIN IMMEDIATE") {
            self.broken = Some(error);
        }
        let replies: Vec<Reply> = jobs.into_iter().map(|(job, _)| job(self)).collect();
        let committed = match self.broken.take() {
            Some(error) => Err(error),
            None => self.db.flush_dirty().and_then(|()| self.db.conn.execute_batch("COMMIT")),
        };
        let result = match committed {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(&error)),
        };
        for reply in replies {
            reply(result.clone());
        }
        result.is_ok()
    }

    /// After a failed batch: rolls it back, reads the catalog back from the database, and
    /// refuses writes from now on.
    fn fail(&mut self, error: &rusqlite::Error) -> Failure {
        let failure = Failure::of(error);
        tracing::error!(%error, "embedded store: commit failed; refusing writes");
        if !self.db.conn.is_autocommit() {
            let _ = self.db.conn.execute_batch("ROLLBACK");
        }
        self.db.dirty.clear();
        match Catalog::load(&self.db.conn, false) {
            Ok(catalog) => self.db.catalog = catalog,
            Err(error) => tracing::error!(%error, "embedded store: cannot read the catalog back"),
        }
        self.failure = Some(failure.clone());
        failure
    }

    /// One try at taking writes again: a file of [`PROBE_BYTES`] fits beside the database
    /// and a commit of as many bytes lands. `true` once writes resume.
    fn recover(&mut self) -> bool {
        let probe = self.path.with_extension("probe");
        let room = File::create(&probe).and_then(|mut file| {
            file.write_all(&vec![0; PROBE_BYTES])?;
            file.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        if room.is_err() {
            return false;
        }
        let conn = &self.db.conn;
        let commit = conn
            .execute("INSERT INTO probe(id, room) VALUES (1, zeroblob(?1))", [PROBE_BYTES as i64])
            .and_then(|_| conn.execute("DELETE FROM probe", []))
            .map(drop);
        match commit {
            Ok(()) => {
                self.failure = None;
                tracing::info!("embedded store: the disk takes writes again");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "embedded store: the disk still refuses writes");
                false
            }
        }
    }

    /// Fsyncs what was committed so far (the tail of the WAL not yet checkpointed).
    pub fn sync_wal(&self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        match File::open(&wal) {
            Ok(file) => {
                if let Err(error) = file.sync_data() {
                    tracing::warn!(%error, "embedded store: fsync of the journal failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(%error, "embedded store: cannot open the journal to fsync it"),
        }
    }
}
