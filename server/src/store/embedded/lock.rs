//! The data directory's lock file, `<data_dir>/restmq.lock`: held (`flock`, exclusive) for as
//! long as the store is open, so that two processes (or two stores in one process) never open
//! the same database. SQLite's `unix-excl` file system keeps other processes out too, but only
//! from the first transaction on and with a bare `database is locked`; the lock file refuses at
//! open, saying why. The lock goes with the process, also on `kill -9`.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "restmq.lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `data_dir`, or fails at once if another store holds it.
    pub fn acquire(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        #[cfg(unix)]
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|errno| {
            if errno == rustix::io::Errno::WOULDBLOCK {
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("{} is held by another process: the data directory is in use", path.display()),
                )
            } else {
                errno.into()
            }
        })?;
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
