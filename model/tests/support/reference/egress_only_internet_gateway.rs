//! Egress-only internet gateways: made for a VPC that exists, and kept
//! from deletion by the routes through them (this interpreter is stricter
//! than EC2, which leaves them black holes, so that a plan never relies on
//! a gateway going before its routes).

use canon_model::{Action, EgressOnlyInternetGatewaySpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateEgressOnlyInternetGateway { vpc, tags } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let spec = Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                vpc: v,
                tags: tags.clone(),
            });
            Ok(Some(cloud.create(&req.region, "eigw", spec)))
        }
        Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway,
        } => {
            let g = id(egress_only_internet_gateway)?;
            if !matches!(cloud.get(&g)?.spec, Spec::EgressOnlyInternetGateway(_)) {
                return Err(format!("{g} is not an egress-only internet gateway"));
            }
            let routed = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::RouteTable(t) if t.routes.iter().any(|x| x.target == g))
            });
            if routed {
                return Err(format!("DependencyViolation: routes go through {g}"));
            }
            cloud.remove(&g)?;
            Ok(None)
        }
        _ => Err(not_mine("egress-only internet gateway", req)),
    }
}
