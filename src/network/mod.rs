//! Rootless networking: each container's network namespace, owned by its user namespace, is
//! joined to the outside by a user-mode helper from Debian (`pasta` from `passt`, or
//! `slirp4netns`), which also forwards published ports from the host.
//!
//! The container's monitor does the work, in three steps, because the helper must run in the
//! host's network namespace while the namespace it serves is the monitor's own: [`prepare`]
//! (still in the host's namespace) chooses and checks the host ports and forks a launcher
//! that waits; the monitor then unshares its network namespace; [`Prepared::start`] hands
//! the launcher that namespace to exec the helper on, and [`Starting::ready`] waits until
//! the helper says the network is up (the monitor mounts the root file system meanwhile). The
//! helper dies with the monitor however the monitor ends (a parent-death signal, and for
//! slirp4netns its exit descriptor).

mod files;
mod helper;
pub mod ports;
mod relay;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub use files::{EtcNetwork, Resolvers, hosts_file, resolv_conf};
pub use helper::{Connected, Prepared, Starting, prepare};

/// The address inside the container that pasta answers DNS queries on (forwarding them to
/// the host's first resolver), as Podman uses it.
pub const PASTA_DNS: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// slirp4netns's fixed addresses on its default 10.0.2.0/24 network.
pub const SLIRP_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const SLIRP_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
pub const SLIRP_GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
/// Large frames make user-mode networking several times faster.
pub const MTU: u32 = 65520;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "unknown network mode `{0}`: use pasta, slirp4netns, none, host or container:NAME (with options: pasta:--map-gw, slirp4netns:allow_host_loopback=true)"
    )]
    UnknownMode(String),
    #[error(
        "invalid slirp4netns option `{0}`: use allow_host_loopback=true|false, mtu=N, cidr=A.B.C.D/N, enable_ipv6=true|false or port_handler=slirp4netns"
    )]
    SlirpOption(String),
    #[error(
        "--network {mode} needs `{binary}`, which is not installed (Debian package `{package}`)"
    )]
    MissingHelper {
        mode: &'static str,
        binary: &'static str,
        package: &'static str,
    },
    #[error(
        "cannot publish port {port}/{protocol}: host ports below {start} are privileged (sysctl net.ipv4.ip_unprivileged_port_start = {start}); publish a higher host port such as -p {suggestion}:{container_port}, or have an administrator run: sudo sysctl -w net.ipv4.ip_unprivileged_port_start={port}"
    )]
    PrivilegedPort {
        port: u16,
        protocol: &'static str,
        start: u16,
        suggestion: u32,
        container_port: u16,
    },
    #[error(
        "cannot publish port {port}/{protocol} on {address}: it is already in use; publish another host port, or stop what listens there"
    )]
    PortInUse {
        port: u16,
        protocol: &'static str,
        address: String,
    },
    #[error("cannot publish port {port}/{protocol} on {address}")]
    Bind {
        port: u16,
        protocol: &'static str,
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start `{binary}` for the container's network")]
    Spawn {
        binary: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("`{binary}` failed to connect the container's network ({status}): {log}")]
    HelperFailed {
        binary: &'static str,
        status: String,
        log: String,
    },
    #[error("cannot forward port {port}/{protocol} through slirp4netns: {reason}")]
    Forward {
        port: u16,
        protocol: &'static str,
        reason: String,
    },
    #[error("cannot {op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How a container is networked (`--network`), as stored in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Only `lo`, up.
    None,
    /// The user's own network namespace.
    Host,
    /// pasta, with extra arguments given after `pasta:` (comma-separated, as Podman).
    Pasta(Vec<String>),
    Slirp4netns(SlirpOptions),
    /// Another container's namespace; the ID is resolved when the container is created.
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlirpOptions {
    pub allow_host_loopback: bool,
    pub mtu: Option<u32>,
    pub cidr: Option<String>,
    pub enable_ipv6: bool,
}

impl Mode {
    /// `--network` as Podman spells it. `bridge` and `slirp4netns`/`pasta` without options
    /// are the same thing for a rootless container; `bridge` means the default helper.
    pub fn parse(spec: &str) -> Result<Mode, NetworkError> {
        let (name, options) = match spec.split_once(':') {
            Some((n, o)) => (n, Some(o)),
            None => (spec, None),
        };
        match (name, options) {
            ("none", None) => Ok(Mode::None),
            ("host", None) => Ok(Mode::Host),
            ("pasta", options) => Ok(Mode::Pasta(
                options
                    .unwrap_or_default()
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            ("slirp4netns", options) => {
                let mut parsed = SlirpOptions::default();
                for option in options.unwrap_or_default().split(',') {
                    if option.is_empty() {
                        continue;
                    }
                    let bad = || NetworkError::SlirpOption(option.to_string());
                    let (key, value) = option.split_once('=').ok_or_else(bad)?;
                    let flag = || match value {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => Err(bad()),
                    };
                    match key {
                        "allow_host_loopback" => parsed.allow_host_loopback = flag()?,
                        "enable_ipv6" => parsed.enable_ipv6 = flag()?,
                        "mtu" => parsed.mtu = Some(value.parse().map_err(|_| bad())?),
                        "cidr" => {
                            let (addr, bits) = value.split_once('/').ok_or_else(bad)?;
                            addr.parse::<Ipv4Addr>().map_err(|_| bad())?;
                            bits.parse::<u8>()
                                .ok()
                                .filter(|b| *b <= 30)
                                .ok_or_else(bad)?;
                            parsed.cidr = Some(value.to_string());
                        }
                        "port_handler" if value == "slirp4netns" => {}
                        _ => return Err(bad()),
                    }
                }
                Ok(Mode::Slirp4netns(parsed))
            }
            ("container", Some(other)) if !other.is_empty() => {
                Ok(Mode::Container(other.to_string()))
            }
            _ => Err(NetworkError::UnknownMode(spec.to_string())),
        }
    }

    /// The form stored in the container's record, which [`Mode::parse`] reads back.
    pub fn spec(&self) -> String {
        match self {
            Mode::None => "none".into(),
            Mode::Host => "host".into(),
            Mode::Pasta(args) if args.is_empty() => "pasta".into(),
            Mode::Pasta(args) => format!("pasta:{}", args.join(",")),
            Mode::Slirp4netns(o) => {
                let mut options = Vec::new();
                if o.allow_host_loopback {
                    options.push("allow_host_loopback=true".to_string());
                }
                if let Some(mtu) = o.mtu {
                    options.push(format!("mtu={mtu}"));
                }
                if let Some(cidr) = &o.cidr {
                    options.push(format!("cidr={cidr}"));
                }
                if o.enable_ipv6 {
                    options.push("enable_ipv6=true".to_string());
                }
                if options.is_empty() {
                    "slirp4netns".into()
                } else {
                    format!("slirp4netns:{}", options.join(","))
                }
            }
            Mode::Container(id) => format!("container:{id}"),
        }
    }

    /// The mode a container gets without `--network`: the configured one, else pasta where
    /// it is installed, else slirp4netns (Podman's order).
    pub fn default_mode(configured: Option<&str>) -> Result<Mode, NetworkError> {
        if let Some(spec) = configured {
            return Mode::parse(spec);
        }
        // pasta copies the addresses of the host's interface with a default route, and
        // cannot start without one (a laptop offline); slirp4netns can.
        let pasta_works = find_program("pasta").is_some() && has_default_route();
        if pasta_works || find_program("slirp4netns").is_none() {
            Ok(Mode::Pasta(vec![]))
        } else {
            Ok(Mode::Slirp4netns(SlirpOptions::default()))
        }
    }

    /// The helper this mode runs, and its Debian package.
    pub fn helper(&self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Mode::Pasta(_) => Some(("pasta", "pasta", "passt")),
            Mode::Slirp4netns(_) => Some(("slirp4netns", "slirp4netns", "slirp4netns")),
            _ => None,
        }
    }

    /// An error naming the package when the helper is not installed.
    pub fn check_helper(&self) -> Result<(), NetworkError> {
        match self.helper() {
            Some((mode, binary, package)) if find_program(binary).is_none() => {
                Err(NetworkError::MissingHelper {
                    mode,
                    binary,
                    package,
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether the container has a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        !matches!(self, Mode::Host | Mode::Container(_))
    }

    /// Whether the container can reach the host's loopback services (through the gateway
    /// address), so `host.containers.internal` means something.
    pub fn reaches_host(&self) -> bool {
        match self {
            Mode::Pasta(args) => args.iter().any(|a| a == "--map-gw"),
            Mode::Slirp4netns(o) => o.allow_host_loopback,
            _ => false,
        }
    }
}

/// `program` on `PATH`, where the helper is executed from.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The first IPv4 address of an interface other than `lo` in this network namespace.
pub fn first_address() -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        if ifa.interface_name == "lo" {
            return None;
        }
        let addr = ifa.address?;
        addr.as_sockaddr_in().map(|a| a.ip())
    })
}

/// The IPv4 default gateway of this network namespace, from `/proc/net/route` (which shows
/// the reading process's namespace).
pub fn default_gateway() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_default_gateway(&text)
}

fn parse_default_gateway(text: &str) -> Option<Ipv4Addr> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || f[1] != "00000000" {
            return None;
        }
        // Little-endian hex, as the kernel prints it.
        let raw = u32::from_str_radix(f[2], 16).ok()?;
        Some(Ipv4Addr::from(raw.swap_bytes()))
    })
}

/// Whether this network namespace has an IPv4 or IPv6 default route.
pub fn has_default_route() -> bool {
    default_gateway().is_some()
        || std::fs::read_to_string("/proc/net/ipv6_route").is_ok_and(|text| {
            text.lines().any(|l| {
                l.starts_with("00000000000000000000000000000000 00 ") && !l.contains(" lo")
            })
        })
}

/// The address `host-gateway` in `--add-host` and `host.containers.internal` stand for.
pub fn host_gateway(mode: &Mode, gateway: Option<Ipv4Addr>) -> Option<IpAddr> {
    match mode {
        Mode::Slirp4netns(_) => Some(IpAddr::V4(SLIRP_GATEWAY)),
        Mode::Pasta(_) => gateway.map(IpAddr::V4),
        Mode::Host => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
