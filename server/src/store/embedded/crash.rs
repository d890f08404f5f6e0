//! Crash points: a named point before and after each file operation of the logs (write,
//! fsync, msync, rename, unlink, fallocate, creation) and inside each store of a mark into the
//! state page or of a record into a segment's map, so that a test can stop the process at any
//! of them. In a build that is not a test, [`point`] is an empty inline function: no code.
//!
//! In a test process started with `RESTMQ_CRASH_AT=k` (k ≥ 1), the k-th point crossed calls
//! `std::process::abort()` — as `kill -9`: no destructor runs, nothing is flushed, the page
//! cache (every store into a shared map, every `write`) is kept. With `RESTMQ_CRASH_AT=0` the
//! points are only counted. Without the variable a point does nothing.
//!
//! `each_crash` drives a test: it runs a scenario test of this binary alone in a child process
//! (`--exact`, the variables above and `RESTMQ_CRASH_DIR`), once to count its points, then
//! stopped at each one; the child writes each step it completed to stdout as it completes it,
//! so the parent knows what was acknowledged before the crash and checks the directory (see
//! `queue_log_crash_tests.rs`, `crash_tests.rs`).

/// A point of the operation `name`, crossed before and after it (see [`around`]).
#[cfg(not(test))]
#[inline(always)]
pub fn point(_name: &'static str) {}

/// Runs `op` between two crossings of the point `name`.
#[inline(always)]
pub fn around<T>(name: &'static str, op: impl FnOnce() -> T) -> T {
    point(name);
    let out = op();
    point(name);
    out
}

#[cfg(test)]
pub use armed::{ack, child_dir, each_crash, file_ops_here, finish, point};

#[cfg(test)]
mod armed {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitStatus, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// The variable naming the point to stop at (0: count only).
    pub const AT: &str = "RESTMQ_CRASH_AT";
    static CROSSED: AtomicU64 = AtomicU64::new(0);

    fn at() -> Option<u64> {
        static AT_K: OnceLock<Option<u64>> = OnceLock::new();
        *AT_K.get_or_init(|| std::env::var(AT).ok().and_then(|v| v.parse().ok()))
    }

    thread_local! {
        /// The points of system calls (not of stores into a map) this thread crossed.
        static FILE_OPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// The points of file operations (system calls: every point but those inside a store of
    /// a record or a mark into a map) crossed on the calling thread so far, in any test.
    pub fn file_ops_here() -> u64 {
        FILE_OPS.with(|n| n.get())
    }

    /// Crosses the point `name`: aborts the process if it is the one to stop at.
    pub fn point(name: &'static str) {
        if !name.starts_with("segment: append") && !name.starts_with("state: store a mark") {
            FILE_OPS.with(|n| n.set(n.get() + 1));
        }
        let Some(at) = at() else { return };
        let k = CROSSED.fetch_add(1, Ordering::Relaxed) + 1;
        if k == at {
            eprintln!("crash point {k}: {name}");
            std::process::abort();
        }
    }

    /// The points crossed so far (counted only under `RESTMQ_CRASH_AT`).
    fn crossed() -> u64 {
        CROSSED.load(Ordering::Relaxed)
    }

    /// Children run at once (each mostly waits for its fsyncs).
    const WORKERS: usize = 3;
    /// The signal `abort` ends the child with (Linux).
    const SIGABRT: i32 = 6;
    /// The variable naming the directory a child's scenario works in.
    const DIR: &str = "RESTMQ_CRASH_DIR";
    /// What a child writes before its own lines on stdout (the test harness writes there too).
    const TAG: &str = "@crash ";

    /// In a child started by [`each_crash`]: the directory its scenario works in; `None` in
    /// any other test process (the child's test then does nothing).
    pub fn child_dir() -> Option<PathBuf> {
        std::env::var_os(DIR).map(PathBuf::from)
    }

    fn say(line: std::fmt::Arguments<'_>) {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{TAG}{line}").and_then(|()| out.flush()).expect("stdout");
    }

    /// In a child: step `i` of its scenario is done (acknowledged), written to the parent
    /// before the next step begins.
    pub fn ack(i: usize) {
        say(format_args!("ack {i}"));
    }

    /// In a child, at the end of its scenario: how many points it crossed.
    pub fn finish() {
        say(format_args!("points {}", crossed()));
    }

    /// What a child said: the steps it acknowledged, the points it crossed (when it finished).
    struct Said {
        acked: usize,
        points: Option<u64>,
    }

    /// Runs the test `test` of this binary alone in a child process working in `dir`, stopped
    /// at point `at` (0: never).
    fn run(test: &str, at: u64, dir: &Path) -> (Said, ExitStatus, String) {
        let out = Command::new(std::env::current_exe().expect("the test binary"))
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(AT, at.to_string())
            .env(DIR, dir)
            .stdin(Stdio::null())
            .output()
            .expect("run the child");
        let mut said = Said { acked: 0, points: None };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(at) = line.find(TAG) else { continue };
            match line[at + TAG.len()..].split_once(' ') {
                Some(("ack", i)) => said.acked = i.parse::<usize>().expect("a step") + 1,
                Some(("points", k)) => said.points = Some(k.parse().expect("a count")),
                _ => panic!("the child said {line:?}"),
            }
        }
        (said, out.status, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Runs the scenario of the test `test` (in this binary) once to count its points (K),
    /// then once for each k in 1..=K stopped at the k-th, each in a new directory (a few at a
    /// time); after each crash calls `check(k, dir, steps acknowledged)`, and fails with every
    /// check that failed. The test `test` runs its scenario in [`child_dir`], calling [`ack`]
    /// after each step and [`finish`] at the end. K.
    pub fn each_crash(test: &str, check: impl Fn(u64, &Path, usize) + Sync) -> u64 {
        let base = tempfile::tempdir().expect("a temporary directory");
        let (said, status, stderr) = run(test, 0, &base.path().join("whole"));
        assert!(status.success(), "the scenario failed without a crash: {status}\n{stderr}");
        let points = said.points.expect("the child counted its points");
        assert!(points > 0, "no crash point crossed");
        let next = AtomicU64::new(1);
        let failed = Mutex::new(Vec::new());
        let one = |k: u64| {
            let dir = base.path().join(k.to_string());
            let (said, status, stderr) = run(test, k, &dir);
            // A child with a thread of its own (the store's syncer) may cross fewer points.
            let finished = status.success() && said.points.is_some_and(|p| p < k);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                assert!(
                    status.signal() == Some(SIGABRT) || finished,
                    "the child did not stop at point {k}: {status}"
                );
                check(k, &dir, said.acked);
            }));
            if let Err(panic) = checked {
                let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                failed.lock().unwrap().push((k, format!("{message}\n  (the child: {})", stderr.trim())));
            }
            std::fs::remove_dir_all(&dir).expect("remove the child's directory");
        };
        std::thread::scope(|scope| {
            for _ in 0..WORKERS {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k > points {
                        break;
                    }
                    one(k);
                });
            }
        });
        let mut failed = failed.into_inner().unwrap();
        failed.sort();
        let failed: Vec<String> = failed.into_iter().map(|f| f.1).collect();
        assert!(
            failed.is_empty(),
            "{} of {points} crash points failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
        points
    }
}
