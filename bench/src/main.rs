//! `restmq-bench`: runs the whole comparison (`suite`) or one scenario against a running
//! server (`one`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use restmq_bench::report::{render, Machine};
use restmq_bench::servers::{ensure_packages, Env};
use restmq_bench::suite::{self, Plan};
use restmq_bench::target::{Flavor, Target};
use restmq_bench::{backlog, plot, target};

#[derive(Parser)]
#[command(
    about = "Benchmarks restmq side by side with nchan, NATS JetStream, beanstalkd and the axum/Redis ceilings"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every server and scenario; writes BENCHMARKS.md and docs/bench/*.svg under --out.
    Suite {
        /// Tiny counts, one run (a smoke test; the report goes to a temporary directory).
        #[arg(long)]
        quick: bool,
        /// Runs per scenario (the report shows medians).
        #[arg(long)]
        runs: Option<usize>,
        /// Only these servers (comma-separated, e.g. restmq-embedded,nats-jetstream,beanstalkd):
        /// restmq-memory, restmq-embedded, nats-jetstream, beanstalkd, restmq-redis, nchan-memory,
        /// nchan-redis, axum-hello, axum-lpush.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Where BENCHMARKS.md and docs/bench/ go (default: here; temporary with --quick).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The `restmq` binary (default: beside this one).
        #[arg(long)]
        restmq_bin: Option<PathBuf>,
        /// The `ceiling` example binary (default: examples/ beside this one).
        #[arg(long)]
        ceiling_bin: Option<PathBuf>,
        /// The CPU list servers are pinned to with taskset; `none` to not pin.
        #[arg(long, default_value = "0")]
        server_cpus: String,
        /// Do not apt-get install missing peers (a server that cannot start is then reported as
        /// a failed run).
        #[arg(long)]
        no_install: bool,
    },
    /// One scenario (publish, pop, e2e RATE, fanout CONSUMERS, idle) against a running server.
    One {
        scenario: String,
        /// The scenario's argument (e2e: msg/s; fanout: consumers).
        arg: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8888")]
        addr: std::net::SocketAddr,
        /// restmq, nchan, hello, lpush, jetstream (publish, pop) or beanstalkd (publish, pop).
        #[arg(long, default_value = "restmq")]
        flavor: String,
        /// The server's pid, for its CPU and RSS.
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long)]
        quick: bool,
    },
    /// Only the embedded store's backlog run (fill, `SIGKILL`, restart, drain), printed.
    Backlog {
        /// Messages of 1 KiB in the deep queue.
        #[arg(long, default_value = "1000000")]
        messages: u64,
        /// Connections draining it.
        #[arg(long, default_value = "16")]
        conns: usize,
        /// The `restmq` binary (default: beside this one).
        #[arg(long)]
        restmq_bin: Option<PathBuf>,
        /// The CPU list the server is pinned to; `none` to not pin.
        #[arg(long, default_value = "0")]
        server_cpus: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(65_536);
    target::epoch();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Suite { quick, runs, only, out, restmq_bin, ceiling_bin, server_cpus, no_install } => {
                if !no_install {
                    ensure_packages()?;
                }
                let mut plan = if quick { Plan::quick() } else { Plan::full() };
                plan.runs = runs.unwrap_or(plan.runs);
                let env = env(restmq_bin, ceiling_bin, &server_cpus)?;
                let out = out.unwrap_or_else(|| {
                    if quick {
                        std::env::temp_dir().join("restmq-bench-quick")
                    } else {
                        PathBuf::from(".")
                    }
                });
                let pinning = format!("servers on CPU {server_cpus}, load generator on CPU {}", own_cpus());
                let mut machine = Machine::read(pinning);
                let results = suite::run(&env, &plan, &only).await?;
                machine.noise[1] = Machine::noise();
                let notes = std::fs::read_to_string(out.join("docs/bench/notes.md")).unwrap_or_default();
                std::fs::create_dir_all(&out)?;
                let report = out.join("BENCHMARKS.md");
                std::fs::write(&report, render(&results, &plan, &machine, quick, &notes))?;
                plot::write_all(&out.join("docs/bench"), &results, &plan)?;
                eprintln!("restmq-bench: wrote {}", report.display());
            }
            Cmd::One { scenario, arg, addr, flavor, pid, quick } => {
                let flavor = Flavor::parse(&flavor)
                    .context("--flavor: restmq, nchan, hello, lpush, jetstream or beanstalkd")?;
                let target = Target { name: format!("{addr}"), flavor, addr, pid };
                let plan = if quick { Plan::quick() } else { Plan::full() };
                let scenario = arg.map_or(scenario.clone(), |a| format!("{scenario} {a}"));
                let sample = suite::one(&target, &plan, &scenario, std::process::id() as usize).await?;
                println!("{scenario}: {sample:#?}");
            }
            Cmd::Backlog { messages, conns, restmq_bin, server_cpus } => {
                let env = env(restmq_bin, None, &server_cpus)?;
                let redis = env.redis()?;
                let backlog = backlog::backlog(&env, redis.target.addr, messages, conns).await?;
                println!("{backlog:#?}");
            }
        }
        Ok(())
    })
}

/// Where the servers' binaries are (by default beside this one) and the CPUs they are pinned to.
fn env(restmq_bin: Option<PathBuf>, ceiling_bin: Option<PathBuf>, server_cpus: &str) -> anyhow::Result<Env> {
    let here = std::env::current_exe()?.parent().context("no binary directory")?.to_path_buf();
    Ok(Env {
        restmq_bin: restmq_bin.unwrap_or_else(|| here.join("restmq")),
        ceiling_bin: ceiling_bin.unwrap_or_else(|| here.join("examples/ceiling")),
        server_cpus: (server_cpus != "none").then(|| server_cpus.to_owned()),
    })
}

/// The CPUs this process may run on (`Cpus_allowed_list`).
fn own_cpus() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:"));
    line.and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_owned()
}
