//! Process-wide figures for `/metrics`: store latency histograms, open streaming
//! connections and HTTP requests per route and status. Per-queue counters live in the
//! broker's hubs; `http::exposition` renders both in Prometheus text format. A leaf: every
//! layer may write here, and it depends on none of them.
//!
//! Everything is plain atomics (and one short-held mutex for the request counters), owned
//! by the broker: no global registry, so several servers in one test process do not mix.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the store latency buckets, in seconds (`+Inf` follows).
pub const BUCKETS: [f64; 17] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
];

/// A latency histogram of fixed buckets: one atomic per bucket, plus sum and count.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// A histogram as read at one moment, buckets cumulative as Prometheus shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, ending with `(f64::INFINITY, count)`.
    pub buckets: Vec<(f64, u64)>,
    pub sum_secs: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS.iter().position(|le| secs <= *le).unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let bounds = BUCKETS.iter().copied().chain(std::iter::once(f64::INFINITY));
        let buckets = bounds
            .zip(&self.buckets)
            .map(|(le, n)| {
                total += n.load(Ordering::Relaxed);
                (le, total)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: total,
        }
    }
}

/// The process-wide figures of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Store call latency by operation name (the store method's name, given where the call
    /// is dispatched): a handful of names, each added on first use.
    store_ops: std::sync::RwLock<BTreeMap<&'static str, Arc<Histogram>>>,
    connections: AtomicI64,
    /// Requests answered, by matched route and status.
    /// Answered requests by route, then status; looked up by `&str`, so counting a request
    /// allocates only the first time a route is seen.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
}

impl Metrics {
    /// Records how long one store call took.
    pub fn observe_store(&self, op: &'static str, elapsed: Duration) {
        let known = self.store_ops.read().unwrap_or_else(|p| p.into_inner()).get(op).cloned();
        let histogram = known.unwrap_or_else(|| {
            let mut ops = self.store_ops.write().unwrap_or_else(|p| p.into_inner());
            ops.entry(op).or_default().clone()
        });
        histogram.observe(elapsed);
    }

    /// Times `call` as store operation `op`.
    pub async fn time_store<T>(&self, op: &'static str, call: impl std::future::Future<Output = T>) -> T {
        let start = std::time::Instant::now();
        let out = call.await;
        self.observe_store(op, start.elapsed());
        out
    }

    /// The latency histogram of every store operation called so far, by name.
    pub fn store_ops(&self) -> Vec<(&'static str, HistogramSnapshot)> {
        let ops = self.store_ops.read().unwrap_or_else(|p| p.into_inner());
        ops.iter().map(|(op, h)| (*op, h.snapshot())).collect()
    }

    /// Counts one streaming connection until the guard drops.
    pub fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Streaming connections open now.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts one answered request; `route` is the matched route pattern, never a raw path.
    pub fn count_request(&self, route: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let by_status = match requests.get_mut(route) {
            Some(by_status) => by_status,
            None => requests.entry(route.to_owned()).or_default(),
        };
        *by_status.entry(status).or_default() += 1;
    }

    /// Requests answered so far: `((route, status), count)`, sorted.
    pub fn requests(&self) -> Vec<((String, u16), u64)> {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests
            .iter()
            .flat_map(|(route, by_status)| {
                by_status.iter().map(move |(status, n)| ((route.clone(), *status), *n))
            })
            .collect()
    }
}

/// One open streaming connection, counted in `restmq_connections` while it lives.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Observations land in the first bucket whose bound holds them; snapshots are cumulative.
    #[test]
    fn histogram_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[1], (0.000025, 0));
        assert_eq!(s.buckets[2], (0.00005, 1), "exactly 50 µs");
        assert_eq!(s.buckets[3], (0.0001, 2), "and exactly 100 µs");
        assert_eq!(s.buckets[8], (0.005, 3));
        assert_eq!(s.buckets[BUCKETS.len() - 1], (2.5, 3));
        assert_eq!(s.buckets[BUCKETS.len()], (f64::INFINITY, 4));
        assert!((s.sum_secs - 10.00315).abs() < 1e-9, "{}", s.sum_secs);
    }

    /// The gauge follows the guards; request counts group by route and status.
    #[test]
    fn connections_and_requests() {
        let m = Arc::new(Metrics::default());
        let (a, b) = (m.open_connection(), m.open_connection());
        assert_eq!(m.connections(), 2);
        drop(a);
        assert_eq!(m.connections(), 1);
        drop(b);
        assert_eq!(m.connections(), 0);
        m.count_request("/q/{queue}", 200);
        m.count_request("/q/{queue}", 200);
        m.count_request("/q/{queue}", 204);
        let expected = vec![(("/q/{queue}".to_owned(), 200), 2), (("/q/{queue}".to_owned(), 204), 1)];
        assert_eq!(m.requests(), expected);
    }

    /// Each operation name gets its own histogram, listed by name.
    #[test]
    fn store_ops_by_name() {
        let m = Metrics::default();
        m.observe_store("pop", Duration::from_micros(30));
        m.observe_store("add", Duration::from_micros(5));
        m.observe_store("add", Duration::from_millis(3));
        let ops = m.store_ops();
        let names: Vec<&str> = ops.iter().map(|(op, _)| *op).collect();
        assert_eq!(names, ["add", "pop"]);
        assert_eq!((ops[0].1.count, ops[1].1.count), (2, 1));
    }
}
