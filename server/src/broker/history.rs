//! Replay for broadcast queues: each hub keeps the last messages it broadcast, so a consumer
//! reconnecting with `since=<key>` (or SSE `Last-Event-ID`) gets what it missed, and is told
//! explicitly when the history no longer reaches back.
//!
//! The history is bounded four ways: messages per queue (`history_len`), age
//! (`history_age`, enforced by a sweep every second as well as on each record), bytes per
//! queue (`history_queue_bytes`) and bytes in all queues together (`history_total_bytes`:
//! past it, the queues holding the most give up their oldest messages first). A purge drops
//! a queue's history at once. The bytes held are counted in [`Broker::history_bytes`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use restmq_shared::{MessageKey, QueueName};

use super::Broker;

/// A queue's history, locked (a panic while it was held leaves nothing half-changed that matters).
pub(super) fn lock(history: &Mutex<History>) -> MutexGuard<'_, History> {
    history.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one kept message costs beyond its JSON.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Recorded>();

/// One broadcast message kept for replay.
struct Recorded {
    n: u64,
    json: Bytes,
    at: Instant,
}

impl Recorded {
    fn bytes(&self) -> usize {
        self.json.len() + ENTRY_OVERHEAD
    }
}

/// A hub's replay history.
#[derive(Default)]
pub struct History {
    entries: VecDeque<Recorded>,
    /// Bytes of `entries`, counted as [`Recorded::bytes`].
    bytes: usize,
    /// The highest message number dropped from the history: replay cannot reach it.
    forgotten: u64,
}

/// The bounds a history is trimmed to.
#[derive(Clone, Copy)]
struct Bounds {
    len: usize,
    age: Duration,
    bytes: usize,
}

/// What a resuming consumer gets before live messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Messages `from..=to` are no longer in the history.
    Gap { from: MessageKey, to: MessageKey },
    /// A missed message, as its stream JSON.
    Message { key: MessageKey, json: Bytes },
}

impl History {
    fn push(&mut self, entry: Recorded, total: &AtomicUsize) {
        self.bytes += entry.bytes();
        total.fetch_add(entry.bytes(), Ordering::Relaxed);
        self.entries.push_back(entry);
    }

    /// Drops the oldest entry, remembering its number; `false` when there is none.
    fn pop_oldest(&mut self, total: &AtomicUsize) -> bool {
        let Some(dropped) = self.entries.pop_front() else { return false };
        self.bytes -= dropped.bytes();
        total.fetch_sub(dropped.bytes(), Ordering::Relaxed);
        self.forgotten = self.forgotten.max(dropped.n);
        true
    }

    /// Drops the oldest entries until every bound holds.
    fn trim(&mut self, bounds: Bounds, total: &AtomicUsize) {
        let now = Instant::now();
        while self.entries.len() > bounds.len
            || self.bytes > bounds.bytes
            || self.entries.front().is_some_and(|e| now - e.at > bounds.age)
        {
            self.pop_oldest(total);
        }
    }

    /// Forgets everything, as after a purge (keys start again at 1).
    pub(super) fn clear(&mut self, total: &AtomicUsize) {
        total.fetch_sub(self.bytes, Ordering::Relaxed);
        *self = Self::default();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Broker {
    fn history_bounds(&self) -> Bounds {
        let config = self.config();
        Bounds { len: config.history_len, age: config.history_age, bytes: config.history_queue_bytes }
    }

    /// Bytes of broadcast messages kept for replay, in every queue of this process.
    pub fn history_bytes(&self) -> usize {
        self.inner.history_bytes.load(Ordering::Relaxed)
    }

    /// Keeps broadcast message `n` (its `json`) in a queue's `history` for replay.
    pub(super) fn record(&self, history: &Mutex<History>, n: u64, json: &Bytes) {
        let bounds = self.history_bounds();
        if bounds.len == 0 {
            return;
        }
        let total = &self.inner.history_bytes;
        let entry = Recorded { n, json: json.clone(), at: Instant::now() };
        {
            let mut history = lock(history);
            history.push(entry, total);
            history.trim(bounds, total);
        }
        if self.history_bytes() > self.config().history_total_bytes {
            self.trim_total();
        }
    }

    /// Past the total bound: the queues holding the most give up their oldest messages until
    /// the total is an eighth under the bound (so this does not run on every record).
    fn trim_total(&self) {
        let max = self.config().history_total_bytes;
        let target = max - max / 8;
        let total = &self.inner.history_bytes;
        let mut holders: Vec<(usize, _)> = self
            .all_hubs()
            .into_iter()
            .map(|hub| {
                let bytes = hub.history().bytes;
                (bytes, hub)
            })
            .filter(|(bytes, _)| *bytes > 0)
            .collect();
        holders.sort_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        for (_, hub) in holders {
            let mut history = hub.history();
            while self.history_bytes() > target && history.pop_oldest(total) {}
            if self.history_bytes() <= target {
                return;
            }
        }
    }

    /// Drops what has aged out of every queue's history (run every second by the sweeper, so
    /// a queue that goes quiet frees its history too).
    pub(super) fn sweep_history(&self) {
        let bounds = self.history_bounds();
        for hub in self.all_hubs() {
            let mut history = hub.history();
            if !history.is_empty() {
                history.trim(bounds, &self.inner.history_bytes);
            }
        }
    }

    /// What a consumer that last saw `since` missed: a gap notice if the history no longer
    /// reaches back to it, then the kept messages after it, oldest first.
    pub fn replay(&self, queue: &QueueName, since: &MessageKey) -> Vec<Replay> {
        let Some(hub) = self.existing_hub(queue) else { return Vec::new() };
        let mut history = hub.history();
        history.trim(self.history_bounds(), &self.inner.history_bytes);
        let mut out = Vec::new();
        if since.n < history.forgotten {
            out.push(Replay::Gap {
                from: MessageKey::new(queue.clone(), since.n + 1),
                to: MessageKey::new(queue.clone(), history.forgotten),
            });
        }
        out.extend(
            history
                .entries
                .iter()
                .filter(|e| e.n > since.n)
                .map(|e| Replay::Message { key: MessageKey::new(queue.clone(), e.n), json: e.json.clone() }),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(count: u64, json_bytes: usize, total: &AtomicUsize) -> History {
        let mut h = History::default();
        for n in 1..=count {
            h.push(Recorded { n, json: Bytes::from(vec![b'x'; json_bytes]), at: Instant::now() }, total);
        }
        h
    }

    const WIDE: Bounds = Bounds { len: usize::MAX, age: Duration::from_secs(60), bytes: usize::MAX };

    /// Trimming by length remembers the highest number dropped, and gives its bytes back.
    #[test]
    fn trim_remembers_what_was_dropped() {
        let total = AtomicUsize::new(0);
        let mut h = filled(5, 10, &total);
        h.trim(Bounds { len: 3, ..WIDE }, &total);
        assert_eq!(h.entries.iter().map(|e| e.n).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(h.forgotten, 2);
        assert_eq!(h.bytes, 3 * (10 + ENTRY_OVERHEAD));
        assert_eq!(total.load(Ordering::Relaxed), h.bytes);
    }

    /// The byte bound keeps the newest messages that fit; clearing gives every byte back.
    #[test]
    fn byte_bound_and_clear() {
        let total = AtomicUsize::new(0);
        let mut h = filled(10, 1000, &total);
        h.trim(Bounds { bytes: 3500, ..WIDE }, &total);
        assert_eq!(h.entries.iter().map(|e| e.n).collect::<Vec<_>>(), [8, 9, 10]);
        assert!(h.bytes <= 3500);
        h.clear(&total);
        assert_eq!((h.bytes, h.forgotten, total.load(Ordering::Relaxed)), (0, 0, 0));
    }
}
