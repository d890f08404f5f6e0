//! Rates: a per-second message counter for the live view (rate and sparkline), and the in/out
//! rates of every queue computed from two successive `/stats/` replies.

use std::collections::{BTreeMap, VecDeque};

use restmq_shared::StatsReply;

/// Seconds of history in the sparkline.
pub const SPARK_SECS: usize = 60;
/// Seconds the shown rate averages over.
pub const RATE_WINDOW_SECS: usize = 5;

/// Messages counted per wall-clock second over the last [`SPARK_SECS`] seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RateMeter {
    /// When counting started (or was last cleared), in ms.
    start_ms: f64,
    /// The second (ms / 1000, floored) of the newest bucket.
    head: i64,
    /// Counts per second, oldest first; the last one is the current second.
    buckets: VecDeque<u32>,
}

impl RateMeter {
    pub fn new(now_ms: f64) -> Self {
        let mut buckets = VecDeque::with_capacity(SPARK_SECS);
        buckets.push_back(0);
        Self { start_ms: now_ms, head: second(now_ms), buckets }
    }

    /// Counts `n` messages received at `now_ms`.
    pub fn record(&mut self, now_ms: f64, n: u32) {
        self.advance(now_ms);
        if let Some(last) = self.buckets.back_mut() {
            *last = last.saturating_add(n);
        }
    }

    /// Moves the window to `now_ms`, adding empty seconds (a clock going back changes nothing).
    pub fn advance(&mut self, now_ms: f64) {
        let now = second(now_ms);
        let gap = (now - self.head).clamp(0, SPARK_SECS as i64) as usize;
        for _ in 0..gap {
            self.buckets.push_back(0);
        }
        while self.buckets.len() > SPARK_SECS {
            self.buckets.pop_front();
        }
        self.head = self.head.max(now);
    }

    /// Messages per second over the last [`RATE_WINDOW_SECS`] seconds (fewer right after a start).
    pub fn rate(&self, now_ms: f64) -> f64 {
        let recent: u32 = self.buckets.iter().rev().take(RATE_WINDOW_SECS).sum();
        let into_head = (now_ms - self.head as f64 * 1000.0).clamp(0.0, 1000.0);
        let window = (RATE_WINDOW_SECS as f64 - 1.0) * 1000.0 + into_head;
        let elapsed = window.min(now_ms - self.start_ms).max(250.0);
        f64::from(recent) * 1000.0 / elapsed
    }

    /// Counts per second for the sparkline, oldest first, always [`SPARK_SECS`] long.
    pub fn spark(&self) -> Vec<u32> {
        let missing = SPARK_SECS - self.buckets.len().min(SPARK_SECS);
        std::iter::repeat_n(0, missing).chain(self.buckets.iter().copied()).collect()
    }
}

fn second(ms: f64) -> i64 {
    (ms / 1000.0).floor() as i64
}

/// A queue's throughput between two stats samples, in messages per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueRates {
    /// Messages added.
    pub inflow: f64,
    /// Messages taken by gets plus messages handed to streaming consumers.
    pub outflow: f64,
}

/// The rates of every queue of `cur`, from the counters' growth since `prev`. A queue missing
/// from `prev` counts from zero; a counter that went down (server restart) counts as no growth.
pub fn queue_rates(
    prev: &StatsReply,
    prev_ms: f64,
    cur: &StatsReply,
    cur_ms: f64,
) -> BTreeMap<String, QueueRates> {
    let secs = (cur_ms - prev_ms) / 1000.0;
    if secs <= 0.0 {
        return BTreeMap::new();
    }
    let per_sec = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
    cur.queues
        .iter()
        .map(|(name, q)| {
            let (added, out) = prev.queues.get(name).map_or((0, 0), |p| (p.added, p.taken + p.delivered));
            let rates =
                QueueRates { inflow: per_sec(q.added, added), outflow: per_sec(q.taken + q.delivered, out) };
            (name.clone(), rates)
        })
        .collect()
}

/// A rate for display: `0`, `0.4`, `12`, `1.2k`.
pub fn format_rate(rate: f64) -> String {
    if rate < 0.05 {
        "0".to_owned()
    } else if rate < 10.0 {
        format!("{rate:.1}")
    } else if rate < 1000.0 {
        format!("{rate:.0}")
    } else {
        format!("{:.1}k", rate / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady 100 messages a second reads as 100/s once the window is full, and the
    /// sparkline has one bucket per second, newest last.
    #[test]
    fn steady_rate() {
        let mut meter = RateMeter::new(10_000.0);
        for tick in 0..100 {
            // 10 messages every 100 ms for 10 s
            meter.record(10_000.0 + f64::from(tick) * 100.0, 10);
        }
        let rate = meter.rate(19_999.0);
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
        let spark = meter.spark();
        assert_eq!(spark.len(), SPARK_SECS);
        assert_eq!(&spark[SPARK_SECS - 10..], &[100; 10]);
        assert_eq!(spark[0], 0);
    }

    /// Right after a start the rate divides by the time elapsed, not by the whole window.
    #[test]
    fn young_meter_is_not_diluted() {
        let mut meter = RateMeter::new(0.0);
        meter.record(900.0, 90);
        let rate = meter.rate(1000.0);
        assert!((rate - 90.0).abs() < 0.01, "{rate}");
    }

    /// Silence empties the window; a long gap resets the sparkline rather than growing it.
    #[test]
    fn idle_time_drains() {
        let mut meter = RateMeter::new(0.0);
        meter.record(0.0, 50);
        meter.advance(7_000.0);
        assert_eq!(meter.rate(7_000.0), 0.0);
        meter.advance(1_000_000.0);
        assert_eq!(meter.spark(), vec![0; SPARK_SECS]);
        assert_eq!(meter.buckets.len(), SPARK_SECS);
    }

    fn stats(queues: &[(&str, u64, u64, u64)]) -> StatsReply {
        let queues: serde_json::Map<String, serde_json::Value> = queues
            .iter()
            .map(|&(name, added, taken, delivered)| {
                let stats = serde_json::json!({
                    "queue": name, "name": name, "len": 0, "status": 1, "policy": "", "state": "started",
                    "policy_name": "broadcast", "consumers": 0,
                    "added": added, "taken": taken, "delivered": delivered,
                });
                (name.to_owned(), stats)
            })
            .collect();
        let reply = serde_json::json!({"count": queues.len(), "queues": queues, "store": "memory"});
        serde_json::from_value(reply).unwrap()
    }

    /// In/out rates come from the counters' growth over the time between samples.
    #[test]
    fn queue_rates_from_successive_stats() {
        let before = stats(&[("a", 10, 0, 0), ("b", 5, 5, 0)]);
        let after = stats(&[("a", 30, 4, 6), ("b", 2, 5, 0), ("c", 8, 0, 0)]);
        let rates = queue_rates(&before, 1_000.0, &after, 3_000.0);
        assert_eq!(rates["a"], QueueRates { inflow: 10.0, outflow: 5.0 });
        assert_eq!(rates["b"], QueueRates { inflow: 0.0, outflow: 0.0 }, "restart: no negative rate");
        assert_eq!(rates["c"], QueueRates { inflow: 4.0, outflow: 0.0 }, "new queue counts from zero");
        assert!(queue_rates(&before, 3_000.0, &after, 3_000.0).is_empty());
    }

    /// Rates print short.
    #[test]
    fn rate_text() {
        assert_eq!(format_rate(0.01), "0");
        assert_eq!(format_rate(0.44), "0.4");
        assert_eq!(format_rate(12.4), "12");
        assert_eq!(format_rate(1234.0), "1.2k");
    }
}
