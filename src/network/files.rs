//! The container's `/etc/hosts` and `/etc/resolv.conf`, as text.

use std::net::IpAddr;

/// What the container's network files say about it.
#[derive(Debug, Clone)]
pub struct EtcNetwork<'a> {
    pub hostname: &'a str,
    pub name: &'a str,
    /// The container's own address (none without a helper: its names then point at
    /// 127.0.1.1, as Debian does for a host without a network).
    pub address: Option<IpAddr>,
    /// The address that reaches the host, for `host.containers.internal` and
    /// `--add-host NAME:host-gateway`; none when the host is out of reach.
    pub host_gateway: Option<IpAddr>,
    /// `--add-host NAME:IP`, as stored.
    pub add_hosts: &'a [String],
}

/// `/etc/hosts`. `host_hosts` is the host's file, which `--network host` starts from.
pub fn hosts_file(net: &EtcNetwork, host_hosts: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    match host_hosts {
        Some(text) => {
            out.push_str(text);
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
        }
        None => {
            out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
            let own = net
                .address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "127.0.1.1".to_string());
            if net.name.is_empty() || net.name == net.hostname {
                out.push_str(&format!("{own}\t{}\n", net.hostname));
            } else {
                out.push_str(&format!("{own}\t{} {}\n", net.hostname, net.name));
            }
        }
    }
    if let Some(gateway) = net.host_gateway {
        out.push_str(&format!(
            "{gateway}\thost.containers.internal host.docker.internal\n"
        ));
    }
    for entry in net.add_hosts {
        let (name, ip) = entry
            .split_once(':')
            .ok_or_else(|| format!("invalid --add-host `{entry}`: use NAME:IP"))?;
        let ip = if ip == "host-gateway" {
            net.host_gateway.map(|g| g.to_string()).ok_or_else(|| {
                format!(
                    "--add-host {name}:host-gateway needs a network that reaches the host: use --network pasta:--map-gw or slirp4netns:allow_host_loopback=true"
                )
            })?
        } else {
            ip.trim_matches(['[', ']']).to_string()
        };
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    Ok(out)
}

/// Where a container's DNS queries go unless `--dns` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolvers {
    /// The helper's forwarder at this address.
    Forwarder(IpAddr),
    /// The host's own servers where the container can reach them (any not on the host's
    /// loopback), else the helper's forwarder at this address (pasta: in Debian 12's
    /// version its forwarder loses the answers of a resolver on the host's loopback, so
    /// servers reached directly are the sturdier choice).
    HostElseForwarder(IpAddr),
    /// The host's own servers (the host's network namespace).
    Host,
    /// None: no network.
    Unreachable,
}

/// `/etc/resolv.conf`: the `--dns` servers, else `resolvers`; the host's `search` and
/// `options` lines are kept. No server at all (`--network none`) gives an empty file, so
/// lookups fail at once instead of timing out.
pub fn resolv_conf(dns: &[String], resolvers: Resolvers, host_resolv: &str) -> String {
    let servers: Vec<String> = if !dns.is_empty() {
        dns.to_vec()
    } else if let Resolvers::Forwarder(f) = resolvers {
        vec![f.to_string()]
    } else if let Resolvers::HostElseForwarder(f) = resolvers {
        let reachable: Vec<String> = host_servers(host_resolv)
            .into_iter()
            .filter(|s| s.parse::<IpAddr>().is_ok_and(|ip| !ip.is_loopback()))
            .collect();
        if reachable.is_empty() {
            vec![f.to_string()]
        } else {
            reachable
        }
    } else if resolvers == Resolvers::Unreachable {
        vec![]
    } else {
        host_servers(host_resolv)
    };
    if servers.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for line in host_resolv.lines() {
        let line = line.trim();
        if line.starts_with("search") || line.starts_with("options") {
            out.push_str(line);
            out.push('\n');
        }
    }
    for server in servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    out
}

fn host_servers(host_resolv: &str) -> Vec<String> {
    host_resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
