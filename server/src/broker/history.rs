//! Replay for broadcast queues: each hub keeps the last messages it broadcast (bounded by
//! count and age), so a consumer reconnecting with `since=<key>` (or SSE `Last-Event-ID`)
//! gets what it missed, and is told explicitly when the history no longer reaches back.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use restmq_shared::{MessageKey, QueueName};

use super::hub::{Delivery, Hub};
use super::Broker;

/// One broadcast message kept for replay.
struct Recorded {
    n: u64,
    json: Bytes,
    at: Instant,
}

/// A hub's replay history.
#[derive(Default)]
pub struct History {
    entries: VecDeque<Recorded>,
    /// The highest message number dropped from the history: replay cannot reach it.
    forgotten: u64,
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
    fn trim(&mut self, max_len: usize, max_age: std::time::Duration) {
        let now = Instant::now();
        while self.entries.len() > max_len || self.entries.front().is_some_and(|e| now - e.at > max_age) {
            if let Some(dropped) = self.entries.pop_front() {
                self.forgotten = self.forgotten.max(dropped.n);
            }
        }
    }
}

impl Broker {
    /// Keeps a broadcast message for replay.
    pub(super) fn record(&self, hub: &Hub, delivery: &Delivery) {
        let config = self.config();
        if config.history_len == 0 {
            return;
        }
        let mut history = hub.history.lock().unwrap_or_else(|p| p.into_inner());
        history.entries.push_back(Recorded {
            n: delivery.message.key.n,
            json: delivery.json.clone(),
            at: Instant::now(),
        });
        history.trim(config.history_len, config.history_age);
    }

    /// What a consumer that last saw `since` missed: a gap notice if the history no longer
    /// reaches back to it, then the kept messages after it, oldest first.
    pub fn replay(&self, queue: &QueueName, since: &MessageKey) -> Vec<Replay> {
        let Some(hub) = self.existing_hub(queue) else { return Vec::new() };
        let mut history = hub.history.lock().unwrap_or_else(|p| p.into_inner());
        let config = self.config();
        history.trim(config.history_len, config.history_age);
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

    /// Trimming by length remembers the highest number dropped.
    #[test]
    fn trim_remembers_what_was_dropped() {
        let mut h = History::default();
        for n in 1..=5 {
            h.entries.push_back(Recorded { n, json: Bytes::new(), at: Instant::now() });
        }
        h.trim(3, std::time::Duration::from_secs(60));
        assert_eq!(h.entries.iter().map(|e| e.n).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(h.forgotten, 2);
    }
}
