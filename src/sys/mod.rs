//! The only place where nook talks to the kernel below std: namespaces, raw file-descriptor
//! plumbing, file-system syncs. Everything here is a thin, named wrapper so callers read as
//! intent, and so the few unsafe blocks sit together.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Moves the calling process into a new user namespace. Must be called while the process
/// has a single thread (the kernel refuses otherwise with EINVAL).
pub fn unshare_user_namespace() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)
}

/// A pipe whose ends are closed on exec unless `inherit` is asked for one of them.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Lets `fd` survive exec, so a re-executed nook can find it by number.
pub fn inherit_on_exec(fd: &impl AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd.as_fd().as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map(drop)
        .map_err(io::Error::from)
}

/// Takes ownership of a descriptor inherited by number from the parent.
pub fn adopt_inherited_fd(raw: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // fcntl(F_GETFD) fails with EBADF when the number is not an open descriptor, so we never
    // wrap a closed or foreign number.
    nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFD).map_err(io::Error::from)?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process by its
    // parent for this purpose alone, so nothing else in the process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Flushes every dirty page of the file system holding `path`: one call makes a whole
/// extracted layer durable, where an fsync per file would cost one disk flush each.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    nix::unistd::syncfs(dir.as_raw_fd()).map_err(io::Error::from)
}

/// fsync of a directory, so a rename inside it survives a crash.
pub fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// True when this process is root of the initial user namespace (real root), as opposed to
/// root inside a user namespace nook made.
pub fn is_real_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return false;
    }
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"],
        Err(_) => true,
    }
}

static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe and takes plain integers.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// While a re-executed child does the work, the parent must outlive it: terminal signals
/// (SIGINT, SIGQUIT) reach the child through the process group, so the parent ignores them;
/// SIGTERM and SIGHUP sent to the parent alone are passed on to the child.
pub fn supervise_child_signals(child_pid: i32) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    FORWARD_TO.store(child_pid, std::sync::atomic::Ordering::Relaxed);
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let forward = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for (signal, action) in [
        (Signal::SIGINT, &ignore),
        (Signal::SIGQUIT, &ignore),
        (Signal::SIGTERM, &forward),
        (Signal::SIGHUP, &forward),
    ] {
        // SAFETY: the handlers either ignore the signal or call only kill(2), which is
        // async-signal-safe; no Rust state other than an atomic is touched.
        unsafe { sigaction(signal, action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Removes environment variables. Only sound while the process has one thread, which is why
/// it is called at the top of `main` only.
pub fn remove_env_single_threaded(names: &[&str]) {
    for name in names {
        // SAFETY: callers run before any thread is started, so nothing reads the environment
        // concurrently.
        unsafe { std::env::remove_var(name) };
    }
}

/// Asks the kernel to SIGKILL this process when its parent dies, so killing nook's waiting
/// parent (even with SIGKILL) never leaves the re-executed child working on alone. The
/// parent is single-threaded, so "parent thread exits" means "parent process exits".
pub fn die_with_parent() -> io::Result<()> {
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(io::Error::from)?;
    // The parent may have died before the request took effect.
    if nix::unistd::getppid() != parent {
        return Err(io::Error::other("the parent process exited"));
    }
    Ok(())
}
