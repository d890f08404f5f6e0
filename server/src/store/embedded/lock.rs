//! The data directory's lock file, `<data_dir>/restmq.lock`: held (`flock`, exclusive) for as
//! long as the store is open, so that two processes (or two stores in one process) never open
//! the same database. SQLite's `unix-excl` file system keeps other processes out too, but only
//! from the first transaction on and with a bare `database is locked`; the lock file refuses at
//! open, saying why (after a short wait for a holder that is going). The lock goes with the
//! process, also on `kill -9`.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "restmq.lock";

/// How long an open waits for a lock held elsewhere before it refuses.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `data_dir`, or fails if another store holds it for [`WAIT`]: a holder
    /// that is going (a process exiting, or a child process forked with the lock's descriptor
    /// and not yet past its `exec`) lets go of it within that.
    pub fn acquire(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        #[cfg(unix)]
        {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(rustix::io::Errno::WOULDBLOCK) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "{} is held by another process: the data directory is in use",
                                path.display()
                            ),
                        ))
                    }
                    Err(errno) => return Err(errno.into()),
                }
            }
        }
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::DirLock;

    /// A second lock of the same directory fails while the first is held, and succeeds once
    /// it is dropped.
    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let error = DirLock::acquire(dir.path()).unwrap_err();
        assert!(error.to_string().contains("in use"), "{error}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
