//! Subnets (`Canon.AWS.EC2.Subnet`): lowering, including the rules that
//! span resources (inside its VPC's block, no overlap with the VPC's other
//! subnets; an IPv6 `/64` number only in a VPC declared with IPv6, and no
//! number twice in one VPC), and encoding.

use std::collections::BTreeMap;

use canon_model::{Ipv4Cidr, Spec, SubnetSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{cidr_from_proto, tags_from_proto, tags_to_proto};
use super::lowering::{err_at, region_of_vpc, Lowered, Lowering, Paths};
use crate::diag::Diagnostic;
use crate::value::{ResourceVal, ValOrigin, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "Subnet";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let cidr = l.cidr_block();
    let region = region_of_vpc(&vpc);
    if let (Some(c), Some(vc)) = (cidr, vpc_block(&vpc)) {
        if !vc.contains(c) {
            l.error(format!(
                "Invalid Subnet: cidrBlock {c} is not inside its VPC's block {vc}"
            ));
        }
    }
    let ipv6_index = ipv6_index(l, &vpc);
    let availability_zone = match l.field("availabilityZone") {
        Value::Ctor(c) => format!("{}{}", region, c.name.to_lowercase()),
        _ => String::new(),
    };
    let spec = SubnetSpec {
        vpc: l.path_of(&vpc)?,
        cidr_block: cidr?,
        availability_zone,
        map_public_ip_on_launch: l.field("mapPublicIpOnLaunch").as_bool().unwrap_or(false),
        ipv6_index,
        ipv6_cidr_block: None,
        tags: l.tags(),
    };
    Some((region, Spec::Subnet(spec)))
}

/// The subnet's `ipv6Index`, if it has one EC2 would take: 0 to 255, in a
/// VPC the composition declares with `ipv6: True` (the `/56` of a VPC it
/// does not manage is not known to it).
fn ipv6_index(l: &mut Lowering<'_, '_>, vpc: &Value<'_>) -> Option<u8> {
    let n = l.field("ipv6Index").as_int()?;
    let Ok(index) = u8::try_from(n) else {
        l.error(format!(
            "Invalid Subnet: ipv6Index {n} is not a /64 of the VPC's /56: use a number from 0 to 255"
        ));
        return None;
    };
    if vpc
        .field("externalId")
        .is_some_and(|x| x.as_str().is_some())
    {
        l.error(format!(
            "Invalid Subnet: ipv6Index {index} needs its VPC's IPv6 block, which Canon knows only for a VPC it declares: declare the VPC with `ipv6: True`, or drop ipv6Index"
        ));
        return None;
    }
    if vpc.field("ipv6").and_then(|x| x.as_bool()) != Some(true) {
        l.error(format!(
            "Invalid Subnet: ipv6Index {index} needs a VPC with IPv6, and its VPC has none: declare the VPC with `ipv6: True` (EC2.Vpc.new {{…, ipv6: True}}), or drop ipv6Index"
        ));
        return None;
    }
    Some(index)
}

fn vpc_block(vpc: &Value<'_>) -> Option<Ipv4Cidr> {
    vpc.field("cidrBlock")?.as_str()?.parse().ok()
}

/// Subnets of one VPC must not overlap. `resources` are in the order they
/// received paths.
pub(super) fn check_overlaps(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let mut by_vpc: BTreeMap<String, Vec<(String, Ipv4Cidr, &ValOrigin)>> = BTreeMap::new();
    for r in resources.iter().filter(|r| r.kind == NAME) {
        let Some(vpc) = r.fields.get("vpc").and_then(|v| paths.of(v)) else {
            continue;
        };
        let Some(c) = r
            .fields
            .get("cidrBlock")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        by_vpc
            .entry(vpc)
            .or_default()
            .push((paths.get(r.id), c, &r.origin));
    }
    let mut errs = Vec::new();
    for subnets in by_vpc.values() {
        for (i, (path_a, a, _)) in subnets.iter().enumerate() {
            for (path_b, b, ob) in &subnets[i + 1..] {
                if a.overlaps(*b) {
                    errs.push(err_at(
                        ob,
                        format!("Invalid Subnet: cidrBlock {b} ({path_b}) overlaps {a} ({path_a}) in the same VPC"),
                    ));
                }
            }
        }
    }
    errs
}

/// No two subnets of one VPC take the same IPv6 `/64` number.
/// `resources` are in the order they received paths.
pub(super) fn check_ipv6_indexes(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let mut seen: BTreeMap<(String, i64), String> = BTreeMap::new();
    let mut errs = Vec::new();
    for r in resources.iter().filter(|r| r.kind == NAME) {
        let Some(vpc) = r.fields.get("vpc").and_then(|v| paths.of(v)) else {
            continue;
        };
        let Some(n) = r.fields.get("ipv6Index").and_then(|v| v.as_int()) else {
            continue;
        };
        let path = paths.get(r.id);
        match seen.get(&(vpc.clone(), n)) {
            Some(first) => errs.push(err_at(
                &r.origin,
                format!("Invalid Subnet: ipv6Index {n} ({path}) is taken by {first} in the same VPC: give each subnet of a VPC its own number"),
            )),
            None => {
                seen.insert((vpc, n), path);
            }
        }
    }
    errs
}

pub(super) fn to_proto(s: &SubnetSpec<String>) -> pb::Subnet {
    pb::Subnet {
        vpc: s.vpc.clone(),
        cidr_block: s.cidr_block.to_string(),
        availability_zone: s.availability_zone.clone(),
        map_public_ip_on_launch: s.map_public_ip_on_launch,
        tags: tags_to_proto(&s.tags),
        ipv6_index: s.ipv6_index.map(u32::from),
    }
}

pub(super) fn from_proto(s: pb::Subnet) -> Result<SubnetSpec<String>, String> {
    Ok(SubnetSpec {
        vpc: s.vpc,
        cidr_block: cidr_from_proto(&s.cidr_block)?,
        availability_zone: s.availability_zone,
        map_public_ip_on_launch: s.map_public_ip_on_launch,
        ipv6_index: s
            .ipv6_index
            .map(|i| u8::try_from(i).map_err(|_| format!("bad ipv6 index {i}")))
            .transpose()?,
        ipv6_cidr_block: None,
        tags: tags_from_proto(s.tags),
    })
}
