//! The embedded store's syncer thread: it fsyncs the WAL off the request path — under
//! `--fsync everysec` within [`SYNC_EVERY`] of a commit (well inside its second), after every
//! batch under `always` (group commit: batches committed meanwhile share one fsync), and
//! answers those batches only then. Under `never` it has nothing to do but is there all the
//! same.
//!
//! Syncing `everysec`'s WAL often keeps little unsynced in it when SQLite checkpoints, which it
//! does on the request path (every 1,000 WAL pages) and which starts with an fsync of the WAL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::engine::{sync_wal, Reply};
use crate::config::Fsync;

/// How far behind the fsync of `--fsync everysec` is at most.
const SYNC_EVERY: Duration = Duration::from_millis(50);

enum Msg {
    /// Operations of a committed batch, answered once the WAL is fsynced (`always`).
    Answer(Vec<Reply>),
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
    /// Starts the thread for the database at `path`.
    pub fn start(path: PathBuf, fsync: Fsync) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let unsynced = Arc::new(AtomicBool::new(false));
        let flag = unsynced.clone();
        let thread = std::thread::Builder::new()
            .name("restmq-sync".to_owned())
            .spawn(move || run(&path, fsync, &rx, &flag))?;
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

fn run(path: &std::path::Path, fsync: Fsync, rx: &Receiver<Msg>, unsynced: &AtomicBool) {
    let wait = if fsync == Fsync::Everysec { SYNC_EVERY } else { Duration::from_secs(3600) };
    loop {
        match rx.recv_timeout(wait) {
            Ok(Msg::Answer(mut replies)) => {
                let mut stop = false;
                while let Ok(msg) = rx.try_recv() {
                    match msg {
                        Msg::Answer(more) => replies.extend(more),
                        Msg::Stop => stop = true,
                    }
                }
                sync_wal(path);
                answer(replies);
                if stop {
                    return;
                }
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                if unsynced.swap(false, Ordering::AcqRel) {
                    sync_wal(path);
                }
            }
        }
    }
}
