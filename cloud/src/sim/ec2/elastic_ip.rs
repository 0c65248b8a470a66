//! Simulated Elastic IP addresses, in the VPC domain: allocated with a
//! public address from the documentation range, released only when no
//! association holds them (EC2's `InvalidIPAddress.InUse`).

use canon_model::{Action, CloudRef, ElasticIpSpec, ObservedSpec, ResourceKind, Spec, Tags};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::ElasticIp;

/// A stored address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Eip {
    pub meta: Meta,
    pub public_ip: String,
    /// The association holding it (`eipassoc-…`) and what it is associated
    /// with (an instance, a network interface or a NAT gateway).
    pub association: Option<(String, String)>,
}

impl Eip {
    /// The address as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::ElasticIp(ElasticIpSpec {
            tags: self.meta.tags.clone(),
        })
    }
}

/// Applies one address action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::AllocateAddress { tags } => allocate(region, tags, call),
        Action::DisassociateAddress { association_id } => disassociate(region, association_id),
        Action::ReleaseAddress { allocation } => release(region, allocation),
        _ => Err(misrouted(action)),
    }
}

fn allocate<R: Rng + ?Sized>(
    region: &mut RegionState,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let rid = new_id(call.rng, "eipalloc");
    let host: u16 = call.rng.random();
    let public_ip = format!("198.51.{}.{}", host >> 8, host & 0xff);
    region.eips.insert(
        rid.clone(),
        Eip {
            meta: Meta::new(tags, call.timing.visible_at),
            public_ip,
            association: None,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "address"),
        Some(rid),
    ))
}

/// Associates address `a` with `holder` (what a NAT gateway's create, or a
/// rogue operator, does); returns the association id.
pub(crate) fn associate<R: Rng + ?Sized>(
    region: &mut RegionState,
    a: &str,
    holder: &str,
    rng: &mut R,
) -> Result<String, CloudError> {
    let eip = region.eips.get_mut(a).ok_or_else(|| not_found(KIND, a))?;
    if let Some((_, other)) = &eip.association {
        return Err(err(
            "Resource.AlreadyAssociated",
            format!("resource {a} is already associated with {other}"),
        ));
    }
    let association = new_id(rng, "eipassoc");
    eip.association = Some((association.clone(), holder.to_string()));
    Ok(association)
}

fn disassociate(region: &mut RegionState, association_id: &str) -> Result<Applied, CloudError> {
    let found = region.eips.iter_mut().find(|(_, e)| {
        e.association
            .as_ref()
            .is_some_and(|(id, _)| id == association_id)
    });
    let Some((a, eip)) = found else {
        return Err(err(
            "InvalidAssociationID.NotFound",
            format!("The association ID '{association_id}' does not exist"),
        ));
    };
    if let Some((_, holder)) = &eip.association {
        if region.nats.contains_key(holder) {
            return Err(err(
                "InvalidParameterValue",
                format!("{a} is in use by NAT gateway {holder}; delete the gateway instead"),
            ));
        }
    }
    eip.association = None;
    let a = a.clone();
    Ok(Applied::mutated(
        changed(format!("disassociated {a} ({association_id})")),
        Some(a),
    ))
}

fn release(region: &mut RegionState, allocation: &CloudRef) -> Result<Applied, CloudError> {
    let a = id(allocation)?.to_string();
    let eip = region.eips.get(&a).ok_or_else(|| not_found(KIND, &a))?;
    if let Some((_, holder)) = &eip.association {
        return Err(err(
            "InvalidIPAddress.InUse",
            format!("Address {} is in use by {holder}", eip.public_ip),
        ));
    }
    region.eips.remove(&a);
    Ok(Applied::mutated(changed(format!("released {a}")), Some(a)))
}

/// The association of address `eip`, keyed by what holds it (the observed
/// form of `ObservedResource::association_ids`); a NAT gateway's hold is
/// the gateway's, not one Canon ends, and is not shown.
pub(crate) fn association_ids(
    region: &RegionState,
    eip: &Eip,
) -> std::collections::BTreeMap<String, String> {
    eip.association
        .clone()
        .filter(|(_, holder)| !region.nats.contains_key(holder))
        .map(|(association, holder)| (holder, association))
        .into_iter()
        .collect()
}
