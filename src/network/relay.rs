//! Published ports relayed by nook itself: every UDP port, and slirp4netns's TCP ports.
//!
//! Both helpers (in the versions Debian ships) deliver a published UDP port's datagrams to
//! the container as coming from their gateway address, and then drop the replies, which go
//! to that address, unless the container may reach the host's loopback (slirp4netns's
//! `allow_host_loopback`, pasta without `--no-map-gw`). Rather than open the host's loopback
//! to every container that publishes a UDP port, a small relay process holds the host's
//! sockets (bound in the host's network namespace) and, after entering the container's
//! namespace, one socket per client towards the container's loopback, as Docker's userland
//! proxy does.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::sys;

/// A client that has been quiet this long is forgotten.
const IDLE: Duration = Duration::from_secs(120);

/// One published UDP port: the host's socket and the container's port.
pub struct UdpPort {
    pub host: UdpSocket,
    pub container_port: u16,
}

/// One published TCP port relayed by nook (slirp4netns's ports: its own TCP stack carries
/// a third less than a proxy that splices the streams, as Podman's rootlessport does).
pub struct TcpPort {
    pub host: TcpListener,
    pub container_port: u16,
}

/// Forks the relay. It waits for the container's network namespace on `go` (see
/// `Prepared::start`), enters it, and relays until it is killed or this process dies.
pub fn fork_relay(ports: Vec<UdpPort>, tcp: Vec<TcpPort>) -> std::io::Result<(i32, UnixStream)> {
    let (go_w, go_r) = UnixStream::pair()?;
    match sys::fork_single_threaded()? {
        sys::Forked::Child => {
            drop(go_w);
            let code = match enter_and_relay(go_r, ports, tcp) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            sys::exit_now(code)
        }
        sys::Forked::Parent { child } => Ok((child, go_w)),
    }
}

fn enter_and_relay(go: UnixStream, ports: Vec<UdpPort>, tcp: Vec<TcpPort>) -> std::io::Result<()> {
    sys::die_with_parent()?;
    let mut keep: Vec<RawFd> = ports.iter().map(|p| p.host.as_raw_fd()).collect();
    keep.extend(tcp.iter().map(|p| p.host.as_raw_fd()));
    keep.push(go.as_raw_fd());
    sys::close_other_fds(&keep)?;
    let Some(netns) = sys::recv_fd(&go)? else {
        return Ok(());
    };
    // Threads made from here on are in the container's namespace too. (This process never
    // unshares a PID namespace, so it may make them.)
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
    for port in tcp {
        std::thread::spawn(move || accept_tcp(port));
    }
    if ports.is_empty() {
        loop {
            std::thread::park();
        }
    }
    relay(&ports)
}

/// Each connection to the host's port gets one to the container's loopback, and a thread
/// per direction copying (std's copy splices between sockets).
fn accept_tcp(port: TcpPort) {
    for client in port.host.incoming().flatten() {
        let Ok(inside) = TcpStream::connect((Ipv4Addr::LOCALHOST, port.container_port)) else {
            // Nothing listens yet: the client sees the connection close, as with no server.
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = inside.set_nodelay(true);
        let pipe = |from: TcpStream, to: TcpStream| {
            move || {
                let (mut from, mut to) = (from, to);
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(std::net::Shutdown::Write);
                let _ = from.shutdown(std::net::Shutdown::Read);
            }
        };
        let (Ok(client2), Ok(inside2)) = (client.try_clone(), inside.try_clone()) else {
            continue;
        };
        std::thread::spawn(pipe(client, inside));
        std::thread::spawn(pipe(inside2, client2));
    }
}

struct Session {
    port: usize,
    client: SocketAddr,
    towards_container: UdpSocket,
    last: Instant,
}

fn relay(ports: &[UdpPort]) -> std::io::Result<()> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut by_client: HashMap<(usize, SocketAddr), usize> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let mut fds: Vec<PollFd> = ports
            .iter()
            .map(|p| PollFd::new(p.host.as_fd(), PollFlags::POLLIN))
            .chain(
                sessions
                    .iter()
                    .map(|s| PollFd::new(s.towards_container.as_fd(), PollFlags::POLLIN)),
            )
            .collect();
        match poll(&mut fds, PollTimeout::from(10_000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Sessions the host's datagrams open below were not polled.
        let polled = sessions.len();
        for (i, port) in ports.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            let Ok((n, client)) = port.host.recv_from(&mut buf) else {
                continue;
            };
            let index = match by_client.get(&(i, client)) {
                Some(&index) => index,
                None => {
                    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
                    socket.connect((Ipv4Addr::LOCALHOST, port.container_port))?;
                    sessions.push(Session {
                        port: i,
                        client,
                        towards_container: socket,
                        last: Instant::now(),
                    });
                    by_client.insert((i, client), sessions.len() - 1);
                    sessions.len() - 1
                }
            };
            let session = &mut sessions[index];
            session.last = Instant::now();
            // A container that is not listening yet answers with ICMP; the client retries.
            let _ = session.towards_container.send(&buf[..n]);
        }
        for (k, session) in sessions.iter_mut().enumerate().take(polled) {
            if !ready[ports.len() + k] {
                continue;
            }
            if let Ok(n) = session.towards_container.recv(&mut buf) {
                session.last = Instant::now();
                let _ = ports[session.port].host.send_to(&buf[..n], session.client);
            }
        }
        let before = sessions.len();
        sessions.retain(|s| s.last.elapsed() < IDLE);
        if sessions.len() != before {
            by_client = sessions
                .iter()
                .enumerate()
                .map(|(k, s)| ((s.port, s.client), k))
                .collect();
        }
    }
}
