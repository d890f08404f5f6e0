//! The `embedded` backend's engine: the connection and catalog, and how a batch of the
//! store's operations runs — in the order they were sent, in one SQLite transaction, answered
//! once the batch is committed (in the kernel: the WAL is written at `COMMIT`).
//!
//! A batch that fails (a full disk, an I/O error) is rolled back whole and every operation in
//! it is answered with the failure; the catalog is read back from the database, so memory
//! holds exactly what is committed. Writes are then refused until a probe shows the disk
//! takes them again; reads go on.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::catalog::Catalog;
use super::db::Db;
use super::lock::DirLock;
use crate::store::StoreError;

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

/// What the engine holds besides the connection: the failure, the broken batch, paths.
pub struct Engine {
    pub db: Db,
    /// Set while the disk refuses writes.
    pub failure: Option<Failure>,
    /// The SQLite error that broke the open batch: the rest of it does not run.
    pub broken: Option<rusqlite::Error>,
    pub path: PathBuf,
    /// Transactions committed so far.
    pub commits: u64,
    /// When to probe a refusing disk next, and the wait after that.
    next_try: Instant,
    retry: Duration,
    /// The data directory's lock, released with the engine.
    _lock: DirLock,
}

/// One operation: runs against the engine and returns how to answer it.
pub type Job = Box<dyn FnOnce(&mut Engine) -> Reply + Send>;

impl Engine {
    pub fn new(db: Db, path: PathBuf, lock: DirLock) -> Self {
        Self {
            db,
            failure: None,
            broken: None,
            path,
            commits: 0,
            next_try: Instant::now(),
            retry: FIRST_RETRY,
            _lock: lock,
        }
    }

    /// Whether a job must not run: the batch broke, or it writes while the disk fails.
    pub fn refused(&self, write: bool) -> Option<StoreError> {
        if let Some(error) = &self.broken {
            return Some(Failure::of(error).to_error());
        }
        self.failure.as_ref().filter(|_| write).map(Failure::to_error)
    }

    /// While the disk refuses writes, probes it again once the wait is over.
    pub fn retry_if_due(&mut self) {
        if self.failure.is_none() || Instant::now() < self.next_try {
            return;
        }
        if self.recover() {
            self.retry = FIRST_RETRY;
        } else {
            self.next_try = Instant::now() + self.retry;
            self.retry = (self.retry * 2).min(MAX_RETRY);
        }
    }

    /// Runs `jobs` in one transaction. Returns how to answer them and whether the batch
    /// committed a write (`None` when it wrote nothing).
    pub fn batch(&mut self, jobs: Vec<(Job, bool)>) -> (Vec<Reply>, Option<Result<(), Failure>>) {
        self.retry_if_due();
        self.db.logs.settle();
        let writes = jobs.iter().any(|(_, write)| *write);
        if self.failure.is_some() || !writes {
            let replies = jobs.into_iter().map(|(job, _)| job(self)).collect();
            // A read that failed answered so; the next batch starts afresh.
            self.broken = None;
            return (replies, None);
        }
        self.db.begin.set(true);
        let replies: Vec<Reply> = jobs.into_iter().map(|(job, _)| job(self)).collect();
        let committed = match self.broken.take() {
            Some(error) => Err(error),
            None => self.db.finish(),
        };
        // Not begun: no statement ran, there is nothing to commit.
        if self.db.begin.replace(false) && committed.is_ok() {
            return (replies, None);
        }
        let committed = committed.and_then(|()| self.db.run_cached("COMMIT"));
        self.commits += u64::from(committed.is_ok());
        if committed.is_ok() {
            self.db.logs.committed();
        }
        let result = committed.map_err(|error| self.fail(&error));
        (replies, Some(result))
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
        self.db.unwritten.get_mut().clear();
        self.db.logs.rolled_back();
        self.db.passed_holes.clear();
        // The heads of drained logs move when the catalog is read back: their drains first
        // to the disk (a rare path, where a wait is no harm).
        self.sync_wal();
        match Catalog::load(&self.db.conn, false) {
            Ok(mut catalog) => {
                self.db.logs.attach(&mut catalog);
                self.db.passed_holes = std::mem::take(&mut self.db.logs.stale_holes);
                self.db.dirty = catalog.bring_ahead();
                self.db.catalog = catalog;
            }
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
        sync_wal(&self.path);
    }
}

/// Fsyncs the WAL of the database at `path` (what was committed since the last checkpoint).
pub fn sync_wal(path: &Path) {
    let mut wal = path.to_path_buf().into_os_string();
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
