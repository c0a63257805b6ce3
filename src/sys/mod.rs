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

/// True when this process's uid map is the initial namespace's (0 0 4294967295), i.e. it is
/// in no user namespace nook made.
pub fn has_identity_id_map() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"],
        Err(_) => true,
    }
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

/// Which side of a fork we are on.
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// fork(2). Callers must be single-threaded (nook's monitor and exec helpers are, at the
/// point they fork): in the child only this thread exists, and a lock held by another
/// thread at fork time would never be released.
pub fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: the callers are single-threaded processes (documented above), so the child
    // inherits no lock held by a vanished thread; the child only runs the container setup
    // code and then execs or exits.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent {
            child: child.as_raw(),
        }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Ends the process at once, without running destructors or flushing stdio buffers that
/// belong to the parent's copy of the process (used in a forked child after a failure).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Sets the `lo` interface of the current network namespace up, as a fresh namespace has it
/// down. Needs CAP_NET_ADMIN over the namespace (root of the user namespace that owns it).
pub fn bring_loopback_up() -> io::Result<()> {
    // Any datagram socket serves for the interface ioctls; binding the wildcard address
    // needs no interface to be up.
    let fd = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is plain old data; zeroed is a valid value for every field.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in `req` into `req`; the
    // socket is open and `req` is a valid, writable ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the union member written by SIOCGIFFLAGS is ifru_flags.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Passes the signals a user sends to a foreground container (Ctrl-C, `kill`) on to its
/// process, as Docker's signal proxy does.
pub fn forward_signals_to(pid: i32) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    FORWARD_TO.store(pid, std::sync::atomic::Ordering::Relaxed);
    let forward = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only calls kill(2), which is async-signal-safe, with a pid
        // read from an atomic.
        unsafe { sigaction(signal, &forward) }.map_err(io::Error::from)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Terminals (used by `runtime::tty`): window-size and controlling-terminal ioctls, the
// fatal-signal handler that puts the host terminal back, and the SIGWINCH notifier.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};

/// TIOCGWINSZ: the window size of the terminal on `fd`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a
    // live, properly aligned local of exactly that type; `fd` is a borrowed open descriptor.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// TIOCSWINSZ: sets the window size of the terminal on `fd` (the kernel sends SIGWINCH to
/// the terminal's foreground process group when it changes).
pub fn set_winsize(fd: BorrowedFd<'_>, size: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ only reads one `struct winsize` through the pointer, which refers
    // to a live value of that type for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size as *const _) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TIOCSCTTY: makes the terminal on `fd` the controlling terminal of the calling process,
/// which must be a session leader without one. Async-signal-safe (a bare system call), so it
/// may run between fork and exec.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal the terminal from another
    // session) and touches no memory of ours.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const TERMIOS_LEN: usize = std::mem::size_of::<libc::termios>();
/// The terminal to restore when a fatal signal arrives (-1: none armed).
static RESTORE_FD: AtomicI32 = AtomicI32::new(-1);
/// Its saved attributes, byte by byte: atomics, so a handler running on another thread while
/// they are rewritten sees a stale value, never a data race.
static RESTORE_ATTRS: [AtomicU8; TERMIOS_LEN] = [const { AtomicU8::new(0) }; TERMIOS_LEN];
/// The signals that restore the terminal, and what each did before we chained onto it:
/// `sa_sigaction` (SIG_DFL, SIG_IGN or a handler address) and `sa_flags`.
const RESTORE_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
static PREV_ACTION: [AtomicUsize; 3] = [const { AtomicUsize::new(libc::SIG_DFL) }; 3];
static PREV_FLAGS: [AtomicI32; 3] = [const { AtomicI32::new(0) }; 3];
static RESTORE_HANDLERS: std::sync::Once = std::sync::Once::new();

fn restore_saved_terminal() {
    let fd = RESTORE_FD.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    let mut bytes = [0u8; TERMIOS_LEN];
    for (b, a) in bytes.iter_mut().zip(RESTORE_ATTRS.iter()) {
        *b = a.load(Ordering::Relaxed);
    }
    // SAFETY: `termios` is a C struct of integers, valid for any bit pattern; `bytes` has
    // exactly its size and read_unaligned copes with the array's alignment. tcsetattr(3) is
    // an ioctl (async-signal-safe) reading the local struct.
    unsafe {
        let attrs: libc::termios = std::ptr::read_unaligned(bytes.as_ptr().cast());
        libc::tcsetattr(fd, libc::TCSANOW, &attrs);
    }
}

extern "C" fn restore_terminal_then_chain(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let Some(slot) = RESTORE_SIGNALS.iter().position(|&s| s == signal) else {
        return;
    };
    let prev = PREV_ACTION[slot].load(Ordering::Acquire);
    let flags = PREV_FLAGS[slot].load(Ordering::Acquire);
    if prev == libc::SIG_IGN {
        // The signal never ended the process; nothing to restore.
        return;
    }
    restore_saved_terminal();
    if prev == libc::SIG_DFL {
        // SAFETY: sigaction(2) and raise(3) are async-signal-safe. The signal is blocked
        // while this handler runs, so the re-raised one is delivered, with the default
        // action (termination, the same wait status the parent would have seen), as soon
        // as the handler returns.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &dfl, std::ptr::null_mut());
            libc::raise(signal);
        }
    } else if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the address was read from the kernel's record of the previous action,
        // whose SA_SIGINFO flag says it has the three-argument signature; we pass the
        // arguments the kernel gave us.
        unsafe {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(prev);
            handler(signal, info, context);
        }
    } else {
        // SAFETY: as above, without SA_SIGINFO the previous handler takes the signal number.
        unsafe {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(prev);
            handler(signal);
        }
    }
}

/// Arms the fatal-signal restore: until `disarm_terminal_restore`, SIGINT, SIGTERM and
/// SIGHUP put `saved` back on `fd` before doing what they did before (terminate: reset to
/// the default and re-raised; a previous handler: called; ignored: nothing, and no restore).
/// The handlers are installed once and stay, chaining to the previous disposition, so when
/// disarmed they behave exactly as before. Returns false, changing nothing, if a terminal is
/// already armed (nested raw mode: the outermost saved state wins). SIGKILL cannot be caught.
pub fn arm_terminal_restore(fd: BorrowedFd<'_>, saved: &libc::termios) -> io::Result<bool> {
    let mut install_error = None;
    RESTORE_HANDLERS.call_once(|| {
        for (slot, &signal) in RESTORE_SIGNALS.iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags, SIG_DFL);
            // the first call only reads the current action into `old`, the second installs
            // a handler that only touches atomics and calls async-signal-safe functions
            // (tcsetattr, sigaction, raise) or the handler that was already installed.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut old) == -1 {
                    install_error = Some(io::Error::last_os_error());
                    return;
                }
                PREV_ACTION[slot].store(old.sa_sigaction, Ordering::Release);
                PREV_FLAGS[slot].store(old.sa_flags, Ordering::Release);
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = restore_terminal_then_chain as *const () as usize;
                new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut new.sa_mask);
                if libc::sigaction(signal, &new, std::ptr::null_mut()) == -1 {
                    install_error = Some(io::Error::last_os_error());
                    return;
                }
            }
        }
    });
    if let Some(e) = install_error {
        return Err(e);
    }
    if RESTORE_FD.load(Ordering::Acquire) >= 0 {
        return Ok(false);
    }
    // SAFETY: reading the bytes of a plain C struct of integers through a pointer to it,
    // for exactly its size, while the borrow keeps it alive.
    let bytes: &[u8] = unsafe {
        std::slice::from_raw_parts((saved as *const libc::termios).cast::<u8>(), TERMIOS_LEN)
    };
    for (a, &b) in RESTORE_ATTRS.iter().zip(bytes) {
        a.store(b, Ordering::Relaxed);
    }
    Ok(RESTORE_FD
        .compare_exchange(-1, fd.as_raw_fd(), Ordering::AcqRel, Ordering::Acquire)
        .is_ok())
}

/// Disarms what `arm_terminal_restore` armed (the handlers stay, chaining as before).
pub fn disarm_terminal_restore() {
    RESTORE_FD.store(-1, Ordering::Release);
}

static WINCH_WRITE: AtomicI32 = AtomicI32::new(-1);
static WINCH_READ: std::sync::OnceLock<Result<OwnedFd, i32>> = std::sync::OnceLock::new();

extern "C" fn note_sigwinch(_signal: libc::c_int) {
    let fd: RawFd = WINCH_WRITE.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    // SAFETY: write(2) is async-signal-safe; it reads one byte from a live local. errno is
    // saved and restored so the interrupted code does not see ours (the pipe is
    // non-blocking: when full, a notification is already pending and EAGAIN is fine).
    unsafe {
        let errno = *libc::__errno_location();
        let byte = 1u8;
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The read end of a non-blocking pipe that gets a byte whenever this process receives
/// SIGWINCH (a self-pipe: poll it next to other descriptors, drain it, then read the new
/// size). Installed once per process; SIGWINCH's default action is to ignore it, so the
/// handler changes nothing else.
pub fn sigwinch_notifier() -> io::Result<BorrowedFd<'static>> {
    let read = WINCH_READ.get_or_init(|| {
        use nix::fcntl::OFlag;
        use std::os::fd::IntoRawFd;
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| e as i32)?;
        WINCH_WRITE.store(write.into_raw_fd(), Ordering::Release);
        // SAFETY: the handler only loads an atomic and calls write(2), which is
        // async-signal-safe; SIGWINCH is otherwise ignored by default.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = note_sigwinch as *const () as usize;
            new.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            if libc::sigaction(libc::SIGWINCH, &new, std::ptr::null_mut()) == -1 {
                return Err(io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO));
            }
        }
        Ok(read)
    });
    match read {
        Ok(fd) => Ok(fd.as_fd()),
        Err(errno) => Err(io::Error::from_raw_os_error(*errno)),
    }
}

/// Test probe for seccomp: `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)`, which
/// Docker's default policy refuses. Ok means the kernel ran it; the error is errno.
pub fn raw_keyctl_probe() -> io::Result<()> {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: KEYCTL_GET_KEYRING_ID takes two integers and touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as libc::c_long,
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Marks every descriptor from `first` up close-on-exec, so nothing the monitor or the CLI
/// holds (locks, pipes, the log) leaks into the container's process.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it
    // takes plain integers and touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets close-on-exec on one descriptor.
pub fn set_cloexec(fd: &impl AsFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(
        fd.as_fd().as_raw_fd(),
        FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
    )
    .map(drop)
    .map_err(io::Error::from)
}

/// Sends a descriptor over a Unix socket (SCM_RIGHTS): how the container's PID 1 hands the
/// monitor the master side of a terminal it created inside the container's /dev/pts.
pub fn send_fd(socket: &impl AsFd, fd: &impl AsFd) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd.as_fd().as_raw_fd()];
    let iov = [io::IoSlice::new(b"f")];
    sendmsg::<()>(
        socket.as_fd().as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(io::Error::from)
}

/// Receives a descriptor sent with [`send_fd`]; None when the peer closed without sending.
pub fn recv_fd(socket: &impl AsFd) -> io::Result<Option<OwnedFd>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&raw) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor in our table for us
            // (SCM_RIGHTS); nothing else owns it.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) }));
        }
    }
    Ok(None)
}

/// Makes `command`'s process switch to uid and gid 0 of the current user namespace before it
/// executes, so it keeps the capabilities this process holds there (an exec as any other id
/// drops them).
pub fn run_as_namespace_root(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made: two raw
    // set*id system calls, no allocation, no locks.
    unsafe {
        command.pre_exec(|| {
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the kernel SIGKILL `command`'s process when this thread exits (see
/// [`die_with_parent`]), for helpers that must not outlive this process.
pub fn die_with_parent_on_exec(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls are made: prctl and
    // getppid, no allocation, no locks.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process exited"));
            }
            Ok(())
        });
    }
}

/// Gives a forked child about to exec another program the signal state a program expects:
/// SIGPIPE at its default (Rust's runtime ignores it, and an ignored signal stays ignored
/// across exec) and nothing blocked. `std::process::Command` does the same for its children.
pub fn reset_signals_for_exec() -> io::Result<()> {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    // SAFETY: installing SIG_DFL runs no handler code, so no handler can observe this
    // process in an inconsistent state.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map_err(io::Error::from)?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(io::Error::from)
}

/// Closes every descriptor of this process except standard streams and `keep`: for a forked
/// child that runs on without exec, so it holds nothing its parent's readers wait on (such as
/// the pipe a detached start reads to its end).
pub fn close_other_fds(keep: &[std::os::fd::RawFd]) -> io::Result<()> {
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // Includes the directory listing's own descriptor, already closed: EBADF.
            let _ = nix::unistd::close(fd);
        }
    }
    Ok(())
}
