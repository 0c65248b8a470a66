//! Internet gateways: one per VPC, attached to at most one, deleted only
//! when detached; not detached while a public NAT gateway in the VPC maps
//! an address (EC2's `DependencyViolation`).

use canon_model::{Action, InternetGatewaySpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateInternetGateway { tags } => {
            let spec = Spec::InternetGateway(InternetGatewaySpec {
                vpc: None,
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "igw", spec)));
        }
        Action::AttachInternetGateway {
            internet_gateway,
            vpc,
        } => {
            let (g, v) = (id(internet_gateway)?, id(vpc)?);
            cloud.vpc(&v)?;
            let taken = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::InternetGateway(s) if s.vpc.as_deref() == Some(v.as_str()))
            });
            if taken {
                return Err("Resource.AlreadyAssociated: vpc has a gateway".into());
            }
            cloud.update(&g, |r| match &mut r.spec {
                Spec::InternetGateway(s) if s.vpc.is_none() => {
                    s.vpc = Some(v.clone());
                    Ok(())
                }
                _ => Err("Resource.AlreadyAssociated or not a gateway".into()),
            })?;
        }
        Action::DetachInternetGateway {
            internet_gateway,
            vpc,
        } => {
            let (g, v) = (id(internet_gateway)?, id(vpc)?);
            if cloud.public_nat_in(&v) {
                return Err(format!(
                    "DependencyViolation: {v} has a public NAT gateway mapping an address"
                ));
            }
            cloud.update(&g, |r| match &mut r.spec {
                Spec::InternetGateway(s) if s.vpc.as_deref() == Some(v.as_str()) => {
                    s.vpc = None;
                    Ok(())
                }
                _ => Err("Gateway.NotAttached".into()),
            })?;
        }
        Action::DeleteInternetGateway { internet_gateway } => {
            let g = id(internet_gateway)?;
            if let Spec::InternetGateway(s) = &cloud.get(&g)?.spec {
                if s.vpc.is_some() {
                    return Err("DependencyViolation: gateway attached".into());
                }
            }
            cloud.remove(&g)?;
        }
        _ => return Err(not_mine("internet gateway", req)),
    }
    Ok(None)
}
