//! The `system` feed: a [`SystemSample`] of this host (CPU per core, memory, swap, network
//! rates, load, the busiest processes) every interval, read with `sysinfo`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use restmq_shared::{CpuSample, LoadSample, MemorySample, NetSample, ProcessSample, QueueName, SystemSample};
use sysinfo::{Networks, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Publisher;

/// Publishes a sample every `interval` until `shutdown`.
pub async fn run(
    queue: QueueName,
    interval: Duration,
    top: usize,
    publisher: Publisher,
    shutdown: CancellationToken,
) {
    let Some(mut sampler) = blocking(Sampler::new).await.flatten() else {
        publisher.source_error("system", &"cannot read this host's metrics");
        return;
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        // Reading /proc takes a few milliseconds: off the async workers.
        let Some((back, sample)) = blocking(move || {
            let sample = sampler.sample(top);
            (sampler, sample)
        })
        .await
        else {
            return;
        };
        sampler = back;
        match serde_json::to_value(&sample) {
            Ok(message) => {
                let _ = publisher.publish(&queue, message).await;
            }
            Err(err) => publisher.source_error("system", &err),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// What is kept between samples: CPU use and network rates are differences.
struct Sampler {
    system: System,
    networks: Networks,
    host: String,
    last: Instant,
}

impl Sampler {
    fn new() -> Option<Self> {
        let mut system = System::new().ok()?;
        system.refresh_cpu_usage();
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, process_kind());
        let networks = Networks::new_with_refreshed_list().ok()?;
        let host = System::host_name().unwrap_or_else(|_| "localhost".to_owned());
        Some(Self { system, networks, host, last: Instant::now() })
    }

    fn sample(&mut self, top: usize) -> SystemSample {
        let system = &mut self.system;
        system.refresh_cpu_usage();
        system.refresh_memory();
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, process_kind());
        self.networks.refresh(true);
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = Instant::now();

        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in &self.networks {
            if name != "lo" {
                rx += data.received();
                tx += data.transmitted();
            }
        }
        let mut processes: Vec<ProcessSample> = system
            .processes()
            .iter()
            .map(|(pid, p)| ProcessSample {
                pid: pid.as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                cpu: p.cpu_usage(),
                memory: p.memory(),
            })
            .collect();
        processes.sort_by(|a, b| b.cpu.total_cmp(&a.cpu).then(b.memory.cmp(&a.memory)));
        processes.truncate(top);
        let load = System::load_average().unwrap_or_default();
        SystemSample {
            host: self.host.clone(),
            ts: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            cpu: CpuSample {
                total: system.global_cpu_usage(),
                cores: system.cpus().iter().map(|c| c.usage()).collect(),
            },
            memory: MemorySample { total: system.total_memory(), used: system.used_memory() },
            swap: MemorySample { total: system.total_swap(), used: system.used_swap() },
            net: NetSample { rx: rx as f64 / elapsed, tx: tx as f64 / elapsed },
            load: LoadSample { one: load.one, five: load.five, fifteen: load.fifteen },
            top: processes,
        }
    }
}

fn process_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing().with_cpu().with_memory()
}
