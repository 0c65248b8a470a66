//! Subnets: inside their VPC's range and overlapping no other subnet of it;
//! deleted only without instances or NAT gateways, taking their route-table association
//! with them.

use canon_model::{Action, Request, Spec, SubnetSpec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            tags,
        } => {
            let v = id(vpc)?;
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
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "subnet", spec)));
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
