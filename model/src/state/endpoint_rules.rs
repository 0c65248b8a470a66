//! EC2's rules for a VPC endpoint that a declaration can break, checked
//! by `DesiredState::validate` so that a composition EC2 would refuse is
//! refused before any call (the language checks the same at the call,
//! where it can point at the user's line; this is the model's own guard
//! for states built by other means). Checked where both sides are
//! declared here: the route tables, subnets and groups are of the
//! endpoint's VPC; at most one subnet per zone; private DNS needs the
//! VPC's DNS support and hostnames; the service is offered by the type;
//! no route table routes one service from two gateway endpoints.

use crate::{
    DesiredState, EndpointType, LogicalId, Ref, ResourceKind, Spec, StateError, VpcEndpointSpec,
};

/// The VPC of a declared resource `r` (route table, subnet, group).
fn vpc_of(state: &DesiredState, r: &Ref) -> Option<(LogicalId, ResourceKind, Ref)> {
    let Ref::Managed(id) = r else { return None };
    let res = state.resources.get(id)?;
    let vpc = match &res.spec {
        Spec::RouteTable(s) => s.vpc.clone(),
        Spec::Subnet(s) => s.vpc.clone(),
        Spec::SecurityGroup(s) => s.vpc.clone(),
        _ => return None,
    };
    Some((*id, res.kind(), vpc))
}

pub(crate) fn validate(
    state: &DesiredState,
    id: LogicalId,
    e: &VpcEndpointSpec<Ref>,
) -> Result<(), StateError> {
    for member in e
        .route_tables
        .iter()
        .chain(&e.subnets)
        .chain(&e.security_groups)
    {
        let Some((member, kind, vpc)) = vpc_of(state, member) else {
            continue;
        };
        if vpc == e.vpc {
            continue;
        }
        let (vpc, member_vpc) = (e.vpc.to_string(), vpc.to_string());
        return Err(match kind {
            ResourceKind::RouteTable => StateError::EndpointRouteTableOtherVpc {
                id,
                route_table: member,
                vpc,
                table_vpc: member_vpc,
            },
            ResourceKind::Subnet => StateError::EndpointSubnetOtherVpc {
                id,
                member,
                vpc,
                member_vpc,
            },
            _ => StateError::EndpointGroupOtherVpc {
                id,
                member,
                vpc,
                member_vpc,
            },
        });
    }
    if !e.service.offers(e.endpoint_type) {
        return Err(StateError::EndpointServiceType {
            id,
            service: e.service,
            endpoint_type: e.endpoint_type,
        });
    }
    one_subnet_per_zone(state, id, e)?;
    if e.endpoint_type == EndpointType::Interface && e.private_dns {
        if let Ref::Managed(vpc) = &e.vpc {
            if let Some(Spec::Vpc(v)) = state.resources.get(vpc).map(|r| &r.spec) {
                if !(v.enable_dns_support && v.enable_dns_hostnames) {
                    return Err(StateError::EndpointPrivateDnsWithoutVpcDns { id, vpc: *vpc });
                }
            }
        }
    }
    no_table_twice(state, id, e)
}

/// EC2's `DuplicateSubnetsInSameZone`.
fn one_subnet_per_zone(
    state: &DesiredState,
    id: LogicalId,
    e: &VpcEndpointSpec<Ref>,
) -> Result<(), StateError> {
    let mut zones: Vec<(&str, LogicalId)> = Vec::new();
    for subnet in &e.subnets {
        let Ref::Managed(s) = subnet else { continue };
        let Some(Spec::Subnet(spec)) = state.resources.get(s).map(|r| &r.spec) else {
            continue;
        };
        let zone = spec.availability_zone.as_str();
        if let Some((_, first)) = zones.iter().find(|(z, _)| *z == zone) {
            return Err(StateError::EndpointSubnetsSameZone {
                id,
                first: *first,
                second: *s,
                zone: zone.to_string(),
            });
        }
        zones.push((zone, *s));
    }
    Ok(())
}

/// EC2's `RouteAlreadyExists`: a table routes a service's prefix list
/// through one endpoint only. Reported once, by the endpoint that comes
/// second in id order.
fn no_table_twice(
    state: &DesiredState,
    id: LogicalId,
    e: &VpcEndpointSpec<Ref>,
) -> Result<(), StateError> {
    if e.endpoint_type != EndpointType::Gateway {
        return Ok(());
    }
    for (other, r) in state.resources.range(..id) {
        let Spec::VpcEndpoint(o) = &r.spec else {
            continue;
        };
        if o.endpoint_type != EndpointType::Gateway || o.service != e.service || o.vpc != e.vpc {
            continue;
        }
        let shared = o.route_tables.intersection(&e.route_tables);
        let managed = |r: &Ref| match r {
            Ref::Managed(t) => Some(*t),
            Ref::External(_) => None,
        };
        if let Some(table) = shared.filter_map(managed).next() {
            return Err(StateError::EndpointTableTwice {
                id,
                other: *other,
                service: e.service,
                route_table: table,
            });
        }
    }
    Ok(())
}
