//! The app's pure logic, unit-tested on the host: the live view's state and its reducer here,
//! the rest in submodules. No IO and no browser API: time comes in with the actions.
//!
//! # Layout
//! - this file: [`StreamState`] and [`Action`], the live view (rows, caps, filter, pause).
//! - [`inbox`]: [`Inbox`], where messages wait for the next animation frame, and [`Batch`].
//! - [`dial`]: transport fallback (WebSocket → SSE → COMET) and reconnect back-off.
//! - [`rate`]: message rates, the sparkline, queue in/out rates from `/stats/`.
//! - [`series`]: numeric series of JSON messages for the charts; [`axis`]: their units, ticks and gaps.
//! - [`job`]: map/reduce jobs (presets, links), their partial results and the reduce view's progress.

pub mod axis;
pub mod dial;
mod inbox;
pub mod job;
pub mod rate;
pub mod series;

pub use inbox::{Batch, Inbox};

use std::collections::VecDeque;
use std::rc::Rc;

use restmq_shared::StreamMessage;

use self::{dial::Link, rate::RateMeter};

/// Rows in the DOM at most.
pub const ROW_CAP: usize = 200;
/// Messages kept in memory at most (the filter searches these).
pub const HISTORY_CAP: usize = 1000;
/// Bytes of a message value kept for display; longer values are cut.
pub const VALUE_CAP: usize = 4096;

/// One received message, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Arrival number in this view: a stable key for the DOM.
    pub seq: u64,
    pub key: String,
    /// The value as received (cut at [`VALUE_CAP`]).
    pub value: String,
    /// The value pretty-printed, when it is a JSON object or array (cut at [`VALUE_CAP`]).
    pub pretty: Option<String>,
    /// The value's full length in bytes.
    pub bytes: usize,
}

impl Row {
    pub fn new(seq: u64, message: StreamMessage) -> Self {
        let pretty = match serde_json::from_str::<serde_json::Value>(&message.value) {
            Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                serde_json::to_string_pretty(&json).ok().map(|text| cut(text, VALUE_CAP))
            }
            _ => None,
        };
        let bytes = message.value.len();
        Self { seq, key: message.key.to_string(), value: cut(message.value, VALUE_CAP), pretty, bytes }
    }

    /// Whether the value was cut for display.
    pub fn is_cut(&self) -> bool {
        self.bytes > self.value.len()
    }

    /// The text to show: pretty JSON, or the value as it is.
    pub fn text(&self) -> &str {
        self.pretty.as_deref().unwrap_or(&self.value)
    }

    fn matches(&self, filter: &Filter) -> bool {
        filter.is_empty() || filter.found_in(&self.key) || filter.found_in(&self.value)
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
    }
    text
}

/// A case-insensitive substring filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Filter {
    text: String,
    folded: String,
}

impl Filter {
    fn new(text: String) -> Self {
        let folded = text.trim().to_lowercase();
        Self { text, folded }
    }

    fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }

    fn found_in(&self, haystack: &str) -> bool {
        if self.folded.is_ascii() {
            let needle = self.folded.as_bytes();
            haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
        } else {
            haystack.to_lowercase().contains(&self.folded)
        }
    }
}

/// Everything that changes the live view.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A frame's batch of messages, received by `now_ms`.
    Receive(Batch, f64),
    /// The clock moved on (rolls the rate and sparkline when nothing arrives).
    Tick(f64),
    /// The connection changed state.
    Link(Link),
    /// Freeze (`true`) or unfreeze the rows shown, however many arrive meanwhile; messages keep
    /// being received.
    Pause(bool),
    /// Forget the rows kept so far.
    Clear,
    /// Show only rows whose key or value contains this text (any case).
    Filter(String),
    /// Resuming after a reconnect, the server could not replay messages `from..=to` (numbers).
    Gap(u64, u64),
}

/// The live view of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    rows: VecDeque<Rc<Row>>,
    next_seq: u64,
    /// Messages received since the view opened.
    pub received: u64,
    /// Messages received since the view was paused.
    held: u64,
    /// While paused: the rows kept when the pause began, which the view keeps showing.
    frozen: Option<VecDeque<Rc<Row>>>,
    pub paused: bool,
    filter: Filter,
    pub rate: RateMeter,
    pub link: Link,
    /// Key of the newest message, to resume from after a reconnect.
    pub last_key: Option<String>,
    /// Messages the server could no longer replay after reconnects.
    pub missed: u64,
    /// Time of the latest action, in ms.
    pub now_ms: f64,
}

impl StreamState {
    pub fn new(now_ms: f64) -> Self {
        Self {
            rows: VecDeque::new(),
            next_seq: 0,
            received: 0,
            held: 0,
            frozen: None,
            paused: false,
            filter: Filter::default(),
            rate: RateMeter::new(now_ms),
            link: Link::Idle,
            last_key: None,
            missed: 0,
            now_ms,
        }
    }

    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Receive(batch, now_ms) => self.receive(batch, now_ms),
            Action::Tick(now_ms) => {
                self.now_ms = self.now_ms.max(now_ms);
                self.rate.advance(now_ms);
            }
            Action::Link(link) => self.link = link,
            Action::Pause(paused) => {
                self.paused = paused;
                self.held = 0;
                self.frozen = paused.then(|| self.rows.clone());
            }
            Action::Clear => {
                self.rows.clear();
                self.held = 0;
                if let Some(frozen) = &mut self.frozen {
                    frozen.clear();
                }
            }
            Action::Filter(text) => self.filter = Filter::new(text),
            Action::Gap(from, to) => self.missed += to.saturating_sub(from) + 1,
        }
    }

    fn receive(&mut self, batch: Batch, now_ms: f64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.rate.record(now_ms, u32::try_from(batch.received).unwrap_or(u32::MAX));
        self.received += batch.received;
        let skip = batch.messages.len().saturating_sub(HISTORY_CAP);
        for message in batch.messages.into_iter().skip(skip) {
            self.last_key = Some(message.key.to_string());
            self.rows.push_back(Rc::new(Row::new(self.next_seq, message)));
            self.next_seq += 1;
        }
        if self.paused {
            self.held += batch.received;
        }
        while self.rows.len() > HISTORY_CAP {
            self.rows.pop_front();
        }
    }

    /// The rows to show, newest first: at most [`ROW_CAP`], matching the filter; while paused,
    /// those kept when the pause began.
    pub fn visible(&self) -> impl Iterator<Item = &Rc<Row>> {
        let rows = self.frozen.as_ref().unwrap_or(&self.rows);
        rows.iter().rev().filter(|row| row.matches(&self.filter)).take(ROW_CAP)
    }

    /// Rows kept in memory.
    pub fn kept(&self) -> usize {
        self.rows.len()
    }

    /// Messages that arrived while paused (the newest are shown on resume).
    pub fn held(&self) -> u64 {
        self.held
    }

    pub fn filter(&self) -> &str {
        &self.filter.text
    }

    /// Messages per second now.
    pub fn rate(&self) -> f64 {
        self.rate.rate(self.now_ms)
    }
}

#[cfg(test)]
mod tests {
    use restmq_shared::MessageKey;

    use super::*;

    fn message(n: u64, value: &str) -> StreamMessage {
        StreamMessage { key: MessageKey::new("q".parse().unwrap(), n), value: value.to_owned() }
    }

    fn batch(range: std::ops::RangeInclusive<u64>) -> Batch {
        let mut inbox = Inbox::default();
        for n in range {
            inbox.push(message(n, &format!("message {n}")));
        }
        inbox.take()
    }

    fn keys(state: &StreamState) -> Vec<String> {
        state.visible().map(|row| row.key.clone()).collect()
    }

    /// Rows show newest first; the DOM cap and the memory cap hold however many arrive.
    #[test]
    fn caps_rows_and_memory() {
        let mut state = StreamState::new(0.0);
        for chunk in 0..50 {
            state.apply(Action::Receive(
                batch(chunk * 100 + 1..=chunk * 100 + 100),
                f64::from(chunk as u32) * 100.0,
            ));
        }
        assert_eq!(state.received, 5000);
        assert_eq!(state.kept(), HISTORY_CAP);
        let shown = keys(&state);
        assert_eq!(shown.len(), ROW_CAP);
        assert_eq!(shown[0], "q:5000");
        assert_eq!(shown[ROW_CAP - 1], "q:4801");
        assert_eq!(state.last_key.as_deref(), Some("q:5000"));
    }

    /// The inbox keeps only the newest messages between frames but counts every one.
    #[test]
    fn inbox_drops_oldest_but_counts_all() {
        let batch = batch(1..=2500);
        assert_eq!(batch.received, 2500);
        assert_eq!(batch.messages.len(), HISTORY_CAP);
        assert_eq!(batch.messages[0].key.n, 1501);
        let mut inbox = Inbox::default();
        inbox.push(message(1, "x"));
        assert_eq!(inbox.take().received, 1);
        assert_eq!(inbox.take(), Batch::default());
    }

    /// The filter is case-insensitive over key and raw value, including non-ASCII text.
    #[test]
    fn filters_rows() {
        let mut state = StreamState::new(0.0);
        let mut inbox = Inbox::default();
        for (n, value) in [(1, r#"{"level":"ERROR"}"#), (2, "all good"), (3, "Ünïcode error"), (4, "q:x")] {
            inbox.push(message(n, value));
        }
        state.apply(Action::Receive(inbox.take(), 0.0));
        state.apply(Action::Filter(" error ".into()));
        assert_eq!(keys(&state), ["q:3", "q:1"]);
        state.apply(Action::Filter("ÜNÏ".into()));
        assert_eq!(keys(&state), ["q:3"]);
        state.apply(Action::Filter("q:2".into()));
        assert_eq!(keys(&state), ["q:2"]);
        assert_eq!(state.filter(), "q:2");
        state.apply(Action::Filter(String::new()));
        assert_eq!(keys(&state).len(), 4);
    }

    /// Pausing freezes the rows shown while messages keep counting; resuming shows them.
    #[test]
    fn pause_holds_new_rows() {
        let mut state = StreamState::new(0.0);
        state.apply(Action::Receive(batch(1..=3), 0.0));
        state.apply(Action::Pause(true));
        state.apply(Action::Receive(batch(4..=5), 10.0));
        assert_eq!(keys(&state), ["q:3", "q:2", "q:1"]);
        assert_eq!((state.held(), state.received), (2, 5));
        // However many arrive, the paused view stays as it was.
        state.apply(Action::Receive(batch(6..=5000), 20.0));
        assert_eq!(keys(&state), ["q:3", "q:2", "q:1"]);
        assert_eq!(state.held(), 4997);
        state.apply(Action::Pause(false));
        assert_eq!(keys(&state)[0], "q:5000");
        state.apply(Action::Clear);
        assert!(keys(&state).is_empty());
        assert_eq!(state.received, 5000, "clear empties the view, not the count");
    }

    /// Gaps the server reports on resuming add up to the messages missed.
    #[test]
    fn counts_missed_messages() {
        let mut state = StreamState::new(0.0);
        state.apply(Action::Gap(5, 9));
        state.apply(Action::Gap(12, 12));
        assert_eq!(state.missed, 6);
    }

    /// JSON objects and arrays are pretty-printed; JSON scalars and text stay as sent; long values are cut on a character boundary.
    #[test]
    fn formats_values() {
        let row = Row::new(0, message(1, r#"{"a":[1,2]}"#));
        assert_eq!(row.text(), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        let row = Row::new(0, message(2, "\"123\""));
        assert_eq!((row.pretty.as_deref(), row.text()), (None, "\"123\""));
        let row = Row::new(0, message(3, "<b>not html</b>"));
        assert_eq!(row.text(), "<b>not html</b>");
        let long = "é".repeat(VALUE_CAP);
        let row = Row::new(0, message(4, &long));
        assert!(row.is_cut());
        assert_eq!(row.value.len(), VALUE_CAP);
        assert_eq!(row.bytes, long.len());
    }

    /// The rate follows the messages received and decays on ticks.
    #[test]
    fn rate_follows_batches() {
        let mut state = StreamState::new(0.0);
        for i in 1..=10u32 {
            state.apply(Action::Receive(batch(1..=100), f64::from(i) * 100.0));
        }
        assert!((state.rate() - 1000.0).abs() < 1.0, "{}", state.rate());
        state.apply(Action::Tick(60_000.0));
        assert_eq!(state.rate(), 0.0);
    }
}
