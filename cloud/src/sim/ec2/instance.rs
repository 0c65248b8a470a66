//! Simulated instances: launches take a client token, check the image id,
//! the type's shape and that groups share the subnet's VPC (none means the
//! VPC's default group); a terminated instance keeps holding its subnet and
//! groups while it shuts down.

use std::collections::BTreeSet;

use canon_model::{Action, CloudRef, InstanceSpec, ObservedSpec, ResourceKind, Spec};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Instance;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum InstanceState {
    Running,
    /// Terminated but still holding its subnet and groups until `until`.
    ShuttingDown {
        until: u64,
    },
    Terminated,
}

impl InstanceState {
    /// Whether the instance still blocks deletes of its subnet and groups.
    pub fn blocks(self, now: u64) -> bool {
        match self {
            InstanceState::Running => true,
            InstanceState::ShuttingDown { until } => now < until,
            InstanceState::Terminated => false,
        }
    }
}

/// A stored instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inst {
    pub meta: Meta,
    pub image: String,
    pub itype: String,
    pub subnet: String,
    pub key: Option<String>,
    pub user_data: Option<String>,
    pub groups: BTreeSet<String>,
    pub state: InstanceState,
}

impl Inst {
    /// The instance as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::Instance(InstanceSpec {
            image_id: self.image.clone(),
            instance_type: self.itype.clone(),
            subnet: self.subnet.clone(),
            key_name: self.key.clone(),
            user_data: self.user_data.clone(),
            security_groups: self.groups.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

/// Applies one instance action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::RunInstances { .. } => run(region, action, call),
        Action::ModifyInstanceSecurityGroups {
            instance,
            security_groups,
        } => modify_groups(region, instance, security_groups),
        Action::TerminateInstances { instance } => terminate(region, instance, call),
        _ => Err(misrouted(action)),
    }
}

/// Refuses an image id that is not `ami-` and 8 to 17 hex digits, and an
/// instance type without a family and a size.
fn check_image_and_type(image_id: &str, instance_type: &str) -> Result<(), CloudError> {
    let hex_ok = image_id
        .strip_prefix("ami-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !hex_ok {
        return Err(err(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{image_id}\" (expecting \"ami-...\")"),
        ));
    }
    let type_ok = instance_type
        .split_once('.')
        .is_some_and(|(f, s)| !f.is_empty() && !s.is_empty());
    if !type_ok {
        return Err(err(
            "InvalidParameterValue",
            format!("Invalid value '{instance_type}' for InstanceType."),
        ));
    }
    Ok(())
}

fn run<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let Action::RunInstances {
        image_id,
        instance_type,
        subnet,
        security_groups,
        key_name,
        user_data,
        tags,
    } = action
    else {
        return Err(misrouted(action));
    };
    check_tags(tags)?;
    let fingerprint = format!("{action:?}");
    if let Some(replayed) = region.replay(call.token, &fingerprint)? {
        return Ok(replayed);
    }
    check_image_and_type(image_id, instance_type)?;
    let s = id(subnet)?.to_string();
    let vpc = region.subnet(&s)?.vpc.clone();
    let mut groups = BTreeSet::new();
    for g in security_groups {
        let g = id(g)?.to_string();
        let sg = region
            .sgs
            .get(&g)
            .ok_or_else(|| not_found(ResourceKind::SecurityGroup, &g))?;
        if sg.vpc != vpc {
            return Err(err(
                "InvalidParameter",
                format!("Security group {g} and subnet {s} belong to different networks."),
            ));
        }
        groups.insert(g);
    }
    if groups.is_empty() {
        if let Some(v) = region.vpcs.get(&vpc) {
            groups.insert(v.default_sg.clone());
        }
    }
    let rid = new_id(call.rng, "i");
    region.instances.insert(
        rid.clone(),
        Inst {
            meta: Meta::new(tags, call.timing.visible_at),
            image: image_id.clone(),
            itype: instance_type.clone(),
            subnet: s,
            key: key_name.clone(),
            user_data: user_data.clone(),
            groups,
            state: InstanceState::Running,
        },
    );
    region.remember_token(call.token, fingerprint, &rid);
    Ok(Applied::mutated(
        Outcome::created(&rid, "instance"),
        Some(rid),
    ))
}

fn modify_groups(
    region: &mut RegionState,
    instance: &CloudRef,
    security_groups: &BTreeSet<CloudRef>,
) -> Result<Applied, CloudError> {
    let i = id(instance)?.to_string();
    let inst = region
        .instances
        .get(&i)
        .filter(|x| x.state == InstanceState::Running)
        .ok_or_else(|| not_found(KIND, &i))?;
    let vpc = region.subnet(&inst.subnet)?.vpc.clone();
    let mut groups = BTreeSet::new();
    for g in security_groups {
        let g = id(g)?.to_string();
        let sg = region
            .sgs
            .get(&g)
            .ok_or_else(|| not_found(ResourceKind::SecurityGroup, &g))?;
        if sg.vpc != vpc {
            return Err(err(
                "InvalidGroup.NotFound",
                format!("The security group '{g}' does not exist in VPC '{vpc}'"),
            ));
        }
        groups.insert(g);
    }
    if groups.is_empty() {
        return Err(err(
            "InvalidParameterValue",
            "An instance must belong to at least one security group",
        ));
    }
    if let Some(x) = region.instances.get_mut(&i) {
        x.groups = groups;
    }
    Ok(Applied::mutated(
        changed(format!("replaced the groups of {i}")),
        Some(i),
    ))
}

fn terminate<R: Rng + ?Sized>(
    region: &mut RegionState,
    instance: &CloudRef,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let i = id(instance)?.to_string();
    let inst = region
        .instances
        .get_mut(&i)
        .ok_or_else(|| not_found(KIND, &i))?;
    if inst.state != InstanceState::Running {
        return Ok(Applied::unchanged(
            Outcome::already_done(None, format!("{i} already terminated")),
            Some(i),
        ));
    }
    let shutdown_ms = call.timing.shutdown_ms;
    inst.state = if shutdown_ms == 0 {
        InstanceState::Terminated
    } else {
        InstanceState::ShuttingDown {
            until: call.timing.now.saturating_add(shutdown_ms),
        }
    };
    Ok(Applied::mutated(
        changed(format!("terminated {i}")),
        Some(i),
    ))
}
