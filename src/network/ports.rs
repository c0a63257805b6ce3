//! Published ports: `-p [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]`, `-P`, and how `ps`,
//! `port` and `inspect` show them.

use serde::{Deserialize, Serialize};

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
