//! Starting pasta or slirp4netns for a container's network namespace, and stopping it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::ports::{PortMapping, Protocol};
use super::{MTU, Mode, NetworkError, PASTA_DNS, SlirpOptions, relay};
use crate::sys;

/// Where the helper finds the namespace it serves.
const NETNS_FD: i32 = 5;

/// How long a helper may take to bring the network up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The network as planned before the container's namespace exists: host ports chosen and
/// checked, and (for pasta and slirp4netns) a launcher process waiting to exec the helper.
pub struct Prepared {
    ports: Vec<PortMapping>,
    launcher: Option<Launcher>,
    /// The UDP relay's process and the socket that hands it the namespace.
    relay: Option<(i32, UnixStream)>,
}

struct Launcher {
    binary: &'static str,
    pid: i32,
    /// Carries the namespace (as a descriptor) that means "go".
    go: UnixStream,
    log: PathBuf,
    ready: Readiness,
}

enum Readiness {
    /// pasta writes its PID to this file once the namespace is configured.
    PidFile(PathBuf),
    /// slirp4netns writes `1` to this pipe once ready, and exits when `exit` closes.
    Pipe { ready: File, exit: OwnedFd },
}

/// A running helper, stopped when dropped.
pub struct Connected {
    ports: Vec<PortMapping>,
    helper: Option<(&'static str, i32, Option<OwnedFd>)>,
    relay: Option<i32>,
}

impl Connected {
    /// The published ports, with the host ports that were chosen.
    pub fn ports(&self) -> &[PortMapping] {
        &self.ports
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        // Published ports must be free by the time the container is reported gone, so a
        // helper holding them is reaped. One that holds none is only killed: a dying pasta
        // spends 30-40 ms in the kernel closing its tap device (two RCU grace periods)
        // after it can no longer do anything, and nothing the user sees waits on that.
        let holds_ports = !self.ports.is_empty();
        if let Some((_, pid, exit)) = self.helper.take() {
            drop(exit);
            stop(pid, holds_ports);
        }
        if let Some(pid) = self.relay.take() {
            stop(pid, true);
        }
    }
}

/// Killed (neither helper keeps state worth a graceful exit), and reaped when `reap`.
fn stop(pid: i32, reap: bool) {
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGKILL);
    if reap {
        let _ = waitpid(pid, None);
    }
}

/// Step one, in the host's network namespace (see the module documentation). `dir` is the
/// container's directory, which holds the helper's log and sockets.
pub fn prepare(
    mode: &Mode,
    requested: &[PortMapping],
    dir: &Path,
) -> Result<Prepared, NetworkError> {
    if mode.helper().is_none() {
        return Ok(Prepared {
            ports: Vec::new(),
            launcher: None,
            relay: None,
        });
    }
    mode.check_helper()?;
    // pasta forwards TCP itself, fast (it splices); nook relays the rest (see the relay module).
    let relay_tcp = matches!(mode, Mode::Slirp4netns(_));
    let (ports, udp, tcp_relayed) = claim_host_ports(requested, relay_tcp)?;
    // Forked first, so it holds none of the helper's descriptors.
    let relay = if udp.is_empty() && tcp_relayed.is_empty() {
        None
    } else {
        Some(relay::fork_relay(udp, tcp_relayed).map_err(spawn_err("nook's port relay"))?)
    };
    let log = dir.join("network.log");
    // The helper drops capabilities before it opens the namespace, which then fails the
    // kernel's ptrace-style check on /proc/PID/ns/net; a descriptor it inherits opens
    // through /proc/self instead.
    let netns = format!("/proc/self/fd/{NETNS_FD}");
    let launcher = match mode {
        Mode::Pasta(extra) => {
            let tcp: Vec<PortMapping> = ports
                .iter()
                .filter(|p| p.protocol == Protocol::Tcp)
                .cloned()
                .collect();
            let pid_file = dir.join("pasta.pid");
            remove_if_present(&pid_file)?;
            let args = pasta_args(extra, &tcp, &pid_file, &netns);
            fork_launcher(
                "pasta",
                args,
                &log,
                Vec::new(),
                Readiness::PidFile(pid_file),
            )?
        }
        Mode::Slirp4netns(options) => {
            let (ready_r, ready_w) = sys::pipe().map_err(spawn_err("slirp4netns"))?;
            let (exit_r, exit_w) = sys::pipe().map_err(spawn_err("slirp4netns"))?;
            let args = slirp_args(options, &netns);
            fork_launcher(
                "slirp4netns",
                args,
                &log,
                vec![(ready_w, 3), (exit_r, 4)],
                Readiness::Pipe {
                    ready: File::from(ready_r),
                    exit: exit_w,
                },
            )?
        }
        _ => unreachable!("modes without a helper returned above"),
    };
    Ok(Prepared {
        ports,
        launcher: Some(launcher),
        relay,
    })
}

fn spawn_err(binary: &'static str) -> impl FnOnce(io::Error) -> NetworkError {
    move |source| NetworkError::Spawn { binary, source }
}

fn remove_if_present(path: &Path) -> Result<(), NetworkError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetworkError::Io {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

impl Prepared {
    /// Step two, once the container's network namespace exists: the helper starts on it.
    /// The caller may do other work while it comes up, then waits with [`Starting::ready`].
    pub fn start(self) -> Result<Starting, NetworkError> {
        if let Some(launcher) = &self.launcher {
            let sent = File::open("/proc/self/ns/net").and_then(|ns| {
                sys::send_fd(&launcher.go, &ns)?;
                match &self.relay {
                    Some((_, go)) => sys::send_fd(go, &ns),
                    None => Ok(()),
                }
            });
            if let Err(e) = sent {
                stop(launcher.pid, true);
                if let Some((pid, _)) = &self.relay {
                    stop(*pid, true);
                }
                return Err(NetworkError::HelperFailed {
                    binary: launcher.binary,
                    status: format!("cannot pass it the namespace: {e}"),
                    log: String::new(),
                });
            }
        }
        Ok(Starting(self))
    }
}

/// A helper that was told to start.
pub struct Starting(Prepared);

impl Starting {
    /// Step three: waits until the network is up, and forwards the ports.
    pub fn ready(self) -> Result<Connected, NetworkError> {
        let Prepared {
            ports,
            launcher,
            relay,
        } = self.0;
        let relay = relay.map(|(pid, _)| pid);
        let Some(Launcher {
            binary,
            pid,
            go,
            log,
            ready,
        }) = launcher
        else {
            return Ok(Connected {
                ports,
                helper: None,
                relay,
            });
        };
        // Held until here: the launcher's end closing early would read as "give up".
        drop(go);
        let failed = |status: String| {
            stop(pid, true);
            if let Some(relay) = relay {
                stop(relay, true);
            }
            NetworkError::HelperFailed {
                binary,
                status,
                log: std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .trim()
                    .replace('\n', "; "),
            }
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let exit_fd = match ready {
            Readiness::PidFile(pid_file) => {
                loop {
                    if let Some(status) = exited(pid) {
                        return Err(failed(status));
                    }
                    if std::fs::metadata(&pid_file).is_ok_and(|m| m.len() > 0) {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(failed("no answer in time".into()));
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                // pasta only warns about a port it could not bind (taken since it was
                // checked): the container would run without it.
                // Reading the host's socket table costs milliseconds: only when it matters.
                let tcp = ports.iter().filter(|p| p.protocol == Protocol::Tcp);
                let listening = if tcp.clone().next().is_some() {
                    listening_tcp_ports(pid)
                } else {
                    Default::default()
                };
                if let Some(port) = tcp.clone().find(|p| !listening.contains(&p.host_port)) {
                    stop(pid, true);
                    if let Some(relay) = relay {
                        stop(relay, true);
                    }
                    return Err(NetworkError::PortInUse {
                        port: port.host_port,
                        protocol: port.protocol.name(),
                        address: if port.host_ip.is_empty() {
                            "0.0.0.0".into()
                        } else {
                            port.host_ip.clone()
                        },
                    });
                }
                None
            }
            Readiness::Pipe { mut ready, exit } => {
                let mut byte = [0u8];
                let answered = wait_readable(&ready, READY_TIMEOUT)
                    && ready.read(&mut byte).is_ok_and(|n| n == 1);
                if !answered {
                    return Err(failed(
                        exited(pid).unwrap_or_else(|| "no answer in time".into()),
                    ));
                }
                Some(exit)
            }
        };
        let connected = Connected {
            ports,
            helper: Some((binary, pid, exit_fd)),
            relay,
        };
        Ok(connected)
    }
}

/// The helper's exit status, if it has exited (and been reaped here).
fn exited(pid: i32) -> Option<String> {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status {code}")),
        Ok(WaitStatus::Signaled(_, signal, _)) => Some(format!("killed by {signal:?}")),
        Ok(_) => None,
        Err(e) => Some(format!("lost: {e}")),
    }
}

fn wait_readable(file: &File, timeout: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, ms) {
            Ok(n) => return n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Forks the process that will become the helper. It waits for a byte on a pipe, because the
/// namespace it serves does not exist yet, and it must start in the host's namespace, which
/// this process is about to leave. It dies with this process.
fn fork_launcher(
    binary: &'static str,
    args: Vec<String>,
    log: &Path,
    inherited: Vec<(OwnedFd, i32)>,
    ready: Readiness,
) -> Result<Launcher, NetworkError> {
    let log_file = File::create(log).map_err(|source| NetworkError::Io {
        op: "create",
        path: log.to_path_buf(),
        source,
    })?;
    let (go_w, go_r) = UnixStream::pair().map_err(spawn_err(binary))?;
    let argv: Vec<CString> = std::iter::once(binary.to_string())
        .chain(args)
        .map(|a| CString::new(a).expect("helper arguments have no NUL byte"))
        .collect();
    match sys::fork_single_threaded().map_err(spawn_err(binary))? {
        sys::Forked::Child => {
            drop(go_w);
            let code = launch(&argv, go_r, &log_file, inherited);
            sys::exit_now(code)
        }
        sys::Forked::Parent { child } => Ok(Launcher {
            binary,
            pid: child,
            go: go_w,
            log: log.to_path_buf(),
            ready,
        }),
    }
}

/// The launcher's side: returns only when it cannot exec (the exit status to use).
fn launch(argv: &[CString], go: UnixStream, log: &File, inherited: Vec<(OwnedFd, i32)>) -> i32 {
    if sys::die_with_parent().is_err() || sys::reset_signals_for_exec().is_err() {
        return 1;
    }
    // A keep-id monitor is the user's own id inside, whose capabilities an exec would drop;
    // the helper needs them to enter the namespace, so they become ambient. (Switching to
    // root of the namespace instead would make the helper a subordinate id on the host,
    // unable to write its files in the user's store.)
    if !nix::unistd::getuid().is_root() && keep_capabilities_across_exec().is_err() {
        return 1;
    }
    let netns = match sys::recv_fd(&go) {
        Ok(Some(fd)) => fd,
        // The monitor gave up before the namespace existed.
        _ => return 0,
    };
    let null = match File::open("/dev/null") {
        Ok(f) => f,
        Err(_) => return 1,
    };
    let redirected = nix::unistd::dup2(null.as_raw_fd(), 0)
        .and_then(|_| nix::unistd::dup2(log.as_raw_fd(), 1))
        .and_then(|_| nix::unistd::dup2(log.as_raw_fd(), 2));
    if redirected.is_err() {
        return 1;
    }
    // The namespace at NETNS_FD, and slirp4netns's --ready-fd=3 --exit-fd=4: every one
    // first out of the way of 3 to 5, then into place (dup2 clears close-on-exec on the
    // copies).
    let high =
        |fd: &OwnedFd| nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10));
    let mut wanted = vec![(netns, NETNS_FD)];
    wanted.extend(inherited);
    let mut moved = Vec::new();
    for (fd, target) in &wanted {
        match high(fd) {
            Ok(copy) => moved.push((copy, *target)),
            Err(_) => return 1,
        }
    }
    for (copy, target) in moved {
        if nix::unistd::dup2(copy, target).is_err() {
            return 1;
        }
    }
    let err = nix::unistd::execvp(&argv[0], argv).unwrap_err();
    let _ = writeln!(
        io::stderr(),
        "cannot execute {}: {err}",
        argv[0].to_string_lossy()
    );
    127
}

fn keep_capabilities_across_exec() -> Result<(), caps::errors::CapsError> {
    let permitted = caps::read(None, caps::CapSet::Permitted)?;
    caps::set(None, caps::CapSet::Inheritable, &permitted)?;
    for cap in permitted {
        caps::raise(None, caps::CapSet::Ambient, cap)?;
    }
    Ok(())
}

/// pasta in the foreground (so the parent-death signal holds), configuring the namespace
/// with the host's addresses and routes, DNS answered at [`PASTA_DNS`], exactly the
/// published ports forwarded and nothing from the container to the host's loopback unless
/// `--map-gw` (Podman's pseudo-option) asks for the gateway to mean the host.
pub fn pasta_args(
    extra: &[String],
    ports: &[PortMapping],
    pid_file: &Path,
    netns: &str,
) -> Vec<String> {
    let map_gw = extra.iter().any(|a| a == "--map-gw");
    let mut args: Vec<String> = [
        "--config-net",
        "--foreground",
        "--quiet",
        "--pid",
        &pid_file.to_string_lossy(),
        "--mtu",
        &MTU.to_string(),
        "--dns-forward",
        &PASTA_DNS.to_string(),
        "-T",
        "none",
        "-U",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !map_gw {
        args.push("--no-map-gw".into());
    }
    for (flag, protocol) in [("-t", Protocol::Tcp), ("-u", Protocol::Udp)] {
        let specs: Vec<String> = ports
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| {
                let ip = if p.host_ip.is_empty() {
                    String::new()
                } else {
                    format!("{}/", p.host_ip)
                };
                format!("{ip}{}:{}", p.host_port, p.container_port)
            })
            .collect();
        args.push(flag.into());
        args.push(if specs.is_empty() {
            "none".into()
        } else {
            specs.join(",")
        });
    }
    args.extend(extra.iter().filter(|a| *a != "--map-gw").cloned());
    args.push("--netns".into());
    args.push(netns.into());
    args
}

/// slirp4netns configuring `tap0` in the namespace, ready and exit descriptors 3 and 4.
pub fn slirp_args(options: &SlirpOptions, netns: &str) -> Vec<String> {
    let mut args = vec![
        "--configure".to_string(),
        format!("--mtu={}", options.mtu.unwrap_or(MTU)),
        "--ready-fd=3".into(),
        "--exit-fd=4".into(),
    ];
    if !options.allow_host_loopback {
        args.push("--disable-host-loopback".into());
    }
    if let Some(cidr) = &options.cidr {
        args.push(format!("--cidr={cidr}"));
    }
    if options.enable_ipv6 {
        args.push("--enable-ipv6".into());
    }
    args.push("--netns-type=path".into());
    args.push(netns.into());
    args.push("tap0".into());
    args
}

/// Checks every published host port as the helper will bind it, and chooses a free one for
/// each given as 0. A privileged or busy port is refused here, before anything runs.
/// UDP sockets, and with `keep_tcp` TCP listeners, are kept open for the relay.
#[allow(clippy::type_complexity)]
fn claim_host_ports(
    requested: &[PortMapping],
    keep_tcp: bool,
) -> Result<(Vec<PortMapping>, Vec<relay::UdpPort>, Vec<relay::TcpPort>), NetworkError> {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(1024);
    let mut claimed = Vec::new();
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for port in requested {
        let mut port = port.clone();
        let ip: IpAddr = if port.host_ip.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            port.host_ip.parse().map_err(|_| NetworkError::Bind {
                port: port.host_port,
                protocol: port.protocol.name(),
                address: port.host_ip.clone(),
                source: io::Error::other("not an IP address"),
            })?
        };
        if port.host_port != 0 && port.host_port < start {
            return Err(NetworkError::PrivilegedPort {
                port: port.host_port,
                protocol: port.protocol.name(),
                start,
                suggestion: u32::from(port.host_port) + 8000,
                container_port: port.container_port,
            });
        }
        if port.host_port == 0 {
            port.host_port = free_port(ip, port.protocol);
        }
        let bound = match port.protocol {
            Protocol::Tcp => TcpListener::bind((ip, port.host_port)).and_then(|l| {
                let addr = l.local_addr()?;
                if keep_tcp {
                    tcp.push(relay::TcpPort {
                        host: l,
                        container_port: port.container_port,
                    });
                }
                Ok(addr)
            }),
            // Kept: the relay serves it.
            Protocol::Udp => UdpSocket::bind((ip, port.host_port)).and_then(|s| {
                let addr = s.local_addr()?;
                udp.push(relay::UdpPort {
                    host: s,
                    container_port: port.container_port,
                });
                Ok(addr)
            }),
        };
        match bound {
            Ok(addr) => port.host_port = addr.port(),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(NetworkError::PortInUse {
                    port: port.host_port,
                    protocol: port.protocol.name(),
                    address: ip.to_string(),
                });
            }
            Err(source) => {
                return Err(NetworkError::Bind {
                    port: port.host_port,
                    protocol: port.protocol.name(),
                    address: ip.to_string(),
                    source,
                });
            }
        }
        claimed.push(port);
    }
    Ok((claimed, udp, tcp))
}

/// A free host port for `-p CONTAINERPORT`, chosen below the kernel's ephemeral range: a port
/// the kernel hands out for `bind(0)` goes to the next process that asks as soon as it is
/// released, so it could be taken between this check and the helper's own bind. 0 (the
/// kernel's choice) when nothing free turns up.
fn free_port(ip: IpAddr, protocol: Protocol) -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = ephemeral_start.saturating_sub(12000).max(10000);
    let span = ephemeral_start.saturating_sub(low).max(1);
    for _ in 0..64 {
        let random = u16::from_le_bytes(crate::store::containers::random_bytes::<2>());
        let candidate = low + random % span;
        let free = match protocol {
            Protocol::Tcp => TcpListener::bind((ip, candidate)).is_ok(),
            Protocol::Udp => UdpSocket::bind((ip, candidate)).is_ok(),
        };
        if free {
            return candidate;
        }
    }
    0
}

/// The TCP ports process `pid` sees listening in its network namespace (the host's, for
/// pasta).
fn listening_tcp_ports(pid: i32) -> std::collections::HashSet<u16> {
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).ok())
        .flat_map(|text| parse_listening(&text))
        .collect()
}

/// Ports in LISTEN state (0A) in the text of `/proc/net/tcp` or `tcp6`.
pub(super) fn parse_listening(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != "0A" {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}
