//! Browser map/reduce jobs: the code a user writes (a map and a reduce step, in JavaScript run
//! by the sandbox worker), the presets to start from, the link that carries a job to another
//! tab (base64url JSON in the hash), and the partial results workers post to a result queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default time budget of one step, in milliseconds.
pub const DEFAULT_BUDGET_MS: u32 = 1000;
/// The longest budget: a batch's messages must be acked within the server's lease (30 s).
pub const MAX_BUDGET_MS: u32 = 5000;
/// Keys the reduce view lists by default.
pub const DEFAULT_TOP: u32 = 20;

/// A job: what a worker runs over each message, and how values combine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    /// Body of `function (value, emit, output)`: `value` is the message text; `emit(key, value)`
    /// any number of times; `output(message)` adds a message to the output queue.
    pub map: String,
    /// Body of `function (a, b, key)`: combines two values of one key (associative and
    /// commutative, since partials are combined in any order).
    pub reduce: String,
    /// Result queue; empty means `<input>.results`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub results: String,
    /// Queue of the messages the map step outputs; empty means `<input>.out`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Keys listed by the reduce view, highest first.
    #[serde(default = "default_top")]
    pub top: u32,
    /// Longest a step may run, in milliseconds, before it is stopped and skipped.
    #[serde(default = "default_budget")]
    pub budget_ms: u32,
}

fn default_top() -> u32 {
    DEFAULT_TOP
}

fn default_budget() -> u32 {
    DEFAULT_BUDGET_MS
}

impl Job {
    fn preset(name: &str, map: &str, reduce: &str, top: u32) -> Self {
        Self {
            name: name.to_owned(),
            map: map.to_owned(),
            reduce: reduce.to_owned(),
            results: String::new(),
            output: String::new(),
            top,
            budget_ms: DEFAULT_BUDGET_MS,
        }
    }

    /// The link payload: base64url of the job's JSON.
    pub fn encode(&self) -> String {
        base64url_encode(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    /// A job from its link payload.
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_slice(&base64url_decode(text)?).ok()
    }

    /// A short id of the code (FNV-1a of map and reduce), so a reduce view combines only the
    /// partials of this job.
    pub fn id(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self.map.bytes().chain([0]).chain(self.reduce.bytes()) {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        format!("{hash:08x}")
    }

    /// The time budget of one step (the default when unset), at most [`MAX_BUDGET_MS`].
    pub fn budget(&self) -> u32 {
        if self.budget_ms == 0 {
            DEFAULT_BUDGET_MS
        } else {
            self.budget_ms.min(MAX_BUDGET_MS)
        }
    }

    /// Keys the reduce view lists (the default when unset).
    pub fn top_keys(&self) -> u32 {
        if self.top == 0 {
            DEFAULT_TOP
        } else {
            self.top
        }
    }

    /// The output queue's name for input queue `input`.
    pub fn output_for(&self, input: &str) -> String {
        match self.output.trim() {
            "" => format!("{input}.out"),
            named => named.to_owned(),
        }
    }

    /// The result queue's name for input queue `input`.
    pub fn results_for(&self, input: &str) -> String {
        match self.results.trim() {
            "" => format!("{input}.results"),
            named => named.to_owned(),
        }
    }
}

/// The presets: word count, grep, numeric stats of a JSON field, top-N keys.
pub fn presets() -> Vec<Job> {
    vec![
        Job::preset(
            "word count",
            "for (const word of value.toLowerCase().match(/[\\p{L}\\p{N}]+/gu) ?? []) emit(word, 1);",
            "return a + b;",
            DEFAULT_TOP,
        ),
        Job::preset(
            "grep",
            "// Outputs the lines that match to the output queue, and counts them.\nconst pattern = /light/i;\nfor (const line of value.split('\\n')) if (pattern.test(line)) { output(line); emit('matching lines', 1); }",
            "return a + b;",
            DEFAULT_TOP,
        ),
        Job::preset(
            "stats of a JSON field",
            "// count, sum, min, max and mean of cpu.total (the system feed's)\nconst x = Number(JSON.parse(value)?.cpu?.total);\nif (Number.isFinite(x)) emit('cpu.total', { count: 1, sum: x, min: x, max: x, mean: x });",
            "const count = a.count + b.count, sum = a.sum + b.sum;\nreturn { count, sum, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), mean: sum / count };",
            DEFAULT_TOP,
        ),
        Job::preset(
            "top-N keys",
            "// The 10 most used long words: the reduce view lists the top keys.\nfor (const word of value.toLowerCase().match(/\\p{L}{7,}/gu) ?? []) emit(word, 1);",
            "return a + b;",
            10,
        ),
    ]
}

/// What a worker posts to the result queue, for the messages it processed since its last post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub worker: String,
    pub job: String,
    /// Messages covered (skipped ones included).
    pub processed: u64,
    /// Messages whose step threw or ran out of time.
    #[serde(default)]
    pub skipped: u64,
    /// Messages the map step output (posted to the output queue before this partial).
    #[serde(default)]
    pub outputs: u64,
    /// The input keys covered, so that a message delivered again is counted once.
    #[serde(default)]
    pub keys: Vec<String>,
    /// When the worker started, and when it posted this, in ms since the epoch.
    pub since: f64,
    pub at: f64,
    pub partial: serde_json::Map<String, serde_json::Value>,
}

/// One worker as the reduce view sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerFigures {
    pub processed: u64,
    pub skipped: u64,
    pub partials: u64,
    since: f64,
    at: f64,
}

impl WorkerFigures {
    /// Messages a second, from its start to its latest post.
    pub fn rate(&self) -> f64 {
        let secs = (self.at - self.since) / 1000.0;
        if secs > 0.0 {
            self.processed as f64 / secs
        } else {
            0.0
        }
    }
}

/// The reduce view's bookkeeping: which partials to combine, and the figures per worker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub workers: BTreeMap<String, WorkerFigures>,
    pub processed: u64,
    pub skipped: u64,
    pub outputs: u64,
    /// Partials of other jobs, unreadable ones, and duplicates, left out.
    pub ignored: u64,
    counted: std::collections::HashSet<String>,
}

impl Progress {
    /// Accepts `text` (a message of the result queue) when it is a partial of job `job` that
    /// adds something: a partial covering only keys already counted (a message delivered again
    /// after its first partial was posted, but before its ack arrived) is left out.
    pub fn accept(&mut self, text: &str, job: &str) -> Option<Partial> {
        let partial = serde_json::from_str::<Partial>(text).ok().filter(|p| p.job == job);
        let Some(partial) = partial else {
            self.ignored += 1;
            return None;
        };
        let seen = !partial.keys.is_empty() && partial.keys.iter().all(|k| self.counted.contains(k));
        if seen {
            self.ignored += 1;
            return None;
        }
        self.counted.extend(partial.keys.iter().cloned());
        let figures = self.workers.entry(partial.worker.clone()).or_default();
        if figures.partials == 0 || partial.since < figures.since {
            figures.since = partial.since;
        }
        figures.at = figures.at.max(partial.at);
        figures.processed += partial.processed;
        figures.skipped += partial.skipped;
        figures.partials += 1;
        self.processed += partial.processed;
        self.skipped += partial.skipped;
        self.outputs += partial.outputs;
        Some(partial)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Base64url, padding optional; `None` on any other character.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &d)| n | d << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Base64url round-trips every length, and rejects foreign characters.
    #[test]
    fn base64url_round_trip() {
        for len in 0..20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            assert_eq!(base64url_decode(&base64url_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64url_encode(b"hi?>"), "aGk_Pg");
        assert_eq!(base64url_decode("aGk_Pg==").unwrap(), b"hi?>");
        assert_eq!(base64url_decode("a+b/"), None);
        assert_eq!(base64url_decode("abcde"), None);
    }

    /// A job survives its link, and its id depends on its code only.
    #[test]
    fn job_link_round_trip() {
        let mut job = presets().remove(2);
        job.results = "cpu.stats".into();
        assert_eq!(Job::decode(&job.encode()), Some(job.clone()));
        let renamed = Job { name: "other".into(), ..job.clone() };
        assert_eq!(renamed.id(), job.id());
        let edited = Job { reduce: "return a;".into(), ..job.clone() };
        assert_ne!(edited.id(), job.id());
        assert_eq!(job.results_for("system"), "cpu.stats");
        assert_eq!(job.output_for("system"), "system.out");
        assert_eq!(presets()[0].results_for("text"), "text.results");
        assert_eq!(Job::decode("not base64!"), None);
        // Fields left out take their defaults.
        let short = base64url_encode(br#"{"name":"n","map":"m","reduce":"r"}"#);
        assert_eq!(Job::decode(&short).map(|j| (j.top, j.budget_ms)), Some((DEFAULT_TOP, DEFAULT_BUDGET_MS)));
        let budgets = [0, 700, 60_000].map(|budget_ms| Job { budget_ms, ..job.clone() }.budget());
        assert_eq!(budgets, [DEFAULT_BUDGET_MS, 700, MAX_BUDGET_MS]);
    }

    fn partial(worker: &str, keys: &[&str], since: f64, at: f64) -> String {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let p = Partial {
            worker: worker.into(),
            job: "j1".into(),
            processed: keys.len() as u64,
            skipped: u64::from(worker == "b"),
            outputs: 1,
            keys,
            since,
            at,
            partial: serde_json::Map::new(),
        };
        serde_json::to_string(&p).unwrap()
    }

    /// Partials are counted per worker, once each; other jobs, junk and repeats are left out.
    #[test]
    fn progress_counts_each_message_once() {
        let mut progress = Progress::default();
        assert!(progress.accept(&partial("a", &["q:1", "q:2"], 1000.0, 2000.0), "j1").is_some());
        assert!(progress.accept(&partial("b", &["q:3"], 1500.0, 1600.0), "j1").is_some());
        assert!(progress.accept(&partial("a", &["q:4", "q:5"], 1000.0, 3000.0), "j1").is_some());
        // q:3 delivered again after b posted it: left out.
        assert!(progress.accept(&partial("a", &["q:3"], 1000.0, 3100.0), "j1").is_none());
        assert!(progress.accept(&partial("a", &["q:6"], 1000.0, 3100.0), "other-job").is_none());
        assert!(progress.accept("not json", "j1").is_none());
        assert_eq!((progress.processed, progress.skipped, progress.ignored), (5, 1, 3));
        assert_eq!(progress.outputs, 3);
        let a = &progress.workers["a"];
        assert_eq!((a.processed, a.partials), (4, 2));
        assert!((a.rate() - 2.0).abs() < 1e-9, "4 messages in 2 s: {}", a.rate());
    }
}
