//! Simulated subnets: inside their VPC's range, never overlapping a sibling,
//! in one of the region's zones; deleted only once no instance or NAT
//! gateway holds them (a deleted subnet leaves every route-table
//! association). A new subnet is in its VPC's default network ACL; a
//! deleted one leaves its ACL.

use canon_model::{Action, CloudRef, Ipv4Cidr, ObservedSpec, ResourceKind, Spec, SubnetSpec, Tags};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

/// A stored subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Subnet {
    pub meta: Meta,
    pub vpc: String,
    pub cidr: Ipv4Cidr,
    pub az: String,
    pub map_public: bool,
}

impl Subnet {
    /// The subnet as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::Subnet(SubnetSpec {
            vpc: self.vpc.clone(),
            cidr_block: self.cidr,
            availability_zone: self.az.clone(),
            map_public_ip_on_launch: self.map_public,
            tags: self.meta.tags.clone(),
        })
    }
}

impl RegionState {
    /// The subnet `s`, or EC2's not-found error.
    pub(crate) fn subnet(&self, s: &str) -> Result<&Subnet, CloudError> {
        self.subnets
            .get(s)
            .ok_or_else(|| not_found(ResourceKind::Subnet, s))
    }

    /// Whether `az` is one of this region's zones (`us-west-2a` … `f`).
    pub(crate) fn has_zone(&self, az: &str) -> bool {
        az.strip_prefix(self.region.as_str()).is_some_and(|rest| {
            rest.len() == 1 && ('a'..='f').contains(&rest.chars().next().unwrap_or(' '))
        })
    }

    /// Refuses a zone outside this region.
    fn check_az(&self, az: &str) -> Result<(), CloudError> {
        if self.has_zone(az) {
            Ok(())
        } else {
            Err(err(
                "InvalidParameterValue",
                format!(
                    "Value ({az}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {r}a, {r}b, {r}c.",
                    r = self.region
                ),
            ))
        }
    }
}

/// Applies one subnet action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            tags,
        } => create(region, vpc, *cidr_block, availability_zone, tags, call),
        Action::ModifySubnetAttribute {
            subnet,
            map_public_ip_on_launch,
        } => modify_attribute(region, subnet, *map_public_ip_on_launch),
        Action::DeleteSubnet { subnet } => delete(region, subnet, call.timing.now),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    vpc: &CloudRef,
    cidr_block: Ipv4Cidr,
    availability_zone: &str,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let v = id(vpc)?.to_string();
    let x = region.vpc(&v)?;
    if !(16..=28).contains(&cidr_block.prefix()) || !x.cidr.contains(cidr_block) {
        return Err(err(
            "InvalidSubnet.Range",
            format!("The CIDR '{cidr_block}' is invalid."),
        ));
    }
    region.check_az(availability_zone)?;
    if region
        .subnets
        .values()
        .any(|s| s.vpc == v && s.cidr.overlaps(cidr_block))
    {
        return Err(err(
            "InvalidSubnet.Conflict",
            format!("The CIDR '{cidr_block}' conflicts with another subnet"),
        ));
    }
    let rid = new_id(call.rng, "subnet");
    region.join_default_acl(&rid, &v, call.rng);
    region.subnets.insert(
        rid.clone(),
        Subnet {
            meta: Meta::new(tags, call.timing.visible_at),
            vpc: v,
            cidr: cidr_block,
            az: availability_zone.to_string(),
            map_public: false,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "subnet"),
        Some(rid),
    ))
}

fn modify_attribute(
    region: &mut RegionState,
    subnet: &CloudRef,
    map_public_ip_on_launch: bool,
) -> Result<Applied, CloudError> {
    let s = id(subnet)?.to_string();
    region.subnet(&s)?;
    if let Some(x) = region.subnets.get_mut(&s) {
        x.map_public = map_public_ip_on_launch;
    }
    Ok(Applied::mutated(
        changed(format!(
            "set mapPublicIpOnLaunch of {s} to {map_public_ip_on_launch}"
        )),
        Some(s),
    ))
}

fn delete(region: &mut RegionState, subnet: &CloudRef, now: u64) -> Result<Applied, CloudError> {
    let s = id(subnet)?.to_string();
    region.subnet(&s)?;
    if region
        .instances
        .values()
        .any(|i| i.subnet == s && i.state.blocks(now))
        || region.nat_in_subnet(&s, now)
        || region.endpoint_uses(&s)
    {
        return Err(err(
            "DependencyViolation",
            format!("The subnet '{s}' has dependencies and cannot be deleted."),
        ));
    }
    for r in region.rtbs.values_mut() {
        r.assoc.remove(&s);
    }
    region.leave_acl(&s);
    region.subnets.remove(&s);
    Ok(Applied::mutated(changed(format!("deleted {s}")), Some(s)))
}
