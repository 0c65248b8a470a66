//! NAT gateways, by EC2's rules: in an existing subnet; a public one holds
//! an address no one else holds and needs an internet gateway attached to
//! its VPC; a new one is `pending` (no route may go through it) until time
//! passes (`RefCloud::settle`); deleting one frees its address and subnet.

use canon_model::{Action, NatGatewaySpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateNatGateway {
            subnet,
            allocation,
            tags,
        } => {
            let s = id(subnet)?;
            let Spec::Subnet(sub) = &cloud.get(&s)?.spec else {
                return Err(format!("{s} is not a subnet"));
            };
            let vpc = sub.vpc.clone();
            let allocation = allocation.as_ref().map(id).transpose()?;
            if let Some(a) = &allocation {
                let address = cloud.get(a)?;
                if !matches!(address.spec, Spec::ElasticIp(_)) {
                    return Err(format!("{a} is not an address"));
                }
                if !address.association_ids.is_empty() || cloud.nat_holding(a).is_some() {
                    return Err(format!("Resource.AlreadyAssociated: {a} is in use"));
                }
                if !cloud.gateway_attached(&vpc) {
                    return Err(format!(
                        "Gateway.NotAttached: {vpc} has no internet gateway"
                    ));
                }
            }
            let spec = Spec::NatGateway(NatGatewaySpec {
                subnet: s,
                allocation,
                tags: tags.clone(),
            });
            let n = cloud.create(&req.region, "nat", spec);
            cloud.update(&n, |r| {
                r.pending = true;
                Ok(())
            })?;
            return Ok(Some(n));
        }
        Action::DeleteNatGateway { nat_gateway } => {
            let n = id(nat_gateway)?;
            if !matches!(cloud.get(&n)?.spec, Spec::NatGateway(_)) {
                return Err(format!("{n} is not a NAT gateway"));
            }
            cloud.remove(&n)?;
        }
        _ => return Err(not_mine("NAT gateway", req)),
    }
    Ok(None)
}
