//! The embedded store's syncer thread: it keeps the disk work off the request path. It does
//! every file operation of the queue logs' appends and takes (`queue_log::Background`, whose
//! jobs and their order are in `queue_log`'s module doc), woken by the log that queued one,
//! first in each round. It fsyncs
//! the WAL — under `--fsync everysec` within [`SYNC_EVERY`] of a commit (well inside its
//! second), after every batch under `always` (group commit: batches committed meanwhile share
//! one fsync, and are answered only then); under `never` not at all. Under `everysec` it also
//! fsyncs the queue logs written since its last round (see `logs::Unsynced`), and every log
//! written once more when the store closes.
//!
//! It also checkpoints, on a connection of its own (the request path's connection never does:
//! `wal_autocheckpoint = 0`): every [`CHECKPOINT_EVERY`] a `PASSIVE` checkpoint copies the WAL
//! into the database without stopping writers (it fsyncs the WAL, then the database). Under
//! steady writes the WAL then never starts over by itself (a commit lands while the checkpoint
//! runs), so once it holds [`WAL_CAP`] frames a `RESTART` checkpoint, which holds writers off
//! while it copies the little a `PASSIVE` one left, lets the next commit start the WAL over.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::engine::Reply;
use super::logs::Unsynced;
use crate::config::Fsync;

/// How far behind the fsync of `--fsync everysec` is at most.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// How often the WAL is checkpointed into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The WAL frames (pages) past which a checkpoint starts the WAL over: 32 MiB of 4 KiB pages.
const WAL_CAP: i64 = 8192;

enum Msg {
    /// Operations of a committed batch, answered once the WAL is fsynced (`always`).
    Answer(Vec<Reply>),
    /// A queue log queued file work (`queue_log::Background`).
    Files,
    Stop,
}

/// The handle of the syncer thread; dropping it syncs once more and stops the thread.
pub struct Syncer {
    fsync: Fsync,
    tx: Sender<Msg>,
    /// Something was committed since the last fsync (`everysec`).
    unsynced: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread for the database at `path` (already in WAL mode), with its own
    /// connection for checkpoints.
    pub fn start(path: PathBuf, fsync: Fsync, logs: Arc<Unsynced>) -> std::io::Result<Self> {
        let checkpointer = Checkpointer::open(&path).map_err(std::io::Error::other)?;
        let (tx, rx) = mpsc::channel();
        let wake = tx.clone();
        logs.files.set_waker(move || drop(wake.send(Msg::Files)));
        let unsynced = Arc::new(AtomicBool::new(false));
        let flag = unsynced.clone();
        let thread = std::thread::Builder::new().name("restmq-sync".to_owned()).spawn(move || {
            run(&path, fsync, &rx, &flag, &logs, checkpointer);
            // Stopped (the store closes): the file work left, what the logs got since the last sync.
            logs.files.work();
            logs.sync(|| logs.sync_wal(&path));
        })?;
        Ok(Self { fsync, tx, unsynced, thread: Some(thread) })
    }

    /// Answers the operations of a committed batch: at once (their changes are in the
    /// kernel), or under `always` once the WAL is fsynced.
    pub fn committed(&self, replies: Vec<Reply>) {
        match self.fsync {
            Fsync::Always => {
                if let Err(mpsc::SendError(Msg::Answer(replies))) = self.tx.send(Msg::Answer(replies)) {
                    answer(replies);
                }
            }
            Fsync::Everysec => {
                self.unsynced.store(true, Ordering::Release);
                answer(replies);
            }
            Fsync::Never => answer(replies),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(replies: Vec<Reply>) {
    for reply in replies {
        reply(Ok(()));
    }
}

/// The connection that checkpoints, and whether its last checkpoint failed (logged once).
struct Checkpointer {
    conn: Connection,
    failing: bool,
    last: Instant,
}

impl Checkpointer {
    fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = super::open_connection(path)?;
        // A checkpoint fsyncs the WAL before copying it and the database after, whatever the
        // `--fsync` mode: the WAL's start is overwritten only once the database holds it.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864;")?;
        Ok(Self { conn, failing: false, last: Instant::now() })
    }

    /// Runs a checkpoint of `mode`; returns the frames in the WAL.
    fn run(&mut self, mode: &str) -> Option<i64> {
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        match self.conn.query_row(&sql, [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("embedded store: checkpoints work again");
                }
                Some(frames)
            }
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(%error, "embedded store: checkpoint failed; the WAL grows until one succeeds");
                }
                None
            }
        }
    }

    /// Checkpoints when due: `PASSIVE`, then `RESTART` if the WAL is past its cap.
    fn tick(&mut self) {
        if self.last.elapsed() < CHECKPOINT_EVERY {
            return;
        }
        if self.run("PASSIVE").is_some_and(|frames| frames >= WAL_CAP) {
            self.run("RESTART");
        }
        self.last = Instant::now();
    }
}

fn run(
    path: &Path,
    fsync: Fsync,
    rx: &Receiver<Msg>,
    unsynced: &AtomicBool,
    logs: &Unsynced,
    mut checkpointer: Checkpointer,
) {
    let mut due = Instant::now() + SYNC_EVERY;
    loop {
        match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Msg::Answer(mut replies)) => {
                let mut stop = false;
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Answer(more) => replies.extend(more),
                        Msg::Files => {}
                        Msg::Stop => stop = true,
                    }
                }
                logs.sync_wal(path);
                answer(replies);
                if stop {
                    return;
                }
            }
            Ok(Msg::Files) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
        logs.files.work();
        if Instant::now() >= due {
            if fsync == Fsync::Everysec {
                // The WAL first whenever logs are due (see `Unsynced::sync`).
                logs.sync(|| {
                    unsynced.store(false, Ordering::Release);
                    logs.sync_wal(path);
                });
                if unsynced.swap(false, Ordering::AcqRel) {
                    logs.sync_wal(path);
                }
            }
            due = Instant::now() + SYNC_EVERY;
        }
        checkpointer.tick();
    }
}
