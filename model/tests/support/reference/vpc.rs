//! VPCs: new ones have DNS support on and hostnames off; hostnames need
//! support; a VPC with anything in it cannot be deleted. An
//! Amazon-provided IPv6 `/56` (one at most) is EC2's pick, and cannot be
//! taken away while a subnet of the VPC holds a `/64` of it.

use canon_model::{Action, Ipv6Cidr, Request, Spec, VpcAttribute, VpcSpec, IPV6_ASSOCIATION};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVpc {
            cidr_block,
            instance_tenancy,
            amazon_provided_ipv6_cidr_block,
            tags,
        } => {
            let spec = Spec::Vpc(VpcSpec {
                cidr_block: *cidr_block,
                instance_tenancy: *instance_tenancy,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: tags.clone(),
            });
            let v = cloud.create(&req.region, "vpc", spec);
            if *amazon_provided_ipv6_cidr_block {
                associate_ipv6(cloud, &v)?;
            }
            return Ok(Some(v));
        }
        Action::AssociateVpcCidrBlock { vpc } => associate_ipv6(cloud, &id(vpc)?)?,
        Action::DisassociateVpcCidrBlock { association_id } => {
            let v = cloud.ipv6_holder(association_id)?;
            cloud.vpc(&v)?;
            let in_use = cloud.state.iter().any(
                |r| matches!(&r.spec, Spec::Subnet(s) if s.vpc == v && s.ipv6_cidr_block.is_some()),
            );
            if in_use {
                return Err(format!(
                    "InvalidCidrBlock.InUse: a subnet of {v} holds part of its IPv6 block"
                ));
            }
            cloud.update(&v, |r| {
                r.association_ids.remove(IPV6_ASSOCIATION);
                match &mut r.spec {
                    Spec::Vpc(s) => {
                        s.ipv6 = false;
                        s.ipv6_cidr_block = None;
                        Ok(())
                    }
                    _ => Err("not a vpc".into()),
                }
            })?;
        }
        Action::AssociateDhcpOptions { vpc, dhcp_options } => {
            let v = id(vpc)?;
            let d = match dhcp_options {
                Some(d) => {
                    let d = id(d)?;
                    cloud.get(&d)?;
                    Some(d)
                }
                None => None,
            };
            cloud.update(&v, |r| match &mut r.spec {
                Spec::Vpc(s) => {
                    s.dhcp_options = d;
                    Ok(())
                }
                _ => Err("not a vpc".into()),
            })?;
        }
        Action::ModifyVpcAttribute {
            vpc,
            attribute,
            value,
        } => {
            let v = id(vpc)?;
            cloud.update(&v, |r| match &mut r.spec {
                Spec::Vpc(s) => set_attribute(s, *attribute, *value),
                _ => Err("not a vpc".into()),
            })?;
        }
        Action::DeleteVpc { vpc } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let users = cloud.state.iter().any(|r| match &r.spec {
                Spec::Subnet(s) => s.vpc == v,
                Spec::RouteTable(s) => s.vpc == v,
                Spec::NetworkAcl(s) => s.vpc == v,
                Spec::EgressOnlyInternetGateway(s) => s.vpc == v,
                Spec::VpcPeeringConnection(s) => s.vpc == v || s.peer_vpc == v,
                Spec::VpcEndpoint(s) => s.vpc == v,
                Spec::SecurityGroup(s) => s.vpc == v,
                Spec::InternetGateway(s) => s.vpc.as_deref() == Some(v.as_str()),
                _ => false,
            });
            if users {
                return Err(format!("DependencyViolation: {v} has dependencies"));
            }
            cloud.remove(&v)?;
        }
        _ => return Err(not_mine("VPC", req)),
    }
    Ok(None)
}

/// EC2 picks a fresh `/56` for the VPC `v`; one per VPC.
fn associate_ipv6(cloud: &mut super::RefCloud, v: &str) -> Result<(), String> {
    if cloud.vpc(v)?.ipv6 {
        return Err(format!("CidrLimitExceeded: {v} already has an IPv6 block"));
    }
    let n = cloud.fresh("vpc-cidr-assoc");
    let serial = u16::from_str_radix(&n[n.len() - 4..], 16).map_err(|e| e.to_string())?;
    let block: Ipv6Cidr = format!("2600:1f00:{serial:x}::/56")
        .parse()
        .map_err(|e| format!("{e:?}"))?;
    cloud.update(v, |r| {
        r.association_ids.insert(IPV6_ASSOCIATION.into(), n);
        match &mut r.spec {
            Spec::Vpc(s) => {
                s.ipv6 = true;
                s.ipv6_cidr_block = Some(block);
                Ok(())
            }
            _ => Err("not a vpc".into()),
        }
    })
}

fn set_attribute(
    s: &mut VpcSpec<String>,
    attribute: VpcAttribute,
    value: bool,
) -> Result<(), String> {
    match attribute {
        VpcAttribute::EnableDnsSupport => {
            if !value && s.enable_dns_hostnames {
                return Err("InvalidParameterValue: hostnames need support".into());
            }
            s.enable_dns_support = value
        }
        VpcAttribute::EnableDnsHostnames => {
            if value && !s.enable_dns_support {
                return Err("InvalidParameterValue: hostnames need support".into());
            }
            s.enable_dns_hostnames = value
        }
    }
    Ok(())
}
