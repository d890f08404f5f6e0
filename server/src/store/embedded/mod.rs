//! The `embedded` backend: every queue in memory for reads, made durable in
//! `<data_dir>/restmq.redb` by one writer thread that commits in batches.
//!
//! Each change is made in memory and handed to the writer under the same lock, so the disk
//! sees changes in memory order. Changes that must survive a crash (`add`, `delete`,
//! `requeue`, `purge`, policy and status) return once committed; `pop` and `peek` return at
//! once, so a crash may bring a popped message back (at-least-once delivery).
//!
//! An added message stays out of sight (length, gets, streams) until its commit lands. When
//! the disk refuses a commit (full), that batch and every later one are refused, memory is
//! reloaded from the database (reads fail until then), writes get `507` and `ping` fails
//! until the disk takes writes again; a popped message whose removal was refused comes back.

mod schema;
mod writer;

use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redb::Database;
use restmq_shared::{BrowsedMessage, MessageKey, Policy, QueueName, QueueStatus};
use tokio::sync::oneshot;

use self::schema::Meta;
use self::writer::{Cmd, Failure, Link, Op};
use super::state::{after, expiry, millis, now_ms, State};
use super::{
    dead_letter_queue, ExpiredLeases, LeasedMessage, LengthLimit, PeekedMessage, QueueInfo, QueueStore,
    StoreError, StoreResult, StoredMessage,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "restmq.redb";

/// A durable store; cloning is shallow.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    state: State,
    /// `None` once closed.
    writer: Option<Sender<Cmd>>,
    /// Why writes are refused, while the disk refuses them.
    failure: Option<Failure>,
    /// `state` may hold changes the disk refused, until it is reloaded from the database.
    stale: bool,
}

/// Locks the store; as in the memory backend, a panic under the lock leaves `State` usable.
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Committed = oneshot::Receiver<Result<(), Failure>>;

fn backend(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {error}"))
}

impl EmbeddedStore {
    /// Opens or creates the store in `data_dir`, loading every queue into memory and
    /// deleting messages that expired while it was closed.
    pub fn open(data_dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| backend("cannot create the data directory", e))?;
        let path = data_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| backend("cannot open the database", e))?;
        let state = schema::load(&db, now_ms(), true).map_err(|e| backend("cannot load the database", e))?;
        tracing::info!(path = %path.display(), queues = state.queues.len(), "embedded store opened");
        let inner = Arc::new(Mutex::new(Inner { state, writer: None, failure: None, stale: false }));
        let link = Link { path, store: Arc::downgrade(&inner) };
        let writer = writer::spawn(db, link).map_err(|e| backend("cannot start the writer", e))?;
        lock(&inner).writer = Some(writer);
        Ok(Self { inner })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Reads the queues in memory, unless they may hold changes the disk refused.
    fn read<T>(&self, read: impl FnOnce(&State) -> T) -> StoreResult<T> {
        let inner = self.lock();
        match &inner.failure {
            Some(failure) if inner.stale => Err(failure.to_error()),
            _ => Ok(read(&inner.state)),
        }
    }

    /// Makes `change` in memory and sends the ops it returns to the writer, under one lock.
    /// With `wait`, also returns the commit of those ops to await.
    fn change<T>(
        &self,
        wait: bool,
        change: impl FnOnce(&mut State) -> (T, Vec<Op>),
    ) -> StoreResult<(T, Option<Committed>)> {
        let mut inner = self.lock();
        let Inner { state, writer, failure, .. } = &mut *inner;
        let writer = writer.as_ref().ok_or_else(|| StoreError::Backend("the store is closed".to_owned()))?;
        if let Some(failure) = failure {
            return Err(failure.to_error());
        }
        let (out, ops) = change(state);
        let mut committed = None;
        let last = ops.len().saturating_sub(1);
        for (i, op) in ops.into_iter().enumerate() {
            let ack = (wait && i == last).then(|| {
                let (ack, done) = oneshot::channel();
                committed = Some(done);
                ack
            });
            writer.send(Cmd::Write(op, ack)).map_err(|_| backend("store writer", "stopped"))?;
        }
        Ok((out, committed))
    }
}

/// Waits for a commit, if there is one to wait for.
async fn committed(done: Option<Committed>) -> StoreResult<()> {
    match done {
        None => Ok(()),
        Some(done) => match done.await {
            Ok(result) => result.map_err(|failure| failure.to_error()),
            Err(_) => Err(backend("store writer", "stopped")),
        },
    }
}

/// The ops of messages moved from `from` (old `n`) to `to` (new `n`).
fn moved(state: &State, from: &QueueName, to: &QueueName, moves: &[(u64, u64, String)]) -> Vec<Op> {
    let mut ops = vec![Op::Remove { queue: from.clone(), ns: moves.iter().map(|m| m.0).collect() }];
    let meta = meta(state, to);
    ops.extend(moves.iter().map(|(_, n, value)| Op::Add {
        queue: to.clone(),
        n: *n,
        value: value.clone(),
        expires_at: None,
        meta,
    }));
    ops
}

fn meta(state: &State, queue: &QueueName) -> Meta {
    state.queues.get(queue).map(Meta::of).expect("the queue was just registered")
}

impl QueueStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn add(&self, queue: &QueueName, value: String, ttl: Option<Duration>) -> StoreResult<MessageKey> {
        let (n, done) = self.change(true, |state| {
            let expires_at = expiry(ttl);
            let n = state.add(queue, value.clone(), expires_at);
            let meta = meta(state, queue);
            (n, vec![Op::Add { queue: queue.clone(), n, value, expires_at, meta }])
        })?;
        committed(done).await?;
        Ok(MessageKey::new(queue.clone(), n))
    }

    async fn add_batch(
        &self,
        queue: &QueueName,
        values: Vec<String>,
        ttl: Option<Duration>,
        limit: Option<LengthLimit>,
    ) -> StoreResult<Vec<MessageKey>> {
        let (result, done) = self.change(true, |state| {
            let expires_at = expiry(ttl);
            match state.add_batch(queue, values.clone(), expires_at, limit) {
                Err(full) => (Err(full), vec![]),
                Ok((added, dropped)) => {
                    let meta = meta(state, queue);
                    let mut ops = Vec::new();
                    if !dropped.is_empty() {
                        ops.push(Op::Remove { queue: queue.clone(), ns: dropped });
                    }
                    ops.extend(added.iter().zip(values).map(|(n, value)| Op::Add {
                        queue: queue.clone(),
                        n: *n,
                        value,
                        expires_at,
                        meta,
                    }));
                    (Ok(added), ops)
                }
            }
        })?;
        let added = result?;
        committed(done).await?;
        Ok(added.into_iter().map(|n| MessageKey::new(queue.clone(), n)).collect())
    }

    async fn add_delayed(
        &self,
        queue: &QueueName,
        value: String,
        ttl: Option<Duration>,
        delay: Duration,
        limit: Option<LengthLimit>,
    ) -> StoreResult<MessageKey> {
        let visible_at = after(delay);
        let (n, done) = self.change(true, |state| {
            let expires_at = expiry(ttl);
            match state.add_delayed(queue, value.clone(), expires_at, visible_at, limit) {
                Ok(n) => {
                    let meta = meta(state, queue);
                    let add = Op::Add { queue: queue.clone(), n, value, expires_at, meta };
                    (Ok(n), vec![add, Op::Delay { queue: queue.clone(), n, visible_at }])
                }
                Err(err) => (Err(err), vec![]),
            }
        })?;
        let n = n?;
        committed(done).await?;
        Ok(MessageKey::new(queue.clone(), n))
    }

    async fn promote_delayed(&self) -> StoreResult<Vec<QueueName>> {
        let (queues, _) = self.change(false, |state| {
            let promoted = state.promote_delayed(now_ms());
            let mut by_queue: std::collections::BTreeMap<QueueName, Vec<u64>> = Default::default();
            for (queue, n) in promoted {
                by_queue.entry(queue).or_default().push(n);
            }
            let ops = by_queue
                .iter()
                .map(|(queue, ns)| Op::Undelay { queue: queue.clone(), ns: ns.clone() })
                .collect();
            (by_queue.into_keys().collect(), ops)
        })?;
        Ok(queues)
    }

    async fn sweep_expired(&self) -> StoreResult<u64> {
        let (count, _) = self.change(false, |state| {
            let swept = state.sweep_expired(now_ms());
            let count = swept.len() as u64;
            let ops = swept.into_iter().map(|(queue, n)| Op::Remove { queue, ns: vec![n] }).collect();
            (count, ops)
        })?;
        Ok(count)
    }

    async fn pop(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<StoredMessage>> {
        let (popped, _) = self.change(false, |state| {
            let mut ns = Vec::new();
            let popped = state.pop(queue, max, now_ms(), &mut ns);
            ns.extend(popped.iter().map(|m| m.key.n));
            let ops = if ns.is_empty() { vec![] } else { vec![Op::Remove { queue: queue.clone(), ns }] };
            (popped, ops)
        })?;
        Ok(popped)
    }

    async fn peek(&self, queue: &QueueName) -> StoreResult<Option<PeekedMessage>> {
        let (peeked, _) = self.change(false, |state| {
            let mut expired = Vec::new();
            let peeked = state.peek(queue, now_ms(), &mut expired);
            let mut ops = Vec::new();
            if !expired.is_empty() {
                ops.push(Op::Remove { queue: queue.clone(), ns: expired });
            }
            if let Some(m) = &peeked {
                ops.push(Op::SetReads { queue: queue.clone(), n: m.key.n, reads: m.count });
            }
            (peeked, ops)
        })?;
        Ok(peeked)
    }

    async fn delete(&self, key: &MessageKey) -> StoreResult<bool> {
        let (found, done) = self.change(true, |state| {
            let found = state.delete(key);
            let ops =
                if found { vec![Op::Remove { queue: key.queue.clone(), ns: vec![key.n] }] } else { vec![] };
            (found, ops)
        })?;
        committed(done).await?;
        Ok(found)
    }

    async fn requeue(&self, queue: &QueueName, messages: Vec<StoredMessage>) -> StoreResult<()> {
        let ((), done) = self.change(true, |state| {
            let back = messages.iter().map(|m| (m.key.n, m.value.clone())).collect();
            state.requeue(queue, messages);
            let meta = meta(state, queue);
            ((), vec![Op::Requeue { queue: queue.clone(), messages: back, meta }])
        })?;
        committed(done).await
    }

    async fn purge(&self, queue: &QueueName) -> StoreResult<bool> {
        let (existed, done) = self.change(true, |state| {
            let existed = state.purge(queue);
            (existed, if existed { vec![Op::Purge { queue: queue.clone() }] } else { vec![] })
        })?;
        committed(done).await?;
        Ok(existed)
    }

    async fn queues(&self) -> StoreResult<Vec<QueueName>> {
        self.read(State::names)
    }

    async fn info(&self, queue: &QueueName) -> StoreResult<Option<QueueInfo>> {
        self.read(|state| state.info(queue))
    }

    async fn set_policy(&self, queue: &QueueName, policy: Policy) -> StoreResult<()> {
        let ((), done) = self.change(true, |state| {
            state.set_policy(queue, policy);
            ((), vec![Op::SetMeta { queue: queue.clone(), meta: meta(state, queue) }])
        })?;
        committed(done).await
    }

    async fn set_status(&self, queue: &QueueName, status: QueueStatus) -> StoreResult<()> {
        let ((), done) = self.change(true, |state| {
            state.set_status(queue, status);
            ((), vec![Op::SetMeta { queue: queue.clone(), meta: meta(state, queue) }])
        })?;
        committed(done).await
    }

    async fn browse(
        &self,
        queue: &QueueName,
        after: u64,
        limit: usize,
        leased: bool,
    ) -> StoreResult<Vec<BrowsedMessage>> {
        self.read(|state| state.browse(queue, after, limit, leased, now_ms()))
    }

    async fn recent_keys(&self, queue: &QueueName, max: usize) -> StoreResult<Vec<MessageKey>> {
        self.read(|state| state.recent_keys(queue, max))
    }

    /// A lease is kept in memory only: the message's row stays on disk until it is
    /// acknowledged, so after a restart an unacknowledged message is simply there again.
    async fn reserve(
        &self,
        queue: &QueueName,
        max: usize,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        let lease_ms = millis(lease);
        let (leased, _) = self.change(false, |state| {
            let mut expired = Vec::new();
            let leased = state.reserve(queue, max, now_ms(), lease_ms, &mut expired);
            let ops = if expired.is_empty() {
                vec![]
            } else {
                vec![Op::Remove { queue: queue.clone(), ns: expired }]
            };
            (leased, ops)
        })?;
        Ok(leased)
    }

    async fn ack(&self, key: &MessageKey) -> StoreResult<bool> {
        let (found, done) = self.change(true, |state| {
            let found = state.ack(key);
            (
                found,
                if found { vec![Op::Remove { queue: key.queue.clone(), ns: vec![key.n] }] } else { vec![] },
            )
        })?;
        committed(done).await?;
        Ok(found)
    }

    async fn nack(&self, key: &MessageKey) -> StoreResult<bool> {
        Ok(self.change(false, |state| (state.nack(key), vec![]))?.0)
    }

    async fn release(&self, queue: &QueueName, ns: &[u64]) -> StoreResult<usize> {
        let (count, _) = self.change(false, |state| {
            (ns.iter().filter(|n| state.nack(&MessageKey::new(queue.clone(), **n))).count(), vec![])
        })?;
        Ok(count)
    }

    async fn expire_leases(&self, max_deliveries: u32) -> StoreResult<Vec<ExpiredLeases>> {
        let (changed, done) = self.change(true, |state| {
            let expired = state.expire_leases(now_ms(), max_deliveries);
            let mut ops = Vec::new();
            for e in &expired {
                if !e.dead.is_empty() {
                    ops.extend(moved(state, &e.queue, &dead_letter_queue(&e.queue), &e.dead));
                }
            }
            (expired.into_iter().map(Into::into).collect(), ops)
        })?;
        committed(done).await?;
        Ok(changed)
    }

    async fn redrive(
        &self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<LengthLimit>,
    ) -> StoreResult<u64> {
        let (count, done) = self.change(true, |state| {
            let moves = state.redrive(from, to, limit);
            (moves.len() as u64, if moves.is_empty() { vec![] } else { moved(state, from, to, &moves) })
        })?;
        committed(done).await?;
        Ok(count)
    }

    /// Fails while the disk refuses writes, so that `/readyz` says so.
    async fn ping(&self) -> StoreResult<()> {
        self.lock().failure.as_ref().map_or(Ok(()), |failure| Err(failure.to_error()))
    }

    /// Waits until everything sent so far is committed and the database file is released;
    /// later operations fail. Closing twice is a no-op.
    async fn close(&self) -> StoreResult<()> {
        let Some(writer) = self.lock().writer.take() else { return Ok(()) };
        let (ack, done) = oneshot::channel();
        writer.send(Cmd::Close(ack)).map_err(|_| backend("store writer", "stopped"))?;
        drop(writer);
        committed(Some(done)).await
    }
}
