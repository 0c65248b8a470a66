//! VPC peering connections, by EC2's rules within one account and region:
//! between two different VPCs that exist and whose IPv4 blocks do not
//! overlap; a new one waits in `pending-acceptance` (no route may go
//! through it) until accepted, which only a connection waiting for it can
//! be; after that it is `provisioning` until time passes
//! (`RefCloud::settle`). This interpreter is stricter than EC2 (which
//! leaves routes through a deleted connection black holes, and deletes a
//! VPC's connections with it): a connection is not deleted while routes
//! name it, nor a VPC while a connection names it.

use canon_model::{Action, Request, Spec, VpcPeeringConnectionSpec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVpcPeeringConnection {
            vpc,
            peer_vpc,
            tags,
        } => {
            let (v, p) = (id(vpc)?, id(peer_vpc)?);
            let a = cloud.vpc(&v)?.cidr_block;
            let b = cloud.vpc(&p)?.cidr_block;
            if v == p {
                return Err(format!("InvalidParameterValue: {v} peered with itself"));
            }
            if a.overlaps(b) {
                return Err(format!("InvalidParameterValue: {a} overlaps {b}"));
            }
            let spec = Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
                vpc: v,
                peer_vpc: p,
                accepted: false,
                tags: tags.clone(),
            });
            let c = cloud.create(&req.region, "pcx", spec);
            cloud.update(&c, |r| {
                r.pending = true;
                Ok(())
            })?;
            Ok(Some(c))
        }
        Action::AcceptVpcPeeringConnection {
            vpc_peering_connection,
        } => {
            let c = id(vpc_peering_connection)?;
            cloud.update(&c, |r| match &mut r.spec {
                Spec::VpcPeeringConnection(s) if !s.accepted => {
                    s.accepted = true;
                    Ok(())
                }
                Spec::VpcPeeringConnection(_) => Err(format!(
                    "InvalidStateTransition: {c} is not pending acceptance"
                )),
                _ => Err(format!("{c} is not a peering connection")),
            })?;
            Ok(None)
        }
        Action::DeleteVpcPeeringConnection {
            vpc_peering_connection,
        } => {
            let c = id(vpc_peering_connection)?;
            if !matches!(cloud.get(&c)?.spec, Spec::VpcPeeringConnection(_)) {
                return Err(format!("{c} is not a peering connection"));
            }
            let routed = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::RouteTable(t) if t.routes.iter().any(|x| x.target == c))
            });
            if routed {
                return Err(format!("DependencyViolation: routes go through {c}"));
            }
            cloud.remove(&c)?;
            Ok(None)
        }
        _ => Err(not_mine("VPC peering connection", req)),
    }
}
