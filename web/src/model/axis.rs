//! What a chart needs to tell the truth: the unit of a series (bytes, bytes/s, %, per second),
//! value axes that start at 0 for percentages, time ticks with labels, and paths that break at
//! gaps instead of drawing a line across missing samples.

/// Colours that colour-blind readers tell apart (Okabe & Ito), darkened where needed for 3:1
/// against both themes' backgrounds.
pub const PALETTE: [&str; 7] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a7a7a"];

/// What a chart's numbers measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    BytesPerSec,
    Percent,
    PerSec,
    Plain,
}

impl Unit {
    /// The unit of a chart group of the system feed (`memory`, `net`, `cpu` …); others are plain.
    pub fn of_group(group: &str) -> Self {
        let root = group.split('.').next().unwrap_or(group);
        let leaf = group.rsplit('.').next().unwrap_or(group);
        match (root, leaf) {
            (_, "cpu" | "percent") | ("cpu", _) => Self::Percent,
            (_, "memory") | ("memory" | "swap", _) => Self::Bytes,
            ("net", _) => Self::BytesPerSec,
            _ => Self::Plain,
        }
    }

    /// The value range to draw: percentages 0–100 (or more if exceeded); others from 0 when
    /// every value is positive, so differences are not magnified.
    pub fn range(self, (lo, hi): (f64, f64)) -> (f64, f64) {
        match self {
            Self::Percent => (0.0, hi.max(100.0)),
            _ if lo >= 0.0 => (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 }),
            _ => (lo, hi),
        }
    }

    /// A value with its unit, short.
    pub fn format(self, v: f64) -> String {
        match self {
            Self::Bytes => bytes(v),
            Self::BytesPerSec => format!("{}/s", bytes(v)),
            Self::Percent => format!("{v:.0} %"),
            Self::PerSec => format!("{}/s", short(v)),
            Self::Plain => short(v),
        }
    }
}

/// Bytes as B, KiB, MiB, GiB.
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 || x.abs() >= 100.0 {
        format!("{x:.0} {}", units[i])
    } else {
        format!("{x:.1} {}", units[i])
    }
}

/// A number, with thousands as k, M, G.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Tick times (ms) for a time axis over `t0..t1`: about four, on round steps.
pub fn time_ticks(t0: f64, t1: f64) -> Vec<f64> {
    const STEPS_S: [f64; 9] = [10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0];
    let span_s = (t1 - t0).max(1.0) / 1000.0;
    let step = STEPS_S.iter().copied().find(|s| span_s / s <= 5.0).unwrap_or(3600.0) * 1000.0;
    let first = (t0 / step).ceil() * step;
    (0..).map(|i| first + f64::from(i) * step).take_while(|&t| t <= t1).collect()
}

/// `HH:MM` (or `HH:MM:SS` when `seconds`) of a time in ms, shifted by `offset_min` (the
/// browser's zone: minutes to add to UTC).
pub fn clock_label(t_ms: f64, offset_min: f64, seconds: bool) -> String {
    let secs = ((t_ms / 1000.0) + offset_min * 60.0).rem_euclid(86_400.0) as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if seconds {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}")
    }
}

/// An SVG path of `points` in a `width`×`height` box (time `t0..t1` left to right, value
/// `lo..hi` bottom to top) that lifts the pen where two samples are more than `max_gap_ms`
/// apart, so a gap shows as a gap.
pub fn gapped_path(
    points: impl IntoIterator<Item = (f64, f64)>,
    (t0, t1): (f64, f64),
    (lo, hi): (f64, f64),
    (width, height): (f64, f64),
    max_gap_ms: f64,
) -> String {
    let (dt, dv) = ((t1 - t0).max(f64::EPSILON), (hi - lo).max(f64::EPSILON));
    let mut path = String::new();
    let mut last: Option<f64> = None;
    for (t, v) in points {
        let x = (t - t0) / dt * width;
        let y = height - (v - lo) / dv * height;
        let op = if last.is_some_and(|prev| t - prev <= max_gap_ms) { 'L' } else { 'M' };
        path.push_str(&format!("{op}{x:.1} {y:.1} "));
        last = Some(t);
    }
    path.truncate(path.trim_end().len());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units follow the system feed's groups; bytes scale by 1024; percentages start at 0.
    #[test]
    fn units() {
        assert_eq!(Unit::of_group("cpu.cores"), Unit::Percent);
        assert_eq!(Unit::of_group("top.cpu"), Unit::Percent);
        assert_eq!(Unit::of_group("top.memory"), Unit::Bytes);
        assert_eq!(Unit::of_group("memory"), Unit::Bytes);
        assert_eq!(Unit::of_group("net"), Unit::BytesPerSec);
        assert_eq!(Unit::of_group("load"), Unit::Plain);
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(Unit::BytesPerSec.format(2048.0), "2.0 KiB/s");
        assert_eq!(Unit::Percent.range((40.0, 60.0)), (0.0, 100.0));
        assert_eq!(Unit::Plain.range((-2.0, 3.0)), (-2.0, 3.0));
        assert_eq!(Unit::Plain.range((5.0, 10.0)).0, 0.0);
    }

    /// Time ticks fall on round steps inside the span; labels are the local clock.
    #[test]
    fn ticks() {
        let t0 = 1_700_000_005_000.0;
        let ticks = time_ticks(t0, t0 + 300_000.0);
        assert!((3..=6).contains(&ticks.len()), "{ticks:?}");
        assert!(ticks.iter().all(|t| t % 60_000.0 == 0.0 && *t >= t0));
        assert_eq!(clock_label(3_600_000.0 + 61_000.0, 60.0, true), "02:01:01");
        assert_eq!(clock_label(0.0, -30.0, false), "23:30");
    }

    /// The pen lifts across a gap longer than allowed.
    #[test]
    fn gaps_are_gaps() {
        let path = gapped_path(
            [(0.0, 0.0), (10.0, 1.0), (100.0, 1.0), (110.0, 0.0)],
            (0.0, 110.0),
            (0.0, 1.0),
            (110.0, 10.0),
            20.0,
        );
        assert_eq!(path, "M0.0 10.0 L10.0 0.0 M100.0 0.0 L110.0 10.0");
    }
}
