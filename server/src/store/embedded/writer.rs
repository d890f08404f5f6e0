//! The `embedded` backend's one writer thread: persistence ops applied in the order they were
//! sent, each batch in one redb transaction fsynced before its waiters are answered.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use redb::{Database, Durability, Table};
use restmq_shared::QueueName;
use tokio::sync::oneshot;

use super::schema::{rows, DbError, Meta, DELAYED, MESSAGES, QUEUES, READS};

/// The most ops committed in one transaction.
const MAX_BATCH: usize = 1024;

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
    /// Every row of the queue, counter included.
    Purge { queue: QueueName },
    /// A queue's counter and settings.
    SetMeta { queue: QueueName, meta: Meta },
    /// Message `n` (added in the same batch or before) stays hidden until `visible_at`.
    Delay { queue: QueueName, n: u64, visible_at: u64 },
    /// Delayed messages became visible.
    Undelay { queue: QueueName, ns: Vec<u64> },
}

/// Answered once the op it came with is committed; `Err` carries the failure's text.
pub type Ack = oneshot::Sender<Result<(), String>>;

pub enum Cmd {
    Write(Op, Option<Ack>),
    /// Commit everything sent before, release the database file, then answer.
    Close(Ack),
}

/// Starts the writer thread; it ends when told to close or when every sender is dropped,
/// after committing whatever it was sent.
pub fn spawn(db: Database) -> std::io::Result<Sender<Cmd>> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new().name("restmq-store-writer".to_owned()).spawn(move || run(db, rx))?;
    Ok(tx)
}

fn run(db: Database, rx: Receiver<Cmd>) {
    let mut close = None;
    let mut result = Ok(());
    while close.is_none() {
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
        result = if ops.is_empty() { Ok(()) } else { commit(&db, &ops) };
        if let Err(error) = &result {
            tracing::error!(%error, ops = ops.len(), "embedded store: commit failed");
        }
        for ack in acks {
            // A waiter that gave up does not need the answer.
            let _ = ack.send(result.clone());
        }
    }
    drop(db);
    if let Some(ack) = close {
        let _ = ack.send(result);
    }
}

fn commit(db: &Database, ops: &[Op]) -> Result<(), String> {
    let txn = || -> Result<(), DbError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
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
    txn().map_err(|e| e.to_string())
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
            queues.remove(q)?;
        }
        Op::SetMeta { queue, meta } => {
            queues.insert(queue.as_str(), meta.to_row())?;
        }
        Op::Delay { .. } | Op::Undelay { .. } => {} // the DELAYED table, in `commit`
    }
    Ok(())
}
