//! Gateway VPC endpoints, by EC2's rules: in a VPC that exists, routed
//! from route tables that exist and are of the same VPC; a modify adds
//! tables not already routed (of the VPC) and removes tables the endpoint
//! has. A deleted route table leaves its endpoints (`route_table.rs`).
//! This interpreter is stricter than EC2 (which deletes a VPC's endpoints
//! with it): a VPC is not deleted while an endpoint is in it.

use std::collections::BTreeSet;

use canon_model::{Action, CloudRef, Request, Spec, VpcEndpointSpec};

use super::{id, not_mine, RefCloud};

/// The cloud ids of `tables`, each a route table of VPC `v`.
fn tables_of(
    cloud: &RefCloud,
    v: &str,
    tables: &BTreeSet<CloudRef>,
) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for t in tables {
        let t = id(t)?;
        match &cloud.get(&t)?.spec {
            Spec::RouteTable(r) if r.vpc == v => {}
            Spec::RouteTable(r) => {
                return Err(format!(
                    "InvalidParameter: route table {t} is in {}, not {v}",
                    r.vpc
                ))
            }
            _ => return Err(format!("InvalidRouteTableId.NotFound: {t}")),
        }
        out.insert(t);
    }
    Ok(out)
}

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVpcEndpoint {
            vpc,
            service,
            route_tables,
            tags,
        } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let route_tables = tables_of(cloud, &v, route_tables)?;
            let spec = Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: v,
                service: *service,
                route_tables,
                tags: tags.clone(),
            });
            Ok(Some(cloud.create(&req.region, "vpce", spec)))
        }
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
        } => {
            let e = id(vpc_endpoint)?;
            let v = match &cloud.get(&e)?.spec {
                Spec::VpcEndpoint(s) => s.vpc.clone(),
                _ => return Err(format!("InvalidVpcEndpointId.NotFound: {e}")),
            };
            let add = tables_of(cloud, &v, add_route_tables)?;
            cloud.update(&e, |r| match &mut r.spec {
                Spec::VpcEndpoint(s) => {
                    for t in remove_route_tables {
                        if !s.route_tables.remove(t) {
                            return Err(format!("InvalidParameter: {t} is not routed to {e}"));
                        }
                    }
                    for t in add {
                        if !s.route_tables.insert(t.clone()) {
                            return Err(format!("InvalidParameter: {t} is already routed"));
                        }
                    }
                    Ok(())
                }
                _ => Err(format!("{e} is not an endpoint")),
            })?;
            Ok(None)
        }
        Action::DeleteVpcEndpoint { vpc_endpoint } => {
            let e = id(vpc_endpoint)?;
            if !matches!(cloud.get(&e)?.spec, Spec::VpcEndpoint(_)) {
                return Err(format!("{e} is not an endpoint"));
            }
            cloud.remove(&e)?;
            Ok(None)
        }
        _ => Err(not_mine("VPC endpoint", req)),
    }
}
