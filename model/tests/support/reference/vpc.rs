//! VPCs: new ones have DNS support on and hostnames off; hostnames need
//! support; a VPC with anything in it cannot be deleted.

use canon_model::{Action, Request, Spec, VpcAttribute, VpcSpec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVpc {
            cidr_block,
            instance_tenancy,
            tags,
        } => {
            let spec = Spec::Vpc(VpcSpec {
                cidr_block: *cidr_block,
                instance_tenancy: *instance_tenancy,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                dhcp_options: None,
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "vpc", spec)));
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
