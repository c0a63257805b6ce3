//! `flock(2)` locks on files under `locks/`. The kernel drops them when the process dies,
//! however it dies, so a killed nook never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{Result, io_err};

/// Held while alive; released on drop or process exit.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
}

/// Takes an exclusive lock on `path`, telling the user on stderr when another nook holds it
/// and we have to wait.
pub fn exclusive(path: &Path, what: &str) -> Result<LockGuard> {
    match Flock::lock(open_lock_file(path)?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(LockGuard { _lock: lock }),
        Err((file, Errno::EWOULDBLOCK)) => {
            eprintln!("waiting for lock on {what} ({})", path.display());
            Flock::lock(file, FlockArg::LockExclusive)
                .map(|lock| LockGuard { _lock: lock })
                .map_err(|(_, e)| io_err("lock", path)(e.into()))
        }
        Err((_, e)) => Err(io_err("lock", path)(e.into())),
    }
}

/// Takes a shared lock on `path`, waiting (and saying so) while someone holds it exclusively.
pub fn shared(path: &Path, what: &str) -> Result<LockGuard> {
    let file = open_lock_file(path)?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(lock) => Ok(LockGuard { _lock: lock }),
        Err((file, Errno::EWOULDBLOCK)) => {
            eprintln!("waiting for lock on {what} ({})", path.display());
            Flock::lock(file, FlockArg::LockShared)
                .map(|lock| LockGuard { _lock: lock })
                .map_err(|(_, e)| io_err("lock", path)(e.into()))
        }
        Err((_, e)) => Err(io_err("lock", path)(e.into())),
    }
}

/// Takes an exclusive lock on `path` if nobody holds it; `None` when somebody does.
pub fn try_exclusive(path: &Path) -> Result<Option<LockGuard>> {
    let file = open_lock_file(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(LockGuard { _lock: lock })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(io_err("lock", path)(e.into())),
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open lock file", path))
}
