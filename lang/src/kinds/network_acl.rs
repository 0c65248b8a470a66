//! Network ACLs (`Canon.AWS.EC2.NetworkAcl`): lowering, which checks every
//! entry the way EC2 would (a number from 1 to 32766 given once per
//! direction, a protocol, its ports or ICMP type and code, one IPv4 or
//! IPv6 range) and that the ACL's subnets are in its VPC; the rule that
//! spans resources (a subnet is in one ACL); and encoding.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    parse_acl_protocol, AclAction, AclEntry, NetworkAclSpec, Protocol, Spec, RULE_NUMBERS,
};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{
    err_at, one_range, record_origin, region_of_vpc, resource_id, Lowered, Lowering, Paths,
};
use super::security_group::port_range_problem;
use crate::diag::Diagnostic;
use crate::value::{ResourceVal, ValOrigin, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "NetworkAcl";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let mut entries = BTreeSet::new();
    for (egress, direction) in [(false, "ingress"), (true, "egress")] {
        let mut numbered: BTreeMap<u16, AclEntry> = BTreeMap::new();
        for ev in l.field(direction).as_list().unwrap_or(&[]) {
            let origin = record_origin(ev).unwrap_or(l.origin());
            let Some(e) = entry(l, ev, origin, egress) else {
                continue;
            };
            if let Some(first) = numbered.get(&e.rule_number) {
                l.error_at(
                    origin,
                    format!(
                        "Invalid NetworkAcl: {direction} rule number {} is given twice ({first}, then {e}); each number names one entry of its direction",
                        e.rule_number
                    ),
                );
                continue;
            }
            numbered.insert(e.rule_number, e.clone());
            entries.insert(e);
        }
    }
    let subnets = l.field("associations");
    for s in subnets.as_list().unwrap_or(&[]) {
        if resource_id(&s.field("vpc").unwrap_or(Value::None)) != resource_id(&vpc) {
            let subnet = l.path_of(s).unwrap_or_default();
            l.error(format!(
                "Invalid NetworkAcl: subnet {subnet} is not in the network ACL's VPC"
            ));
        }
    }
    let spec = NetworkAclSpec {
        vpc: l.path_of(&vpc)?,
        entries: entries.into(),
        associations: l.paths_of(&subnets),
        tags: l.tags(),
    };
    Some((region_of_vpc(&vpc), Spec::NetworkAcl(spec)))
}

/// One `NetworkAclEntry` record, checked.
fn entry(
    l: &mut Lowering<'_, '_>,
    ev: &Value<'_>,
    origin: &ValOrigin<'_>,
    egress: bool,
) -> Option<AclEntry> {
    let int = |name: &str| ev.field(name).and_then(|x| x.as_int());
    let number = int("ruleNumber").unwrap_or(0);
    let Some(rule_number) = u16::try_from(number)
        .ok()
        .filter(|n| RULE_NUMBERS.contains(n))
    else {
        let problem = format!("ruleNumber must be between 1 and 32766 (it is {number})");
        l.error_at(
            origin,
            format!("Invalid NetworkAclEntry {number}: {problem}"),
        );
        return None;
    };
    let what = format!("Invalid NetworkAclEntry {rule_number}");
    let problem = |l: &mut Lowering<'_, '_>, message: String| {
        l.error_at(origin, format!("{what}: {message}"));
        None
    };
    let text = |name: &str| ev.field(name).and_then(|x| x.as_str().map(String::from));
    let protocol_text = text("protocol").unwrap_or_default();
    let Some(protocol) = parse_acl_protocol(&protocol_text) else {
        return problem(l, format!("protocol must be tcp, udp, icmp, icmpv6, -1 (all traffic) or a protocol number from 0 to 255, not \"{protocol_text}\""));
    };
    let range = match one_range(ev, ("cidrBlock", "ipv6CidrBlock"), "range") {
        Ok(range) => range,
        Err(message) => return problem(l, message),
    };
    let ports = if matches!(protocol, Protocol::Tcp | Protocol::Udp) {
        match (int("fromPort"), int("toPort")) {
            (Some(f), Some(t)) => match port_range_problem(&what, f, t) {
                None => (f as i32, t as i32),
                Some(message) => {
                    l.error_at(origin, message);
                    return None;
                }
            },
            _ => {
                return problem(
                    l,
                    format!("fromPort and toPort are required for {protocol_text}"),
                )
            }
        }
    } else {
        let (t, c) = (int("icmpType"), int("icmpCode"));
        let ok = |n: Option<i64>| n.is_none_or(|n| (-1..=255).contains(&n));
        if !ok(t) || !ok(c) {
            return problem(l, "icmpType and icmpCode must be between -1 and 255".into());
        }
        (t.unwrap_or(-1) as i32, c.unwrap_or(-1) as i32)
    };
    let action = match ev.field("ruleAction") {
        Some(Value::Ctor(c)) if c.name == "Deny" => AclAction::Deny,
        _ => AclAction::Allow,
    };
    Some(AclEntry::new(
        egress,
        rule_number,
        protocol,
        action,
        range,
        ports,
    ))
}

/// A subnet is in one network ACL: a second ACL naming it is refused.
pub(super) fn check_subnets(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let mut holder: BTreeMap<u64, String> = BTreeMap::new();
    let mut errs = Vec::new();
    for r in resources.iter().filter(|r| r.kind == NAME) {
        let me = paths.get(r.id);
        let subnets = r.fields.get("associations").and_then(|v| v.as_list());
        for s in subnets.unwrap_or(&[]).iter().filter_map(resource_id) {
            match holder.get(&s) {
                Some(other) if *other != me => errs.push(err_at(
                    &r.origin,
                    format!(
                        "Invalid NetworkAcl: subnet {} is in network ACL {other} too; a subnet is in one network ACL",
                        paths.get(s)
                    ),
                )),
                _ => {
                    holder.insert(s, me.clone());
                }
            }
        }
    }
    errs
}

fn entry_to_proto(e: &AclEntry) -> pb::NetworkAclEntry {
    pb::NetworkAclEntry {
        egress: e.egress,
        rule_number: u32::from(e.rule_number),
        protocol: e.protocol.ec2_name(),
        action: e.action.as_str().to_string(),
        cidr: e.range.to_string(),
        from_port: e.from_port,
        to_port: e.to_port,
    }
}

fn entry_from_proto(e: pb::NetworkAclEntry) -> Result<AclEntry, String> {
    let words = (e.protocol.as_str(), e.action.as_str(), e.cidr.as_str());
    AclEntry::from_words(e.egress, e.rule_number, words, (e.from_port, e.to_port))
}

pub(super) fn to_proto(s: &NetworkAclSpec<String>) -> pb::NetworkAcl {
    pb::NetworkAcl {
        vpc: s.vpc.clone(),
        entries: s.entries.iter().map(entry_to_proto).collect(),
        associations: s.associations.iter().cloned().collect(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::NetworkAcl) -> Result<NetworkAclSpec<String>, String> {
    Ok(NetworkAclSpec {
        vpc: s.vpc,
        entries: s
            .entries
            .into_iter()
            .map(entry_from_proto)
            .collect::<Result<_, _>>()?,
        associations: s.associations.into_iter().collect(),
        tags: tags_from_proto(s.tags),
    })
}
