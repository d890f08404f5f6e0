//! The `memory` backend's queues: plain synchronous data, mutated under the backend's lock.

use std::collections::BTreeMap;

use restmq_shared::{MessageKey, Policy, QueueName, QueueStatus};

use crate::store::{PeekedMessage, QueueInfo, StoredMessage};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    /// Unix milliseconds after which the message is gone unread.
    pub expires_at: Option<u64>,
    /// How many times it was soft-read.
    pub reads: u64,
    /// How many times it was handed out under a lease and came back unacknowledged.
    pub deliveries: u32,
}

impl Entry {
    pub fn new(value: String, expires_at: Option<u64>) -> Self {
        Self { value, expires_at, reads: 0, deliveries: 0 }
    }

    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A message out on a lease: it comes back at `deadline` unless acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub entry: Entry,
    /// Unix milliseconds.
    pub deadline: u64,
}

/// One queue: its counter, messages in key order, and settings.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    /// The last `n` handed out; the next message gets `counter + 1`.
    pub counter: u64,
    pub messages: BTreeMap<u64, Entry>,
    /// Messages handed out under a lease, not yet acknowledged.
    pub leased: BTreeMap<u64, Lease>,
    /// Delayed messages by `(visible_at, n)`: they join `messages` at `visible_at`.
    pub delayed: BTreeMap<(u64, u64), Entry>,
    /// `(expires_at, n)` of messages added with a ttl, so expired ones are swept, not left.
    pub expiring: std::collections::BTreeSet<(u64, u64)>,
    pub policy: Policy,
    /// Whether the policy was ever set.
    pub policy_set: bool,
    pub status: QueueStatus,
    /// With [`Queues::hide_uncommitted`]: messages numbered above this are not committed yet.
    pub committed: u64,
}

/// Every queue, by name.
#[derive(Debug, Default)]
pub struct Queues {
    pub queues: BTreeMap<QueueName, QueueState>,
    /// Messages numbered above each queue's `committed` stay out of sight (length, gets, keys).
    pub hide_uncommitted: bool,
}

impl Queues {
    fn queue(&mut self, queue: &QueueName) -> &mut QueueState {
        self.queues.entry(queue.clone()).or_default()
    }

    /// The highest message number of `q` in sight.
    pub fn in_sight(hide_uncommitted: bool, q: &QueueState) -> u64 {
        if hide_uncommitted {
            q.committed
        } else {
            u64::MAX
        }
    }

    /// Adds a message and returns its `n`.
    pub fn add(&mut self, queue: &QueueName, value: String, expires_at: Option<u64>) -> u64 {
        let q = self.queue(queue);
        q.counter += 1;
        q.messages.insert(q.counter, Entry::new(value, expires_at));
        if let Some(at) = expires_at {
            q.expiring.insert((at, q.counter));
        }
        q.counter
    }

    /// How many more messages `queue` may hold under a limit of `max` (waiting and delayed
    /// messages count).
    pub fn room(&self, queue: &QueueName, max: u64) -> u64 {
        let held = self.queues.get(queue).map_or(0, |q| (q.messages.len() + q.delayed.len()) as u64);
        max.saturating_sub(held)
    }

    /// Removes every message whose ttl ran out by `now`; returns `(queue, n)` of each.
    pub fn sweep_expired(&mut self, now: u64) -> Vec<(QueueName, u64)> {
        let mut out = Vec::new();
        for (name, q) in &mut self.queues {
            while let Some(&(at, n)) = q.expiring.first() {
                if at > now {
                    break;
                }
                q.expiring.pop_first();
                if q.messages.get(&n).is_some_and(|e| e.expires_at == Some(at)) {
                    q.messages.remove(&n);
                    out.push((name.clone(), n));
                }
            }
        }
        out
    }

    /// Adds a message that stays invisible until `visible_at` (Unix ms); returns its `n`.
    pub fn add_delayed(
        &mut self,
        queue: &QueueName,
        value: String,
        expires_at: Option<u64>,
        visible_at: u64,
        limit: Option<crate::store::LengthLimit>,
    ) -> Result<u64, crate::store::StoreError> {
        if let Some(limit) = limit.filter(|l| self.room(queue, l.max) == 0) {
            return Err(crate::store::StoreError::QueueFull(limit.max));
        }
        let q = self.queue(queue);
        q.counter += 1;
        q.delayed.insert((visible_at, q.counter), Entry::new(value, expires_at));
        if let Some(at) = expires_at {
            q.expiring.insert((at, q.counter));
        }
        Ok(q.counter)
    }

    /// Makes delayed messages due by `now` visible; returns `(queue, n)` of each.
    pub fn promote_delayed(&mut self, now: u64) -> Vec<(QueueName, u64)> {
        let mut out = Vec::new();
        for (name, q) in &mut self.queues {
            while let Some(entry) = q.delayed.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let ((_, n), e) = entry.remove_entry();
                q.messages.insert(n, e);
                out.push((name.clone(), n));
            }
        }
        out
    }

    /// Adds all of `values`, or none when `limit` refuses them. Returns the new numbers and
    /// the numbers dropped to make room.
    pub fn add_batch(
        &mut self,
        queue: &QueueName,
        values: Vec<String>,
        expires_at: Option<u64>,
        limit: Option<crate::store::LengthLimit>,
    ) -> Result<(Vec<u64>, Vec<u64>), crate::store::StoreError> {
        let mut dropped = Vec::new();
        if let Some(limit) = limit {
            let len = self.queues.get(queue).map_or(0, |q| q.messages.len() as u64);
            let wanted = len + values.len() as u64;
            if wanted > limit.max {
                if !limit.drop_oldest || values.len() as u64 > limit.max {
                    return Err(crate::store::StoreError::QueueFull(limit.max));
                }
                let q = self.queue(queue);
                for _ in 0..wanted - limit.max {
                    dropped.extend(q.messages.pop_first().map(|(n, _)| n));
                }
            }
        }
        let added = values.into_iter().map(|v| self.add(queue, v, expires_at)).collect();
        Ok((added, dropped))
    }

    /// Removes up to `max` of the oldest live messages. Expired ones met on the way are
    /// removed too and their `n` returned in `expired`.
    pub fn pop(
        &mut self,
        queue: &QueueName,
        max: usize,
        now: u64,
        expired: &mut Vec<u64>,
    ) -> Vec<StoredMessage> {
        let mut out = Vec::new();
        let Some(q) = self.queues.get_mut(queue) else { return out };
        let last = Self::in_sight(self.hide_uncommitted, q);
        while out.len() < max {
            let Some(first) = q.messages.first_entry().filter(|first| *first.key() <= last) else { break };
            let (n, entry) = first.remove_entry();
            if entry.expired(now) {
                expired.push(n);
            } else {
                out.push(StoredMessage { key: MessageKey::new(queue.clone(), n), value: entry.value });
            }
        }
        out
    }

    /// Counts a soft read of the oldest live message and returns it.
    pub fn peek(&mut self, queue: &QueueName, now: u64, expired: &mut Vec<u64>) -> Option<PeekedMessage> {
        let q = self.queues.get_mut(queue)?;
        let last = Self::in_sight(self.hide_uncommitted, q);
        loop {
            let mut first = q.messages.first_entry().filter(|first| *first.key() <= last)?;
            if first.get().expired(now) {
                expired.push(*first.key());
                first.remove();
                continue;
            }
            let n = *first.key();
            let entry = first.get_mut();
            entry.reads += 1;
            return Some(PeekedMessage {
                key: MessageKey::new(queue.clone(), n),
                value: entry.value.clone(),
                count: entry.reads,
            });
        }
    }

    pub fn delete(&mut self, key: &MessageKey) -> bool {
        self.queues.get_mut(&key.queue).is_some_and(|q| q.messages.remove(&key.n).is_some())
    }

    /// Puts messages back; key order makes them the next ones out.
    pub fn requeue(&mut self, queue: &QueueName, messages: Vec<StoredMessage>) {
        let q = self.queue(queue);
        for m in messages {
            q.counter = q.counter.max(m.key.n);
            q.messages.insert(m.key.n, Entry::new(m.value, None));
        }
    }

    /// Removes every message of the queue (waiting, leased, delayed) and keeps its counter,
    /// policy and status, as RestMQ did: keys are never reused, a paused queue stays paused.
    /// True when it held any message.
    pub fn purge(&mut self, queue: &QueueName) -> bool {
        let Some(q) = self.queues.get_mut(queue) else { return false };
        let held = !(q.messages.is_empty() && q.leased.is_empty() && q.delayed.is_empty());
        q.messages.clear();
        q.leased.clear();
        q.delayed.clear();
        q.expiring.clear();
        held
    }

    pub fn names(&self) -> Vec<QueueName> {
        self.queues.keys().cloned().collect()
    }

    pub fn info(&self, queue: &QueueName) -> Option<QueueInfo> {
        self.queues.get(queue).map(|q| QueueInfo {
            len: (q.messages.len() - self.out_of_sight(q)) as u64,
            policy: q.policy,
            status: q.status,
            policy_set: q.policy_set,
            status_set: true,
            last: q.counter,
        })
    }

    pub fn set_policy(&mut self, queue: &QueueName, policy: Policy) {
        let q = self.queue(queue);
        (q.policy, q.policy_set) = (policy, true);
    }

    pub fn set_status(&mut self, queue: &QueueName, status: QueueStatus) {
        self.queue(queue).status = status;
    }

    pub fn recent_keys(&self, queue: &QueueName, max: usize) -> Vec<MessageKey> {
        self.queues.get(queue).map_or_else(Vec::new, |q| {
            let last = Self::in_sight(self.hide_uncommitted, q);
            q.messages.range(..=last).rev().take(max).map(|n| MessageKey::new(queue.clone(), *n.0)).collect()
        })
    }

    /// How many of `q`'s messages are not in sight yet (few: those of commits in flight).
    fn out_of_sight(&self, q: &QueueState) -> usize {
        let last = Self::in_sight(self.hide_uncommitted, q);
        q.messages.range((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded)).count()
    }
}
