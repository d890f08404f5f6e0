//! Measurements: latency histograms (nanoseconds) and their summary, and the CPU time and
//! memory of a process read from `/proc`.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A latency histogram in nanoseconds, from 1 µs to 60 s at 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `ns`, clamped into the histogram's range.
pub fn record(hist: &mut Histogram<u64>, ns: u64) {
    let _ = hist.record(ns.clamp(1_000, 60_000_000_000));
}

/// What one run of one scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Operations completed (messages published or popped, deliveries received).
    pub count: u64,
    /// Operations per second.
    pub rate: f64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9, max.
    pub lat_us: [f64; 5],
    /// The load generator's CPU time over the run, as a share of one core.
    pub load_cpu: f64,
    /// The server's CPU time over the run, as a share of one core (0 when unknown).
    pub server_cpu: f64,
    /// Scenario-specific figure (idle: server KiB per connection).
    pub extra: f64,
}

impl Sample {
    pub fn p50(&self) -> f64 {
        self.lat_us[0]
    }
    pub fn p99(&self) -> f64 {
        self.lat_us[2]
    }
    pub fn p999(&self) -> f64 {
        self.lat_us[3]
    }
}

/// Percentile labels matching [`Sample::lat_us`].
pub const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

/// Fills the latency fields of a sample from `hist`.
pub fn latencies(hist: &Histogram<u64>) -> [f64; 5] {
    if hist.is_empty() {
        return [0.0; 5];
    }
    let at = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
    [at(0.5), at(0.9), at(0.99), at(0.999), hist.max() as f64 / 1_000.0]
}

/// CPU time (user + system) of a process so far: `None` if it cannot be read.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |pid| format!("/proc/{pid}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10)) // USER_HZ is 100 on Linux
}

/// Resident memory of a process in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU shares of the load generator and of the server over a stretch of wall time.
pub struct CpuMeter {
    server: Option<u32>,
    start: std::time::Instant,
    load0: Option<Duration>,
    server0: Option<Duration>,
}

impl CpuMeter {
    pub fn start(server: Option<u32>) -> Self {
        Self {
            server,
            start: std::time::Instant::now(),
            load0: cpu_time(None),
            server0: server.and_then(|p| cpu_time(Some(p))),
        }
    }

    /// `(load, server)` CPU time as a share of one core since [`CpuMeter::start`].
    pub fn shares(&self) -> (f64, f64) {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let share = |before: Option<Duration>, now: Option<Duration>| match (before, now) {
            (Some(b), Some(n)) => n.saturating_sub(b).as_secs_f64() / wall,
            _ => 0.0,
        };
        (share(self.load0, cpu_time(None)), share(self.server0, self.server.and_then(|p| cpu_time(Some(p)))))
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own CPU time and RSS are readable from /proc.
    #[test]
    fn reads_proc() {
        assert!(cpu_time(None).is_some());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    /// The median of an odd and an even count picks a measured value.
    #[test]
    fn median_picks_middle() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0]), 4.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
