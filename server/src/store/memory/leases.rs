//! At-least-once delivery on the in-memory [`Queues`]: leases (reserve, ack, nack), their
//! expiry, and moving messages delivered too often to `<queue>.dead`.

use restmq_shared::{MessageKey, QueueName};

use super::queues::{Entry, Lease, Queues};
use crate::store::{dead_letter_queue, LeasedMessage};

impl From<Expired> for crate::store::ExpiredLeases {
    fn from(e: Expired) -> Self {
        Self { queue: e.queue, returned: e.returned.len() as u64, dead: e.dead.len() as u64 }
    }
}

/// What one expiry pass did to one queue, for persistence and wake-ups.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired {
    pub queue: QueueName,
    /// Message numbers back at the head of the queue.
    pub returned: Vec<u64>,
    /// Messages moved to the dead-letter queue: old `n`, new `n` there, value.
    pub dead: Vec<(u64, u64, String)>,
}

impl Queues {
    /// Hands out up to `max` of the oldest live messages, each leased until `now + lease_ms`.
    pub fn reserve(
        &mut self,
        queue: &QueueName,
        max: usize,
        now: u64,
        lease_ms: u64,
        expired: &mut Vec<u64>,
    ) -> Vec<LeasedMessage> {
        let mut out = Vec::new();
        let Some(q) = self.queues.get_mut(queue) else { return out };
        let last = Self::in_sight(self.hide_uncommitted, q);
        while out.len() < max {
            let Some(first) = q.messages.first_entry().filter(|first| *first.key() <= last) else { break };
            let (n, mut entry) = first.remove_entry();
            if entry.expired(now) {
                expired.push(n);
                continue;
            }
            entry.deliveries += 1;
            out.push(LeasedMessage {
                key: MessageKey::new(queue.clone(), n),
                value: entry.value.clone(),
                deliveries: entry.deliveries,
            });
            q.leased.insert(n, Lease { entry, deadline: now.saturating_add(lease_ms) });
        }
        out
    }

    /// Acknowledges a leased message: it is gone for good. `false` if it was not leased.
    pub fn ack(&mut self, key: &MessageKey) -> bool {
        self.queues.get_mut(&key.queue).is_some_and(|q| q.leased.remove(&key.n).is_some())
    }

    /// Gives a leased message back: it is the next one out, its delivery count kept.
    pub fn nack(&mut self, key: &MessageKey) -> bool {
        let Some(q) = self.queues.get_mut(&key.queue) else { return false };
        let Some(lease) = q.leased.remove(&key.n) else { return false };
        q.messages.insert(key.n, lease.entry);
        true
    }

    /// Ends every lease past its deadline: the message goes back to the head of its queue,
    /// or, once delivered `max_deliveries` times, to the queue's dead-letter queue.
    pub fn expire_leases(&mut self, now: u64, max_deliveries: u32) -> Vec<Expired> {
        let mut out = Vec::new();
        let mut dead_letters: Vec<(QueueName, Vec<(u64, Entry)>)> = Vec::new();
        for (name, q) in &mut self.queues {
            let due: Vec<u64> = q.leased.iter().filter(|(_, l)| l.deadline <= now).map(|(n, _)| *n).collect();
            if due.is_empty() {
                continue;
            }
            let mut done = Expired { queue: name.clone(), returned: Vec::new(), dead: Vec::new() };
            let mut dead = Vec::new();
            for n in due {
                let Some(lease) = q.leased.remove(&n) else { continue };
                if lease.entry.deliveries >= max_deliveries {
                    dead.push((n, lease.entry));
                } else {
                    q.messages.insert(n, lease.entry);
                    done.returned.push(n);
                }
            }
            if !dead.is_empty() {
                dead_letters.push((name.clone(), dead));
            }
            out.push(done);
        }
        for (name, dead) in dead_letters {
            let dlq = dead_letter_queue(&name);
            let moved: Vec<(u64, u64, String)> =
                dead.into_iter().map(|(n, e)| (n, self.add(&dlq, e.value.clone(), None), e.value)).collect();
            if let Some(done) = out.iter_mut().find(|d| d.queue == name) {
                done.dead = moved;
            }
        }
        out
    }

    /// Moves every message of `from` to the end of `to` as new messages; returns how many.
    pub fn redrive(
        &mut self,
        from: &QueueName,
        to: &QueueName,
        limit: Option<crate::store::LengthLimit>,
    ) -> Vec<(u64, u64, String)> {
        let room = limit.map_or(usize::MAX, |l| usize::try_from(self.room(to, l.max)).unwrap_or(usize::MAX));
        let Some(q) = self.queues.get_mut(from) else { return Vec::new() };
        let mut taken: Vec<(u64, Entry)> = Vec::new();
        while taken.len() < room {
            let Some(oldest) = q.messages.pop_first() else { break };
            taken.push(oldest);
        }
        taken.into_iter().map(|(n, e)| (n, self.add(to, e.value.clone(), None), e.value)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QueueName {
        name.parse().unwrap()
    }

    /// Leases count deliveries; nack puts back at the head; expiry past the limit dead-letters.
    #[test]
    fn lease_lifecycle() {
        let mut s = Queues::default();
        let jobs = q("jobs");
        for v in ["a", "b", "c"] {
            s.add(&jobs, v.to_owned(), None);
        }
        let got = s.reserve(&jobs, 2, 0, 100, &mut Vec::new());
        assert_eq!(got.iter().map(|m| (m.key.n, m.deliveries)).collect::<Vec<_>>(), [(1, 1), (2, 1)]);
        assert!(s.ack(&got[0].key));
        assert!(!s.ack(&got[0].key), "acked once");
        assert!(s.nack(&got[1].key));
        let again = s.reserve(&jobs, 1, 0, 100, &mut Vec::new());
        assert_eq!((again[0].key.n, again[0].deliveries), (2, 2), "back at the head, count kept");
        let expired = s.expire_leases(100, 2);
        assert_eq!(expired[0].dead, [(2, 1, "b".to_owned())]);
        assert_eq!(s.info(&q("jobs.dead")).unwrap().len, 1);
        let third = s.reserve(&jobs, 1, 0, 100, &mut Vec::new());
        assert_eq!(third[0].key.n, 3);
        assert_eq!(s.expire_leases(100, 5)[0].returned, [3]);
        assert_eq!(s.redrive(&q("jobs.dead"), &jobs, None).len(), 1);
        assert_eq!(s.info(&jobs).unwrap().len, 2);
    }
}
