//! Route tables (`Canon.AWS.EC2.RouteTable`): lowering, which checks that
//! every route has one destination and one target (an internet gateway, a
//! NAT gateway, an egress-only gateway, an instance, a peering
//! connection one end of which is the table's VPC, or a network interface
//! Canon does not manage) in the table's VPC, of the family
//! the target carries, and that every associated subnet is in the VPC too;
//! and encoding.

use std::collections::BTreeSet;

use canon_model::{Hop, IpCidr, Route, RouteTableSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{one_range, record_origin, region_of_vpc, resource_id, Lowered, Lowering};
use super::named::external_path;
use crate::value::{ValOrigin, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "RouteTable";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let mut routes = BTreeSet::new();
    for rv in l.field("routes").as_list().unwrap_or(&[]) {
        routes.extend(route(l, rv, &vpc));
    }
    let assoc_values = l.field("associations");
    for s in assoc_values.as_list().unwrap_or(&[]) {
        if resource_id(&s.field("vpc").unwrap_or(Value::None)) != resource_id(&vpc) {
            let subnet = l.path_of(s).unwrap_or_default();
            l.error(format!(
                "Invalid RouteTable: subnet {subnet} is not in the route table's VPC"
            ));
        }
    }
    let associations: BTreeSet<String> = l.paths_of(&assoc_values);
    let region = region_of_vpc(&vpc);
    let spec = RouteTableSpec {
        interfaces: Default::default(),
        vpc: l.path_of(&vpc)?,
        routes: routes.into(),
        associations: associations.into(),
        tags: l.tags(),
    };
    Some((region, Spec::RouteTable(spec)))
}

/// The targets a route may name: the field, what it names, how one
/// belongs to a VPC, and the hop it is.
const TARGETS: [(&str, &str, &str, Hop); 5] = [
    ("gateway", "gateway", "attached to", Hop::InternetGateway),
    ("natGateway", "NAT gateway", "in", Hop::NatGateway),
    (
        "egressOnlyInternetGateway",
        "egress-only internet gateway",
        "in",
        Hop::EgressOnlyInternetGateway,
    ),
    ("instance", "instance", "in", Hop::Instance),
    (
        "vpcPeeringConnection",
        "peering connection",
        "a connection of",
        Hop::VpcPeeringConnection,
    ),
];

/// One `Route` record, checked: one destination, IPv4 or IPv6; one target
/// in the table's VPC (an internet gateway attached to it, a NAT gateway or
/// an instance in one of its subnets, its egress-only gateway), of the family the target
/// carries (a NAT gateway IPv4, an egress-only gateway IPv6).
fn route(l: &mut Lowering<'_, '_>, rv: &Value<'_>, vpc: &Value<'_>) -> Option<Route<String>> {
    let ro = record_origin(rv).unwrap_or(l.origin());
    let fields = ("destinationCidrBlock", "destinationIpv6CidrBlock");
    let dest = one_range(rv, fields, "destination")
        .map_err(|problem| l.error_at(ro, format!("Invalid Route: {problem}")))
        .ok();
    let named: Vec<(&str, &str, Hop, Value<'_>)> = TARGETS
        .iter()
        .filter_map(|(field, what, how, hop)| match rv.field(field) {
            Some(Value::None) | None => None,
            Some(v) => Some((*what, *how, *hop, v)),
        })
        .collect();
    let interface = match rv.field("networkInterface") {
        Some(Value::None) | None => None,
        Some(v) => Some(v.as_str().map(str::to_string).unwrap_or_default()),
    };
    let targets = named.len() + usize::from(interface.is_some());
    if targets != 1 {
        let message = if targets == 0 {
            "Invalid Route: give it a target: gateway (an internet gateway), natGateway, egressOnlyInternetGateway, instance, vpcPeeringConnection or networkInterface"
        } else {
            "Invalid Route: give it one target, gateway, natGateway, egressOnlyInternetGateway, instance, vpcPeeringConnection or networkInterface, not more"
        };
        l.error_at(ro, message.into());
        return None;
    }
    if let Some(eni) = interface {
        return interface_route(l, ro, dest?, &eni);
    }
    let [(what, how, hop, target)] = named.as_slice() else {
        return None;
    };
    let path = l.path_of(target).unwrap_or_default();
    let target_vpcs = match hop {
        Hop::NatGateway | Hop::Instance => {
            vec![target.field("subnet").and_then(|s| s.field("vpc"))]
        }
        // Either end of a peering connection routes through it.
        Hop::VpcPeeringConnection => vec![target.field("vpc"), target.field("peerVpc")],
        _ => vec![target.field("vpc")],
    };
    let in_vpc = |v: Option<Value<'_>>| resource_id(&v.unwrap_or(Value::None)) == resource_id(vpc);
    if !target_vpcs.into_iter().any(in_vpc) {
        l.error_at(
            ro,
            format!("Invalid Route: {what} {path} is not {how} the route table's VPC"),
        );
    }
    let dest = dest?;
    if let Some(family) = hop.refuses(&dest) {
        l.error_at(
            ro,
            format!(
                "Invalid Route: {dest} through {what} {path}: it takes an {family} destination"
            ),
        );
    }
    Some(Route {
        destination: dest,
        target: l.path_of(target)?,
    })
}

/// A route through network interface `eni`, one Canon does not manage:
/// its id must be one (`eni-` and hex digits). Whether it is in the
/// table's VPC only EC2 knows; it refuses the route if not.
fn interface_route(
    l: &mut Lowering<'_, '_>,
    ro: &ValOrigin<'_>,
    destination: IpCidr,
    eni: &str,
) -> Option<Route<String>> {
    let hex = eni.strip_prefix("eni-").unwrap_or_default();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        l.error_at(
            ro,
            format!(
                "Invalid Route: networkInterface {eni:?} is not a network interface id (eni- and hex digits, as eni-0a1b2c3d4e5f60718)"
            ),
        );
        return None;
    }
    Some(Route {
        destination,
        target: external_path(eni),
    })
}

pub(super) fn to_proto(s: &RouteTableSpec<String>) -> pb::RouteTable {
    pb::RouteTable {
        vpc: s.vpc.clone(),
        routes: s
            .routes
            .iter()
            .map(|r| pb::Route {
                destination: r.destination.to_string(),
                target: r.target.clone(),
            })
            .collect(),
        associations: s.associations.iter().cloned().collect(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::RouteTable) -> Result<RouteTableSpec<String>, String> {
    let mut routes = BTreeSet::new();
    for r in s.routes {
        routes.insert(Route {
            destination: r.destination.parse::<IpCidr>().map_err(|e| e.to_string())?,
            target: r.target,
        });
    }
    Ok(RouteTableSpec {
        interfaces: Default::default(),
        vpc: s.vpc,
        routes: routes.into(),
        associations: s.associations.into_iter().collect(),
        tags: tags_from_proto(s.tags),
    })
}
