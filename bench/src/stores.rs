//! The section of BENCHMARKS.md that sets restmq's three stores side by side (embedded,
//! memory, Redis) with the server's CPU per message, checks the embedded store's targets
//! against the memory store of the same run, and reports the embedded backlog run.

use std::fmt::Write as _;

use crate::measure::Sample;
use crate::report::{rate, us};
use crate::suite::{Plan, Results};

const STORES: [&str; 3] = ["restmq-embedded", "restmq-memory", "restmq-redis"];

/// Server CPU time per operation, in µs (`—` when not measured).
pub(crate) fn cpu_per(s: &Sample) -> String {
    if s.server_cpu > 0.0 && s.rate > 0.0 {
        format!("{:.1}", s.server_cpu / s.rate * 1e6)
    } else {
        "—".to_owned()
    }
}

/// Writes the section.
pub fn section(w: &mut String, results: &Results, plan: &Plan) {
    let _ = writeln!(w, "\n## The three stores side by side\n");
    let _ = writeln!(w, "The rows above, per store (embedded with its default `--fsync everysec`). CPU per message is the server's CPU time over the messages it handled; under Redis it leaves out the Redis server's own CPU.\n");
    let _ = writeln!(w, "| scenario | store | msgs/s | p50 µs | p99 µs | server CPU | CPU µs/msg |\n|---|---|--:|--:|--:|--:|--:|");
    let mut scenarios = vec!["publish".to_owned(), "pop".to_owned()];
    scenarios.extend(plan.e2e_rates.iter().map(|r| format!("e2e {r}")));
    for scenario in &scenarios {
        for t in STORES {
            if let Some(s) = results.median(scenario, t) {
                let store = t.trim_start_matches("restmq-");
                let _ = writeln!(
                    w,
                    "| {scenario} | {store} | {} | {} | {} | {:.2} | {} |",
                    rate(s.rate),
                    us(s.p50()),
                    us(s.p99()),
                    s.server_cpu,
                    cpu_per(&s)
                );
            }
        }
    }
    let _ = writeln!(w, "\n| embedded-store target (issue #15) | measured | met |\n|---|---|:-:|");
    let ratio = |scenario: &str, f: fn(&Sample) -> f64, factor: f64, lower: bool| {
        let a = results.median(scenario, "restmq-embedded").map(|s| f(&s));
        let b = results.median(scenario, "restmq-memory").map(|s| f(&s));
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => {
                let met = if lower { a <= b * factor } else { a >= b * factor };
                (format!("{:.2}×", a / b), if met { "yes" } else { "no" })
            }
            _ => ("not measured".to_owned(), "—"),
        }
    };
    let (text, met) = ratio("publish", |s| s.rate, 0.85, false);
    let _ = writeln!(w, "| publish ≥ 0.85× memory | {text} | {met} |");
    for r in &plan.e2e_rates {
        let (text, met) = ratio(&format!("e2e {r}"), Sample::p99, 1.5, true);
        let _ = writeln!(w, "| e2e {r} p99 ≤ 1.5× memory | {text} | {met} |");
    }
    let Some(b) = &results.backlog else { return };
    let _ = writeln!(w, "\n**Backlog** — {} × {} B in one queue (one `POST` each over {} connections: plain adds, through the queue's log), the server killed (`SIGKILL`) and started again on its data directory, then drained with hard gets over {} connections:\n", rate(b.messages as f64), b.size, plan.publish.conns, plan.publish.conns);
    let _ = writeln!(w, "| | measured | target | met |\n|---|--:|--:|:-:|");
    let yes = |ok: bool| if ok { "yes" } else { "no" };
    let max_rss = b.rss_filled_mib.max(b.rss_restarted_mib).max(b.rss_drained_mib);
    let _ = writeln!(w, "| fill | {} msgs/s | | |", rate(b.fill_rate));
    let _ = writeln!(
        w,
        "| RSS filled / restarted / drained | {:.0} / {:.0} / {:.0} MiB | < 300 MiB | {} |",
        b.rss_filled_mib,
        b.rss_restarted_mib,
        b.rss_drained_mib,
        yes(max_rss < 300.0)
    );
    let _ = writeln!(
        w,
        "| restart to `/readyz` 200 | {:.2} s | < 2 s | {} |",
        b.restart_s,
        yes(b.restart_s < 2.0)
    );
    let short = crate::backlog::SHORT;
    let ratio = if b.short_rate > 0.0 { b.drain_rate / b.short_rate } else { 0.0 };
    let _ = writeln!(
        w,
        "| hard gets {} deep vs {} deep (same messages, same server; the short one the median of 3 drains) | {} vs {} msgs/s ({ratio:.2}×), server CPU {:.2} | ≥ 0.85× | {} |",
        rate(b.messages as f64),
        rate(short as f64),
        rate(b.drain_rate),
        rate(b.short_rate),
        b.drain_server_cpu,
        yes(ratio >= 0.85)
    );
    let _ = writeln!(
        w,
        "| every message once, each connection oldest first | {} | | {} |",
        if b.in_order { "yes" } else { "no" },
        yes(b.in_order)
    );
}
