//! The whole comparison: starts each server in turn (restmq on every store, the durable peers
//! NATS JetStream and beanstalkd right after the embedded store, nchan on memory and Redis, the
//! axum ceilings), runs the scenarios that apply to it several times, and adds
//! `redis-benchmark -t lpush` as the raw Redis ceiling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};

use crate::http_load::{pop, publish, PublishOpts};
use crate::measure::{median, Sample};
use crate::servers::{flush_redis, Env};
use crate::stream::{e2e, fanout, idle, E2eOpts, FanoutOpts};
use crate::target::{Flavor, Target};
use crate::{beanstalk, jetstream};

/// Sizes and counts of one suite.
#[derive(Debug, Clone)]
pub struct Plan {
    pub runs: usize,
    pub publish: PublishOpts,
    pub pop_prefill: u64,
    pub e2e_rates: Vec<u64>,
    pub e2e_duration: Duration,
    /// Consumer counts of the fan-out runs.
    pub fanout: Vec<usize>,
    /// Deliveries per fan-out run (messages = deliveries / consumers).
    pub fanout_deliveries: u64,
    pub idle_conns: usize,
    pub redis_benchmark_requests: u64,
    /// Messages of the embedded store's backlog run (0: no run).
    pub backlog: u64,
}

impl Plan {
    /// The published figures: about ten minutes on two cores.
    pub fn full() -> Self {
        let publish = PublishOpts {
            conns: 16,
            size: 64,
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
        };
        Self {
            runs: 3,
            publish,
            pop_prefill: 30_000,
            e2e_rates: vec![1_000, 5_000, 20_000],
            e2e_duration: Duration::from_secs(3),
            fanout: vec![100, 1_000, 5_000],
            fanout_deliveries: 100_000,
            idle_conns: 2_000,
            redis_benchmark_requests: 300_000,
            backlog: 1_000_000,
        }
    }

    /// A smoke run: every scenario with tiny counts, once.
    pub fn quick() -> Self {
        let publish = PublishOpts {
            conns: 4,
            size: 64,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
        };
        Self {
            runs: 1,
            publish,
            pop_prefill: 300,
            e2e_rates: vec![200, 1_000],
            e2e_duration: Duration::from_millis(500),
            fanout: vec![10, 50],
            fanout_deliveries: 1_000,
            idle_conns: 50,
            redis_benchmark_requests: 5_000,
            backlog: 2_000,
        }
    }

    /// The scenario names a target of `flavor` runs, in order.
    pub fn scenarios(&self, flavor: Flavor) -> Vec<String> {
        let mut names = Vec::new();
        if matches!(flavor, Flavor::Restmq | Flavor::Nchan) {
            names.push("idle".to_owned());
        }
        names.push("publish".to_owned());
        if matches!(flavor, Flavor::Restmq | Flavor::Jetstream | Flavor::Beanstalkd) {
            names.push("pop".to_owned());
        }
        if matches!(flavor, Flavor::Restmq | Flavor::Nchan) {
            names.extend(self.e2e_rates.iter().map(|r| format!("e2e {r}")));
            names.extend(self.fanout.iter().map(|c| format!("fanout {c}")));
        }
        names
    }
}

/// The servers of a suite, in the order they run (the durable peers next to the embedded store,
/// so that the machine's drift touches their ratios least).
pub const TARGETS: [&str; 9] = [
    "restmq-memory",
    "restmq-embedded",
    "nats-jetstream",
    "beanstalkd",
    "restmq-redis",
    "nchan-memory",
    "nchan-redis",
    "axum-hello",
    "axum-lpush",
];

/// The flavor of each entry of [`TARGETS`].
fn flavor_of(name: &str) -> Flavor {
    match name {
        n if n.starts_with("restmq") => Flavor::Restmq,
        n if n.starts_with("nchan") => Flavor::Nchan,
        "nats-jetstream" => Flavor::Jetstream,
        "beanstalkd" => Flavor::Beanstalkd,
        "axum-hello" => Flavor::Hello,
        _ => Flavor::Lpush,
    }
}

/// Every sample of a suite: scenario → target → one sample per run.
#[derive(Debug, Default)]
pub struct Results {
    pub samples: BTreeMap<String, BTreeMap<String, Vec<Sample>>>,
    pub wall: Duration,
    /// Runs that failed, as `target scenario: error`.
    pub failures: Vec<String>,
    /// The embedded store's backlog run.
    pub backlog: Option<crate::backlog::Backlog>,
}

impl Results {
    /// The field-wise median of a target's runs of a scenario.
    pub fn median(&self, scenario: &str, target: &str) -> Option<Sample> {
        let runs = self.samples.get(scenario)?.get(target)?;
        let pick = |f: &dyn Fn(&Sample) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        let lat_us = std::array::from_fn(|i| pick(&|s| s.lat_us[i]));
        Some(Sample {
            count: pick(&|s| s.count as f64) as u64,
            rate: pick(&|s| s.rate),
            lat_us,
            load_cpu: pick(&|s| s.load_cpu),
            server_cpu: pick(&|s| s.server_cpu),
            extra: pick(&|s| s.extra),
        })
    }

    fn push(&mut self, scenario: &str, target: &str, sample: Sample) {
        self.samples
            .entry(scenario.to_owned())
            .or_default()
            .entry(target.to_owned())
            .or_default()
            .push(sample);
    }
}

/// Runs the suite; `only` limits it to some of [`TARGETS`] (all when empty). A server that
/// does not start (a peer not installed under `--no-install`, say) is a failed run, not the end.
pub async fn run(env: &Env, plan: &Plan, only: &[String]) -> anyhow::Result<Results> {
    let started = Instant::now();
    if let Some(unknown) = only.iter().find(|o| !TARGETS.contains(&o.as_str())) {
        bail!("--only: unknown server `{unknown}` (servers: {})", TARGETS.join(", "));
    }
    let chosen: Vec<&str> =
        TARGETS.iter().copied().filter(|t| only.is_empty() || only.iter().any(|o| o == t)).collect();
    let scenarios = chosen.iter().flat_map(|t| plan.scenarios(flavor_of(t)));
    let steps: usize = scenarios.map(|s| if s == "idle" { 1 } else { plan.runs }).sum::<usize>() + plan.runs;
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")?.progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let redis = env.redis()?;
    let mut results = Results::default();
    for name in chosen {
        flush_redis(redis.target.addr)?;
        let flavor = flavor_of(name);
        let server = match name {
            "restmq-memory" => env.restmq("memory", redis.target.addr),
            "restmq-embedded" => env.restmq("embedded", redis.target.addr),
            "restmq-redis" => env.restmq("redis", redis.target.addr),
            "nats-jetstream" => env.jetstream(),
            "beanstalkd" => env.beanstalkd(),
            "nchan-memory" => env.nchan("memory", redis.target.addr),
            "nchan-redis" => env.nchan("redis", redis.target.addr),
            _ => env.ceiling(flavor, redis.target.addr),
        };
        let server = match server {
            Ok(server) => server,
            Err(err) => {
                bar.suspend(|| eprintln!("restmq-bench: {name}: {err:#}"));
                results.failures.push(format!("{name}: {err:#}"));
                let skipped =
                    plan.scenarios(flavor).into_iter().map(|s| if s == "idle" { 1 } else { plan.runs });
                bar.inc(skipped.sum::<usize>() as u64);
                continue;
            }
        };
        for scenario in plan.scenarios(flavor) {
            // Memory freed by one idle run is reused by the next: only a fresh server's counts.
            let runs = if scenario == "idle" { 1 } else { plan.runs };
            for run in 0..runs {
                let step = format!("{name}: {scenario} (run {})", run + 1);
                if bar.is_hidden() {
                    eprintln!("restmq-bench: {step}"); // no terminal, no bar: plain progress lines
                }
                bar.set_message(step);
                match one(&server.target, plan, &scenario, run).await {
                    Ok(sample) => results.push(&scenario, name, sample),
                    Err(err) => {
                        bar.suspend(|| eprintln!("restmq-bench: {name} {scenario}: {err:#}"));
                        results.failures.push(format!("{name} {scenario}: {err:#}"));
                    }
                }
                bar.inc(1);
            }
        }
    }
    if plan.backlog > 0 && (only.is_empty() || only.iter().any(|o| o == "restmq-embedded")) {
        bar.set_message(format!("restmq-embedded: backlog of {}", plan.backlog));
        match crate::backlog::backlog(env, redis.target.addr, plan.backlog, plan.publish.conns).await {
            Ok(backlog) => results.backlog = Some(backlog),
            Err(err) => results.failures.push(format!("restmq-embedded backlog: {err:#}")),
        }
    }
    for run in 0..plan.runs {
        bar.set_message(format!("redis-benchmark -t lpush (run {})", run + 1));
        flush_redis(redis.target.addr)?;
        match redis_benchmark(redis.target.addr, plan) {
            Ok(sample) => results.push("publish", "redis-benchmark", sample),
            Err(err) => results.failures.push(format!("redis-benchmark: {err:#}")),
        }
        bar.inc(1);
    }
    bar.finish_with_message("done");
    results.wall = started.elapsed();
    Ok(results)
}

/// One run of one scenario against `target`, on a queue of its own.
pub async fn one(target: &Target, plan: &Plan, scenario: &str, run: usize) -> anyhow::Result<Sample> {
    let size = plan.publish.size;
    let (kind, arg) = scenario.split_once(' ').unwrap_or((scenario, ""));
    let queue = format!("{kind}{arg}r{run}");
    let (conns, prefill) = (plan.publish.conns, plan.pop_prefill);
    match (kind, target.flavor) {
        ("publish", Flavor::Jetstream) => jetstream::publish(target, &queue, &plan.publish).await,
        ("pop", Flavor::Jetstream) => jetstream::pop(target, &queue, conns, size, prefill).await,
        ("publish", Flavor::Beanstalkd) => beanstalk::publish(target, &queue, &plan.publish).await,
        ("pop", Flavor::Beanstalkd) => beanstalk::pop(target, &queue, conns, size, prefill).await,
        (_, Flavor::Jetstream | Flavor::Beanstalkd) => bail!("{} runs only publish and pop", target.name),
        ("publish", _) => publish(target, &queue, &plan.publish).await,
        ("pop", _) => pop(target, &queue, conns, size, prefill).await,
        ("e2e", _) => {
            let rate = arg.parse()?;
            let opts = E2eOpts { rate, duration: plan.e2e_duration, size, producers: 4 };
            e2e(target, &queue, &opts).await
        }
        ("fanout", _) => {
            let consumers: usize = arg.parse()?;
            let messages = (plan.fanout_deliveries / consumers as u64).max(10);
            fanout(target, &queue, &FanoutOpts { consumers, messages, size }).await
        }
        ("idle", _) => idle(target, &queue, plan.idle_conns).await,
        _ => bail!("unknown scenario `{scenario}`"),
    }
}

/// `redis-benchmark -t lpush` with the publish scenario's connections and size: raw Redis.
fn redis_benchmark(redis: SocketAddr, plan: &Plan) -> anyhow::Result<Sample> {
    let output = Command::new("redis-benchmark")
        .args(["-h", &redis.ip().to_string(), "-p", &redis.port().to_string(), "-t", "lpush", "--csv"])
        .args(["-n", &plan.redis_benchmark_requests.to_string(), "-c", &plan.publish.conns.to_string()])
        .args(["-d", &plan.publish.size.to_string()])
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("\"LPUSH\""))
        .with_context(|| format!("no LPUSH row in {text}"))?;
    let cells: Vec<f64> = row.split(',').skip(1).filter_map(|c| c.trim_matches('"').parse().ok()).collect();
    // rps, avg, min, p50, p95, p99, max (milliseconds)
    let [rate, _, _, p50, p95, p99, max] = cells[..] else { bail!("unexpected redis-benchmark row {row}") };
    let us = |ms: f64| ms * 1_000.0;
    Ok(Sample {
        count: plan.redis_benchmark_requests,
        rate,
        lat_us: [us(p50), us(p95), us(p99), 0.0, us(max)],
        ..Sample::default()
    })
}
