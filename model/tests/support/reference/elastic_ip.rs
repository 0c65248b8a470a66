//! Elastic IP addresses: allocated in the VPC domain; a release is refused
//! while the address is associated or a NAT gateway holds it (EC2's
//! `InvalidIPAddress.InUse`), and a
//! disassociation of an association that is gone is a no-op.

use canon_model::{Action, ElasticIpSpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::AllocateAddress { tags } => {
            let spec = Spec::ElasticIp(ElasticIpSpec { tags: tags.clone() });
            return Ok(Some(cloud.create(&req.region, "eipalloc", spec)));
        }
        Action::DisassociateAddress { association_id } => {
            let holder = cloud
                .state
                .iter()
                .find(|r| r.association_ids.values().any(|a| a == association_id))
                .map(|r| r.cloud_id.clone());
            if let Some(address) = holder {
                cloud.update(&address, |r| {
                    r.association_ids.retain(|_, a| a != association_id);
                    Ok(())
                })?;
            }
        }
        Action::ReleaseAddress { allocation } => {
            let a = id(allocation)?;
            let address = cloud.get(&a)?;
            if !matches!(address.spec, Spec::ElasticIp(_)) {
                return Err(format!("{a} is not an address"));
            }
            if !address.association_ids.is_empty() {
                return Err(format!("InvalidIPAddress.InUse: {a} is associated"));
            }
            if let Some(n) = cloud.nat_holding(&a) {
                return Err(format!("InvalidIPAddress.InUse: NAT gateway {n} holds {a}"));
            }
            cloud.remove(&a)?;
        }
        _ => return Err(not_mine("address", req)),
    }
    Ok(None)
}
