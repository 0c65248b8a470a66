//! NAT gateways (`Canon.AWS.EC2.NatGateway`): lowering, with the rules that
//! span resources (a public gateway's address is in its region and held by
//! no other gateway; a public gateway sits in a public subnet, one whose
//! route table sends 0.0.0.0/0 to an internet gateway), and encoding.

use std::collections::BTreeMap;

use canon_model::{Ipv4Cidr, NatGatewaySpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{err_at, region_of, region_of_vpc, resource_id, Lowered, Lowering, Paths};
use crate::diag::Diagnostic;
use crate::value::{ResourceVal, Value};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "NatGateway";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let subnet = l.field("subnet");
    let region = region_of_vpc(&subnet.field("vpc").unwrap_or(Value::None));
    let address = l.field("elasticIp");
    let allocation = match &address {
        Value::None => None,
        a => {
            let theirs = region_of(&a.field("region").unwrap_or(Value::None));
            if theirs != region {
                let path = l.path_of(a).unwrap_or_default();
                l.error(format!(
                    "Invalid NatGateway: its Elastic IP {path} is in {theirs}, its subnet in {region}"
                ));
            }
            Some(l.path_of(a)?)
        }
    };
    let spec = NatGatewaySpec {
        subnet: l.path_of(&subnet)?,
        allocation,
        tags: l.tags(),
    };
    Some((region, Spec::NatGateway(spec)))
}

/// A public gateway needs a public subnet, and an address of its own.
pub(super) fn check_public(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let public_subnets = public_subnets(resources);
    let mut holders: BTreeMap<u64, String> = BTreeMap::new();
    let mut errs = Vec::new();
    for r in resources.iter().filter(|r| r.kind == NAME) {
        let field = |name: &str| r.fields.get(name).cloned().unwrap_or(Value::None);
        let Some(address) = resource_id(&field("elasticIp")) else {
            continue;
        };
        let me = paths.get(r.id);
        if let Some(other) = holders.insert(address, me.clone()) {
            let path = paths.get(address);
            errs.push(err_at(
                &r.origin,
                format!("Invalid NatGateway: its Elastic IP {path} is held by NAT gateway {other} too; give each gateway its own"),
            ));
        }
        let subnet = field("subnet");
        let Some(s) = resource_id(&subnet) else {
            continue;
        };
        if !public_subnets.contains(&s) {
            let block = subnet
                .field("cidrBlock")
                .and_then(|c| c.as_str().and_then(|c| c.parse::<Ipv4Cidr>().ok()))
                .map_or(String::new(), |c| format!(" ({c})"));
            errs.push(err_at(
                &r.origin,
                format!(
                    "Invalid NatGateway: a public NAT gateway must be in a public subnet, but subnet {}{block} has no route table sending 0.0.0.0/0 to an internet gateway; associate it with one, or make the gateway private (no elasticIp)",
                    paths.get(s)
                ),
            ));
        }
    }
    errs
}

/// The subnets associated with a route table that sends 0.0.0.0/0 to an
/// internet gateway, by resource id.
fn public_subnets(resources: &[&ResourceVal<'_>]) -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    for t in resources.iter().filter(|r| r.kind == "RouteTable") {
        let field = |name: &str| t.fields.get(name).cloned().unwrap_or(Value::None);
        let to_internet = field("routes")
            .as_list()
            .unwrap_or(&[])
            .iter()
            .any(|route| {
                let dest = route.field("destinationCidrBlock").unwrap_or(Value::None);
                let gateway = route.field("gateway").unwrap_or(Value::None);
                dest.as_str().and_then(|d| d.parse::<Ipv4Cidr>().ok()) == Some(Ipv4Cidr::ANY)
                    && resource_id(&gateway).is_some()
            });
        if to_internet {
            out.extend(
                field("associations")
                    .as_list()
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(resource_id),
            );
        }
    }
    out
}

pub(super) fn to_proto(s: &NatGatewaySpec<String>) -> pb::NatGateway {
    pb::NatGateway {
        subnet: s.subnet.clone(),
        elastic_ip: s.allocation.clone(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::NatGateway) -> Result<NatGatewaySpec<String>, String> {
    Ok(NatGatewaySpec {
        subnet: s.subnet,
        allocation: s.elastic_ip,
        tags: tags_from_proto(s.tags),
    })
}
