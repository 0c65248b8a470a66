//! Route tables (`Canon.AWS.EC2.RouteTable`): lowering, which checks that
//! every route has one destination and one target (an internet gateway, a
//! NAT gateway or an egress-only gateway) in the table's VPC, of the family
//! the target carries, and that every associated subnet is in the VPC too;
//! and encoding.

use std::collections::BTreeSet;

use canon_model::{IpCidr, Ipv4Cidr, Ipv6Cidr, Route, RouteTableSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{record_origin, region_of_vpc, resource_id, Lowered, Lowering};
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
        vpc: l.path_of(&vpc)?,
        routes,
        associations,
        tags: l.tags(),
    };
    Some((region, Spec::RouteTable(spec)))
}

/// The targets a route may name: the field, what it names, and how one
/// belongs to a VPC.
const TARGETS: [(&str, &str, &str); 3] = [
    ("gateway", "gateway", "attached to"),
    ("natGateway", "NAT gateway", "in"),
    (
        "egressOnlyInternetGateway",
        "egress-only internet gateway",
        "in",
    ),
];

/// One `Route` record, checked: one destination, IPv4 or IPv6; one target
/// in the table's VPC (an internet gateway attached to it, a NAT gateway in
/// one of its subnets, its egress-only gateway), of the family the target
/// carries (a NAT gateway IPv4, an egress-only gateway IPv6).
fn route(l: &mut Lowering<'_, '_>, rv: &Value<'_>, vpc: &Value<'_>) -> Option<Route<String>> {
    let ro = record_origin(rv).unwrap_or(l.origin());
    let dest = destination(l, rv, ro);
    let named: Vec<(&str, &str, &str, Value<'_>)> = TARGETS
        .iter()
        .filter_map(|(field, what, how)| match rv.field(field) {
            Some(Value::None) | None => None,
            Some(v) => Some((*field, *what, *how, v)),
        })
        .collect();
    let [(field, what, how, target)] = named.as_slice() else {
        let message = if named.is_empty() {
            "Invalid Route: give it a target: gateway (an internet gateway), natGateway or egressOnlyInternetGateway"
        } else {
            "Invalid Route: give it one target, gateway, natGateway or egressOnlyInternetGateway, not more"
        };
        l.error_at(ro, message.into());
        return None;
    };
    let path = l.path_of(target).unwrap_or_default();
    let target_vpc = match *field {
        "natGateway" => target.field("subnet").and_then(|s| s.field("vpc")),
        _ => target.field("vpc"),
    };
    if resource_id(&target_vpc.unwrap_or(Value::None)) != resource_id(vpc) {
        l.error_at(
            ro,
            format!("Invalid Route: {what} {path} is not {how} the route table's VPC"),
        );
    }
    let dest = dest?;
    let family = match (*field, dest) {
        ("natGateway", IpCidr::V6(_)) => Some("an IPv4"),
        ("egressOnlyInternetGateway", IpCidr::V4(_)) => Some("an IPv6"),
        _ => None,
    };
    if let Some(family) = family {
        l.error_at(
            ro,
            format!("Invalid Route: {dest} through {what} {path}: it takes {family} destination"),
        );
    }
    Some(Route {
        destination: dest,
        target: l.path_of(target)?,
    })
}

/// A route's one destination: `destinationCidrBlock` (IPv4) or
/// `destinationIpv6CidrBlock`.
fn destination(l: &mut Lowering<'_, '_>, rv: &Value<'_>, ro: &ValOrigin<'_>) -> Option<IpCidr> {
    let text = |name: &str| rv.field(name).and_then(|v| v.as_str().map(String::from));
    let parsed = match (
        text("destinationCidrBlock"),
        text("destinationIpv6CidrBlock"),
    ) {
        (Some(c), None) => c
            .parse::<Ipv4Cidr>()
            .map(IpCidr::V4)
            .map_err(|e| ("destinationCidrBlock", e)),
        (None, Some(c)) => c
            .parse::<Ipv6Cidr>()
            .map(IpCidr::V6)
            .map_err(|e| ("destinationIpv6CidrBlock", e)),
        _ => {
            l.error_at(
                ro,
                "Invalid Route: give it one destination: destinationCidrBlock (IPv4) or destinationIpv6CidrBlock (IPv6)".into(),
            );
            return None;
        }
    };
    match parsed {
        Ok(c) => Some(c),
        Err((field, e)) => {
            l.error_at(ro, format!("Invalid Route: {field} {e}"));
            None
        }
    }
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
        vpc: s.vpc,
        routes,
        associations: s.associations.into_iter().collect(),
        tags: tags_from_proto(s.tags),
    })
}
