//! Security-group rules: Canon keeps them flat (one protocol, one port range,
//! one peer); EC2 groups them into `IpPermission`s with several peers. This
//! module translates both ways, independent of the SDK's types, so that the
//! AWS adapter and the simulated cloud share one translation.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{CloudRef, Ipv4Cidr, Ipv6Cidr, Peer, Protocol, Rule};

use crate::CloudError;

/// One EC2 `IpPermission`, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// `tcp`, `udp`, `icmp`, `-1` or a protocol number.
    pub ip_protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidrs: Vec<String>,
    pub ipv6_cidrs: Vec<String>,
    pub prefix_lists: Vec<String>,
    pub groups: Vec<String>,
}

/// Groups resolved rules into permissions, one per protocol and port range.
/// Fails on a pending reference.
pub fn to_permissions(rules: &BTreeSet<Rule<CloudRef>>) -> Result<Vec<Permission>, CloudError> {
    let mut grouped: BTreeMap<(Protocol, i32, i32), Permission> = BTreeMap::new();
    for r in rules {
        let p = grouped
            .entry((r.protocol, r.from_port, r.to_port))
            .or_insert_with(|| Permission {
                ip_protocol: r.protocol.ec2_name(),
                from_port: r.protocol.has_ports().then_some(r.from_port),
                to_port: r.protocol.has_ports().then_some(r.to_port),
                ..Permission::default()
            });
        match &r.peer {
            Peer::Cidr(c) => p.cidrs.push(c.to_string()),
            Peer::Ipv6Cidr(c) => p.ipv6_cidrs.push(c.to_string()),
            Peer::PrefixList(l) => p.prefix_lists.push(l.clone()),
            Peer::Group(CloudRef::Id(g)) => p.groups.push(g.clone()),
            Peer::Group(CloudRef::Pending(l)) => {
                return Err(CloudError::terminal(
                    crate::error::UNRESOLVED,
                    format!("rule refers to {l}, which has not been created"),
                ))
            }
        }
    }
    Ok(grouped.into_values().collect())
}

/// Flattens permissions into rules. What the model cannot express (an
/// unknown protocol, a malformed range) is returned separately (as
/// `protocol ports peer` text) so the caller can log it rather than silently
/// drop it.
pub fn from_permissions(perms: &[Permission]) -> (BTreeSet<Rule<String>>, Vec<String>) {
    let mut rules = BTreeSet::new();
    let mut unsupported = Vec::new();
    for p in perms {
        let Some(protocol) = Protocol::parse(&p.ip_protocol) else {
            unsupported.push(format!("protocol {:?}", p.ip_protocol));
            continue;
        };
        let from = p.from_port.unwrap_or(-1);
        let to = p.to_port.unwrap_or(-1);
        for c in &p.cidrs {
            match c.parse::<Ipv4Cidr>() {
                Ok(cidr) => {
                    rules.insert(Rule::new(protocol, from, to, Peer::Cidr(cidr)));
                }
                Err(_) => unsupported.push(format!("{} {from}-{to} {c}", p.ip_protocol)),
            }
        }
        for c in &p.ipv6_cidrs {
            match c.parse::<Ipv6Cidr>() {
                Ok(cidr) => {
                    rules.insert(Rule::new(protocol, from, to, Peer::Ipv6Cidr(cidr)));
                }
                Err(_) => unsupported.push(format!("{} {from}-{to} {c}", p.ip_protocol)),
            }
        }
        for l in &p.prefix_lists {
            rules.insert(Rule::new(protocol, from, to, Peer::PrefixList(l.clone())));
        }
        for g in &p.groups {
            rules.insert(Rule::new(protocol, from, to, Peer::Group(g.clone())));
        }
    }
    (rules, unsupported)
}

/// Maps resolved rules to rules over plain cloud ids; fails on a pending one.
pub fn resolved_rules(
    rules: &BTreeSet<Rule<CloudRef>>,
) -> Result<BTreeSet<Rule<String>>, CloudError> {
    rules
        .iter()
        .map(|r| r.try_map_peer(|g| crate::refs::id(g).map(str::to_string)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_through_permissions() {
        let any = Ipv4Cidr::ANY;
        let rules: BTreeSet<Rule<CloudRef>> = [
            Rule::new(Protocol::Tcp, 80, 80, Peer::Cidr(any)),
            Rule::new(Protocol::Tcp, 80, 80, Peer::Cidr(cidr("10.0.0.0/8"))),
            Rule::new(Protocol::Tcp, 443, 443, Peer::Cidr(any)),
            Rule::new(
                Protocol::All,
                0,
                65535,
                Peer::Group(CloudRef::Id("sg-1".into())),
            ),
        ]
        .into_iter()
        .collect();
        let perms = to_permissions(&rules).unwrap();
        assert_eq!(perms.len(), 3, "{perms:?}");
        let http = perms.iter().find(|p| p.from_port == Some(80)).unwrap();
        assert_eq!(http.cidrs.len(), 2);
        let all = perms.iter().find(|p| p.ip_protocol == "-1").unwrap();
        assert_eq!((all.from_port, all.to_port), (None, None));
        let (back, unsupported) = from_permissions(&perms);
        assert!(unsupported.is_empty());
        let expected: BTreeSet<Rule<String>> = rules
            .iter()
            .map(|r| r.map_peer(|g| g.id().unwrap().to_string()))
            .collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn numeric_protocols_ipv6_ranges_prefix_lists_and_malformed_peers() {
        let perms = vec![Permission {
            ip_protocol: "6".into(),
            from_port: Some(22),
            to_port: Some(22),
            cidrs: vec!["0.0.0.0/0".into(), "10.0.0.1/8".into()],
            ipv6_cidrs: vec!["::/0".into(), "not-a-range".into()],
            prefix_lists: vec!["pl-123".into()],
            ..Permission::default()
        }];
        let (rules, unsupported) = from_permissions(&perms);
        let expected: BTreeSet<Rule<String>> = [
            Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(Ipv4Cidr::ANY)),
            Rule::new(Protocol::Tcp, 22, 22, Peer::Ipv6Cidr(Ipv6Cidr::ANY)),
            Rule::new(Protocol::Tcp, 22, 22, Peer::PrefixList("pl-123".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(rules, expected);
        assert_eq!(
            unsupported,
            vec![
                "6 22-22 10.0.0.1/8".to_string(),
                "6 22-22 not-a-range".to_string()
            ]
        );
        // And back: one permission with every kind of peer.
        let back: BTreeSet<Rule<CloudRef>> = rules
            .iter()
            .map(|r| r.map_peer(|g| CloudRef::Id(g.clone())))
            .collect();
        let perms = to_permissions(&back).unwrap();
        assert_eq!(perms.len(), 1);
        assert_eq!(perms[0].ipv6_cidrs, vec!["::/0".to_string()]);
        assert_eq!(perms[0].prefix_lists, vec!["pl-123".to_string()]);
    }

    #[test]
    fn pending_peers_are_refused() {
        let fid = canon_model::Fid::random();
        let rules: BTreeSet<Rule<CloudRef>> = [Rule::new(
            Protocol::Tcp,
            1,
            2,
            Peer::Group(CloudRef::Pending(canon_model::LogicalId::new(fid, "x"))),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            to_permissions(&rules).unwrap_err().code,
            crate::error::UNRESOLVED
        );
    }
}
