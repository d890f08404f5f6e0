//! Numeric series for the charts: every numeric leaf of a JSON message becomes a series named
//! by its path (`cpu.cores.0`, `memory.used`, `net.rx`), whatever the message's exact shape; a
//! few minutes of points are kept per series. Series are grouped into charts by [`group_of`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

/// Seconds of history kept per series.
pub const HISTORY_SECS: f64 = 300.0;
/// Points kept per series, whatever the message rate.
pub const MAX_POINTS: usize = 600;
/// Series kept at most: fields beyond are ignored, so an odd payload cannot grow memory.
pub const MAX_SERIES: usize = 64;
/// Field names taken for timestamps: not charted; a top-level one dates its sample.
const TIME_FIELDS: [&str; 6] = ["ts", "timestamp", "time", "t", "at", "epoch"];
/// Field names taken for identifiers: not charted.
const ID_FIELDS: [&str; 2] = ["id", "pid"];
/// The least time the charts span, so the first samples do not fill the width.
const MIN_SPAN_MS: f64 = 60_000.0;

/// The numeric leaves of `value` with their dotted paths, in key order. A bare number is
/// `value`; timestamps and ids are left out.
pub fn numeric_leaves(value: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}

fn walk(value: &Value, path: &mut String, out: &mut Vec<(String, f64)>) {
    let mut child = |segment: &str, value: &Value, path: &mut String| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(segment);
        walk(value, path, out);
        path.truncate(len);
    };
    match value {
        Value::Number(n) => {
            let name = if path.is_empty() { "value" } else { path.as_str() };
            let leaf = name.rsplit('.').next().unwrap_or(name);
            if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                if !TIME_FIELDS.contains(&leaf) && !ID_FIELDS.contains(&leaf) {
                    out.push((name.to_owned(), x));
                }
            }
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| child(k, v, path)),
        // Elements that carry a name (the system feed's processes) are named series, so a
        // process keeps its line when its rank changes: `top.@firefox.cpu`.
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| match v.get("name").and_then(Value::as_str) {
                Some(name) => child(&format!("@{}", name.replace('.', "_")), v, path),
                None => child(&i.to_string(), v, path),
            })
        }
        _ => {}
    }
}

/// When a sample was taken: its own top-level timestamp (`ts`, `timestamp` …, in ms or s since
/// the epoch) when it has one within a day of `now_ms`, else `now_ms`; never after `now_ms`.
/// A backlog received at once is then drawn over the time it was produced.
pub fn sample_time(value: &Value, now_ms: f64) -> f64 {
    let Value::Object(map) = value else { return now_ms };
    let stamp = TIME_FIELDS.iter().find_map(|name| map.get(*name).and_then(Value::as_f64));
    let ms = stamp.map(|x| if x > 1e11 { x } else { x * 1000.0 });
    match ms {
        Some(ms) if (ms - now_ms).abs() < 86_400_000.0 => ms.min(now_ms),
        _ => now_ms,
    }
}

/// One series: `(time in ms, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub points: VecDeque<(f64, f64)>,
}

impl Series {
    pub fn latest(&self) -> Option<f64> {
        self.points.back().map(|&(_, v)| v)
    }
}

/// The charts' data: series by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Charts {
    series: BTreeMap<String, Series>,
    /// Messages that carried at least one number.
    pub samples: u64,
    /// Messages with no number to chart (not JSON, or no numeric field).
    pub skipped: u64,
}

impl Charts {
    /// Adds the numbers of one message received at `now_ms`.
    pub fn record(&mut self, text: &str, now_ms: f64) {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            self.skipped += 1;
            return;
        };
        let leaves = numeric_leaves(&value);
        if leaves.is_empty() {
            self.skipped += 1;
            return;
        }
        self.samples += 1;
        let t = sample_time(&value, now_ms);
        for (name, x) in leaves {
            if self.series.len() >= MAX_SERIES && !self.series.contains_key(&name) {
                continue;
            }
            let series = self.series.entry(name).or_default();
            // Time never goes back within a series, so the line reads left to right.
            let t = series.points.back().map_or(t, |&(last, _)| t.max(last));
            series.points.push_back((t, x));
            if series.points.len() > MAX_POINTS {
                series.points.pop_front();
            }
        }
        self.prune(now_ms);
    }

    /// Drops points older than [`HISTORY_SECS`], and series left empty.
    pub fn prune(&mut self, now_ms: f64) {
        let oldest = now_ms - HISTORY_SECS * 1000.0;
        self.series.retain(|_, s| {
            while s.points.front().is_some_and(|&(t, _)| t < oldest) {
                s.points.pop_front();
            }
            !s.points.is_empty()
        });
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The time span to draw at `now_ms`: from the oldest point (at least [`MIN_SPAN_MS`] and
    /// at most [`HISTORY_SECS`] back) to now.
    pub fn span(&self, now_ms: f64) -> (f64, f64) {
        let oldest =
            self.series.values().filter_map(|s| s.points.front()).map(|&(t, _)| t).fold(now_ms, f64::min);
        let start = oldest.min(now_ms - MIN_SPAN_MS).max(now_ms - HISTORY_SECS * 1000.0);
        (start, now_ms)
    }

    /// Series grouped into charts by [`group_of`], each member with its label, in natural
    /// order inside a group (`2` before `10`).
    pub fn groups(&self) -> Vec<(String, Vec<Member<'_>>)> {
        let mut groups: BTreeMap<String, Vec<Member<'_>>> = BTreeMap::new();
        for (name, series) in &self.series {
            let (group, label) = group_of(name);
            groups.entry(group).or_default().push(Member { name, label, series });
        }
        groups
            .into_iter()
            .map(|(group, mut members)| {
                members.sort_by(|a, b| natural_cmp(a.label, b.label));
                (group, members)
            })
            .collect()
    }
}

/// One line of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member<'a> {
    /// The series' full name.
    pub name: &'a str,
    /// What tells it apart in its chart.
    pub label: &'a str,
    pub series: &'a Series,
}

/// The chart a series goes to, and its label there. Array elements share a chart, labelled by
/// index or name (`cpu.cores.3` → `cpu.cores` / `3`; `top.@sshd.cpu` → `top.cpu` / `@sshd`); other fields share
/// their parent's (`memory.used` → `memory` / `used`); a top-level number has its own.
pub fn group_of(name: &str) -> (String, &str) {
    let segments: Vec<&str> = name.split('.').collect();
    let numeric = |s: &&str| !s.is_empty() && (s.starts_with('@') || s.bytes().all(|b| b.is_ascii_digit()));
    if let Some(first_index) = segments.iter().position(numeric) {
        let group: Vec<&str> = segments.iter().copied().filter(|s| !numeric(s)).collect();
        // The label runs from the first index to the last one.
        let last_index = segments.iter().rposition(numeric).unwrap_or(first_index);
        let start: usize = segments[..first_index].iter().map(|s| s.len() + 1).sum();
        let end: usize = segments[..=last_index].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
        let group = if group.is_empty() { "value".to_owned() } else { group.join(".") };
        return (group, &name[start..end]);
    }
    match name.rsplit_once('.') {
        Some((parent, leaf)) => (parent.to_owned(), leaf),
        None => (name.to_owned(), name),
    }
}

/// Compares names with digit runs taken as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (na, ra) = split_digits(a);
                let (nb, rb) = split_digits(b);
                let by_value = na.trim_start_matches('0').len().cmp(&nb.trim_start_matches('0').len());
                match by_value.then_with(|| na.trim_start_matches('0').cmp(nb.trim_start_matches('0'))) {
                    Ordering::Equal => (a, b) = (ra, rb),
                    other => return other,
                }
            }
            (Some(x), Some(y)) if x != y => return x.cmp(&y),
            (Some(x), Some(_)) => (a, b) = (&a[x.len_utf8()..], &b[x.len_utf8()..]),
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// The value range of some series, widened so a flat line sits mid-chart.
pub fn bounds<'a>(series: impl IntoIterator<Item = &'a Series>) -> (f64, f64) {
    let (lo, hi) = series
        .into_iter()
        .flat_map(|s| s.points.iter().map(|&(_, v)| v))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    (lo, hi)
}

/// An SVG path (`M x y L x y …`) of `points` in a `width`×`height` box, time `t0..t1` left to
/// right and value `lo..hi` bottom to top.
pub fn svg_path(
    points: impl IntoIterator<Item = (f64, f64)>,
    (t0, t1): (f64, f64),
    (lo, hi): (f64, f64),
    (width, height): (f64, f64),
) -> String {
    let (dt, dv) = ((t1 - t0).max(f64::EPSILON), (hi - lo).max(f64::EPSILON));
    let mut path = String::new();
    for (i, (t, v)) in points.into_iter().enumerate() {
        let x = (t - t0) / dt * width;
        let y = height - (v - lo) / dv * height;
        let op = if i == 0 { 'M' } else { 'L' };
        path.push_str(&format!("{op}{x:.1} {y:.1} "));
    }
    path.truncate(path.trim_end().len());
    path
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Numeric leaves are found at any depth, arrays by index; strings, booleans and timestamps are skipped.
    #[test]
    fn flattens_numeric_leaves() {
        let value = json!({
            "ts": 1_700_000_000,
            "host": "box",
            "cpu": [12.5, 80],
            "memory": {"used": 1024, "total": 4096, "ok": true},
            "load": {"1m": 0.5}
        });
        let leaves = numeric_leaves(&value);
        let names: Vec<&str> = leaves.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cpu.0", "cpu.1", "load.1m", "memory.total", "memory.used"]);
        assert_eq!(leaves[0].1, 12.5);
        assert_eq!(numeric_leaves(&json!(3)), vec![("value".to_owned(), 3.0)]);
        assert!(numeric_leaves(&json!("12")).is_empty());
    }

    /// Array elements share a chart labelled by index; other fields share their parent's.
    #[test]
    fn groups_series() {
        assert_eq!(group_of("cpu.cores.3"), ("cpu.cores".to_owned(), "3"));
        assert_eq!(group_of("top.0.cpu"), ("top.cpu".to_owned(), "0"));
        assert_eq!(group_of("grid.1.2"), ("grid".to_owned(), "1.2"));
        assert_eq!(group_of("memory.used"), ("memory".to_owned(), "used"));
        assert_eq!(group_of("a.b.c"), ("a.b".to_owned(), "c"));
        assert_eq!(group_of("load"), ("load".to_owned(), "load"));
        assert_eq!(group_of("0"), ("value".to_owned(), "0"));
        assert_eq!(group_of("top.@sshd.cpu"), ("top.cpu".to_owned(), "@sshd"));
    }

    /// Array elements with a name are series by that name, so a process keeps its line when its rank changes.
    #[test]
    fn processes_by_name() {
        let first = numeric_leaves(&json!({"top": [{"name": "a.out", "cpu": 9}, {"name": "sh", "cpu": 1}]}));
        let later = numeric_leaves(&json!({"top": [{"name": "sh", "cpu": 20}, {"name": "a.out", "cpu": 2}]}));
        assert_eq!(first, vec![("top.@a_out.cpu".to_owned(), 9.0), ("top.@sh.cpu".to_owned(), 1.0)]);
        assert_eq!(later, vec![("top.@sh.cpu".to_owned(), 20.0), ("top.@a_out.cpu".to_owned(), 2.0)]);
    }

    /// A system-feed-like sample charts CPU cores together, memory together, processes by field; non-numeric messages are counted as skipped.
    #[test]
    fn records_and_groups() {
        let mut charts = Charts::default();
        let cores: Vec<u32> = (0..12).collect();
        let sample = json!({
            "host": "box", "ts": 1, "cpu": {"total": 40.5, "cores": cores},
            "memory": {"used": 1, "total": 2}, "top": [{"pid": 7, "name": "x", "cpu": 3.5}]
        });
        charts.record(&sample.to_string(), 0.0);
        charts.record("plain text", 10.0);
        assert_eq!((charts.samples, charts.skipped), (1, 1));
        let groups = charts.groups();
        let names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu.cores", "memory", "top.cpu"]);
        let cores: Vec<&str> = groups[1].1.iter().map(|m| m.label).collect();
        assert_eq!(&cores[..3], ["0", "1", "2"]);
        assert_eq!(cores[11], "11");
        assert_eq!(groups[1].1[11].name, "cpu.cores.11");
        assert_eq!(groups[3].1[0].series.latest(), Some(3.5));
    }

    /// History is bounded by age, by points per series and by the number of series.
    #[test]
    fn history_is_bounded() {
        let mut charts = Charts::default();
        for i in 0..1000 {
            charts.record(&format!(r#"{{"x":{i}}}"#), f64::from(i) * 10.0);
        }
        let groups = charts.groups();
        assert_eq!(groups[0].1[0].series.points.len(), MAX_POINTS);
        charts.record(r#"{"y":1}"#, 10_000.0 + HISTORY_SECS * 1000.0);
        assert_eq!(charts.series_count(), 1, "x aged out");
        let wide: serde_json::Map<String, Value> = (0..100).map(|i| (format!("f{i}"), json!(i))).collect();
        charts.record(&Value::Object(wide).to_string(), 10_001.0 + HISTORY_SECS * 1000.0);
        assert_eq!(charts.series_count(), MAX_SERIES);
    }

    /// A sample is dated by its own timestamp (ms or s) when plausible, else by its arrival.
    #[test]
    fn dates_samples() {
        let now = 1_700_000_000_000.0;
        assert_eq!(sample_time(&json!({"ts": now - 5000.0}), now), now - 5000.0);
        assert_eq!(sample_time(&json!({"time": 1_699_999_990}), now), now - 10_000.0);
        assert_eq!(sample_time(&json!({"ts": 12}), now), now, "not an epoch time");
        assert_eq!(sample_time(&json!({"ts": now + 3000.0}), now), now, "never in the future");
        assert_eq!(sample_time(&json!([1, 2]), now), now);
        let mut charts = Charts::default();
        charts.record(&json!({"ts": now - 20_000.0, "x": 1}).to_string(), now);
        charts.record(&json!({"ts": now - 30_000.0, "x": 2}).to_string(), now);
        let points: Vec<f64> = charts.groups()[0].1[0].series.points.iter().map(|p| p.0).collect();
        assert_eq!(points, [now - 20_000.0, now - 20_000.0], "time does not go back");
    }

    /// The span starts at the oldest point, at least a minute and at most the history back.
    #[test]
    fn spans() {
        let mut charts = Charts::default();
        assert_eq!(charts.span(100_000.0), (40_000.0, 100_000.0));
        charts.record(r#"{"x":1}"#, 1_000.0);
        assert_eq!(charts.span(200_000.0), (1_000.0, 200_000.0));
        assert_eq!(charts.span(400_000.0).0, 100_000.0);
    }

    /// Natural order compares digit runs by value.
    #[test]
    fn natural_order() {
        let mut names = vec!["cpu.10", "cpu.2", "cpu.1", "cpu", "cpu.01a", "b"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["b", "cpu", "cpu.1", "cpu.01a", "cpu.2", "cpu.10"]);
    }

    /// Paths map time to x and value to y (up is bigger); a flat series gets a range around it.
    #[test]
    fn svg_paths() {
        let path = svg_path([(0.0, 0.0), (5.0, 5.0), (10.0, 10.0)], (0.0, 10.0), (0.0, 10.0), (100.0, 50.0));
        assert_eq!(path, "M0.0 50.0 L50.0 25.0 L100.0 0.0");
        let flat = Series { points: [(0.0, 7.0), (1.0, 7.0)].into_iter().collect() };
        let (lo, hi) = bounds([&flat]);
        assert!(lo < 7.0 && hi > 7.0);
        assert_eq!(bounds([]), (0.0, 1.0));
    }
}
