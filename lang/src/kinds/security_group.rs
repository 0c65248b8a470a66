//! Security groups (`Canon.AWS.EC2.SecurityGroup`): lowering, which checks
//! the description and every IP permission (protocol, ports, peers) the way
//! EC2 would, and encoding.

use std::collections::BTreeSet;

use canon_model::{Ipv4Cidr, Ipv6Cidr, Peer, Protocol, Rule, SecurityGroupSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{cidr_from_proto, tags_from_proto, tags_to_proto};
use super::lowering::{record_origin, region_of_vpc, Lowered, Lowering};
use crate::value::{ValOrigin, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "SecurityGroup";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let description = l.field("description").as_str().unwrap_or("").to_string();
    let n = description.chars().count();
    if n > 255 {
        l.error(format!(
            "Invalid SecurityGroup: description must be at most 255 characters (it has {n})"
        ));
    }
    let ingress = l.field("ipPermissions");
    let ingress = rules(l, &ingress);
    let egress = match l.field("ipPermissionsEgress") {
        Value::None => [Rule::allow_all_egress()].into_iter().collect(),
        e => rules(l, &e),
    };
    let region = region_of_vpc(&vpc);
    let group_name = match l.field("groupName").as_str() {
        Some(name) => name.to_string(),
        None => l.own_path(),
    };
    let spec = SecurityGroupSpec {
        vpc: l.path_of(&vpc)?,
        group_name,
        description,
        ingress: ingress.into(),
        egress: egress.into(),
        tags: l.tags(),
    };
    Some((region, Spec::SecurityGroup(spec)))
}

/// The rules of a list of `IpPermission` records; a permission with a
/// problem adds none.
fn rules(l: &mut Lowering<'_, '_>, permissions: &Value<'_>) -> BTreeSet<Rule<String>> {
    let mut out = BTreeSet::new();
    for p in permissions.as_list().unwrap_or(&[]) {
        let po = record_origin(p).unwrap_or(l.origin());
        let protocol_text = p
            .field("ipProtocol")
            .and_then(|x| x.as_str().map(String::from))
            .unwrap_or_default();
        let Some(protocol) = Protocol::parse(&protocol_text) else {
            l.error_at(po, format!("Invalid IpPermission: ipProtocol must be tcp, udp, icmp, -1 (all traffic) or a protocol number from 0 to 255, not \"{protocol_text}\""));
            continue;
        };
        let Some((from, to)) = ports(l, p, po, protocol, &protocol_text) else {
            continue;
        };
        for peer in peers(l, p, po) {
            out.insert(Rule::new(protocol, from, to, peer));
        }
    }
    out
}

/// A permission's port range (TCP, UDP) or ICMP type and code; -1 for
/// other protocols.
fn ports(
    l: &mut Lowering<'_, '_>,
    p: &Value<'_>,
    po: &ValOrigin<'_>,
    protocol: Protocol,
    protocol_text: &str,
) -> Option<(i32, i32)> {
    let from = p.field("fromPort").and_then(|x| x.as_int());
    let to = p.field("toPort").and_then(|x| x.as_int());
    let problem = match protocol {
        Protocol::Tcp | Protocol::Udp => match (from, to) {
            (Some(f), Some(t)) => match port_range_problem("Invalid IpPermission", f, t) {
                None => return Some((f as i32, t as i32)),
                Some(problem) => problem,
            },
            _ => format!(
                "Invalid IpPermission: fromPort and toPort are required for {protocol_text}"
            ),
        },
        Protocol::Icmp => {
            let ok = |n: Option<i64>| n.is_none_or(|n| (-1..=255).contains(&n));
            if ok(from) && ok(to) {
                return Some((from.unwrap_or(-1) as i32, to.unwrap_or(-1) as i32));
            }
            "Invalid IpPermission: ICMP type and code must be between -1 and 255".into()
        }
        _ => return Some((-1, -1)),
    };
    l.error_at(po, problem);
    None
}

/// What is wrong with a TCP or UDP port range, if anything, after
/// `what` (`Invalid IpPermission`).
pub(super) fn port_range_problem(what: &str, from: i64, to: i64) -> Option<String> {
    let bad = |n: i64| !(0..=65535).contains(&n);
    if bad(from) {
        Some(format!(
            "{what}: fromPort must be between 0 and 65535 (it is {from})"
        ))
    } else if bad(to) {
        Some(format!(
            "{what}: toPort must be between 0 and 65535 (it is {to})"
        ))
    } else if from > to {
        Some(format!(
            "{what}: fromPort ({from}) must not be greater than toPort ({to})"
        ))
    } else {
        None
    }
}

/// A permission's peers: its target's (IPv4 or IPv6 ranges, security
/// groups or prefix lists) and the prefix lists of its `prefixLists`.
fn peers(l: &mut Lowering<'_, '_>, p: &Value<'_>, po: &ValOrigin<'_>) -> Vec<Peer<String>> {
    let mut out = Vec::new();
    if let Value::Ctor(c) = &p.field("target").unwrap_or(Value::None) {
        if c.name == "Everyone" {
            // 0.0.0.0/0, and ::/0 where the group's VPC has IPv6.
            out.push(Peer::Cidr(Ipv4Cidr::ANY));
            let vpc = l.field("vpc");
            if vpc.field("ipv6").and_then(|v| v.as_bool()) == Some(true) {
                out.push(Peer::Ipv6Cidr(Ipv6Cidr::ANY));
            }
        }
        let items = c.payload.as_ref().and_then(|x| x.as_list()).unwrap_or(&[]);
        for item in items {
            let io = record_origin(item).unwrap_or(po);
            let peer = match c.name {
                "SecurityGroups" => l.path_of(item).map(Peer::Group).ok_or(None),
                "IpRanges" => text_of(item, "cidrIp")
                    .parse::<Ipv4Cidr>()
                    .map(Peer::Cidr)
                    .map_err(|e| Some(format!("Invalid IpRange: cidrIp {e}"))),
                "Ipv6Ranges" => text_of(item, "cidrIpv6")
                    .parse::<Ipv6Cidr>()
                    .map(Peer::Ipv6Cidr)
                    .map_err(|e| Some(format!("Invalid Ipv6Range: cidrIpv6 {e}"))),
                _ => prefix_list(item.as_str().unwrap_or_default()),
            };
            match peer {
                Ok(peer) => out.push(peer),
                Err(Some(problem)) => l.error_at(io, problem),
                Err(None) => {}
            }
        }
    }
    let lists = p.field("prefixLists").unwrap_or(Value::None);
    for id in lists.as_list().unwrap_or(&[]) {
        match prefix_list(id.as_str().unwrap_or_default()) {
            Ok(peer) => out.push(peer),
            Err(problem) => l.error_at(po, problem.unwrap_or_default()),
        }
    }
    out
}

/// The text of `item`'s field `name` ("" if it has none).
fn text_of(item: &Value<'_>, name: &str) -> String {
    item.field(name)
        .and_then(|x| x.as_str().map(String::from))
        .unwrap_or_default()
}

/// A managed prefix list peer, if `id` is one EC2 would take (`pl-` and
/// hex digits).
fn prefix_list(id: &str) -> Result<Peer<String>, Option<String>> {
    match id.strip_prefix("pl-") {
        Some(hex) if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(Peer::PrefixList(id.to_string()))
        }
        _ => Err(Some(format!(
            "Invalid prefix list: {id:?} is not a prefix list id (pl- and hex digits, as pl-63a5400a)"
        ))),
    }
}

fn rule_to_proto(r: &Rule<String>) -> pb::Rule {
    pb::Rule {
        protocol: r.protocol.ec2_name(),
        from_port: r.from_port,
        to_port: r.to_port,
        peer: Some(match &r.peer {
            Peer::Cidr(c) => pb::rule::Peer::Cidr(c.to_string()),
            Peer::Group(g) => pb::rule::Peer::Group(g.clone()),
            Peer::Ipv6Cidr(c) => pb::rule::Peer::Ipv6Cidr(c.to_string()),
            Peer::PrefixList(p) => pb::rule::Peer::PrefixList(p.clone()),
        }),
    }
}

fn rule_from_proto(r: pb::Rule) -> Result<Rule<String>, String> {
    let protocol =
        Protocol::parse(&r.protocol).ok_or_else(|| format!("bad protocol {:?}", r.protocol))?;
    let peer = match r.peer {
        Some(pb::rule::Peer::Cidr(c)) => Peer::Cidr(cidr_from_proto(&c)?),
        Some(pb::rule::Peer::Group(g)) => Peer::Group(g),
        Some(pb::rule::Peer::Ipv6Cidr(c)) => {
            Peer::Ipv6Cidr(c.parse::<Ipv6Cidr>().map_err(|e| e.to_string())?)
        }
        Some(pb::rule::Peer::PrefixList(p)) => Peer::PrefixList(p),
        None => return Err("rule without a peer".into()),
    };
    Ok(Rule::new(protocol, r.from_port, r.to_port, peer))
}

pub(super) fn to_proto(s: &SecurityGroupSpec<String>) -> pb::SecurityGroup {
    pb::SecurityGroup {
        vpc: s.vpc.clone(),
        group_name: s.group_name.clone(),
        description: s.description.clone(),
        ingress: s.ingress.iter().map(rule_to_proto).collect(),
        egress: s.egress.iter().map(rule_to_proto).collect(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::SecurityGroup) -> Result<SecurityGroupSpec<String>, String> {
    Ok(SecurityGroupSpec {
        vpc: s.vpc,
        group_name: s.group_name,
        description: s.description,
        ingress: s
            .ingress
            .into_iter()
            .map(rule_from_proto)
            .collect::<Result<_, _>>()?,
        egress: s
            .egress
            .into_iter()
            .map(rule_from_proto)
            .collect::<Result<_, _>>()?,
        tags: tags_from_proto(s.tags),
    })
}
