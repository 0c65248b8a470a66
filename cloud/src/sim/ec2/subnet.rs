//! Simulated subnets: inside their VPC's range, never overlapping a sibling,
//! in one of the region's zones; deleted only once no instance or NAT
//! gateway holds them (a deleted subnet leaves every route-table
//! association). A new subnet is in its VPC's default network ACL; a
//! deleted one leaves its ACL.
//!
//! A subnet may hold one IPv6 `/64` (given with the create or associated
//! later): a `/64` of its VPC's Amazon-provided `/56` that no other
//! subnet holds.

use canon_model::{
    Action, CloudRef, Ipv4Cidr, Ipv6Cidr, ObservedSpec, ResourceKind, Spec, SubnetSpec, Tags,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use super::vpc::Ipv6Block;
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
    /// The IPv6 `/64`, if the subnet holds one.
    #[serde(default)]
    pub ipv6: Option<Ipv6Block>,
}

impl Subnet {
    /// The subnet as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::Subnet(SubnetSpec {
            vpc: self.vpc.clone(),
            cidr_block: self.cidr,
            availability_zone: self.az.clone(),
            map_public_ip_on_launch: self.map_public,
            ipv6_index: None,
            ipv6_cidr_block: self.ipv6.as_ref().map(|b| b.block),
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
            ipv6_cidr_block,
            tags,
        } => create(
            region,
            vpc,
            *cidr_block,
            availability_zone,
            tags,
            call.rng,
            call.timing.visible_at,
            *ipv6_cidr_block,
        ),
        Action::AssociateSubnetCidrBlock {
            subnet,
            ipv6_cidr_block,
        } => {
            let s = id(subnet)?.to_string();
            let x = region.subnet(&s)?;
            if x.ipv6.is_some() {
                return Err(err(
                    "InvalidParameterValue",
                    format!("The subnet '{s}' already has an IPv6 CIDR block."),
                ));
            }
            let v = x.vpc.clone();
            check_ipv6(region, &v, *ipv6_cidr_block)?;
            let association = new_id(call.rng, "subnet-cidr-assoc");
            if let Some(x) = region.subnets.get_mut(&s) {
                x.ipv6 = Some(Ipv6Block {
                    block: *ipv6_cidr_block,
                    association,
                });
            }
            Ok(Applied::mutated(
                changed(format!("associated {ipv6_cidr_block} with {s}")),
                Some(s),
            ))
        }
        Action::DisassociateSubnetCidrBlock { association_id } => {
            disassociate_ipv6(region, association_id)
        }
        Action::ModifySubnetAttribute {
            subnet,
            map_public_ip_on_launch,
        } => modify_attribute(region, subnet, *map_public_ip_on_launch),
        Action::DeleteSubnet { subnet } => delete(region, subnet, call.timing.now),
        _ => Err(misrouted(action)),
    }
}

#[allow(clippy::too_many_arguments)]
fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    vpc: &CloudRef,
    cidr_block: Ipv4Cidr,
    availability_zone: &str,
    tags: &Tags,
    rng: &mut R,
    visible_at: u64,
    ipv6_cidr_block: Option<Ipv6Cidr>,
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
    if let Some(b) = ipv6_cidr_block {
        check_ipv6(region, &v, b)?;
    }
    let rid = new_id(rng, "subnet");
    let ipv6 = ipv6_cidr_block.map(|block| Ipv6Block {
        block,
        association: new_id(rng, "subnet-cidr-assoc"),
    });
    region.join_default_acl(&rid, &v, rng);
    region.subnets.insert(
        rid.clone(),
        Subnet {
            meta: Meta::new(tags, visible_at),
            vpc: v,
            cidr: cidr_block,
            az: availability_zone.to_string(),
            map_public: false,
            ipv6,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "subnet"),
        Some(rid),
    ))
}

/// EC2's rules for a subnet's IPv6 block in the VPC `v`: a `/64`, inside
/// the VPC's `/56`, held by no other subnet.
fn check_ipv6(region: &RegionState, v: &str, b: Ipv6Cidr) -> Result<(), CloudError> {
    if b.prefix() != 64 {
        return Err(err(
            "InvalidParameterValue",
            format!("The IPv6 CIDR '{b}' is invalid: a subnet's IPv6 block must be a /64."),
        ));
    }
    let inside = region
        .vpc(v)?
        .ipv6
        .as_ref()
        .is_some_and(|x| x.block.contains(b));
    if !inside {
        return Err(err(
            "InvalidSubnet.Range",
            format!("The IPv6 CIDR '{b}' is not within the IPv6 CIDR blocks of '{v}'."),
        ));
    }
    let taken = region
        .subnets
        .values()
        .any(|s| s.vpc == v && s.ipv6.as_ref().is_some_and(|x| x.block == b));
    if taken {
        return Err(err(
            "InvalidSubnet.Conflict",
            format!("The IPv6 CIDR '{b}' conflicts with another subnet"),
        ));
    }
    Ok(())
}

/// Takes a subnet's `/64` away by its association id.
fn disassociate_ipv6(
    region: &mut RegionState,
    association_id: &str,
) -> Result<Applied, CloudError> {
    let holder = region.subnets.iter_mut().find(|(_, x)| {
        x.ipv6
            .as_ref()
            .is_some_and(|b| b.association == association_id)
    });
    let Some((s, x)) = holder else {
        return Err(err(
            "InvalidSubnetCidrBlockAssociationID.NotFound",
            format!("The subnet CIDR block with association ID '{association_id}' does not exist"),
        ));
    };
    x.ipv6 = None;
    Ok(Applied::mutated(
        changed(format!("disassociated {association_id} from {s}")),
        Some(s.clone()),
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
        || region.enis.values().any(|e| e.subnet == s)
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
