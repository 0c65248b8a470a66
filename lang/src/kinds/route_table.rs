//! Route tables (`Canon.AWS.EC2.RouteTable`): lowering, which checks that
//! every route has one target (an internet gateway or a NAT gateway) in
//! the table's VPC and every associated subnet is in it too, and encoding.

use std::collections::BTreeSet;

use canon_model::{Ipv4Cidr, Route, RouteTableSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{cidr_from_proto, tags_from_proto, tags_to_proto};
use super::lowering::{record_origin, region_of_vpc, resource_id, Lowered, Lowering};
use crate::value::Value;

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

/// One `Route` record, checked: a valid destination, and one target in the
/// table's VPC (an internet gateway attached to it, or a NAT gateway in
/// one of its subnets).
fn route(l: &mut Lowering<'_, '_>, rv: &Value<'_>, vpc: &Value<'_>) -> Option<Route<String>> {
    let ro = record_origin(rv).unwrap_or(l.origin());
    let dest = rv.field("destinationCidrBlock").unwrap_or(Value::None);
    let dest = match dest.as_str().map(str::parse::<Ipv4Cidr>) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            l.error_at(ro, format!("Invalid Route: destinationCidrBlock {e}"));
            None
        }
        None => None,
    };
    let gateway = rv.field("gateway").unwrap_or(Value::None);
    let nat = rv.field("natGateway").unwrap_or(Value::None);
    let target = match (&gateway, &nat) {
        (Value::None, Value::None) => {
            l.error_at(
                ro,
                "Invalid Route: give it a target: gateway (an internet gateway) or natGateway"
                    .into(),
            );
            return None;
        }
        (Value::None, nat) => {
            let nat_vpc = nat
                .field("subnet")
                .and_then(|s| s.field("vpc"))
                .unwrap_or(Value::None);
            if resource_id(&nat_vpc) != resource_id(vpc) {
                let path = l.path_of(nat).unwrap_or_default();
                l.error_at(
                    ro,
                    format!("Invalid Route: NAT gateway {path} is not in the route table's VPC"),
                );
            }
            nat
        }
        (gateway, Value::None) => {
            let gw_vpc = gateway.field("vpc").unwrap_or(Value::None);
            if resource_id(&gw_vpc) != resource_id(vpc) {
                let path = l.path_of(gateway).unwrap_or_default();
                l.error_at(
                    ro,
                    format!(
                        "Invalid Route: gateway {path} is not attached to the route table's VPC"
                    ),
                );
            }
            gateway
        }
        _ => {
            l.error_at(
                ro,
                "Invalid Route: give it one target, gateway or natGateway, not both".into(),
            );
            return None;
        }
    };
    Some(Route {
        destination: dest?,
        target: l.path_of(target)?,
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
            destination: cidr_from_proto(&r.destination)?,
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
