//! Simulated internet gateways: one per VPC at most, attached and detached
//! by name of both (not detached while a public NAT gateway in the VPC
//! maps an address), deleted only once detached.

use canon_model::{Action, CloudRef, InternetGatewaySpec, ObservedSpec, ResourceKind, Spec, Tags};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::InternetGateway;

/// A stored internet gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Igw {
    pub meta: Meta,
    pub vpc: Option<String>,
}

impl Igw {
    /// The gateway as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: self.vpc.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

/// Applies one internet-gateway action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateInternetGateway { tags } => create(region, tags, call),
        Action::AttachInternetGateway {
            internet_gateway,
            vpc,
        } => attach(region, internet_gateway, vpc),
        Action::DetachInternetGateway {
            internet_gateway,
            vpc,
        } => detach(region, internet_gateway, vpc, call.timing.now),
        Action::DeleteInternetGateway { internet_gateway } => delete(region, internet_gateway),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let rid = new_id(call.rng, "igw");
    region.igws.insert(
        rid.clone(),
        Igw {
            meta: Meta::new(tags, call.timing.visible_at),
            vpc: None,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "internet gateway"),
        Some(rid),
    ))
}

fn attach(
    region: &mut RegionState,
    internet_gateway: &CloudRef,
    vpc: &CloudRef,
) -> Result<Applied, CloudError> {
    let i = id(internet_gateway)?.to_string();
    let v = id(vpc)?.to_string();
    let igw = region.igws.get(&i).ok_or_else(|| not_found(KIND, &i))?;
    region.vpc(&v)?;
    match &igw.vpc {
        Some(attached) if *attached == v => {
            return Ok(Applied::unchanged(
                Outcome::already_done(None, format!("{i} already attached to {v}")),
                Some(i),
            ))
        }
        Some(attached) => {
            return Err(err(
                "Resource.AlreadyAssociated",
                format!("resource {i} is already attached to network {attached}"),
            ))
        }
        None => {}
    }
    if region
        .igws
        .values()
        .any(|g| g.vpc.as_deref() == Some(v.as_str()))
    {
        return Err(err(
            "Resource.AlreadyAssociated",
            format!("Network {v} already has an internet gateway attached"),
        ));
    }
    if let Some(g) = region.igws.get_mut(&i) {
        g.vpc = Some(v.clone());
    }
    Ok(Applied::mutated(
        changed(format!("attached {i} to {v}")),
        Some(i),
    ))
}

fn detach(
    region: &mut RegionState,
    internet_gateway: &CloudRef,
    vpc: &CloudRef,
    now: u64,
) -> Result<Applied, CloudError> {
    let i = id(internet_gateway)?.to_string();
    let v = id(vpc)?.to_string();
    if region.public_nat_in_vpc(&v, now) {
        return Err(err(
            "DependencyViolation",
            format!("Network {v} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."),
        ));
    }
    let igw = region.igws.get_mut(&i).ok_or_else(|| not_found(KIND, &i))?;
    if igw.vpc.as_deref() != Some(v.as_str()) {
        return Err(err(
            "Gateway.NotAttached",
            format!("resource {i} is not attached to network {v}"),
        ));
    }
    igw.vpc = None;
    Ok(Applied::mutated(
        changed(format!("detached {i} from {v}")),
        Some(i),
    ))
}

fn delete(region: &mut RegionState, internet_gateway: &CloudRef) -> Result<Applied, CloudError> {
    let i = id(internet_gateway)?.to_string();
    let igw = region.igws.get(&i).ok_or_else(|| not_found(KIND, &i))?;
    if igw.vpc.is_some() {
        return Err(err(
            "DependencyViolation",
            format!("The internetGateway '{i}' has dependencies and cannot be deleted."),
        ));
    }
    region.igws.remove(&i);
    Ok(Applied::mutated(changed(format!("deleted {i}")), Some(i)))
}
