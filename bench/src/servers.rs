//! The servers under test, each a child process pinned to the server core: restmq on each
//! store, nginx + nchan (memory and Redis storage, from a generated nginx.conf), the durable
//! queues set beside the embedded store (NATS JetStream on files, beanstalkd with its binlog),
//! the ceiling example, and the Redis they share. Also installs the Debian packages they need.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::target::{Flavor, Target};

/// Where the binaries and the pinning come from.
#[derive(Debug, Clone)]
pub struct Env {
    pub restmq_bin: PathBuf,
    pub ceiling_bin: PathBuf,
    /// The CPU list servers are pinned to (`taskset -c`), if pinning.
    pub server_cpus: Option<String>,
}

/// A running server; killed when dropped.
pub struct Server {
    pub target: Target,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl Env {
    /// `program args…`, under `taskset` when pinning.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = match &self.server_cpus {
            Some(cpus) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", cpus]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        cmd
    }

    fn spawn(
        &self,
        name: &str,
        flavor: Flavor,
        mut cmd: Command,
        addr: SocketAddr,
    ) -> anyhow::Result<Server> {
        let child = cmd.spawn().with_context(|| format!("starting {name}: {cmd:?}"))?;
        let target = Target { name: name.to_owned(), flavor, addr, pid: Some(child.id()) };
        let mut server = Server { target, child, _dir: None };
        wait_for_port(&mut server.child, addr).with_context(|| format!("{name} did not start"))?;
        Ok(server)
    }

    /// A Redis of our own, without persistence.
    pub fn redis(&self) -> anyhow::Result<Server> {
        let addr = free_addr()?;
        let port = addr.port().to_string();
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        self.spawn("redis", Flavor::Restmq, self.command(Path::new("redis-server"), &args), addr)
    }

    /// `restmq serve` on `store` (`memory`, `embedded` or `redis`).
    pub fn restmq(&self, store: &str, redis: SocketAddr) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut server = self.restmq_in(store, redis, &dir.path().join("data"))?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// `restmq serve` on `store` with its data in `data_dir` (kept when the server stops).
    pub fn restmq_in(&self, store: &str, redis: SocketAddr, data_dir: &Path) -> anyhow::Result<Server> {
        let addr = free_addr()?;
        let (listen, data, redis_url) =
            (addr.to_string(), data_dir.display().to_string(), format!("redis://{redis}"));
        let args =
            ["serve", "--store", store, "--listen", &listen, "--data-dir", &data, "--redis-url", &redis_url];
        let mut cmd = self.command(&self.restmq_bin, &args);
        cmd.env("RUST_LOG", "warn");
        self.spawn(&format!("restmq-{store}"), Flavor::Restmq, cmd, addr)
    }

    /// nginx + nchan with `memory` or `redis` storage, one worker process.
    pub fn nchan(&self, storage: &str, redis: SocketAddr) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let addr = free_addr()?;
        let conf = dir.path().join("nginx.conf");
        let redis_url = (storage == "redis").then(|| format!("redis://{redis}"));
        std::fs::write(&conf, nginx_conf(dir.path(), addr, redis_url.as_deref()))?;
        let prefix = format!("{}/", dir.path().display());
        let conf_arg = conf.display().to_string();
        let args = ["-p", &prefix, "-c", &conf_arg, "-e", "error.log"];
        let cmd = self.command(Path::new("nginx"), &args);
        let mut server = self.spawn(&format!("nchan-{storage}"), Flavor::Nchan, cmd, addr)?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// `nats-server` with JetStream storing in a directory of its own (the streams the
    /// scenarios create are on files; see [`crate::jetstream`]), its log in a file there.
    pub fn jetstream(&self) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let addr = free_addr()?;
        let (port, store) = (addr.port().to_string(), dir.path().display().to_string());
        let log = dir.path().join("nats.log").display().to_string();
        let args = ["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &store, "-l", &log];
        let cmd = self.command(Path::new("nats-server"), &args);
        let mut server = self.spawn("nats-jetstream", Flavor::Jetstream, cmd, addr)?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// `beanstalkd` with its binlog in a directory of its own, fsyncing it at most once a
    /// second (`-f 1000`, as restmq's `--fsync everysec`; its own default is every 50 ms).
    pub fn beanstalkd(&self) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let addr = free_addr()?;
        let (port, binlog) = (addr.port().to_string(), dir.path().display().to_string());
        let args = ["-l", "127.0.0.1", "-p", &port, "-b", &binlog, "-f", "1000"];
        let cmd = self.command(Path::new("beanstalkd"), &args);
        let mut server = self.spawn("beanstalkd", Flavor::Beanstalkd, cmd, addr)?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// The ceiling example: `/hello` or `/lpush` decide which routes the target uses.
    pub fn ceiling(&self, flavor: Flavor, redis: SocketAddr) -> anyhow::Result<Server> {
        let addr = free_addr()?;
        let (listen, redis_url) = (addr.to_string(), format!("redis://{redis}"));
        let name = if flavor == Flavor::Hello { "axum-hello" } else { "axum-lpush" };
        self.spawn(name, flavor, self.command(&self.ceiling_bin, &[&listen, &redis_url]), addr)
    }
}

/// An nginx.conf for nchan alone: one worker, no logs, publisher `/pub/<q>`, subscriber
/// (WebSocket among others) `/sub/<q>`; Redis storage when `redis_url` is given.
pub fn nginx_conf(dir: &Path, addr: SocketAddr, redis_url: Option<&str>) -> String {
    let module = "/usr/lib/nginx/modules/ngx_nchan_module.so";
    let redis = redis_url.map_or_else(String::new, |url| format!("    nchan_redis_url \"{url}\";\n"));
    let use_redis = if redis_url.is_some() { "        nchan_use_redis on;\n" } else { "" };
    format!(
        "load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 32768; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    nchan_max_reserved_memory 512M;
{redis}    server {{
        listen {addr} backlog=8192;
        keepalive_requests 100000000;
        location ~ ^/pub/(\\w+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
            nchan_message_buffer_length 16;
            nchan_message_timeout 60s;
{use_redis}        }}
        location ~ ^/sub/(\\w+)$ {{
            nchan_subscriber;
            nchan_channel_id $1;
{use_redis}        }}
    }}
}}
",
        dir = dir.display()
    )
}

/// Waits until `addr` accepts connections, failing early if the process exits.
fn wait_for_port(child: &mut Child, addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("exited with {status}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {addr} after 20 s")
}

/// Installs `nginx-light`, `libnginx-mod-nchan`, `redis-server`, `redis-tools`, `nats-server`
/// and `beanstalkd` with apt-get when one is missing (needs root, like the rest of the
/// machine setup).
pub fn ensure_packages() -> anyhow::Result<()> {
    let have = |path: &str| Path::new(path).exists();
    let missing: Vec<&str> = [
        ("/usr/sbin/nginx", "nginx-light"),
        ("/usr/lib/nginx/modules/ngx_nchan_module.so", "libnginx-mod-nchan"),
        ("/usr/bin/redis-server", "redis-server"),
        ("/usr/bin/redis-benchmark", "redis-tools"),
        ("/usr/sbin/nats-server", "nats-server"),
        ("/usr/bin/beanstalkd", "beanstalkd"),
    ]
    .into_iter()
    .filter(|(path, _)| !have(path))
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("restmq-bench: installing {}", missing.join(" "));
    let status = Command::new("apt-get").arg("update").arg("-qq").status()?;
    if !status.success() {
        bail!("apt-get update failed ({status})");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", missing.join(" "));
    }
    Ok(())
}

/// `redis-cli -h … -p … FLUSHALL`, so each target starts on an empty Redis.
pub fn flush_redis(redis: SocketAddr) -> anyhow::Result<()> {
    let status = Command::new("redis-cli")
        .args(["-h", &redis.ip().to_string(), "-p", &redis.port().to_string(), "FLUSHALL"])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("redis-cli FLUSHALL failed ({status})");
    }
    Ok(())
}
