//! Subnets: inside their VPC's range and overlapping no other subnet of it;
//! deleted only without instances or NAT gateways, taking their route-table association
//! with them.

use canon_model::{Action, Ipv6Cidr, Request, Spec, SubnetSpec, IPV6_ASSOCIATION};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            ipv6_cidr_block,
            tags,
        } => {
            let v = id(vpc)?;
            if let Some(b) = ipv6_cidr_block {
                check_ipv6(cloud, &v, *b)?;
            }
            let vs = cloud.vpc(&v)?;
            if !vs.cidr_block.contains(*cidr_block) {
                return Err("InvalidSubnet.Range".into());
            }
            let overlaps = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::Subnet(s) if s.vpc == v && s.cidr_block.overlaps(*cidr_block))
            });
            if overlaps {
                return Err(format!("InvalidSubnet.Conflict: {cidr_block}"));
            }
            let spec = Spec::Subnet(SubnetSpec {
                vpc: v,
                cidr_block: *cidr_block,
                availability_zone: availability_zone.clone(),
                map_public_ip_on_launch: false,
                ipv6_index: None,
                ipv6_cidr_block: None,
                tags: tags.clone(),
            });
            let s = cloud.create(&req.region, "subnet", spec);
            if let Some(b) = ipv6_cidr_block {
                set_ipv6(cloud, &s, Some(*b))?;
            }
            return Ok(Some(s));
        }
        Action::AssociateSubnetCidrBlock {
            subnet,
            ipv6_cidr_block,
        } => {
            let s = id(subnet)?;
            let Spec::Subnet(have) = &cloud.get(&s)?.spec else {
                return Err("not a subnet".into());
            };
            if have.ipv6_cidr_block.is_some() {
                return Err(format!(
                    "InvalidParameterValue: {s} already has an IPv6 block"
                ));
            }
            let v = have.vpc.clone();
            check_ipv6(cloud, &v, *ipv6_cidr_block)?;
            set_ipv6(cloud, &s, Some(*ipv6_cidr_block))?;
        }
        Action::DisassociateSubnetCidrBlock { association_id } => {
            let s = cloud.ipv6_holder(association_id)?;
            set_ipv6(cloud, &s, None)?;
        }
        Action::ModifySubnetAttribute {
            subnet,
            map_public_ip_on_launch,
        } => {
            let s = id(subnet)?;
            cloud.update(&s, |r| match &mut r.spec {
                Spec::Subnet(s) => {
                    s.map_public_ip_on_launch = *map_public_ip_on_launch;
                    Ok(())
                }
                _ => Err("not a subnet".into()),
            })?;
        }
        Action::DeleteSubnet { subnet } => delete(cloud, &id(subnet)?)?,
        _ => return Err(not_mine("subnet", req)),
    }
    Ok(None)
}

/// EC2's rules for a subnet's `/64`: a `/64` of its VPC's `/56`, held by
/// no other subnet.
fn check_ipv6(cloud: &RefCloud, v: &str, b: Ipv6Cidr) -> Result<(), String> {
    let inside = cloud.vpc(v)?.ipv6_cidr_block.and_then(|vb| b.index_in(vb));
    if inside.is_none() {
        return Err(format!(
            "InvalidSubnet.Range: {b} is not a /64 of {v}'s IPv6 block"
        ));
    }
    let taken = cloud
        .state
        .iter()
        .any(|r| matches!(&r.spec, Spec::Subnet(s) if s.vpc == v && s.ipv6_cidr_block == Some(b)));
    if taken {
        return Err(format!("InvalidSubnet.Conflict: {b}"));
    }
    Ok(())
}

fn set_ipv6(cloud: &mut RefCloud, s: &str, b: Option<Ipv6Cidr>) -> Result<(), String> {
    let association = b.map(|_| cloud.fresh("subnet-cidr-assoc"));
    cloud.update(s, |r| {
        match association {
            Some(a) => r.association_ids.insert(IPV6_ASSOCIATION.into(), a),
            None => r.association_ids.remove(IPV6_ASSOCIATION),
        };
        match &mut r.spec {
            Spec::Subnet(s) => {
                s.ipv6_cidr_block = b;
                Ok(())
            }
            _ => Err("not a subnet".into()),
        }
    })
}

fn delete(cloud: &mut RefCloud, s: &str) -> Result<(), String> {
    if !matches!(cloud.get(s)?.spec, Spec::Subnet(_)) {
        return Err("not a subnet".into());
    }
    if cloud
        .state
        .iter()
        .any(|r| matches!(&r.spec, Spec::Instance(i) if i.subnet == s))
    {
        return Err("DependencyViolation: subnet has instances".into());
    }
    if cloud
        .state
        .iter()
        .any(|r| matches!(&r.spec, Spec::NatGateway(n) if n.subnet == s))
    {
        return Err("DependencyViolation: subnet has a NAT gateway".into());
    }
    if cloud
        .state
        .iter()
        .any(|r| matches!(&r.spec, Spec::VpcEndpoint(e) if e.subnets.contains(s)))
    {
        return Err("DependencyViolation: subnet has an endpoint's interface".into());
    }
    // Associations (with route tables and network ACLs) go with the subnet.
    let tables: Vec<String> = cloud
        .state
        .iter()
        .filter(|r| r.association_ids.contains_key(s))
        .map(|r| r.cloud_id.clone())
        .collect();
    for t in tables {
        cloud.update(&t, |r| {
            r.association_ids.remove(s);
            match &mut r.spec {
                Spec::RouteTable(rt) => {
                    rt.associations.remove(s);
                }
                Spec::NetworkAcl(a) => {
                    a.associations.remove(s);
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    cloud.remove(s)
}
