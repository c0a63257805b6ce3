//! Pseudo-terminals and the host terminal.
//!
//! With `-t` the container's PID 1 gets a pty slave as its controlling terminal and
//! stdin/stdout/stderr ([`make_controlling_terminal`], between fork and exec); the master
//! side is read by the monitor (into the log) or relayed to the user's terminal by the CLI
//! ([`relay`]), whose terminal is in raw mode meanwhile ([`RawModeGuard`]) so keystrokes such
//! as Ctrl-C reach the container's terminal instead of nook. Without `-t` the container's
//! stdout and stderr are pipes, copied by [`relay_pipes`].

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, SpecialCharacterIndices, Termios};

use crate::store::logs::{LogWriter, Stream};
use crate::sys;

pub use nix::pty::Winsize;

/// A pseudo-terminal pair. Both ends are close-on-exec: the slave reaches the container by
/// `dup2` onto 0/1/2 (or `Stdio::from`), which makes copies without the flag.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a new pty pair, with the slave's window size set to `size` if given.
pub fn open_pty(size: Option<Winsize>) -> io::Result<Pty> {
    let pair = nix::pty::openpty(size.as_ref(), None)?;
    set_cloexec(&pair.master)?;
    set_cloexec(&pair.slave)?;
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
    })
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// The window size of the terminal on `fd`; None if it is not a terminal or has no size
/// (0×0, as a fresh pty has).
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<Winsize> {
    sys::get_winsize(fd)
        .ok()
        .filter(|size| size.ws_row != 0 || size.ws_col != 0)
}

/// Sets the window size of the terminal on `fd` (either side of a pty); the kernel then
/// sends SIGWINCH to the terminal's foreground process group.
pub fn set_terminal_size(fd: BorrowedFd<'_>, size: Winsize) -> io::Result<()> {
    sys::set_winsize(fd, &size)
}

/// The host terminal in raw mode, for as long as the guard lives.
///
/// The saved attributes are put back:
/// - when the guard is dropped, including while a panic unwinds;
/// - when the process receives SIGINT, SIGTERM or SIGHUP: a handler (installed on first use
///   and chained to whatever handled the signal before) restores the terminal, then the
///   signal does what it did before: with the default action it is re-raised and ends the
///   process with the usual status; an ignored signal changes nothing;
///
/// but not when the process is killed with SIGKILL (or SIGSTOP'ed), which cannot be caught,
/// nor after `std::process::exit` or an abort, which run no destructors: callers must drop
/// the guard before exiting. After a SIGKILL, `stty sane` (or `reset`) repairs the terminal.
///
/// Only the outermost guard arms the signal handlers, so nested guards restore the state of
/// the first one on a signal.
#[derive(Debug)]
pub struct RawModeGuard {
    /// A duplicate of the terminal descriptor, so the guard owns what it restores.
    fd: OwnedFd,
    saved: Termios,
    armed: bool,
}

impl RawModeGuard {
    /// Puts the terminal on `fd` in raw mode (as `cfmakeraw`, like Docker's `MakeRaw`).
    /// Returns None, changing nothing, if `fd` is not a terminal.
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<Option<RawModeGuard>> {
        if !nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
            return Ok(None);
        }
        let fd = fd.try_clone_to_owned()?;
        let saved = termios::tcgetattr(&fd)?;
        // Armed before the change, so a signal in between still finds the saved state.
        let armed = sys::arm_terminal_restore(fd.as_fd(), &saved.clone().into())?;
        let guard = RawModeGuard { fd, saved, armed };
        let mut raw = guard.saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&guard.fd, SetArg::TCSANOW, &raw)?;
        Ok(Some(guard))
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
        if self.armed {
            sys::disarm_terminal_restore();
        }
    }
}

/// Makes `slave` the controlling terminal of the calling process and its stdin, stdout and
/// stderr: `setsid`, `TIOCSCTTY`, `dup2` onto 0, 1 and 2 (without close-on-exec). Meant for
/// the container's PID 1 right before exec: it only makes system calls (no allocation,
/// no locks), so it is safe between fork and exec. `slave` itself keeps its close-on-exec
/// flag (unless it already was 0, 1 or 2) and disappears at exec.
pub fn make_controlling_terminal(slave: &OwnedFd) -> io::Result<()> {
    nix::unistd::setsid()?;
    sys::set_controlling_terminal(slave.as_fd())?;
    let raw = slave.as_raw_fd();
    for target in 0..=2 {
        if raw == target {
            fcntl(target, FcntlArg::F_SETFD(FdFlag::empty()))?;
        } else {
            nix::unistd::dup2(raw, target)?;
        }
    }
    Ok(())
}

/// The foreground relay run by the CLI for `-t`: copies `stdin` (if any) to the pty master
/// and the master's output to `stdout` until the container's side hangs up (read gives EIO
/// or end-of-file once every slave descriptor is closed). With `winsize_from` (the user's
/// terminal), its size is copied to the master at start and on every SIGWINCH.
///
/// When `stdin` reaches end-of-file, the terminal's EOF character (Ctrl-D) is sent, as
/// `script` does, so a program reading a line-buffered terminal sees the end of input.
/// The master is made non-blocking while relaying (its original flags are put back), so a
/// container that does not read its input never stalls its output.
pub fn relay(
    master: &OwnedFd,
    stdin: Option<BorrowedFd<'_>>,
    stdout: BorrowedFd<'_>,
    winsize_from: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    relay_until(master, stdin, stdout, winsize_from, &AtomicBool::new(false))
}

/// [`relay`], which also returns (within 100 ms) once `stop` is set, e.g. by a thread that
/// saw the container exit or the user's detach keys.
pub fn relay_until(
    master: &OwnedFd,
    stdin: Option<BorrowedFd<'_>>,
    stdout: BorrowedFd<'_>,
    winsize_from: Option<BorrowedFd<'_>>,
    stop: &AtomicBool,
) -> io::Result<()> {
    relay_logged(master, stdin, stdout, winsize_from, stop, None)
}

/// [`relay_until`] that also writes everything the container prints to `log` (a container
/// run in the foreground with `-t` keeps its log, as with Docker).
pub fn relay_logged(
    master: &OwnedFd,
    stdin: Option<BorrowedFd<'_>>,
    stdout: BorrowedFd<'_>,
    winsize_from: Option<BorrowedFd<'_>>,
    stop: &AtomicBool,
    mut log: Option<&mut LogWriter>,
) -> io::Result<()> {
    let winch = match winsize_from {
        Some(from) => {
            let notifier = sys::sigwinch_notifier()?;
            copy_size(from, master.as_fd());
            Some((notifier, from))
        }
        None => None,
    };
    let _nonblocking = NonBlocking::set(master.as_fd())?;
    let eof_char = termios::tcgetattr(master)
        .map(|t| t.control_chars[SpecialCharacterIndices::VEOF as usize])
        .unwrap_or(4);

    let mut buf = vec![0u8; 16 * 1024];
    let mut to_master: Vec<u8> = Vec::new();
    let mut stdin = stdin;
    let mut last_sent = b'\n';
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut master_events = PollFlags::POLLIN;
        if !to_master.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(master.as_fd(), master_events)];
        let stdin_at = match stdin {
            Some(fd) if to_master.is_empty() => {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let winch_at = winch.map(|(notifier, _)| {
            fds.push(PollFd::new(notifier, PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        let master_ready = ready(0);
        let stdin_ready = stdin_at.map(ready).unwrap_or(PollFlags::empty());
        let winch_ready = winch_at.map(ready).unwrap_or(PollFlags::empty());
        drop(fds);

        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => return Ok(()),
                Ok(n) => {
                    if let Some(log) = log.as_deref_mut() {
                        // The log must not stop the relay; its errors surface elsewhere.
                        let _ = log.write(crate::store::logs::Stream::Stdout, &buf[..n]);
                    }
                    write_all_fd(stdout, &buf[..n])?;
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if master_ready.contains(PollFlags::POLLOUT) && !to_master.is_empty() {
            match nix::unistd::write(master, &to_master) {
                Ok(n) => {
                    to_master.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(Errno::EIO) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(fd) = stdin
            && !stdin_ready.is_empty()
        {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    stdin = None;
                    // A line in progress needs one EOF to be delivered and a second to be
                    // seen as end of input.
                    if last_sent != b'\n' {
                        to_master.push(eof_char);
                    }
                    to_master.push(eof_char);
                }
                Ok(n) => {
                    to_master.extend_from_slice(&buf[..n]);
                    last_sent = buf[n - 1];
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if stdin_ready.contains(PollFlags::POLLNVAL) {
                stdin = None;
            }
        }
        if let Some((notifier, from)) = winch
            && !winch_ready.is_empty()
        {
            while matches!(nix::unistd::read(notifier.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
            copy_size(from, master.as_fd());
        }
    }
}

fn copy_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Some(size) = terminal_size(from) {
        let _ = set_terminal_size(to, size);
    }
}

/// O_NONBLOCK on a descriptor for a while; the original status flags come back on drop.
struct NonBlocking<'a> {
    fd: BorrowedFd<'a>,
    flags: OFlag,
}

impl<'a> NonBlocking<'a> {
    fn set(fd: BorrowedFd<'a>) -> io::Result<NonBlocking<'a>> {
        let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(NonBlocking { fd, flags })
    }
}

impl Drop for NonBlocking<'_> {
    fn drop(&mut self) {
        let _ = fcntl(self.fd.as_raw_fd(), FcntlArg::F_SETFL(self.flags));
    }
}

/// Writes all of `bytes` to `fd`, waiting for room if the descriptor is non-blocking.
fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The relay for containers without a terminal: copies the container's stdout and stderr
/// pipes to this process's stdout and stderr (if `to_terminal`) and to `log` (if given)
/// until both pipes reach end-of-file, then writes the log's unfinished lines.
///
/// The pipes are always drained, so the container never blocks on a full pipe: when writing
/// to our stdout or stderr fails (the CLI that was attached went away), copying there stops
/// silently; when writing the log fails, copying goes on and the first log error is
/// returned at the end.
pub fn relay_pipes(
    out: OwnedFd,
    err: OwnedFd,
    to_terminal: bool,
    log: Option<&mut LogWriter>,
) -> io::Result<()> {
    let mut log = log;
    let mut open = [Some(out), Some(err)];
    let mut terminal_ok = [to_terminal, to_terminal];
    let mut log_error: Option<io::Error> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let mut fds = Vec::new();
        let mut which = Vec::new();
        for (i, fd) in open.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        drop(fds);
        for i in ready {
            let Some(fd) = &open[i] else { continue };
            let n = match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                open[i] = None;
                continue;
            }
            let data = &buf[..n];
            let stream = if i == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            if terminal_ok[i] {
                let written = if i == 0 {
                    let mut o = io::stdout().lock();
                    o.write_all(data).and_then(|()| o.flush())
                } else {
                    io::stderr().lock().write_all(data)
                };
                terminal_ok[i] = written.is_ok();
            }
            if let Some(log) = log.as_deref_mut()
                && let Err(e) = log.write(stream, data)
            {
                log_error.get_or_insert(e);
            }
        }
    }
    if let Some(log) = log
        && let Err(e) = log.flush_partial()
    {
        log_error.get_or_insert(e);
    }
    match log_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    fn size(rows: u16, cols: u16) -> Winsize {
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }

    fn same_size(a: Option<Winsize>, b: Winsize) -> bool {
        a.is_some_and(|a| a.ws_row == b.ws_row && a.ws_col == b.ws_col)
    }

    /// `/dev/pts/N` of a slave, for a child process to open by name.
    fn slave_path(slave: &OwnedFd) -> String {
        std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn open_slave_by_path(path: &str) -> OwnedFd {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap()
            .into()
    }

    /// Runs one test of this binary in a child process, with `NOOK_TTY_CHILD` set.
    fn run_child_test(name: &str, env: &str, stdio: fn() -> Stdio) -> std::process::ExitStatus {
        Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env("NOOK_TTY_CHILD", env)
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .status()
            .unwrap()
    }

    /// Reads everything the other side of a pty prints until it hangs up.
    fn read_master_until_hangup(master: OwnedFd) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(master);
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO: every slave is closed
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(out);
        });
        let out = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("pty output ends");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn sizes_set_and_read_back() {
        let pty = open_pty(Some(size(33, 77))).unwrap();
        assert!(same_size(terminal_size(pty.slave.as_fd()), size(33, 77)));
        set_terminal_size(pty.master.as_fd(), size(50, 132)).unwrap();
        assert!(same_size(terminal_size(pty.slave.as_fd()), size(50, 132)));
        assert!(same_size(terminal_size(pty.master.as_fd()), size(50, 132)));
        let (r, _w) = sys::pipe().unwrap();
        assert!(terminal_size(r.as_fd()).is_none());
        let flags = fcntl(pty.master.as_raw_fd(), FcntlArg::F_GETFD).unwrap();
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    }

    #[test]
    fn stty_in_a_child_sees_the_size() {
        let pty = open_pty(None).unwrap();
        set_terminal_size(pty.master.as_fd(), size(41, 101)).unwrap();
        let out = Command::new("stty")
            .arg("size")
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "41 101\n");
    }

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let pty = open_pty(None).unwrap();
        let before = termios::tcgetattr(&pty.slave).unwrap();
        assert!(before.local_flags.contains(termios::LocalFlags::ICANON));
        {
            let _guard = RawModeGuard::enable(pty.slave.as_fd()).unwrap().unwrap();
            let raw = termios::tcgetattr(&pty.slave).unwrap();
            assert!(!raw.local_flags.contains(termios::LocalFlags::ICANON));
            assert!(!raw.local_flags.contains(termios::LocalFlags::ECHO));
            assert!(!raw.local_flags.contains(termios::LocalFlags::ISIG));
        }
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);

        let result = std::panic::catch_unwind(|| {
            let _guard = RawModeGuard::enable(pty.slave.as_fd()).unwrap().unwrap();
            panic!("boom");
        });
        assert!(result.is_err());
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);

        let (r, _w) = sys::pipe().unwrap();
        assert!(RawModeGuard::enable(r.as_fd()).unwrap().is_none());
    }

    /// Child half of `raw_mode_is_restored_on_sigterm`.
    #[test]
    fn child_raw_mode_then_sigterm() {
        let Ok(path) = std::env::var("NOOK_TTY_CHILD") else {
            return;
        };
        if !path.starts_with("raw:") {
            return;
        }
        let slave = open_slave_by_path(&path["raw:".len()..]);
        let _guard = RawModeGuard::enable(slave.as_fd()).unwrap().unwrap();
        let raw = termios::tcgetattr(&slave).unwrap();
        assert!(!raw.local_flags.contains(termios::LocalFlags::ICANON));
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        std::process::exit(3); // the signal should have ended us
    }

    #[test]
    fn raw_mode_is_restored_on_sigterm() {
        let pty = open_pty(None).unwrap();
        let before = termios::tcgetattr(&pty.slave).unwrap();
        let status = run_child_test(
            "runtime::tty::tests::child_raw_mode_then_sigterm",
            &format!("raw:{}", slave_path(&pty.slave)),
            Stdio::null,
        );
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        assert_eq!(termios::tcgetattr(&pty.slave).unwrap(), before);
    }

    /// Child half of `controlling_terminal_in_a_child`.
    #[test]
    fn child_make_controlling_terminal() {
        let Ok(path) = std::env::var("NOOK_TTY_CHILD") else {
            return;
        };
        if !path.starts_with("ctty:") {
            return;
        }
        let slave = open_slave_by_path(&path["ctty:".len()..]);
        make_controlling_terminal(&slave).unwrap();
        drop(slave);
        // /dev/tty opens only for a process with a controlling terminal.
        let has_ctty = std::fs::File::open("/dev/tty").is_ok();
        let status = Command::new("sh")
            .args(["-c", "stty size; echo marker-$(tty)"])
            .status()
            .unwrap();
        let mut out = std::io::stdout();
        writeln!(out, "ctty={has_ctty} sh={}", status.success()).unwrap();
    }

    #[test]
    fn controlling_terminal_in_a_child() {
        let pty = open_pty(Some(size(29, 91))).unwrap();
        let path = slave_path(&pty.slave);
        let name = "runtime::tty::tests::child_make_controlling_terminal";
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env("NOOK_TTY_CHILD", format!("ctty:{path}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let Pty { master, slave } = pty;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_master_until_hangup(master));
        });
        // Our slave stays open until the child is done, so the master cannot hang up
        // before the child opened its own; then the reader sees the hang-up.
        let status = child.wait().unwrap();
        drop(slave);
        let out = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(status.success(), "{out}");
        assert!(out.contains("29 91"), "{out}");
        assert!(out.contains(&format!("marker-{path}")), "{out}");
        assert!(out.contains("ctty=true sh=true"), "{out}");
    }

    #[test]
    fn relay_copies_input_and_output_through_cat() {
        let pty = open_pty(Some(size(24, 80))).unwrap();
        let mut cat = Command::new("cat")
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let Pty { master, slave } = pty;
        drop(slave);
        let (in_r, in_w) = sys::pipe().unwrap();
        let (out_r, out_w) = sys::pipe().unwrap();
        let mut in_w = std::fs::File::from(in_w);
        in_w.write_all(b"hello tty\n").unwrap();
        drop(in_w);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = relay(&master, Some(in_r.as_fd()), out_w.as_fd(), None);
            drop(out_w);
            let _ = tx.send(result.map_err(|e| e.to_string()));
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("relay ends when cat exits")
            .unwrap();
        assert!(cat.wait().unwrap().success());
        let mut out = String::new();
        std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
        // The terminal's echo of our input, then cat's copy of it.
        assert_eq!(out.matches("hello tty\r\n").count(), 2, "{out:?}");
    }

    #[test]
    fn relay_propagates_window_size_and_stops_when_asked() {
        let host = open_pty(Some(size(24, 80))).unwrap();
        let container = open_pty(None).unwrap();
        let (out_r, out_w) = sys::pipe().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let Pty {
            master,
            slave: container_slave,
        } = container;
        let host_slave = host.slave.try_clone().unwrap();
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let result = relay_until(
                &master,
                None,
                out_w.as_fd(),
                Some(host_slave.as_fd()),
                &stop2,
            );
            let _ = tx.send(result.map_err(|e| e.to_string()));
        });
        let wait_for = |want: Winsize| {
            for _ in 0..100 {
                if same_size(terminal_size(container_slave.as_fd()), want) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        assert!(wait_for(size(24, 80)), "initial size copied");
        set_terminal_size(host.master.as_fd(), size(60, 200)).unwrap();
        nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGWINCH).unwrap();
        assert!(wait_for(size(60, 200)), "size copied on SIGWINCH");
        stop.store(true, Ordering::Release);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("relay stops")
            .unwrap();
        drop(out_r);
    }

    #[test]
    fn pipes_are_relayed_into_the_log() {
        use crate::store::logs::read_entries;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut log = LogWriter::open(&path).unwrap();
        let mut child = Command::new("sh")
            .args([
                "-c",
                "echo out1; echo err1 >&2; sleep 0.1; echo out2; printf tail",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = OwnedFd::from(child.stdout.take().unwrap());
        let err = OwnedFd::from(child.stderr.take().unwrap());
        relay_pipes(out, err, false, Some(&mut log)).unwrap();
        assert!(child.wait().unwrap().success());
        let entries: Vec<(Stream, String)> = read_entries(&path)
            .unwrap()
            .into_iter()
            .map(|e| (e.stream, String::from_utf8(e.text).unwrap()))
            .collect();
        let stdout: Vec<&str> = entries
            .iter()
            .filter(|e| e.0 == Stream::Stdout)
            .map(|e| e.1.as_str())
            .collect();
        assert_eq!(stdout, ["out1\n", "out2\n", "tail"]);
        assert!(entries.contains(&(Stream::Stderr, "err1\n".into())));
    }
}
