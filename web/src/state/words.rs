//! The browser worker's map/reduce step: word counts of text messages (map, in wasm), partial
//! results posted as JSON to a result queue, and the totals reduced from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Partials are posted once this many messages are pending, without waiting for the timer.
pub const FLUSH_MESSAGES: u64 = 50;

/// Words of `text`: runs of letters and digits, lowercased, with their counts.
pub fn count_words(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// What a worker posts to the result queue: the counts of the messages it processed since
/// its previous post.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Partial {
    /// The worker (browser tab) that did the work.
    pub worker: String,
    /// Messages counted.
    pub messages: u64,
    /// Words in them.
    pub words: u64,
    /// Count per word.
    pub counts: BTreeMap<String, u64>,
}

impl Partial {
    /// Adds `other`'s counts to this partial (the worker is kept).
    pub fn merge(&mut self, other: &Partial) {
        self.messages += other.messages;
        self.words += other.words;
        for (word, n) in &other.counts {
            *self.counts.entry(word.clone()).or_insert(0) += n;
        }
    }
}

/// One worker's running count, and the partial not posted yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    pub worker: String,
    /// Messages processed by this worker.
    pub processed: u64,
    /// Words counted by this worker.
    pub words: u64,
    /// Partials posted.
    pub posted: u64,
    pending: Partial,
}

impl Tally {
    pub fn new(worker: impl Into<String>) -> Self {
        let worker = worker.into();
        Self { pending: Partial { worker: worker.clone(), ..Partial::default() }, worker, ..Self::default() }
    }

    /// Maps one message: counts its words into the pending partial. Returns the word count.
    pub fn process(&mut self, text: &str) -> u64 {
        let counts = count_words(text);
        let words: u64 = counts.values().sum();
        self.pending.merge(&Partial { worker: String::new(), messages: 1, words, counts });
        self.processed += 1;
        self.words += words;
        words
    }

    /// Messages counted but not posted yet.
    pub fn pending_messages(&self) -> u64 {
        self.pending.messages
    }

    /// Takes the pending partial to post, if any message is in it.
    pub fn take_partial(&mut self) -> Option<Partial> {
        if self.pending.messages == 0 {
            return None;
        }
        let empty = Partial { worker: self.worker.clone(), ..Partial::default() };
        self.posted += 1;
        Some(std::mem::replace(&mut self.pending, empty))
    }

    /// Puts back a partial whose post failed, to go out with the next one.
    pub fn restore(&mut self, partial: &Partial) {
        self.pending.merge(partial);
        self.posted = self.posted.saturating_sub(1);
    }
}

/// The reduce step: every partial of a result queue added up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    /// Partials reduced.
    pub partials: u64,
    /// Messages counted by all workers.
    pub messages: u64,
    /// Words counted by all workers.
    pub words: u64,
    /// Messages per worker.
    pub workers: BTreeMap<String, u64>,
    /// Result messages that were not partials.
    pub rejected: u64,
    counts: BTreeMap<String, u64>,
}

impl Totals {
    pub fn reduce(&mut self, partial: &Partial) {
        self.partials += 1;
        self.messages += partial.messages;
        self.words += partial.words;
        *self.workers.entry(partial.worker.clone()).or_insert(0) += partial.messages;
        for (word, n) in &partial.counts {
            *self.counts.entry(word.clone()).or_insert(0) += n;
        }
    }

    /// Reduces one message of the result queue; anything but a partial is counted as rejected.
    pub fn reduce_text(&mut self, text: &str) {
        match serde_json::from_str::<Partial>(text) {
            Ok(partial) => self.reduce(&partial),
            Err(_) => self.rejected += 1,
        }
    }

    pub fn distinct_words(&self) -> usize {
        self.counts.len()
    }

    /// The `n` most frequent words, most frequent first, ties alphabetically.
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(w, &c)| (w.as_str(), c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words are runs of letters and digits, case-folded, in any script.
    #[test]
    fn counts_words() {
        let counts = count_words("Hello, world! HELLO… naïve café 42 — l'été");
        let expect = [("42", 1), ("café", 1), ("hello", 2), ("l", 1), ("naïve", 1), ("world", 1), ("été", 1)];
        assert_eq!(counts, expect.iter().map(|&(w, n)| (w.to_owned(), n)).collect());
        assert!(count_words("  ,;  ").is_empty());
    }

    /// A worker's partials carry exactly what it processed since its last post.
    #[test]
    fn tally_posts_partials() {
        let mut tally = Tally::new("w1");
        assert_eq!(tally.take_partial(), None);
        assert_eq!(tally.process("a b a"), 3);
        tally.process("b c");
        assert_eq!(tally.pending_messages(), 2);
        let first = tally.take_partial().unwrap();
        assert_eq!((first.worker.as_str(), first.messages, first.words), ("w1", 2, 5));
        assert_eq!(first.counts["a"], 2);
        assert_eq!(first.counts["b"], 2);
        tally.process("d");
        let second = tally.take_partial().unwrap();
        assert_eq!((second.messages, second.words), (1, 1));
        assert_eq!((tally.processed, tally.words, tally.posted), (3, 6, 2));
    }

    /// A failed post goes back into the pending partial, so nothing is lost or counted twice.
    #[test]
    fn failed_post_is_restored() {
        let mut tally = Tally::new("w1");
        tally.process("x y");
        let partial = tally.take_partial().unwrap();
        tally.restore(&partial);
        tally.process("x");
        let retry = tally.take_partial().unwrap();
        assert_eq!((retry.messages, retry.words, retry.counts["x"]), (2, 3, 2));
        assert_eq!(tally.posted, 1);
    }

    /// Totals add up partials from several workers, whatever their order, and reject non-partials.
    #[test]
    fn totals_reduce_partials() {
        let (mut a, mut b) = (Tally::new("a"), Tally::new("b"));
        a.process("the cat");
        b.process("the dog the end");
        let mut totals = Totals::default();
        for partial in [b.take_partial().unwrap(), a.take_partial().unwrap()] {
            totals.reduce_text(&serde_json::to_string(&partial).unwrap());
        }
        totals.reduce_text("not json");
        assert_eq!((totals.partials, totals.messages, totals.words, totals.rejected), (2, 2, 6, 1));
        assert_eq!(totals.workers, [("a".to_owned(), 1), ("b".to_owned(), 1)].into());
        assert_eq!(totals.top(2), [("the", 3), ("cat", 1)]);
        assert_eq!(totals.top(9)[2..], [("dog", 1), ("end", 1)]);
        assert_eq!(totals.distinct_words(), 4);
    }
}
