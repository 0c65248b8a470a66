//! IP protocols as EC2 names them, shared by security-group rules and
//! network ACL entries (apart from both, so neither depends on the other).

use serde::{Deserialize, Serialize};

/// An IP protocol as security-group rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol (`-1`); ports do not apply.
    All,
    /// Any other protocol by number.
    Number(u8),
}

impl Protocol {
    /// The protocol as EC2 spells it in `IpProtocol`.
    pub fn ec2_name(self) -> String {
        match self {
            Protocol::Tcp => "tcp".into(),
            Protocol::Udp => "udp".into(),
            Protocol::Icmp => "icmp".into(),
            Protocol::All => "-1".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }

    /// Parses EC2's spelling (`tcp`, `6`, `-1`, `all`, ...).
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "icmp" | "1" => Protocol::Icmp,
            "-1" | "all" => Protocol::All,
            other => Protocol::Number(other.parse().ok()?),
        })
    }

    /// Whether `FromPort`/`ToPort` mean anything for this protocol.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Icmp)
    }
}
