//! Browsing the `memory` backend's queues: a page of waiting or
//! leased messages after a key, oldest first, read without changing anything.

use std::ops::Bound::{Excluded, Unbounded};

use restmq_shared::{BrowsedMessage, MessageKey, QueueName};

use super::queues::{Entry, Queues};
use crate::store::Page;

impl Queues {
    /// The `page` of `queue` (see [`Page`]), oldest first. Expired and uncommitted ones are
    /// left out.
    pub fn browse(&self, queue: &QueueName, page: Page, now: u64) -> Vec<BrowsedMessage> {
        let Page { after, limit, leased } = page;
        let Some(q) = self.queues.get(queue) else { return Vec::new() };
        let entry = |n: u64, e: &Entry, lease: Option<(u64, u32)>| BrowsedMessage {
            key: MessageKey::new(queue.clone(), n),
            value: e.value.clone(),
            count: e.reads,
            expires: e.expires_at,
            deadline: lease.map(|(deadline, _)| deadline),
            deliveries: lease.map(|(_, deliveries)| deliveries),
        };
        if leased {
            return q
                .leased
                .range((Excluded(after), Unbounded))
                .filter(|(_, l)| !l.entry.expired(now))
                .take(limit)
                .map(|(n, l)| entry(*n, &l.entry, Some((l.deadline, l.entry.deliveries))))
                .collect();
        }
        let last = Self::in_sight(self.hide_uncommitted, q);
        if after >= last {
            return Vec::new();
        }
        q.messages
            .range((Excluded(after), std::ops::Bound::Included(last)))
            .filter(|(_, e)| !e.expired(now))
            .take(limit)
            .map(|(n, e)| entry(*n, e, None))
            .collect()
    }
}
