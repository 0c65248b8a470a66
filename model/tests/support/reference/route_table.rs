//! Route tables: routes only to an internet gateway attached to the table's
//! VPC (IPv4 or IPv6 destinations), an available NAT gateway in it (IPv4)
//! or its egress-only internet gateway (IPv6), or an active peering
//! connection one end of which is its VPC, one route per destination;
//! a subnet associated with one table at a time, of the same VPC; deleted
//! only without associations.

use canon_model::{Action, Hop, IpCidr, Request, Route, RouteTableSpec, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateRouteTable { vpc, tags } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let spec = Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: v,
                routes: Default::default(),
                associations: Default::default(),
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "rtb", spec)));
        }
        Action::CreateRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => put_route(
            cloud,
            &id(route_table)?,
            *destination,
            (&id(gateway)?, *hop),
            false,
        )?,
        Action::ReplaceRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => put_route(
            cloud,
            &id(route_table)?,
            *destination,
            (&id(gateway)?, *hop),
            true,
        )?,
        Action::DeleteRoute {
            route_table,
            destination,
        } => {
            let t = id(route_table)?;
            cloud.update(&t, |r| match &mut r.spec {
                Spec::RouteTable(rt) => {
                    if !rt.routes.iter().any(|x| x.destination == *destination) {
                        return Err("InvalidRoute.NotFound".into());
                    }
                    rt.routes.retain(|x| x.destination != *destination);
                    Ok(())
                }
                _ => Err("not a route table".into()),
            })?;
        }
        Action::AssociateRouteTable {
            route_table,
            subnet,
        } => associate(cloud, &id(route_table)?, &id(subnet)?)?,
        Action::DisassociateRouteTable { association_id } => disassociate(cloud, association_id)?,
        Action::DeleteRouteTable { route_table } => {
            let t = id(route_table)?;
            if !cloud.get(&t)?.association_ids.is_empty() {
                return Err("DependencyViolation: table has associations".into());
            }
            cloud.remove(&t)?;
            // A deleted table leaves the endpoints that routed it.
            let endpoints: Vec<String> = cloud
                .state
                .iter()
                .filter(|r| matches!(&r.spec, Spec::VpcEndpoint(e) if e.route_tables.contains(&t)))
                .map(|r| r.cloud_id.clone())
                .collect();
            for e in endpoints {
                cloud.update(&e, |r| {
                    if let Spec::VpcEndpoint(s) = &mut r.spec {
                        s.route_tables.remove(&t);
                    }
                    Ok(())
                })?;
            }
        }
        _ => return Err(not_mine("route table", req)),
    }
    Ok(None)
}

/// Creates (or with `replace`, replaces) the route to `destination`
/// through `g`, named in the parameter of `hop`.
fn put_route(
    cloud: &mut RefCloud,
    t: &str,
    destination: IpCidr,
    (g, hop): (&str, Hop),
    replace: bool,
) -> Result<(), String> {
    let table_vpc = match &cloud.get(t)?.spec {
        Spec::RouteTable(rt) => rt.vpc.clone(),
        _ => return Err("not a route table".into()),
    };
    let gw = cloud.get(g)?;
    let gateway_vpc = match (&gw.spec, hop) {
        (Spec::InternetGateway(gs), Hop::InternetGateway) => gs.vpc.clone(),
        (Spec::NatGateway(n), Hop::NatGateway) => {
            if gw.pending {
                return Err(format!(
                    "InvalidNatGatewayID.NotFound: {g} is still pending"
                ));
            }
            match &cloud.get(&n.subnet)?.spec {
                Spec::Subnet(s) => Some(s.vpc.clone()),
                _ => None,
            }
        }
        (Spec::EgressOnlyInternetGateway(e), Hop::EgressOnlyInternetGateway) => Some(e.vpc.clone()),
        (Spec::VpcPeeringConnection(p), Hop::VpcPeeringConnection) => {
            if gw.pending {
                return Err(format!(
                    "InvalidVpcPeeringConnectionID.NotFound: {g} is not active"
                ));
            }
            // Either end's table may route through it.
            [&p.vpc, &p.peer_vpc]
                .into_iter()
                .find(|v| **v == table_vpc)
                .cloned()
        }
        (Spec::Instance(i), Hop::Instance) => match &cloud.get(&i.subnet)?.spec {
            Spec::Subnet(s) => Some(s.vpc.clone()),
            _ => None,
        },
        _ => return Err(format!("{g} is not a gateway of the kind {hop:?} names")),
    };
    let ipv6 = matches!(destination, IpCidr::V6(_));
    match hop {
        Hop::NatGateway if ipv6 => return Err("InvalidParameterValue: NAT for IPv4".into()),
        Hop::EgressOnlyInternetGateway if !ipv6 => {
            return Err("InvalidParameterValue: egress-only for IPv6".into())
        }
        _ => {}
    }
    if gateway_vpc.as_deref() != Some(table_vpc.as_str()) {
        return Err("InvalidParameterValue: gateway not in the table's VPC".into());
    }
    cloud.update(t, |r| match &mut r.spec {
        Spec::RouteTable(rt) => {
            let exists = rt.routes.iter().any(|x| x.destination == destination);
            if exists && !replace {
                return Err("RouteAlreadyExists".into());
            }
            if !exists && replace {
                return Err("InvalidRoute.NotFound".into());
            }
            rt.routes.retain(|x| x.destination != destination);
            rt.routes.insert(Route {
                destination,
                target: g.to_string(),
            });
            Ok(())
        }
        _ => Err("not a route table".into()),
    })
}

fn associate(cloud: &mut RefCloud, t: &str, s: &str) -> Result<(), String> {
    let Spec::Subnet(ss) = &cloud.get(s)?.spec else {
        return Err("not a subnet".into());
    };
    let subnet_vpc = ss.vpc.clone();
    if cloud
        .state
        .iter()
        .any(|r| matches!(r.spec, Spec::RouteTable(_)) && r.association_ids.contains_key(s))
    {
        return Err("Resource.AlreadyAssociated".into());
    }
    let assoc = cloud.fresh("rtbassoc");
    cloud.update(t, |r| {
        let Spec::RouteTable(rt) = &mut r.spec else {
            return Err("not a route table".into());
        };
        if rt.vpc != subnet_vpc {
            return Err("InvalidParameterValue: subnet in another VPC".into());
        }
        rt.associations.insert(s.to_string());
        r.association_ids.insert(s.to_string(), assoc);
        Ok(())
    })
}

/// Removes the association; one already gone is no error.
fn disassociate(cloud: &mut RefCloud, association_id: &str) -> Result<(), String> {
    let table = cloud
        .state
        .iter()
        .find(|r| r.association_ids.values().any(|a| a == association_id))
        .map(|r| r.cloud_id.clone());
    let Some(t) = table else {
        return Ok(());
    };
    cloud.update(&t, |r| {
        let subnet = r
            .association_ids
            .iter()
            .find(|(_, a)| *a == association_id)
            .map(|(s, _)| s.clone());
        if let Some(s) = subnet {
            r.association_ids.remove(&s);
            if let Spec::RouteTable(rt) = &mut r.spec {
                rt.associations.remove(&s);
            }
        }
        Ok(())
    })
}
