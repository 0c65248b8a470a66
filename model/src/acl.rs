//! Network ACL entries: numbered, per direction, allow or deny, one
//! protocol, a port range (or ICMP type and code), one IPv4 or IPv6 range.
//! An ACL's entries are a set, as a group's rules are, so a console-added
//! entry is drift; EC2 names an entry by its direction and number.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{IpCidr, Protocol};

/// The numbers an entry may have (32767 is EC2's own final deny).
pub const RULE_NUMBERS: std::ops::RangeInclusive<u16> = 1..=32766;

/// What an entry does with the traffic it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclAction {
    Allow,
    Deny,
}

impl AclAction {
    /// EC2's `RuleAction`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclAction::Allow => "allow",
            AclAction::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<AclAction> {
        match s {
            "allow" => Some(AclAction::Allow),
            "deny" => Some(AclAction::Deny),
            _ => None,
        }
    }
}

/// One entry of a network ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    /// Outbound (`true`) or inbound.
    pub egress: bool,
    pub rule_number: u16,
    pub protocol: Protocol,
    pub action: AclAction,
    pub range: IpCidr,
    /// First port (tcp, udp) or ICMP type; -1 when the protocol has none.
    pub from_port: i32,
    /// Last port (tcp, udp) or ICMP code; -1 when the protocol has none.
    pub to_port: i32,
}

/// Two numbers of an entry: a port range (from, to), or an ICMP type and
/// code.
pub type Pair = (i32, i32);

/// ICMPv6 by number: an entry for it names an ICMP type and code, as one
/// for ICMP does.
pub const ICMPV6: Protocol = Protocol::Number(58);

/// A protocol as a network ACL entry names it: EC2's spellings
/// (`Protocol::parse`), and `icmpv6` for protocol 58.
pub fn parse_protocol(s: &str) -> Option<Protocol> {
    if s.eq_ignore_ascii_case("icmpv6") {
        Some(ICMPV6)
    } else {
        Protocol::parse(s)
    }
}

/// Whether `protocol`'s entries name an ICMP type and code (in the port
/// fields) rather than ports.
fn uses_type_code(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::Icmp | ICMPV6)
}

/// Whether `protocol`'s entries name ports.
fn uses_ports(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::Tcp | Protocol::Udp)
}

impl AclEntry {
    /// An entry in canonical form: protocols with neither ports nor an
    /// ICMP type and code get -1/-1.
    pub fn new(
        egress: bool,
        rule_number: u16,
        protocol: Protocol,
        action: AclAction,
        range: IpCidr,
        (from_port, to_port): (i32, i32),
    ) -> Self {
        let (from_port, to_port) = if uses_ports(protocol) || uses_type_code(protocol) {
            (from_port, to_port)
        } else {
            (-1, -1)
        };
        AclEntry {
            egress,
            rule_number,
            protocol,
            action,
            range,
            from_port,
            to_port,
        }
    }

    /// An entry from the words a message spells it in (a compiled
    /// composition, a rogue request); the error says which word is wrong.
    pub fn from_words(
        egress: bool,
        rule_number: u32,
        (protocol, action, range): (&str, &str, &str),
        ports: Pair,
    ) -> Result<Self, String> {
        let number = u16::try_from(rule_number)
            .ok()
            .filter(|n| RULE_NUMBERS.contains(n))
            .ok_or_else(|| format!("rule number {rule_number} is not between 1 and 32766"))?;
        let protocol =
            parse_protocol(protocol).ok_or_else(|| format!("unknown protocol {protocol:?}"))?;
        let action = AclAction::parse(action)
            .ok_or_else(|| format!("action {action:?} is not allow or deny"))?;
        let range = IpCidr::parse_range(range)?;
        Ok(AclEntry::new(
            egress, number, protocol, action, range, ports,
        ))
    }

    /// An entry as EC2 describes it, with a port range and an ICMP type
    /// and code: the protocol says which of the two it has.
    pub fn described(
        egress: bool,
        rule_number: u16,
        protocol: Protocol,
        action: AclAction,
        range: IpCidr,
        (port_range, type_code): (Option<Pair>, Option<Pair>),
    ) -> Self {
        let ports = if uses_ports(protocol) {
            port_range
        } else {
            type_code
        };
        let ports = ports.unwrap_or((-1, -1));
        AclEntry::new(egress, rule_number, protocol, action, range, ports)
    }

    /// The direction, as EC2 and Canon's differences name it.
    pub fn direction(&self) -> &'static str {
        if self.egress {
            "egress"
        } else {
            "ingress"
        }
    }

    /// What names the entry in EC2: its direction and number.
    pub fn key(&self) -> (bool, u16) {
        (self.egress, self.rule_number)
    }

    /// The property a difference in this entry is reported under
    /// (`ingress.100`).
    pub fn property(&self) -> String {
        format!("{}.{}", self.direction(), self.rule_number)
    }

    /// The protocol as a network ACL takes it: a number, or -1.
    pub fn protocol_number(&self) -> String {
        match self.protocol {
            Protocol::Tcp => "6".into(),
            Protocol::Udp => "17".into(),
            Protocol::Icmp => "1".into(),
            Protocol::All => "-1".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }

    /// EC2's `PortRange` (from, to), for TCP and UDP.
    pub fn port_range(&self) -> Option<(i32, i32)> {
        uses_ports(self.protocol).then_some((self.from_port, self.to_port))
    }

    /// EC2's `IcmpTypeCode` (type, code), for ICMP and ICMPv6.
    pub fn icmp_type_code(&self) -> Option<(i32, i32)> {
        uses_type_code(self.protocol).then_some((self.from_port, self.to_port))
    }
}

impl fmt::Display for AclEntry {
    /// `allow tcp 443 0.0.0.0/0`, `deny all traffic ::/0`, `allow icmp 8/-1 0.0.0.0/0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.action.as_str())?;
        let name = match self.protocol {
            ICMPV6 => "icmpv6".to_string(),
            p => p.ec2_name(),
        };
        match (self.port_range(), self.icmp_type_code()) {
            _ if self.protocol == Protocol::All => f.write_str("all traffic")?,
            (Some((from, to)), _) if from == to => write!(f, "{name} {from}")?,
            (Some((from, to)), _) => write!(f, "{name} {from}-{to}")?,
            (_, Some((t, c))) => write!(f, "{name} {t}/{c}")?,
            (None, None) => f.write_str(&name)?,
        }
        write!(f, " {}", self.range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ipv4Cidr, Ipv6Cidr};

    #[test]
    fn entries_are_canonical_and_read_as_ec2_shows_them() {
        let any = IpCidr::V4(Ipv4Cidr::ANY);
        let all = AclEntry::new(false, 100, Protocol::All, AclAction::Allow, any, (80, 80));
        assert_eq!((all.from_port, all.to_port), (-1, -1));
        assert_eq!(all.to_string(), "allow all traffic 0.0.0.0/0");
        assert_eq!(all.protocol_number(), "-1");
        let https = AclEntry::new(true, 200, Protocol::Tcp, AclAction::Deny, any, (443, 443));
        assert_eq!(https.to_string(), "deny tcp 443 0.0.0.0/0");
        assert_eq!(
            (https.direction(), https.protocol_number()),
            ("egress", "6".into())
        );
        let v6 = IpCidr::V6(Ipv6Cidr::ANY);
        let ports = AclEntry::new(false, 1, Protocol::Udp, AclAction::Allow, v6, (1024, 65535));
        assert_eq!(ports.to_string(), "allow udp 1024-65535 ::/0");
        assert!(RULE_NUMBERS.contains(&32766) && !RULE_NUMBERS.contains(&32767));
        let ping6 = AclEntry::new(true, 7, ICMPV6, AclAction::Allow, v6, (128, 0));
        assert_eq!(ping6.to_string(), "allow icmpv6 128/0 ::/0");
        assert_eq!(
            (ping6.icmp_type_code(), ping6.port_range()),
            (Some((128, 0)), None)
        );
        assert_eq!(https.property(), "egress.200");
    }
}
