//! The section of BENCHMARKS.md that sets the embedded store (restmq's default, on disk) beside
//! two queues that also keep their messages on disk, NATS JetStream on files and beanstalkd with
//! its binlog: throughput and server CPU per message from the same run, the ratios
//! restmq-embedded ÷ peer, and the target (at least as fast as each) met or not.

use std::fmt::Write as _;

use crate::measure::Sample;
use crate::report::{rate, us};
use crate::stores::cpu_per;
use crate::suite::{Plan, Results};

/// The peers, in the order of the tables.
pub const PEERS: [&str; 2] = ["nats-jetstream", "beanstalkd"];

const EMBEDDED: &str = "restmq-embedded";

/// Server CPU time per message in µs, if measured.
fn cpu_us(s: &Sample) -> Option<f64> {
    (s.server_cpu > 0.0 && s.rate > 0.0).then(|| s.server_cpu / s.rate * 1e6)
}

/// `a ÷ b` as `1.23×`, empty when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => String::new(),
    }
}

/// Writes the section.
pub fn section(w: &mut String, results: &Results, plan: &Plan) {
    let scenarios = ["publish", "pop"];
    let measured = scenarios.iter().any(|s| PEERS.iter().any(|p| results.median(s, p).is_some()));
    if !measured {
        return;
    }
    let conns = plan.publish.conns;
    let _ = writeln!(w, "\n## The embedded store beside durable queues\n");
    let _ = writeln!(w, "restmq on its embedded store (`--fsync everysec`) beside NATS JetStream (file storage) and beanstalkd (binlog), measured in the same run, each right after it (setups under the method above). Every server gets {conns} connections with one message in flight on each: a POST waiting for its answer, a JetStream publish waiting for its ack, a `put` waiting for `INSERTED`; pop takes {} pre-filled messages over {conns} connections, one message a round trip. CPU µs/msg is the server's CPU time over the messages it handled. The ratios are restmq-embedded ÷ peer: above 1 for msgs/s, or below 1 for CPU µs/msg, restmq is ahead.\n", rate(plan.pop_prefill as f64));
    let _ = writeln!(w, "| scenario | server | connections | msgs/s | p50 µs | p99 µs | server CPU | CPU µs/msg | msgs/s embedded ÷ peer | CPU/msg embedded ÷ peer |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for scenario in scenarios {
        let ours = results.median(scenario, EMBEDDED);
        for t in std::iter::once(EMBEDDED).chain(PEERS) {
            let Some(s) = results.median(scenario, t) else { continue };
            let (by_rate, by_cpu) = if t == EMBEDDED {
                (String::new(), String::new())
            } else {
                (
                    ratio(ours.as_ref().map(|o| o.rate), Some(s.rate)),
                    ratio(ours.as_ref().and_then(cpu_us), cpu_us(&s)),
                )
            };
            let _ = writeln!(
                w,
                "| {scenario} | {t} | {conns} | {} | {} | {} | {:.2} | {} | {by_rate} | {by_cpu} |",
                rate(s.rate),
                us(s.p50()),
                us(s.p99()),
                s.server_cpu,
                cpu_per(&s)
            );
        }
    }
    let _ = writeln!(w, "\n| durable-peer target | measured | met |\n|---|---|:-:|");
    for scenario in scenarios {
        for peer in PEERS {
            let a = results.median(scenario, EMBEDDED).map(|s| s.rate);
            let b = results.median(scenario, peer).map(|s| s.rate);
            let (text, met) = match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => {
                    (format!("{:.2}×", a / b), if a >= b { "yes" } else { "no" })
                }
                _ => ("not measured".to_owned(), "—"),
            };
            let _ = writeln!(w, "| {scenario}, embedded ≥ {peer} | {text} | {met} |");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, server_cpu: f64) -> Sample {
        Sample {
            count: 1,
            rate,
            server_cpu,
            lat_us: [100.0, 150.0, 200.0, 300.0, 400.0],
            ..Sample::default()
        }
    }

    /// The rows carry each peer's CPU per message and the embedded ÷ peer ratios, and the
    /// targets say which peer restmq-embedded outran.
    #[test]
    fn ratios_per_peer() {
        let mut results = Results::default();
        let runs = |s: Sample| vec![s];
        let publish = results.samples.entry("publish".into()).or_default();
        publish.insert(EMBEDDED.into(), runs(sample(60_000.0, 0.9)));
        publish.insert("nats-jetstream".into(), runs(sample(30_000.0, 0.9)));
        publish.insert("beanstalkd".into(), runs(sample(120_000.0, 0.6)));
        let mut w = String::new();
        section(&mut w, &results, &Plan::quick());
        // 0.9 / 60,000 = 15 µs; 0.9 / 30,000 = 30 µs; 0.6 / 120,000 = 5 µs.
        assert!(
            w.contains("| publish | nats-jetstream | 4 | 30,000 | 100 | 200 | 0.90 | 30.0 | 2.00× | 0.50× |"),
            "{w}"
        );
        assert!(
            w.contains("| publish | beanstalkd | 4 | 120,000 | 100 | 200 | 0.60 | 5.0 | 0.50× | 3.00× |"),
            "{w}"
        );
        assert!(w.contains("| publish, embedded ≥ nats-jetstream | 2.00× | yes |"), "{w}");
        assert!(w.contains("| publish, embedded ≥ beanstalkd | 0.50× | no |"), "{w}");
        assert!(w.contains("| pop, embedded ≥ beanstalkd | not measured | — |"), "{w}");
    }

    /// Without a peer measured (`--only restmq-memory`, say) there is no section.
    #[test]
    fn no_peers_no_section() {
        let mut w = String::new();
        section(&mut w, &Results::default(), &Plan::quick());
        assert!(w.is_empty());
    }
}
