//! The `/metrics` page: every figure in Prometheus text format (version 0.0.4).
//! Written by hand rather than with `prometheus-client` 0.26 (measured with a `Collector` and its
//! `encode_registry`): it writes OpenMetrics, so a counter's `# TYPE` names `x` while its samples
//! are `x_total` (untyped to a 0.0.4 scraper), and a histogram's `le` comes before the other
//! labels and reads `le="1.0"` where this page has `le="1"` — new series for existing dashboards,
//! and a page `tests/metrics.rs` no longer finds `{op="add",le=…}` in. Undoing that means
//! rewriting its output, for a page of ~100 lines of plain `writeln!`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::broker::{Broker, BrokerResult};
use crate::metrics::{HistogramSnapshot, Metrics};

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One queue's figures in this process.
#[derive(Debug, Default, Clone, Copy)]
struct QueueFigures {
    added: u64,
    taken: u64,
    delivered: u64,
    acked: u64,
    redelivered: u64,
    dead: u64,
    len: u64,
    consumers: u64,
    observed: u64,
    observers: u64,
}

/// A per-queue series: its name, help text, and where its value is.
type Series = (&'static str, &'static str, fn(&QueueFigures) -> u64);

/// The per-queue counters.
const COUNTERS: [Series; 7] = [
    ("restmq_messages_added_total", "Messages added to the queue.", |f| f.added),
    ("restmq_messages_taken_total", "Messages removed by a hard get.", |f| f.taken),
    ("restmq_messages_delivered_total", "Messages written to streaming consumers.", |f| f.delivered),
    ("restmq_messages_acked_total", "Leased messages acknowledged.", |f| f.acked),
    (
        "restmq_messages_redelivered_total",
        "Leased messages back in the queue: lease expired, nacked, or consumer left.",
        |f| f.redelivered,
    ),
    ("restmq_messages_dead_total", "Leased messages moved to the dead-letter queue.", |f| f.dead),
    ("restmq_messages_observed_total", "Messages written to observers (which take nothing).", |f| f.observed),
];

/// The per-queue gauges.
const GAUGES: [Series; 3] = [
    ("restmq_queue_length", "Messages waiting in the queue.", |f| f.len),
    ("restmq_consumers", "Streaming consumers of the queue in this process.", |f| f.consumers),
    ("restmq_observers", "Observers of the queue in this process (they take nothing).", |f| f.observers),
];

/// Renders every figure of `broker` and its process.
pub async fn render(broker: &Broker) -> BrokerResult<String> {
    let queues = queue_figures(broker).await?;
    let mut out = String::with_capacity(4096 + queues.len() * 512);
    let series = COUNTERS.iter().map(|s| (s, "counter")).chain(GAUGES.iter().map(|s| (s, "gauge")));
    for ((name, help, field), kind) in series {
        header(&mut out, name, help, kind);
        for (queue, f) in &queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", escape(queue), field(f));
        }
    }
    header(&mut out, "restmq_history_bytes", "Bytes of broadcast messages kept for replay.", "gauge");
    let _ = writeln!(out, "restmq_history_bytes {}", broker.history_bytes());
    header(&mut out, "restmq_tracked_queues", "Queues with state in this process.", "gauge");
    let _ = writeln!(out, "restmq_tracked_queues {}", broker.tracked_queues());
    process(&mut out, broker.metrics());
    idempotency(&mut out, broker);
    store_health(&mut out, broker);
    Ok(out)
}

/// What the store found damaged (its files, at start-up and since).
fn store_health(out: &mut String, broker: &Broker) {
    let health = broker.store_health();
    let help = "Records of the store's queue logs lost to damage (each logged at WARN).";
    header(out, "restmq_store_damaged_records_total", help, "counter");
    let _ = writeln!(out, "restmq_store_damaged_records_total {}", health.damaged_records);
    let help = "Queues whose files the store could not read at start-up, set aside (see /stats/).";
    header(out, "restmq_store_quarantined_queues", help, "gauge");
    let _ = writeln!(out, "restmq_store_quarantined_queues {}", health.quarantined.len());
    let help = "Log segments made on the request path, a burst outrunning the store's file thread.";
    header(out, "restmq_store_inline_segments_total", help, "counter");
    let _ = writeln!(out, "restmq_store_inline_segments_total {}", health.inline_segments);
}

/// The figures of every queue that holds messages or has state in this process.
async fn queue_figures(broker: &Broker) -> BrokerResult<BTreeMap<String, QueueFigures>> {
    let mut queues: BTreeMap<String, QueueFigures> = BTreeMap::new();
    // Series for every queue that holds messages or has state in this process: an empty,
    // idle queue (purged, drained and left) has none, as its hub is forgotten too.
    for (queue, info) in broker.all_infos().await? {
        if let Some(len) = info.map(|i| i.len).filter(|len| *len > 0) {
            queues.entry(queue.to_string()).or_default().len = len;
        }
    }
    for hub in broker.local_queues() {
        let c = &hub.counters;
        let f = queues.entry(hub.queue.to_string()).or_default();
        f.added = c.added.load(Ordering::Relaxed);
        f.taken = c.taken.load(Ordering::Relaxed);
        f.delivered = c.delivered.load(Ordering::Relaxed);
        f.acked = c.acked.load(Ordering::Relaxed);
        f.redelivered = c.redelivered.load(Ordering::Relaxed);
        f.dead = c.dead.load(Ordering::Relaxed);
        f.consumers = hub.consumer_count() as u64;
        f.observed = c.observed.load(Ordering::Relaxed);
        f.observers = hub.observer_count() as u64;
    }
    Ok(queues)
}

/// The memory of `Idempotency-Key` answers (process-local stores).
fn idempotency(out: &mut String, broker: &Broker) {
    let (bytes, refused) = broker.idempotency_figures();
    let help = "Bytes of remembered Idempotency-Key answers (at most --idempotency-max-bytes).";
    header(out, "restmq_idempotency_bytes", help, "gauge");
    let _ = writeln!(out, "restmq_idempotency_bytes {bytes}");
    let help = "New Idempotency-Key publishes refused (429) because that memory was full.";
    header(out, "restmq_idempotency_refused_total", help, "counter");
    let _ = writeln!(out, "restmq_idempotency_refused_total {refused}");
}

/// The figures that are not per queue.
fn process(out: &mut String, metrics: &Metrics) {
    header(out, "restmq_connections", "Open streaming connections (COMET, WebSocket, SSE).", "gauge");
    let _ = writeln!(out, "restmq_connections {}", metrics.connections());
    header(out, "restmq_http_requests_total", "HTTP requests answered, by route and status.", "counter");
    for ((route, status), n) in metrics.requests() {
        let _ = writeln!(
            out,
            "restmq_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
            escape(&route)
        );
    }
    header(out, "restmq_store_op_seconds", "Store call latency, by operation.", "histogram");
    for (op, snapshot) in metrics.store_ops() {
        histogram(out, "restmq_store_op_seconds", &format!("op=\"{op}\""), &snapshot);
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    for (le, n) in &h.buckets {
        let le = if le.is_infinite() { "+Inf".to_owned() } else { le.to_string() };
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_secs);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// A label value as the text format needs it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets print cumulative with `+Inf` last, then sum and count.
    #[test]
    fn histogram_lines() {
        let h = HistogramSnapshot { buckets: vec![(0.001, 1), (f64::INFINITY, 3)], sum_secs: 0.5, count: 3 };
        let mut out = String::new();
        histogram(&mut out, "x", "op=\"add\"", &h);
        assert_eq!(
            out,
            "x_bucket{op=\"add\",le=\"0.001\"} 1\nx_bucket{op=\"add\",le=\"+Inf\"} 3\n\
             x_sum{op=\"add\"} 0.5\nx_count{op=\"add\"} 3\n"
        );
    }

    /// Label values cannot break out of their quotes.
    #[test]
    fn escaping() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// The 0.0.4 shape scrapers and dashboards rely on: `# TYPE` names the sample itself
    /// (`…_total` for counters), `le` follows the other labels and whole bounds print bare.
    #[test]
    fn text_format_shape() {
        let mut out = String::new();
        header(&mut out, "restmq_x_total", "Help.", "counter");
        assert_eq!(out, "# HELP restmq_x_total Help.\n# TYPE restmq_x_total counter\n");
        let h = HistogramSnapshot { buckets: vec![(1.0, 0), (0.00001, 0)], sum_secs: 0.0, count: 0 };
        let mut out = String::new();
        histogram(&mut out, "x", "op=\"add\"", &h);
        assert!(
            out.starts_with("x_bucket{op=\"add\",le=\"1\"} 0\nx_bucket{op=\"add\",le=\"0.00001\"} 0\n"),
            "{out}"
        );
    }
}
