//! Project tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `test [ARGS]`: everything CI runs, stopping at the first failing step: fmt, clippy (native
//!   and wasm), the web client's unit tests on the host, the Trunk build of the web client,
//!   then `cargo test` (ARGS go to it) with the app embedded in the server (`embed-web`),
//!   browser tests in headless Chromium included.
//! - `bench [ARGS]`: restmq side by side with nchan, NATS JetStream and beanstalkd; writes
//!   BENCHMARKS.md (ARGS go to `restmq-bench suite`).
//! - `demo [ARGS]`: builds the web client and runs the server on it with the embedded store,
//!   the `system` feed into queue `system` and `demo/text.txt` into queue `text` (ARGS go to
//!   `restmq serve`).
//! - `release`: builds the web client, then the release `restmq` with it inside (`embed-web`):
//!   one file to deploy, which serves the console without `--web-dir`.
//!
//! `test` and `demo` first run `scripts/setup.sh`, which installs the tools once, and give their
//! child processes a `PATH` that starts with `~/.cargo/bin` and `.tools/node_modules/.bin`.

use std::{
    env,
    ffi::OsString,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

const USAGE: &str = "\
usage: cargo xtask <task> [-- ARGS]

tasks:
  test   fmt, clippy (native + wasm), cargo test -p web, trunk build --release, cargo test
         with the browser tests (ARGS are passed to `cargo test --workspace --exclude web`)
  demo   trunk build --release, then `restmq serve --store embedded` (the app embedded) with the
         system feed (queue `system`) and demo/text.txt (queue `text`)
         (ARGS are passed to `restmq serve`, e.g. -- --listen 0.0.0.0:8888)
  release  trunk build --release, then the release `restmq` carrying the app (embed-web)
  bench  restmq vs nchan, JetStream, beanstalkd and the ceilings: rewrites BENCHMARKS.md and docs/bench/*.svg
         (ARGS are passed to `restmq-bench suite`, e.g. -- --quick)";

/// The demo's feeds: host metrics every second, and the bundled text five lines a second,
/// looping; both expire so that an unwatched demo does not pile up messages.
const DEMO_SYSTEM_FEED: &str = "system:queue=system,ttl=120";
const DEMO_TEXT_FEED: &str = "file:path=demo/text.txt,queue=text,rate=5,loop,ttl=600";

type Result<T = (), E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let task = args.next();
    let mut rest: Vec<String> = args.collect();
    if rest.first().map(String::as_str) == Some("--") {
        rest.remove(0);
    }

    let result = match task.as_deref() {
        Some("test") => Repo::locate().and_then(|repo| repo.test(&rest)),
        Some("demo") => Repo::locate().and_then(|repo| repo.demo(&rest)),
        Some("bench") => Repo::locate().and_then(|repo| repo.bench(&rest)),
        Some("release") => Repo::locate().and_then(|repo| repo.release()),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The repository, and the environment its tasks run in.
struct Repo {
    root: PathBuf,
    /// `PATH` for child processes: the installed tools first.
    path: OsString,
}

impl Repo {
    fn locate() -> Result<Self> {
        // `cargo run` sets it at run time too: that one is right even when the binary was
        // built from another clone sharing the target directory.
        let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest_dir.parent().ok_or("xtask is not inside the repository")?.to_path_buf();
        let mut dirs = Vec::new();
        if let Some(home) = env::var_os("HOME") {
            dirs.push(Path::new(&home).join(".cargo/bin"));
        }
        dirs.push(root.join(".tools/node_modules/.bin"));
        dirs.extend(env::var_os("PATH").iter().flat_map(env::split_paths));
        let path = env::join_paths(dirs).map_err(|e| format!("cannot build PATH: {e}"))?;
        Ok(Self { root, path })
    }

    /// `cargo xtask test`: the CI pipeline.
    fn test(&self, cargo_test_args: &[String]) -> Result {
        self.setup()?;
        self.run("rustfmt", self.cmd("cargo", &["fmt", "--all", "--", "--check"]))?;
        self.run(
            "clippy (native)",
            self.cmd(
                "cargo",
                &["clippy", "--workspace", "--exclude", "web", "--all-targets", "--", "-D", "warnings"],
            ),
        )?;
        self.run(
            "clippy (wasm)",
            self.cmd(
                "cargo",
                &["clippy", "-p", "web", "--target", "wasm32-unknown-unknown", "--", "-D", "warnings"],
            ),
        )?;
        self.run("web unit tests (host)", self.cmd("cargo", &["test", "-p", "web"]))?;
        self.build_web()?;
        // Includes the browser tests (restmq-e2e), which serve the dist/ just built, from disk
        // and (embed-web) from inside the server.
        self.mark_embedded_stale()?;
        let test = ["test", "--workspace", "--exclude", "web", "--features", "restmq-e2e/embed-web"];
        let mut cargo_test = self.cmd("cargo", &test);
        cargo_test.args(cargo_test_args);
        self.run("tests", cargo_test)?;
        eprintln!("xtask: all steps passed");
        Ok(())
    }

    /// `cargo xtask demo`: the web client served by a server on the embedded store.
    fn demo(&self, serve_args: &[String]) -> Result {
        self.setup()?;
        self.build_web()?;
        self.mark_embedded_stale()?;
        let run = ["run", "--release", "-p", "restmq-server", "--features", "embed-web", "--bin", "restmq"];
        let mut server = self.cmd("cargo", &run);
        server.args(["--", "serve", "--store", "embedded"]);
        server.args(["--feed", DEMO_SYSTEM_FEED, "--feed", DEMO_TEXT_FEED]);
        server.args(serve_args);
        announce("server", &server);
        eprintln!(
            "xtask: the demo will be at http://{}/ once the server says it is ready",
            listen_addr(serve_args)
        );
        exec(server)
    }

    /// `cargo xtask bench`: the release builds, then `restmq-bench suite` on the second core
    /// (it pins the servers to the first).
    fn bench(&self, suite_args: &[String]) -> Result {
        let build = ["build", "--release", "-p", "restmq-bench", "-p", "restmq-server", "--bin", "restmq"];
        let mut cargo = self.cmd("cargo", &build);
        cargo.args(["--bin", "restmq-bench", "--example", "ceiling"]);
        self.run("build (release)", cargo)?;
        let run = ["run", "--release", "--quiet", "-p", "restmq-bench", "--", "suite"];
        let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
        let mut bench =
            if two_cores { self.cmd("taskset", &["-c", "1", "cargo"]) } else { self.cmd("cargo", &[]) };
        bench.args(run).args(if two_cores { &[][..] } else { &["--server-cpus", "none"][..] });
        bench.args(suite_args);
        self.run("bench", bench)
    }

    /// `cargo xtask release`: the one file to deploy, `target/release/restmq` with the app inside.
    fn release(&self) -> Result {
        self.setup()?;
        self.build_web()?;
        self.mark_embedded_stale()?;
        let build =
            ["build", "--release", "-p", "restmq-server", "--features", "embed-web", "--bin", "restmq"];
        self.run("build (release, embed-web)", self.cmd("cargo", &build))?;
        eprintln!("xtask: `restmq serve` now serves the console built into the binary");
        Ok(())
    }

    /// `include_dir!` does not tell Cargo which files it read: touching the module that embeds
    /// `dist/` makes Cargo rebuild it with the app just built.
    fn mark_embedded_stale(&self) -> Result {
        let module = self.root.join("server/src/http/web.rs");
        let file = fs::File::options().append(true).open(&module);
        file.and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .map_err(|e| format!("cannot touch {}: {e}", module.display()))
    }

    fn setup(&self) -> Result {
        self.run("setup", self.cmd("bash", &["scripts/setup.sh"]))
    }

    /// Builds `web/` into `dist/` and reports the size of the wasm.
    fn build_web(&self) -> Result {
        self.run("trunk build", self.cmd("trunk", &["build", "--release"]))?;
        let wasm = self.dist_wasm()?;
        let raw = fs::metadata(&wasm).map_err(|e| format!("cannot stat {}: {e}", wasm.display()))?.len();
        let gzipped = gzipped_len(&wasm)?;
        let name = wasm.strip_prefix(&self.root).unwrap_or(&wasm).display();
        eprintln!("xtask: {name}: {}, {} gzipped", kib(raw), kib(gzipped));
        Ok(())
    }

    fn dist_wasm(&self) -> Result<PathBuf> {
        let dist = self.root.join("dist");
        let entries = fs::read_dir(&dist).map_err(|e| format!("cannot read {}: {e}", dist.display()))?;
        entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .ok_or_else(|| format!("trunk build left no .wasm in {}", dist.display()))
    }

    /// A command run in the repository root with the tools' `PATH`.
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.root).env("PATH", &self.path);
        cmd
    }

    /// Runs one step, turning any failure into an error that names it.
    fn run(&self, step: &str, mut cmd: Command) -> Result {
        announce(step, &cmd);
        let status = cmd.status().map_err(|e| format!("step `{step}` could not start: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("step `{step}` failed ({status}): {}", command_line(&cmd)))
        }
    }
}

/// The address `restmq serve` will listen on: `--listen` among `args`, else its default.
fn listen_addr(args: &[String]) -> String {
    let mut args = args.iter();
    let mut listen = "127.0.0.1:8888".to_owned();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--listen=") {
            listen = value.to_owned();
        } else if arg == "--listen" {
            listen = args.next().cloned().unwrap_or(listen);
        }
    }
    listen
}

fn announce(step: &str, cmd: &Command) {
    eprintln!("\nxtask: ==> {step}: {}", command_line(cmd));
}

fn command_line(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let _ = write!(line, " {}", arg.to_string_lossy());
    }
    line
}

/// The size of `path` compressed by `gzip -9`, as a web server would send it.
fn gzipped_len(path: &Path) -> Result<u64> {
    let output =
        Command::new("gzip").arg("-9c").arg(path).output().map_err(|e| format!("cannot run gzip: {e}"))?;
    if !output.status.success() {
        return Err(format!("gzip {} failed ({})", path.display(), output.status));
    }
    Ok(output.stdout.len() as u64)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// Replaces this process with `cmd`, so Ctrl-C and the exit status go straight to it.
#[cfg(unix)]
fn exec(mut cmd: Command) -> Result {
    use std::os::unix::process::CommandExt;
    let error = cmd.exec();
    Err(format!("cannot run {}: {error}", command_line(&cmd)))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command) -> Result {
    let status = cmd.status().map_err(|e| format!("cannot run {}: {e}", command_line(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} exited with {status}", command_line(&cmd)))
    }
}
