//! VPC endpoints, by EC2's rules: in a VPC that exists; a gateway routed
//! from route tables that exist and are of the same VPC, an interface in
//! subnets of the VPC (no two in one zone: DuplicateSubnetsInSameZone)
//! guarded by groups of the VPC; a modify adds members not already there
//! (of the VPC) and removes members the endpoint has, sets private DNS
//! and sets or resets the policy. A deleted route table leaves its endpoints (`route_table.rs`).
//! This interpreter is stricter than EC2 (which deletes a VPC's endpoints
//! with it): a VPC is not deleted while an endpoint is in it.

use std::collections::BTreeSet;

use canon_model::SortedVecSet;

use canon_model::{Action, CloudRef, Request, Spec, VpcEndpointSpec};

use super::{id, not_mine, RefCloud};

/// The cloud ids of `members` (route tables, subnets or groups), each of
/// VPC `v`.
fn members_of(
    cloud: &RefCloud,
    v: &str,
    members: &BTreeSet<CloudRef>,
) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for t in members {
        let t = id(t)?;
        let vpc = match &cloud.get(&t)?.spec {
            Spec::RouteTable(r) => &r.vpc,
            Spec::Subnet(s) => &s.vpc,
            Spec::SecurityGroup(g) => &g.vpc,
            _ => return Err(format!("InvalidParameter: {t} cannot serve an endpoint")),
        };
        if vpc != v {
            return Err(format!("InvalidParameter: {t} is in {vpc}, not {v}"));
        }
        out.insert(t);
    }
    Ok(out)
}

/// EC2's DuplicateSubnetsInSameZone.
fn one_per_zone<'a>(
    cloud: &RefCloud,
    subnets: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    let mut zones = BTreeSet::new();
    for s in subnets {
        if let Spec::Subnet(spec) = &cloud.get(s)?.spec {
            if !zones.insert(spec.availability_zone.clone()) {
                return Err(format!("DuplicateSubnetsInSameZone: {s}"));
            }
        }
    }
    Ok(())
}

/// Removes `remove` from `set` and adds `add`, each required to change it.
fn change(
    set: &mut SortedVecSet<String>,
    add: BTreeSet<String>,
    remove: &BTreeSet<String>,
) -> Result<(), String> {
    for t in remove {
        if !set.remove(t) {
            return Err(format!("InvalidParameter: {t} is not on the endpoint"));
        }
    }
    for t in add {
        if !set.insert(t.clone()) {
            return Err(format!("InvalidParameter: {t} is already on the endpoint"));
        }
    }
    Ok(())
}

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVpcEndpoint {
            vpc,
            service,
            endpoint_type,
            route_tables,
            subnets,
            security_groups,
            private_dns,
            policy,
            tags,
        } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let route_tables = members_of(cloud, &v, route_tables)?;
            let subnets = members_of(cloud, &v, subnets)?;
            one_per_zone(cloud, &subnets)?;
            let security_groups = members_of(cloud, &v, security_groups)?;
            let spec = Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: v,
                service: *service,
                endpoint_type: *endpoint_type,
                route_tables: route_tables.into(),
                subnets: subnets.into(),
                security_groups: security_groups.into(),
                private_dns: *private_dns,
                policy: policy.clone(),
                tags: tags.clone(),
            });
            Ok(Some(cloud.create(&req.region, "vpce", spec)))
        }
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
            add_subnets,
            remove_subnets,
            add_security_groups,
            remove_security_groups,
            private_dns,
            policy,
            reset_policy,
        } => {
            let e = id(vpc_endpoint)?;
            let v = match &cloud.get(&e)?.spec {
                Spec::VpcEndpoint(s) => s.vpc.clone(),
                _ => return Err(format!("InvalidVpcEndpointId.NotFound: {e}")),
            };
            let add_tables = members_of(cloud, &v, add_route_tables)?;
            let add_subnets = members_of(cloud, &v, add_subnets)?;
            let add_groups = members_of(cloud, &v, add_security_groups)?;
            cloud.update(&e, |r| match &mut r.spec {
                Spec::VpcEndpoint(s) => {
                    change(&mut s.route_tables, add_tables, remove_route_tables)?;
                    change(&mut s.subnets, add_subnets, remove_subnets)?;
                    change(&mut s.security_groups, add_groups, remove_security_groups)?;
                    if let Some(on) = private_dns {
                        s.private_dns = *on;
                    }
                    if let Some(p) = policy {
                        s.policy = Some(p.clone());
                    }
                    if *reset_policy {
                        s.policy = None;
                    }
                    Ok(())
                }
                _ => Err(format!("{e} is not an endpoint")),
            })?;
            let subnets = match &cloud.get(&e)?.spec {
                Spec::VpcEndpoint(s) => s.subnets.clone(),
                _ => Default::default(),
            };
            one_per_zone(cloud, &subnets)?;
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
