//! Coalesces concurrent single adds: the adds to a queue that arrive while its earlier ones
//! are on their way to Redis go together as one `ADD_BATCH`, so Redis runs one script and
//! sends one bus notice for many messages. Each add stays atomic; a failed batch fails each
//! of its adds.

use std::collections::{HashMap, HashSet};

use redis::ScriptInvocation;
use restmq_shared::QueueName;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::conn::{error, Conn};
use super::keys::{QueueKeys, BUS};
use super::{once, scripts, with_queueset};
use crate::store::{IdempotencyClaim, LengthLimit, StoreError, StoreResult};

/// Adds taken into one batch at most.
const MAX_BATCH: usize = 512;

/// One add waiting for its number.
struct Pending {
    queue: QueueName,
    value: String,
    ttl_secs: u64,
    reply: oneshot::Sender<StoreResult<u64>>,
}

/// The sending side; the batching task ends when it is dropped.
pub(super) struct Coalescer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Coalescer {
    pub(super) fn start(conn: Conn, cluster: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, conn, cluster));
        Self { tx }
    }

    /// Adds `value` to `queue` in the next batch; returns its number.
    pub(super) async fn add(&self, queue: &QueueName, value: String, ttl_secs: u64) -> StoreResult<u64> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { queue: queue.clone(), value, ttl_secs, reply };
        self.tx
            .send(pending)
            .map_err(|_| StoreError::Unavailable("the Redis store is closing".to_owned()))?;
        answer.await.map_err(|_| StoreError::Backend("an add was dropped unanswered".to_owned()))?
    }
}

/// Takes what has queued up and sends it, one batch on its way per queue at a time while
/// that queue's next adds queue up behind it. Queues do not wait for each other: a batch
/// held up by one Redis node (a failover in a cluster) delays only the queues it serves.
async fn run(mut rx: mpsc::UnboundedReceiver<Pending>, conn: Conn, cluster: bool) {
    let mut waiting: HashMap<QueueName, Vec<Pending>> = HashMap::new();
    let mut flights: JoinSet<QueueName> = JoinSet::new();
    let mut busy: HashSet<QueueName> = HashSet::new();
    let mut open = true;
    while open || !flights.is_empty() {
        tokio::select! {
            got = rx.recv(), if open => match got {
                Some(first) => {
                    let mut taken = vec![first];
                    while taken.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(pending) => taken.push(pending),
                            Err(_) => break,
                        }
                    }
                    for pending in taken {
                        waiting.entry(pending.queue.clone()).or_default().push(pending);
                    }
                }
                None => open = false,
            },
            Some(done) = flights.join_next(), if !flights.is_empty() => {
                if let Ok(queue) = done {
                    busy.remove(&queue);
                }
            }
        }
        let ready: Vec<QueueName> = waiting.keys().filter(|q| !busy.contains(*q)).cloned().collect();
        for queue in ready {
            let Some(mut pending) = waiting.remove(&queue) else { continue };
            if pending.len() > MAX_BATCH {
                waiting.insert(queue.clone(), pending.split_off(MAX_BATCH));
            }
            busy.insert(queue.clone());
            let conn = conn.clone();
            flights.spawn(async move {
                for group in by_queue_and_ttl(pending) {
                    send(group, conn.clone(), cluster).await;
                }
                queue
            });
        }
    }
}

/// Groups adds by queue and ttl, each group in arrival order.
fn by_queue_and_ttl(taken: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    for pending in taken {
        let group =
            groups.iter_mut().find(|g| g[0].queue == pending.queue && g[0].ttl_secs == pending.ttl_secs);
        match group {
            Some(group) => group.push(pending),
            None => groups.push(vec![pending]),
        }
    }
    groups
}

/// One `ADD_BATCH` for a group; each add learns its number (or the error).
async fn send(group: Vec<Pending>, mut conn: Conn, cluster: bool) {
    let (queue, ttl_secs) = (group[0].queue.clone(), group[0].ttl_secs);
    let mut replies = Vec::with_capacity(group.len());
    let mut values = Vec::with_capacity(group.len());
    for pending in group {
        replies.push(pending.reply);
        values.push(pending.value);
    }
    let count = values.len() as u64;
    let answer: StoreResult<i64> = add_batch_invocation(&queue, cluster, ttl_secs, None, None, values)
        .invoke_async(&mut conn)
        .await
        .map_err(error);
    for (i, reply) in (0..count).zip(replies) {
        let _ = reply.send(match &answer {
            Ok(first) => u64::try_from(*first).map(|first| first + i).map_err(|_| StoreError::QueueFull(0)),
            Err(err) => Err(err.clone()),
        });
    }
}

/// The `ADD_BATCH` call for `values`: all added, or none when `limit` refuses them or the
/// publish's idempotency `claim` is no longer its own.
pub(super) fn add_batch_invocation(
    queue: &QueueName,
    cluster: bool,
    ttl_secs: u64,
    limit: Option<LengthLimit>,
    claim: Option<&IdempotencyClaim>,
    values: Vec<String>,
) -> ScriptInvocation<'static> {
    let keys = QueueKeys::new(queue, cluster);
    let mut inv = scripts::ADD_BATCH.key(keys.counter());
    inv.key(keys.list()).key(keys.status()).key(keys.expiring());
    once::with_record(&mut inv, &keys, claim);
    with_queueset(&mut inv, cluster)
        .arg(queue.as_str())
        .arg(ttl_secs)
        .arg(keys.message_prefix())
        .arg(BUS)
        .arg(limit.map_or(0, |l| l.max))
        .arg(if limit.is_some_and(|l| l.drop_oldest) { "1" } else { "0" });
    once::claim_args(&mut inv, queue, claim);
    inv.arg(super::expires_at(ttl_secs));
    for value in values {
        inv.arg(value);
    }
    inv
}
