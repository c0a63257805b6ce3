//! `flock(2)` locks on files under `locks/`. The kernel drops them when the process dies,
//! however it dies, so a killed nook never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{Result, io_err};

/// Held while alive; released on drop or process exit.
#[derive(Debug)]
pub struct LockGuard {
    _lock: Flock<File>,
}

/// How long a lock may keep us before the user is told: store operations hold the
/// metadata lock for milliseconds, and a line for each of those would be noise.
const QUIET_WAIT: Duration = Duration::from_millis(200);

/// Takes an exclusive lock on `path`, telling the user on stderr when another nook holds it
/// for longer than a moment.
pub fn exclusive(path: &Path, what: &str) -> Result<LockGuard> {
    acquire(
        path,
        what,
        FlockArg::LockExclusiveNonblock,
        FlockArg::LockExclusive,
    )
}

/// Takes a shared lock on `path`, waiting (and saying so) while someone holds it exclusively.
pub fn shared(path: &Path, what: &str) -> Result<LockGuard> {
    acquire(
        path,
        what,
        FlockArg::LockSharedNonblock,
        FlockArg::LockShared,
    )
}

fn acquire(path: &Path, what: &str, try_arg: FlockArg, wait_arg: FlockArg) -> Result<LockGuard> {
    let mut file = open_lock_file(path)?;
    let quiet_until = Instant::now() + QUIET_WAIT;
    loop {
        match Flock::lock(file, try_arg) {
            Ok(lock) => return Ok(LockGuard { _lock: lock }),
            Err((f, Errno::EWOULDBLOCK)) if Instant::now() < quiet_until => {
                file = f;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((f, Errno::EWOULDBLOCK)) => {
                eprintln!("waiting for lock on {what} ({})", path.display());
                return Flock::lock(f, wait_arg)
                    .map(|lock| LockGuard { _lock: lock })
                    .map_err(|(_, e)| io_err("lock", path)(e.into()));
            }
            Err((_, e)) => return Err(io_err("lock", path)(e.into())),
        }
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
