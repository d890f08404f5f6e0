//! The `embedded` backend's one writer thread: persistence ops applied in the order they were
//! sent, each batch in one redb transaction fsynced before its waiters are answered.
//!
//! A batch the disk refuses (full, or an I/O error) fails with every op sent after it, and
//! the store refuses writes from then on; the thread reopens the database (redb wants that
//! after an I/O error) and reloads the queues from it, so memory holds only what was
//! committed. Only then are the batch's waiters answered: refused, or done when the commit
//! landed despite its error (each batch writes its number, to tell). Writes resume once a
//! probe commit shows the disk takes them again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, Weak};
use std::thread;
use std::time::Duration;

use redb::{Database, Durability, Table};
use restmq_shared::QueueName;
use tokio::sync::oneshot;

use super::schema::{self, rows, DbError, Meta, BATCHES, DELAYED, MESSAGES, PROBE, QUEUES, READS};
use super::{lock, Inner};
use crate::store::state::now_ms;
use crate::store::StoreError;

/// The most ops committed in one transaction.
const MAX_BATCH: usize = 1024;
/// The first wait before trying a refusing disk again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// What a probe commit writes: the room the disk must have again before writes resume.
const PROBE_BYTES: usize = 256 * 1024;

/// One change to persist, mirroring a change already made in memory.
#[derive(Debug)]
pub enum Op {
    /// A new message, and its queue's counter and settings.
    Add { queue: QueueName, n: u64, value: String, expires_at: Option<u64>, meta: Meta },
    /// Messages popped, deleted or found expired.
    Remove { queue: QueueName, ns: Vec<u64> },
    /// A soft read counted.
    SetReads { queue: QueueName, n: u64, reads: u64 },
    /// Messages put back, as `(n, value)`, with no expiry and no reads.
    Requeue { queue: QueueName, messages: Vec<(u64, String)>, meta: Meta },
    /// Every message row of the queue; its counter and settings stay.
    Purge { queue: QueueName },
    /// A queue's counter and settings.
    SetMeta { queue: QueueName, meta: Meta },
    /// Message `n` (added in the same batch or before) stays hidden until `visible_at`.
    Delay { queue: QueueName, n: u64, visible_at: u64 },
    /// Delayed messages became visible.
    Undelay { queue: QueueName, ns: Vec<u64> },
}

/// Why the disk refused a commit. Every write is refused with it until the disk recovers.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The disk (or quota) is full, rather than failing otherwise.
    pub full: bool,
    pub reason: String,
}

impl Failure {
    fn of(error: &DbError) -> Self {
        Self { full: error.is_full(), reason: error.to_string() }
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

/// Answered once the op it came with is committed, or with why it was not.
pub type Ack = oneshot::Sender<Result<(), Failure>>;

/// How the writer reaches its store after a failed commit: the database file to reopen, and
/// the store whose writes it refuses and whose queues it reloads.
pub struct Link {
    pub path: PathBuf,
    pub store: Weak<Mutex<Inner>>,
}

pub enum Cmd {
    Write(Op, Option<Ack>),
    /// Commit everything sent before, release the database file, then answer.
    Close(Ack),
}

/// Starts the writer thread; it ends when told to close or when every sender is dropped,
/// after committing whatever it was sent.
pub fn spawn(db: Database, link: Link) -> std::io::Result<Sender<Cmd>> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new().name("restmq-store-writer".to_owned()).spawn(move || run(db, rx, link))?;
    Ok(tx)
}

fn run(db: Database, rx: Receiver<Cmd>, link: Link) {
    let mut batch = schema::last_batch(&db).unwrap_or_default();
    let mut db = Some(db);
    let mut close = None;
    while let (Some(open), None) = (&db, &close) {
        let Ok(first) = rx.recv() else { break };
        let (mut ops, mut acks) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(cmd) = next {
            match cmd {
                Cmd::Write(op, ack) => {
                    ops.push(op);
                    acks.extend(ack);
                }
                Cmd::Close(ack) => {
                    close = Some(ack);
                    break;
                }
            }
            next = if ops.len() < MAX_BATCH { rx.try_recv().ok() } else { None };
        }
        batch += 1;
        let Err(error) = (if ops.is_empty() { Ok(()) } else { commit(open, &ops, batch) }) else {
            confirm(&link, &ops);
            answer(acks, &Ok(()));
            continue;
        };
        let failure = Failure::of(&error);
        tracing::error!(%error, ops = ops.len(), "embedded store: commit failed; refusing writes");
        close = close.or(refuse_writes(&link, &rx, &failure));
        let (open, failed) = (db.take(), (batch, acks));
        if close.is_some() {
            settle(open, &link, &failure, failed);
        } else {
            match recover(open, &link, &rx, &failure, failed) {
                Ok(reopened) => db = Some(reopened),
                Err(closing) => close = closing,
            }
        }
    }
    // Everything acknowledged is committed: refused ops were answered as refused.
    drop(db);
    if let Some(ack) = close {
        let _ = ack.send(Ok(()));
    }
}

/// Brings the messages of committed ops in sight, before their adders hear of it.
fn confirm(link: &Link, ops: &[Op]) {
    let added = |op: &&Op| matches!(op, Op::Add { .. } | Op::Requeue { .. });
    if !ops.iter().any(|op| added(&op)) {
        return;
    }
    let Some(store) = link.store.upgrade() else { return };
    let mut inner = lock(&store);
    for op in ops.iter().filter(added) {
        match op {
            Op::Add { queue, n, .. } => inner.state.confirm(queue, *n),
            Op::Requeue { queue, messages, .. } => {
                messages.iter().for_each(|(n, _)| inner.state.confirm(queue, *n));
            }
            _ => {}
        }
    }
}

/// Closing right after a failed commit: answers its waiters from one look at the reopened
/// database.
fn settle(db: Option<Database>, link: &Link, failure: &Failure, (batch, acks): (u64, Vec<Ack>)) {
    drop(db);
    let reopened = Database::create(&link.path).map_err(DbError::from);
    let landed = reopened.and_then(|db| schema::last_batch(&db)).is_ok_and(|last| last == batch);
    answer(acks, &if landed { Ok(()) } else { Err(failure.clone()) });
}

/// Marks the store failed and its memory stale, under its lock so that no change slips in,
/// and refuses every op sent after the failed batch (each was made in memory on top of it).
/// Returns a close request found among them.
fn refuse_writes(link: &Link, rx: &Receiver<Cmd>, failure: &Failure) -> Option<Ack> {
    let store = link.store.upgrade();
    let mut inner = store.as_deref().map(lock);
    if let Some(inner) = inner.as_mut() {
        inner.failure = Some(failure.clone());
        inner.stale = true;
    }
    let mut close = None;
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Cmd::Write(_, ack) => drop(ack.map(|ack| ack.send(Err(failure.clone())))),
            Cmd::Close(ack) => close = Some(ack),
        }
    }
    close
}

/// Tells waiters how their ops went.
fn answer(acks: Vec<Ack>, result: &Result<(), Failure>) {
    for ack in acks {
        // A waiter that gave up does not need the answer.
        let _ = ack.send(result.clone());
    }
}

/// Tries until the disk takes writes again (see [`try_recover`]) and returns the database
/// then. The waiters of the failed batch (`failed`: its number and their acks) are answered
/// once the queues are reloaded: then memory shows the batch exactly when it landed. `Err`
/// when told to close meanwhile (with the request to answer) or when the store is gone.
fn recover(
    db: Option<Database>,
    link: &Link,
    rx: &Receiver<Cmd>,
    failure: &Failure,
    failed: (u64, Vec<Ack>),
) -> Result<Database, Option<Ack>> {
    // redb refuses every call after an I/O error ("Previous I/O error") until reopened.
    drop(db);
    let (batch, acks) = failed;
    let mut acks = Some(acks);
    let (mut db, mut landed) = (None, None);
    let mut wait = FIRST_RETRY;
    loop {
        let Some(store) = link.store.upgrade() else { return Err(None) };
        let attempt = try_recover(link, &store, &mut db, batch, &mut landed);
        if let Some(landed) = landed {
            if landed && acks.is_some() {
                tracing::warn!("embedded store: the commit that reported a failure had landed");
            }
            let result = if landed { Ok(()) } else { Err(failure.clone()) };
            answer(acks.take().unwrap_or_default(), &result);
        }
        match (attempt, db.take()) {
            (Ok(true), Some(db)) => {
                lock(&store).failure = None;
                tracing::info!("embedded store: the disk takes writes again");
                return Ok(db);
            }
            // No room yet: look again soon; the look is cheap.
            (Ok(_), open) => (db, wait) = (open, FIRST_RETRY),
            // After an I/O error, redb needs reopening: `db` stays `None`.
            (Err(error), _) => {
                tracing::warn!(%error, "embedded store: the disk still refuses writes");
                wait = (wait * 2).min(MAX_RETRY);
            }
        }
        drop(store);
        match rx.recv_timeout(wait) {
            Ok(Cmd::Close(ack)) => return Err(Some(ack)),
            // Changes are refused while failed, so none should come; refuse any that does.
            Ok(Cmd::Write(_, ack)) => drop(ack.map(|ack| ack.send(Err(failure.clone())))),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(None),
        }
    }
}

/// One try at recovering: reopens the database unless `db` holds it, the first time
/// replaces the store's queues with what it holds and sets `landed` to whether batch number
/// `batch` is in it (writes are refused meanwhile, so the queues cannot change after), and,
/// when the disk has room, commits a probe. `Ok(true)` once the probe committed.
fn try_recover(
    link: &Link,
    store: &Mutex<Inner>,
    db: &mut Option<Database>,
    batch: u64,
    landed: &mut Option<bool>,
) -> Result<bool, DbError> {
    let open = match db {
        Some(open) => open,
        None => db.insert(Database::create(&link.path)?),
    };
    if landed.is_none() {
        let state = schema::load(open, now_ms(), false)?;
        let last = schema::last_batch(open)?;
        let mut inner = lock(store);
        let old = std::mem::replace(&mut inner.state, state);
        inner.state.keep_leases(old);
        inner.stale = false;
        *landed = Some(last == batch);
    }
    if !has_room(&link.path) {
        return Ok(false);
    }
    probe(open).map(|()| true)
}

/// Whether a file of [`PROBE_BYTES`] fits beside the database: a cheap look before a probe
/// commit, whose failure would leave the database to reopen (and repair) again.
fn has_room(db_path: &Path) -> bool {
    let path = db_path.with_extension("probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0; PROBE_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written.is_ok()
}

/// Writes and deletes [`PROBE_BYTES`] in the database, each in a commit of its own.
fn probe(db: &Database) -> Result<(), DbError> {
    let room = vec![0u8; PROBE_BYTES];
    let txn = db.begin_write()?;
    txn.open_table(PROBE)?.insert(0, room.as_slice())?;
    txn.commit()?;
    let txn = db.begin_write()?;
    txn.delete_table(PROBE)?;
    txn.commit()?;
    Ok(())
}

/// Commits `ops` as batch number `batch`.
fn commit(db: &Database, ops: &[Op], batch: u64) -> Result<(), DbError> {
    let txn = || -> Result<(), DbError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
            txn.open_table(BATCHES)?.insert(0, batch)?;
            let mut messages = txn.open_table(MESSAGES)?;
            let mut reads = txn.open_table(READS)?;
            let mut queues = txn.open_table(QUEUES)?;
            let mut delayed = txn.open_table(DELAYED)?;
            for op in ops {
                match op {
                    Op::Delay { queue, n, visible_at } => {
                        delayed.insert((queue.as_str(), *n), *visible_at)?;
                    }
                    Op::Undelay { queue, ns } => {
                        for n in ns {
                            delayed.remove((queue.as_str(), *n))?;
                        }
                    }
                    Op::Purge { queue } => {
                        delayed.retain_in(rows(queue.as_str()), |_, _| false)?;
                        apply(op, &mut messages, &mut reads, &mut queues)?;
                    }
                    _ => apply(op, &mut messages, &mut reads, &mut queues)?,
                }
            }
        }
        txn.commit()?;
        Ok(())
    };
    txn()
}

type Messages<'t> = Table<'t, (&'static str, u64), (Option<u64>, &'static str)>;

fn apply(
    op: &Op,
    messages: &mut Messages<'_>,
    reads: &mut Table<'_, (&'static str, u64), u64>,
    queues: &mut Table<'_, &'static str, (u64, u8, u8)>,
) -> Result<(), DbError> {
    match op {
        Op::Add { queue, n, value, expires_at, meta } => {
            let q = queue.as_str();
            messages.insert((q, *n), (*expires_at, value.as_str()))?;
            queues.insert(q, meta.to_row())?;
        }
        Op::Remove { queue, ns } => {
            for n in ns {
                messages.remove((queue.as_str(), *n))?;
                reads.remove((queue.as_str(), *n))?;
            }
        }
        Op::SetReads { queue, n, reads: count } => {
            reads.insert((queue.as_str(), *n), *count)?;
        }
        Op::Requeue { queue, messages: back, meta } => {
            let q = queue.as_str();
            for (n, value) in back {
                messages.insert((q, *n), (None, value.as_str()))?;
                reads.remove((q, *n))?;
            }
            queues.insert(q, meta.to_row())?;
        }
        Op::Purge { queue } => {
            let q = queue.as_str();
            messages.retain_in(rows(q), |_, _| false)?;
            reads.retain_in(rows(q), |_, _| false)?;
        }
        Op::SetMeta { queue, meta } => {
            queues.insert(queue.as_str(), meta.to_row())?;
        }
        Op::Delay { .. } | Op::Undelay { .. } => {} // the DELAYED table, in `commit`
    }
    Ok(())
}
