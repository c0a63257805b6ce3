//! `nook attach` to a detached container with a terminal.
//!
//! The monitor of such a container owns the terminal's master side. It listens on
//! `containers/<id>/attach.sock`; everything the container writes goes to the log and to
//! every attached client, and what a client sends goes to the terminal. Clients frame what
//! they send (input bytes, or a window size); the monitor sends raw output.
//!
//! The socket path is reached through `/proc/self/fd/N/attach.sock` with N a descriptor of
//! the container's directory, because a store path can be longer than the 108 bytes a Unix
//! socket address holds.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::runtime::tty;
use crate::store::logs::{LogWriter, Stream};

const SOCKET: &str = "attach.sock";
const FRAME_INPUT: u8 = 0;
const FRAME_RESIZE: u8 = 1;
/// Ctrl-P Ctrl-Q, Docker's detach keys.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// `/proc/self/fd/N/attach.sock`, with `dir` kept open by the caller.
fn short_path(dir: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()))
}

/// Binds the attach socket in the container directory `dir`.
pub fn listen(dir: &Path) -> io::Result<UnixListener> {
    let handle = File::open(dir)?;
    let _ = std::fs::remove_file(dir.join(SOCKET));
    let listener = UnixListener::bind(short_path(&handle))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The monitor's loop for a detached container with a terminal: relays until the container's
/// side of the terminal closes.
pub fn serve(master: OwnedFd, log: &mut LogWriter, listener: UnixListener) -> io::Result<()> {
    let mut master = File::from(master);
    let mut clients: Vec<(UnixStream, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        for (client, _) in &clients {
            fds.push(PollFd::new(client.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| {
                f.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            })
            .collect();
        drop(fds);
        if ready[0] {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    log.write(Stream::Stdout, &buf[..n])?;
                    clients.retain_mut(|(c, _)| c.write_all(&buf[..n]).is_ok());
                }
            }
        }
        if ready[1]
            && let Ok((client, _)) = listener.accept()
        {
            let _ = client.set_nonblocking(false);
            clients.push((client, Vec::new()));
        }
        let mut gone = Vec::new();
        for (i, ready) in ready[2..].iter().enumerate() {
            if !ready {
                continue;
            }
            let (client, pending) = &mut clients[i];
            match client.read(&mut buf) {
                Ok(0) | Err(_) => gone.push(i),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    apply_frames(pending, &mut master)?;
                }
            }
        }
        for i in gone.into_iter().rev() {
            clients.remove(i);
        }
    }
}

/// Carries out every complete frame in `pending`: `[kind, len_hi, len_lo, data…]`.
fn apply_frames(pending: &mut Vec<u8>, master: &mut File) -> io::Result<()> {
    while pending.len() >= 3 {
        let kind = pending[0];
        let len = u16::from_be_bytes([pending[1], pending[2]]) as usize;
        if pending.len() < 3 + len {
            break;
        }
        let frame: Vec<u8> = pending.drain(..3 + len).collect();
        let data = &frame[3..];
        match kind {
            FRAME_INPUT => master.write_all(data)?,
            FRAME_RESIZE if data.len() == 4 => {
                let size = tty::Winsize {
                    ws_row: u16::from_be_bytes([data[0], data[1]]),
                    ws_col: u16::from_be_bytes([data[2], data[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let _ = tty::set_terminal_size(master.as_fd(), size);
            }
            // A frame this monitor does not know (a newer client): skipped.
            _ => {}
        }
    }
    Ok(())
}

/// Connects to a running container's terminal and relays the user's terminal to it until
/// the container's side closes (Ok(true)) or the user types the detach keys (Ok(false)).
pub fn attach(dir: &Path, stdin: BorrowedFd<'_>, stdout: BorrowedFd<'_>) -> io::Result<bool> {
    let handle = File::open(dir)?;
    let mut socket = UnixStream::connect(short_path(&handle))?;
    if let Some(size) = tty::terminal_size(stdin) {
        send_frame(&mut socket, FRAME_RESIZE, &encode_size(size))?;
    }
    let mut out = File::from(stdout.try_clone_to_owned()?);
    let mut input = File::from(stdin.try_clone_to_owned()?);
    let mut buf = vec![0u8; 16 * 1024];
    let mut last: u8 = 0;
    let winch = crate::sys::sigwinch_notifier()?;
    let drain_winch = || {
        let mut sink = [0u8; 64];
        while nix::unistd::read(winch.as_raw_fd(), &mut sink).is_ok_and(|n| n > 0) {}
    };
    loop {
        let mut fds = vec![
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(input.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (from_container, from_user, resized) = (ready(0), ready(1), ready(2));
        drop(fds);
        if from_container {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(true),
                Ok(n) => {
                    out.write_all(&buf[..n])?;
                    out.flush()?;
                }
            }
        }
        if resized {
            drain_winch();
            if let Some(size) = tty::terminal_size(stdin) {
                send_frame(&mut socket, FRAME_RESIZE, &encode_size(size))?;
            }
        }
        if from_user {
            let n = input.read(&mut buf)?;
            if n == 0 {
                // End of our input: the container keeps running, as with Docker.
                return Ok(false);
            }
            // What came before the detach keys still goes to the container.
            let mut end = n;
            let mut detach = false;
            for (i, &b) in buf[..n].iter().enumerate() {
                if last == DETACH_KEYS[0] && b == DETACH_KEYS[1] {
                    end = i.saturating_sub(1);
                    detach = true;
                    break;
                }
                last = b;
            }
            for chunk in buf[..end].chunks(u16::MAX as usize) {
                send_frame(&mut socket, FRAME_INPUT, chunk)?;
            }
            if detach {
                return Ok(false);
            }
        }
    }
}

fn send_frame(socket: &mut UnixStream, kind: u8, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u16).to_be_bytes();
    let mut frame = Vec::with_capacity(3 + data.len());
    frame.push(kind);
    frame.extend_from_slice(&len);
    frame.extend_from_slice(data);
    socket.write_all(&frame)
}

fn encode_size(size: tty::Winsize) -> [u8; 4] {
    let [r1, r2] = size.ws_row.to_be_bytes();
    let [c1, c2] = size.ws_col.to_be_bytes();
    [r1, r2, c1, c2]
}
