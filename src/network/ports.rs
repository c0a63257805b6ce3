//! Published ports: `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]`, `-P`, and how `ps`,
//! `port` and `inspect` show them.
//!
//! Parsing follows Docker's (`go-connections/nat.ParsePortSpec`): the spec is split at its
//! colons, the last part being the container port, the one before it the host port and all
//! the rest the address, so `::1:8080:80` and `[::1]:8080:80` both listen on `::1`. What
//! nook cannot do is refused with the reason instead of being half done: sctp (the rootless
//! network helpers forward tcp and udp only) and a host port range for one container port
//! (Docker picks one free port from the range at start; the runtime chooses from the whole
//! ephemeral range instead).

use std::cmp::Ordering;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One published port (ranges are stored expanded, one mapping per port).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// The host address to listen on; empty means every address (`0.0.0.0`, as Docker).
    pub host_ip: String,
    /// 0 in a container's config: a free port is chosen when it starts.
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    pub fn new(host_ip: &str, host_port: u16, container_port: u16, protocol: Protocol) -> Self {
        PortMapping {
            host_ip: host_ip.into(),
            host_port,
            container_port,
            protocol,
        }
    }

    /// `80/tcp`: the key Docker's `PortBindings`, `ExposedPorts` and `Ports` maps use.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol.name())
    }

    /// The host address as Docker shows a binding: `0.0.0.0` for every address.
    pub fn shown_host_ip(&self) -> &str {
        if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        }
    }

    /// `0.0.0.0:8080`, `[::1]:8080`: where the port listens on the host.
    pub fn host_address(&self) -> String {
        join_host_port(self.shown_host_ip(), self.host_port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error(
        "invalid port specification `{spec}`: no container port; use [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. 8080:80 or 127.0.0.1::53/udp"
    )]
    NoContainerPort { spec: String },
    #[error(
        "invalid {role} port `{port}` in `{spec}`: a port is a number from 1 to 65535, a range is FIRST-LAST such as 8000-8010"
    )]
    BadPort {
        spec: String,
        role: &'static str,
        port: String,
    },
    #[error(
        "`{spec}` has an address but no host port: write {ip}::{container} to have a free host port chosen, or {ip}:HOST_PORT:{container}"
    )]
    AddressWithoutHostPort {
        spec: String,
        ip: String,
        container: String,
    },
    #[error("invalid port range `{range}` in `{spec}`: the first port is the lower one ({fixed})")]
    ReversedRange {
        spec: String,
        range: String,
        fixed: String,
    },
    #[error(
        "the host ports `{host}` and the container ports `{container}` in `{spec}` are ranges of different lengths: give ranges of equal length, e.g. 8080-8082:80-82"
    )]
    RangeMismatch {
        spec: String,
        host: String,
        container: String,
    },
    #[error(
        "`{spec}` asks for any one free host port from {host} for container port {container}, which nook does not support: give one host port ({first}:{container}), or none to have a free one chosen ({container})"
    )]
    HostRangeForOnePort {
        spec: String,
        host: String,
        first: u16,
        container: u16,
    },
    #[error(
        "cannot publish `{spec}`: nook forwards only tcp and udp (its rootless network helpers cannot carry sctp); use /tcp or /udp"
    )]
    Sctp { spec: String },
    #[error("unknown protocol `{protocol}` in `{spec}`: use tcp or udp, e.g. 53:53/udp")]
    UnknownProtocol { spec: String, protocol: String },
    #[error(
        "invalid IP address `{ip}` in `{spec}`: give a numeric address such as 127.0.0.1 or [::1] (host names are not accepted)"
    )]
    BadIp { spec: String, ip: String },
    #[error(
        "invalid publish option `{param}` in `{spec}`: the long form is published=HOST_PORT,target=CONTAINER_PORT[,protocol=tcp|udp]"
    )]
    BadLongForm { spec: String, param: String },
    #[error(
        "host port {host} is published twice (for container ports {first} and {second}): give each mapping its own host port"
    )]
    DuplicateHostPort {
        host: String,
        first: String,
        second: String,
    },
    #[error("invalid port `{spec}`: give PRIVATE_PORT[/PROTO], e.g. 80 or 53/udp")]
    BadFilter { spec: String },
    // Docker's wording, which scripts match.
    #[error("No public port '{port}' published for {container}")]
    NotPublished { port: String, container: String },
}

/// Parses one `-p` value into its mappings, one per port of a range, in container port
/// order. Forms: `80`, `80/udp`, `8080:80`, `0:80` and `:80` (host port chosen at start),
/// `127.0.0.1:8080:80`, `127.0.0.1::80`, `[::1]:8080:80`, `::1:8080:80`,
/// `8080-8082:80-82`, `80-82`, and Docker's long form `published=8080,target=80,protocol=udp`.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, PortError> {
    if spec.contains('=') {
        let standard = long_form_to_standard(spec)?;
        return parse_standard(spec, &standard);
    }
    parse_standard(spec, spec)
}

/// Docker's `published=8080,target=80,protocol=udp` as `8080:80/udp`.
fn long_form_to_standard(spec: &str) -> Result<String, PortError> {
    let (mut published, mut target, mut protocol) = ("", "", "tcp");
    for param in spec.split(',') {
        let bad = || PortError::BadLongForm {
            spec: spec.to_string(),
            param: param.to_string(),
        };
        let (key, value) = param.split_once('=').ok_or_else(bad)?;
        match key {
            "published" => published = value,
            "target" => target = value,
            "protocol" => protocol = value,
            // Swarm's ingress/host choice: a container's ports are always the host's.
            "mode" => {}
            _ => return Err(bad()),
        }
    }
    Ok(format!("{published}:{target}/{protocol}"))
}

/// `standard` is `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`; errors name `spec`, as typed.
fn parse_standard(spec: &str, standard: &str) -> Result<Vec<PortMapping>, PortError> {
    let parts: Vec<&str> = standard.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [rest @ .., h, c] => (&standard[..rest.join(":").len()], *h, *c),
        [] => unreachable!("split yields at least one part"),
    };
    let (container, protocol) = split_protocol(spec, container)?;
    if container.is_empty() {
        return Err(PortError::NoContainerPort {
            spec: spec.to_string(),
        });
    }
    let host_ip = parse_host_ip(spec, ip)?;
    let (first, last) = parse_range(spec, "container", container)?;
    if host.parse::<IpAddr>().is_ok() {
        return Err(PortError::AddressWithoutHostPort {
            spec: spec.to_string(),
            ip: host.to_string(),
            container: container.to_string(),
        });
    }
    let host_ports: Vec<u16> = if host.is_empty() || host == "0" {
        vec![0; usize::from(last - first) + 1]
    } else {
        let (host_first, host_last) = parse_range(spec, "host", host)?;
        if host_last - host_first != last - first {
            if first == last {
                return Err(PortError::HostRangeForOnePort {
                    spec: spec.to_string(),
                    host: host.to_string(),
                    first: host_first,
                    container: first,
                });
            }
            return Err(PortError::RangeMismatch {
                spec: spec.to_string(),
                host: host.to_string(),
                container: container.to_string(),
            });
        }
        (host_first..=host_last).collect()
    };
    Ok((first..=last)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortMapping {
            host_ip: host_ip.clone(),
            host_port,
            container_port,
            protocol,
        })
        .collect())
}

/// `80/udp` → ("80", Udp); no protocol means tcp, as in Docker (`80/` too).
fn split_protocol<'a>(spec: &str, text: &'a str) -> Result<(&'a str, Protocol), PortError> {
    let Some((port, protocol)) = text.split_once('/') else {
        return Ok((text, Protocol::Tcp));
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => {
            return Err(PortError::Sctp {
                spec: spec.to_string(),
            });
        }
        _ => {
            return Err(PortError::UnknownProtocol {
                spec: spec.to_string(),
                protocol: protocol.to_string(),
            });
        }
    };
    Ok((port, protocol))
}

/// The address part: empty (every address), or an IPv4 or IPv6 address, the latter with or
/// without brackets; stored in its canonical form (`::1` for `0:0:0:0:0:0:0:1`).
fn parse_host_ip(spec: &str, text: &str) -> Result<String, PortError> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let bad = || PortError::BadIp {
        spec: spec.to_string(),
        ip: text.to_string(),
    };
    let bare = match text.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None => text,
    };
    bare.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| bad())
}

/// `80` → (80, 80); `80-82` → (80, 82). Port 0 only ever means "choose one", which the
/// caller handles for a single host port; anywhere else it is an error.
fn parse_range(spec: &str, role: &'static str, text: &str) -> Result<(u16, u16), PortError> {
    let bad = || PortError::BadPort {
        spec: spec.to_string(),
        role,
        port: text.to_string(),
    };
    let number = |s: &str| -> Result<u16, PortError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad()),
            Ok(n) => Ok(n),
        }
    };
    let (first, last) = match text.split_once('-') {
        None => {
            let n = number(text)?;
            (n, n)
        }
        Some((a, b)) => (number(a)?, number(b)?),
    };
    if first > last {
        return Err(PortError::ReversedRange {
            spec: spec.to_string(),
            range: text.to_string(),
            fixed: format!("{last}-{first}"),
        });
    }
    Ok((first, last))
}

/// The ports an image exposes (`config.ExposedPorts`, `{"80/tcp": {}}`) as mappings to host
/// ports chosen at start, for `-P`; sorted. Entries nook cannot publish (sctp) or cannot
/// read are left out: the image is not the user's input to correct.
pub fn exposed_ports(image_config: &Value) -> Vec<PortMapping> {
    let Some(exposed) = image_config
        .pointer("/config/ExposedPorts")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let mut ports: Vec<PortMapping> = exposed
        .keys()
        .filter_map(|key| parse_standard(key, key).ok())
        .flatten()
        .map(|m| PortMapping {
            host_ip: String::new(),
            host_port: 0,
            ..m
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// The container's published ports: every explicit `-p` mapping, then each `-P` mapping
/// whose container port and protocol no explicit one already publishes. Two explicit
/// mappings may not claim the same host port and protocol on overlapping addresses.
pub fn merge(
    explicit: Vec<PortMapping>,
    publish_all: Vec<PortMapping>,
) -> Result<Vec<PortMapping>, PortError> {
    for (i, a) in explicit.iter().enumerate() {
        let Some(b) = explicit[..i].iter().find(|b| claims_same_host_port(a, b)) else {
            continue;
        };
        return Err(PortError::DuplicateHostPort {
            host: format!("{}/{}", a.host_address(), a.protocol.name()),
            first: b.key(),
            second: a.key(),
        });
    }
    let mut merged = explicit;
    for extra in publish_all {
        let published = merged
            .iter()
            .any(|m| m.container_port == extra.container_port && m.protocol == extra.protocol);
        if !published {
            merged.push(extra);
        }
    }
    Ok(merged)
}

/// Whether two mappings would listen on the same host port: same protocol and port (0 is
/// chosen at start, so never a clash) on the same address or one covering the other.
fn claims_same_host_port(a: &PortMapping, b: &PortMapping) -> bool {
    if a.host_port == 0 || a.host_port != b.host_port || a.protocol != b.protocol {
        return false;
    }
    let (Some(ip_a), Some(ip_b)) = (listen_addr(a), listen_addr(b)) else {
        // "" listens on every address, so it overlaps any other.
        return true;
    };
    ip_a == ip_b
        || (ip_a.is_unspecified() && ip_a.is_ipv4() == ip_b.is_ipv4())
        || (ip_b.is_unspecified() && ip_a.is_ipv4() == ip_b.is_ipv4())
}

/// The address a mapping names; None for every address.
fn listen_addr(m: &PortMapping) -> Option<IpAddr> {
    m.host_ip.parse().ok()
}

/// The address used for ordering and grouping, as Docker's daemon reports it.
fn shown_addr(m: &PortMapping) -> IpAddr {
    listen_addr(m).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Docker's `ps` PORTS column (`DisplayablePorts`): sorted by container port, address, host
/// port and protocol; a port published on the same number it has inside is grouped with
/// its neighbours (`0.0.0.0:8080-8081->8080-8081/tcp`), the others are listed one by one
/// after the groups (`0.0.0.0:9000->80/tcp`).
pub fn format_ps(ports: &[PortMapping]) -> String {
    let mut sorted: Vec<&PortMapping> = ports.iter().collect();
    sorted.sort_by(|a, b| {
        a.container_port
            .cmp(&b.container_port)
            .then_with(|| shown_addr(a).cmp(&shown_addr(b)))
            .then_with(|| a.host_port.cmp(&b.host_port))
            .then_with(|| a.protocol.cmp(&b.protocol))
    });
    struct Group {
        /// None for a port without a host side (not published).
        ip: Option<String>,
        protocol: Protocol,
        first: u16,
        last: u16,
    }
    let form = |g: &Group| {
        let mut ports = g.first.to_string();
        if g.first != g.last {
            ports = format!("{ports}-{}", g.last);
        }
        match &g.ip {
            Some(ip) => format!(
                "{}->{ports}/{}",
                join_host_port(ip, ports.as_str()),
                g.protocol.name()
            ),
            None => format!("{ports}/{}", g.protocol.name()),
        }
    };
    let mut groups: Vec<Group> = Vec::new();
    let mut closed = Vec::new();
    let mut one_by_one = Vec::new();
    for m in sorted {
        let ip = (m.host_port != 0).then(|| shown_addr(m).to_string());
        if ip.is_some() && m.host_port != m.container_port {
            one_by_one.push(format!(
                "{}->{}/{}",
                join_host_port(&shown_addr(m).to_string(), m.host_port),
                m.container_port,
                m.protocol.name()
            ));
            continue;
        }
        let current = m.container_port;
        match groups
            .iter_mut()
            .find(|g| g.ip == ip && g.protocol == m.protocol)
        {
            None => groups.push(Group {
                ip,
                protocol: m.protocol,
                first: current,
                last: current,
            }),
            Some(g) if u32::from(current) == u32::from(g.last) + 1 => g.last = current,
            // Docker closes the run and starts a new one that keeps the old one's place.
            Some(g) => {
                closed.push(form(g));
                g.first = current;
                g.last = current;
            }
        }
    }
    closed.extend(groups.iter().map(form));
    closed.extend(one_by_one);
    closed.join(", ")
}

/// `nook port PRIVATE_PORT[/PROTO]`'s argument: (80, None) for `80`, (53, Some(Udp)) for
/// `53/udp`. Without a protocol Docker looks for tcp.
pub fn parse_port_filter(spec: &str) -> Result<(u16, Option<Protocol>), PortError> {
    let bad = || PortError::BadFilter {
        spec: spec.to_string(),
    };
    let (port, protocol) = match spec.split_once('/') {
        None => (spec, None),
        Some((port, _)) => {
            let (_, protocol) = split_protocol(spec, spec)?;
            (port, Some(protocol))
        }
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((port, protocol))
}

/// What `nook port CONTAINER [PRIVATE_PORT[/PROTO]]` prints, one entry a line, in Docker's
/// natural order: `80/tcp -> 0.0.0.0:8080` for every port, or only `0.0.0.0:8080` for the
/// one asked for (tcp when no protocol is given), which must be published.
pub fn format_port_command(
    container: &str,
    ports: &[PortMapping],
    filter: Option<(u16, Option<Protocol>)>,
) -> Result<Vec<String>, PortError> {
    let mut lines: Vec<String> = match filter {
        None => ports
            .iter()
            .map(|m| format!("{} -> {}", m.key(), m.host_address()))
            .collect(),
        Some((port, protocol)) => {
            let wanted = protocol.unwrap_or(Protocol::Tcp);
            let lines: Vec<String> = ports
                .iter()
                .filter(|m| m.container_port == port && m.protocol == wanted)
                .map(PortMapping::host_address)
                .collect();
            if lines.is_empty() {
                let port = match protocol {
                    Some(p) => format!("{port}/{}", p.name()),
                    None => port.to_string(),
                };
                return Err(PortError::NotPublished {
                    port,
                    container: container.to_string(),
                });
            }
            lines
        }
    };
    lines.sort_by(|a, b| natural_cmp(a, b));
    Ok(lines)
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(ip: &str, port: impl std::fmt::Display) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The order of `sortorder.NaturalLess`, which `docker port` sorts with: runs of digits
/// compare as numbers (and come before other characters), everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let ordering = (i - start_a)
            .cmp(&(j - start_b))
            .then_with(|| a[start_a..i].cmp(&b[start_b..j]))
            // Equal numbers: fewer leading zeros first.
            .then_with(|| start_a.cmp(&start_b));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(ip: &str, host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.to_string(),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    fn tcp(ip: &str, host: u16, container: u16) -> PortMapping {
        m(ip, host, container, Protocol::Tcp)
    }

    fn udp(ip: &str, host: u16, container: u16) -> PortMapping {
        m(ip, host, container, Protocol::Udp)
    }

    fn parse(spec: &str) -> Vec<PortMapping> {
        parse_publish(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn every_docker_form_parses() {
        assert_eq!(parse("80"), [tcp("", 0, 80)]);
        assert_eq!(parse("80/udp"), [udp("", 0, 80)]);
        assert_eq!(parse("80/UDP"), [udp("", 0, 80)]);
        assert_eq!(parse("80/"), [tcp("", 0, 80)]);
        assert_eq!(parse("8080:80"), [tcp("", 8080, 80)]);
        assert_eq!(parse("8080:80/tcp"), [tcp("", 8080, 80)]);
        assert_eq!(parse("0:80"), [tcp("", 0, 80)]);
        assert_eq!(parse(":80"), [tcp("", 0, 80)]);
        assert_eq!(parse("::80"), [tcp("", 0, 80)]);
        assert_eq!(parse("127.0.0.1:8080:80"), [tcp("127.0.0.1", 8080, 80)]);
        assert_eq!(parse("127.0.0.1::80"), [tcp("127.0.0.1", 0, 80)]);
        assert_eq!(parse("127.0.0.1::53/udp"), [udp("127.0.0.1", 0, 53)]);
        assert_eq!(parse("0.0.0.0:8080:80"), [tcp("0.0.0.0", 8080, 80)]);
        assert_eq!(parse("[::1]:8080:80"), [tcp("::1", 8080, 80)]);
        assert_eq!(parse("[::1]::80"), [tcp("::1", 0, 80)]);
        assert_eq!(parse("::1:8080:80"), [tcp("::1", 8080, 80)]);
        assert_eq!(parse("::1::80/udp"), [udp("::1", 0, 80)]);
        assert_eq!(parse("[::]:8080:80"), [tcp("::", 8080, 80)]);
        assert_eq!(parse("[127.0.0.1]:8080:80"), [tcp("127.0.0.1", 8080, 80)]);
        // Addresses are stored canonically.
        assert_eq!(parse("[0:0:0:0:0:0:0:1]:1:2"), [tcp("::1", 1, 2)]);
        assert_eq!(parse("65535:1"), [tcp("", 65535, 1)]);
        assert_eq!(parse("080:080"), [tcp("", 80, 80)]);
    }

    #[test]
    fn ranges_are_expanded() {
        assert_eq!(
            parse("8080-8082:80-82"),
            [tcp("", 8080, 80), tcp("", 8081, 81), tcp("", 8082, 82)]
        );
        assert_eq!(
            parse("80-82"),
            [tcp("", 0, 80), tcp("", 0, 81), tcp("", 0, 82)]
        );
        assert_eq!(
            parse("127.0.0.1::5000-5001/udp"),
            [udp("127.0.0.1", 0, 5000), udp("127.0.0.1", 0, 5001)]
        );
        assert_eq!(parse("8080-8080:80"), [tcp("", 8080, 80)]);
        assert_eq!(parse("80-80"), [tcp("", 0, 80)]);
        assert_eq!(parse("1-65535").len(), 65535);
    }

    #[test]
    fn the_long_form_is_docker_s() {
        assert_eq!(parse("published=8080,target=80"), [tcp("", 8080, 80)]);
        assert_eq!(
            parse("target=53,published=5353,protocol=udp,mode=host"),
            [udp("", 5353, 53)]
        );
        assert_eq!(parse("target=80"), [tcp("", 0, 80)]);
        assert!(matches!(
            parse_publish("published=8080"),
            Err(PortError::NoContainerPort { .. })
        ));
        assert_eq!(
            parse_publish("target=80,color=red")
                .unwrap_err()
                .to_string(),
            "invalid publish option `color=red` in `target=80,color=red`: the long form is published=HOST_PORT,target=CONTAINER_PORT[,protocol=tcp|udp]"
        );
        assert!(matches!(
            parse_publish("target=80,published"),
            Err(PortError::BadLongForm { .. })
        ));
        // Errors name the spec as typed.
        assert_eq!(
            parse_publish("target=0").unwrap_err().to_string(),
            "invalid container port `0` in `target=0`: a port is a number from 1 to 65535, a range is FIRST-LAST such as 8000-8010"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_how_to_fix_it() {
        let err = |spec: &str| {
            parse_publish(spec)
                .map(|v| panic!("{spec} parsed as {v:?}"))
                .unwrap_err()
        };
        assert_eq!(
            err("").to_string(),
            "invalid port specification ``: no container port; use [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. 8080:80 or 127.0.0.1::53/udp"
        );
        assert!(matches!(err("8080:"), PortError::NoContainerPort { .. }));
        assert!(matches!(err("/udp"), PortError::NoContainerPort { .. }));
        assert_eq!(
            err("8080:0").to_string(),
            "invalid container port `0` in `8080:0`: a port is a number from 1 to 65535, a range is FIRST-LAST such as 8000-8010"
        );
        assert_eq!(
            err("8080:65536").to_string(),
            "invalid container port `65536` in `8080:65536`: a port is a number from 1 to 65535, a range is FIRST-LAST such as 8000-8010"
        );
        assert_eq!(
            err("70000:80"),
            PortError::BadPort {
                spec: "70000:80".into(),
                role: "host",
                port: "70000".into()
            }
        );
        for bad in [
            "http",
            "+80",
            "-80",
            "80-",
            "80-81-82",
            "8x",
            "8080:http",
            "0-2:80-82",
            "1:2:3:4",
        ] {
            assert!(
                matches!(
                    err(bad),
                    PortError::BadPort { .. } | PortError::BadIp { .. }
                ),
                "{bad}: {:?}",
                err(bad)
            );
        }
        assert_eq!(
            err("82-80").to_string(),
            "invalid port range `82-80` in `82-80`: the first port is the lower one (80-82)"
        );
        assert_eq!(
            err("8080-8081:80-82").to_string(),
            "the host ports `8080-8081` and the container ports `80-82` in `8080-8081:80-82` are ranges of different lengths: give ranges of equal length, e.g. 8080-8082:80-82"
        );
        assert_eq!(
            err("8080-8082:80").to_string(),
            "`8080-8082:80` asks for any one free host port from 8080-8082 for container port 80, which nook does not support: give one host port (8080:80), or none to have a free one chosen (80)"
        );
        assert_eq!(
            err("8080:80/sctp").to_string(),
            "cannot publish `8080:80/sctp`: nook forwards only tcp and udp (its rootless network helpers cannot carry sctp); use /tcp or /udp"
        );
        assert_eq!(
            err("80/http").to_string(),
            "unknown protocol `http` in `80/http`: use tcp or udp, e.g. 53:53/udp"
        );
        assert!(matches!(
            err("80/tcp/udp"),
            PortError::UnknownProtocol { .. }
        ));
        assert_eq!(
            err("localhost:8080:80").to_string(),
            "invalid IP address `localhost` in `localhost:8080:80`: give a numeric address such as 127.0.0.1 or [::1] (host names are not accepted)"
        );
        for bad in [
            "256.0.0.1:1:2",
            "[::1:1:2",
            "::1]:1:2",
            "fe80::1%eth0:1:2",
            "::1:80",
        ] {
            assert!(matches!(err(bad), PortError::BadIp { .. }), "{bad}");
        }
        assert_eq!(
            err("127.0.0.1:80").to_string(),
            "`127.0.0.1:80` has an address but no host port: write 127.0.0.1::80 to have a free host port chosen, or 127.0.0.1:HOST_PORT:80"
        );
    }

    #[test]
    fn exposed_ports_come_from_the_image_config() {
        let config = json!({"config": {"ExposedPorts": {
            "80/tcp": {}, "53/udp": {}, "443": {}, "9/sctp": {}, "junk": {}, "8000-8001/tcp": {}
        }}});
        assert_eq!(
            exposed_ports(&config),
            [
                udp("", 0, 53),
                tcp("", 0, 80),
                tcp("", 0, 443),
                tcp("", 0, 8000),
                tcp("", 0, 8001)
            ]
        );
        assert!(exposed_ports(&json!({"config": {}})).is_empty());
        assert!(exposed_ports(&json!({"config": {"ExposedPorts": null}})).is_empty());
        assert!(exposed_ports(&json!({})).is_empty());
    }

    #[test]
    fn explicit_mappings_win_over_publish_all() {
        let merged = merge(
            vec![tcp("", 8080, 80), udp("", 0, 53)],
            vec![
                tcp("", 0, 80),
                udp("", 0, 53),
                tcp("", 0, 53),
                tcp("", 0, 443),
            ],
        )
        .unwrap();
        assert_eq!(
            merged,
            [
                tcp("", 8080, 80),
                udp("", 0, 53),
                tcp("", 0, 53),
                tcp("", 0, 443)
            ]
        );
        assert_eq!(merge(vec![], vec![]).unwrap(), []);
        // One container port on two host ports is fine, as in Docker.
        assert_eq!(
            merge(vec![tcp("", 8080, 80), tcp("", 9090, 80)], vec![])
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_host_port_is_published_once() {
        let dup = |a: PortMapping, b: PortMapping| merge(vec![a, b], vec![]);
        assert_eq!(
            dup(tcp("", 8080, 80), tcp("", 8080, 81))
                .unwrap_err()
                .to_string(),
            "host port 0.0.0.0:8080/tcp is published twice (for container ports 80/tcp and 81/tcp): give each mapping its own host port"
        );
        assert!(dup(tcp("", 8080, 80), tcp("127.0.0.1", 8080, 81)).is_err());
        assert!(dup(tcp("0.0.0.0", 8080, 80), tcp("127.0.0.1", 8080, 81)).is_err());
        assert!(dup(tcp("::", 8080, 80), tcp("::1", 8080, 81)).is_err());
        assert!(dup(tcp("127.0.0.1", 8080, 80), tcp("127.0.0.1", 8080, 81)).is_err());
        // Different protocol, address or port: no clash.
        assert!(dup(tcp("", 8080, 80), udp("", 8080, 80)).is_ok());
        assert!(dup(tcp("127.0.0.1", 8080, 80), tcp("127.0.0.2", 8080, 81)).is_ok());
        assert!(dup(tcp("0.0.0.0", 8080, 80), tcp("::1", 8080, 81)).is_ok());
        assert!(dup(tcp("", 8080, 80), tcp("", 8081, 80)).is_ok());
        // Host ports chosen at start never clash.
        assert!(dup(tcp("", 0, 80), tcp("", 0, 81)).is_ok());
        assert!(dup(tcp("", 0, 80), tcp("", 0, 80)).is_ok());
    }

    #[test]
    fn ps_shows_ports_as_docker_does() {
        assert_eq!(format_ps(&[]), "");
        assert_eq!(
            format_ps(&[udp("127.0.0.1", 9000, 9000), tcp("", 8080, 80)]),
            "127.0.0.1:9000->9000/udp, 0.0.0.0:8080->80/tcp"
        );
        // Runs of ports published on their own numbers are grouped.
        assert_eq!(
            format_ps(&[
                tcp("", 8081, 8081),
                tcp("", 8080, 8080),
                tcp("", 8082, 8082)
            ]),
            "0.0.0.0:8080-8082->8080-8082/tcp"
        );
        // Others are listed one by one, after the groups, as Docker does.
        assert_eq!(
            format_ps(&[tcp("", 8080, 80), tcp("", 8081, 81), tcp("", 443, 443)]),
            "0.0.0.0:443->443/tcp, 0.0.0.0:8080->80/tcp, 0.0.0.0:8081->81/tcp"
        );
        // A gap closes a run; the run that follows keeps the first one's place.
        assert_eq!(
            format_ps(&[
                tcp("", 1, 1),
                tcp("", 2, 2),
                tcp("", 4, 4),
                udp("", 3, 3),
                tcp("", 5, 5)
            ]),
            "0.0.0.0:1-2->1-2/tcp, 0.0.0.0:4-5->4-5/tcp, 0.0.0.0:3->3/udp"
        );
        // Addresses: IPv4 before IPv6, IPv6 in brackets.
        assert_eq!(
            format_ps(&[tcp("::", 80, 80), tcp("", 80, 80), tcp("::1", 8080, 80)]),
            "0.0.0.0:80->80/tcp, [::]:80->80/tcp, [::1]:8080->80/tcp"
        );
        assert_eq!(
            format_ps(&[tcp("::1", 80, 80), tcp("::1", 81, 81)]),
            "[::1]:80-81->80-81/tcp"
        );
        // tcp before udp on the same port.
        assert_eq!(
            format_ps(&[udp("", 53, 53), tcp("", 53, 53)]),
            "0.0.0.0:53->53/tcp, 0.0.0.0:53->53/udp"
        );
        // A port without a host side (not published) shows as Docker shows exposed ports.
        assert_eq!(
            format_ps(&[tcp("", 0, 80), tcp("", 0, 81), tcp("", 9000, 9000)]),
            "80-81/tcp, 0.0.0.0:9000->9000/tcp"
        );
        assert_eq!(
            format_ps(&[tcp("", 65535, 65535), tcp("", 65534, 65534)]),
            "0.0.0.0:65534-65535->65534-65535/tcp"
        );
    }

    #[test]
    fn port_command_output() {
        let ports = [
            tcp("", 8080, 80),
            udp("127.0.0.1", 9000, 9000),
            tcp("::1", 8443, 443),
            tcp("", 32768, 9),
            tcp("", 9090, 80),
        ];
        assert_eq!(
            format_port_command("web", &ports, None).unwrap(),
            [
                "9/tcp -> 0.0.0.0:32768",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> 0.0.0.0:9090",
                "443/tcp -> [::1]:8443",
                "9000/udp -> 127.0.0.1:9000",
            ]
        );
        assert_eq!(
            format_port_command("web", &ports, Some((80, None))).unwrap(),
            ["0.0.0.0:8080", "0.0.0.0:9090"]
        );
        assert_eq!(
            format_port_command("web", &ports, Some((80, Some(Protocol::Tcp)))).unwrap(),
            ["0.0.0.0:8080", "0.0.0.0:9090"]
        );
        assert_eq!(
            format_port_command("web", &ports, Some((9000, Some(Protocol::Udp)))).unwrap(),
            ["127.0.0.1:9000"]
        );
        // Without a protocol, tcp is meant.
        assert_eq!(
            format_port_command("web", &ports, Some((9000, None)))
                .unwrap_err()
                .to_string(),
            "No public port '9000' published for web"
        );
        assert_eq!(
            format_port_command("web", &ports, Some((80, Some(Protocol::Udp))))
                .unwrap_err()
                .to_string(),
            "No public port '80/udp' published for web"
        );
        assert_eq!(
            format_port_command("web", &[], None).unwrap(),
            [] as [String; 0]
        );
        assert!(format_port_command("web", &[], Some((80, None))).is_err());
    }

    #[test]
    fn port_filters() {
        assert_eq!(parse_port_filter("80"), Ok((80, None)));
        assert_eq!(parse_port_filter("80/tcp"), Ok((80, Some(Protocol::Tcp))));
        assert_eq!(parse_port_filter("53/UDP"), Ok((53, Some(Protocol::Udp))));
        assert_eq!(parse_port_filter("53/"), Ok((53, Some(Protocol::Tcp))));
        assert_eq!(
            parse_port_filter("http").unwrap_err().to_string(),
            "invalid port `http`: give PRIVATE_PORT[/PROTO], e.g. 80 or 53/udp"
        );
        for bad in ["", "80-81", "65536", "/tcp", "+80"] {
            assert!(
                matches!(parse_port_filter(bad), Err(PortError::BadFilter { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_port_filter("80/sctp"),
            Err(PortError::Sctp { .. })
        ));
        assert!(matches!(
            parse_port_filter("80/xyz"),
            Err(PortError::UnknownProtocol { .. })
        ));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["b", "a10", "a9", "a09", "9", "10", "a", "x1y2", "x1y10"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["9", "10", "a", "a9", "a09", "a10", "b", "x1y2", "x1y10"]
        );
    }

    #[test]
    fn mapping_helpers() {
        assert_eq!(tcp("", 8080, 80).key(), "80/tcp");
        assert_eq!(udp("", 0, 53).key(), "53/udp");
        assert_eq!(tcp("", 8080, 80).host_address(), "0.0.0.0:8080");
        assert_eq!(tcp("::1", 8080, 80).host_address(), "[::1]:8080");
        assert_eq!(tcp("127.0.0.1", 1, 2).shown_host_ip(), "127.0.0.1");
    }
}
