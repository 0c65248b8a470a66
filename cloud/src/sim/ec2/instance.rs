//! Simulated instances: launches take a client token, check the image id,
//! the type's shape and that groups share the subnet's VPC (none means the
//! VPC's default group); a terminated instance keeps holding its subnet and
//! groups while it shuts down. An instance lives as EC2's do: pending for
//! the boot delay, then running with its status checks initializing for
//! the check delay, then ok; stopped (stopping, then stopped) or impaired
//! only by someone outside Canon (`SimCloud::rogue_stop_instance`,
//! `rogue_impair_instance`). A describe shows its launch time, its state
//! and its checks.

use std::collections::BTreeSet;

use canon_model::{
    Action, CloudRef, Health, InstanceLife, InstanceSpec, ObservedSpec, ResourceKind, Spec,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{
    changed, err, new_id, not_found, Applied, Call, Meta, RegionState, Timing,
};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Instance;

/// A stored instance's state; the timed ones move on by themselves when
/// read at a later time ([`InstanceState::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum InstanceState {
    /// Booting until `until`, then running.
    Pending {
        until: u64,
    },
    Running,
    /// Stopping until `until`, then stopped.
    Stopping {
        until: u64,
    },
    Stopped,
    /// Terminated but still holding its subnet and groups until `until`.
    ShuttingDown {
        until: u64,
    },
    Terminated,
}

impl InstanceState {
    /// The state at `now`, the timed transitions done.
    pub fn at(self, now: u64) -> InstanceState {
        match self {
            InstanceState::Pending { until } if now >= until => InstanceState::Running,
            InstanceState::Stopping { until } if now >= until => InstanceState::Stopped,
            InstanceState::ShuttingDown { until } if now >= until => InstanceState::Terminated,
            other => other,
        }
    }

    /// Whether the instance still blocks deletes of its subnet and groups.
    pub fn blocks(self, now: u64) -> bool {
        self.at(now) != InstanceState::Terminated
    }

    /// Whether a describe still shows it (neither shutting down nor
    /// terminated).
    pub fn live(self, now: u64) -> bool {
        !matches!(
            self.at(now),
            InstanceState::ShuttingDown { .. } | InstanceState::Terminated
        )
    }

    /// The state as the model names it, for a live instance.
    fn observed(self, now: u64) -> canon_model::InstanceState {
        use canon_model::InstanceState as S;
        match self.at(now) {
            InstanceState::Pending { .. } => S::Pending,
            InstanceState::Running => S::Running,
            InstanceState::Stopping { .. } => S::Stopping,
            InstanceState::Stopped
            | InstanceState::ShuttingDown { .. }
            | InstanceState::Terminated => S::Stopped,
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
    /// When it was launched (0 in states saved before launch times).
    #[serde(default)]
    pub launched_at: u64,
    /// When its status checks pass, once it runs.
    #[serde(default)]
    pub checks_at: u64,
    /// Its checks failed (injected).
    #[serde(default)]
    pub impaired: bool,
    /// Its source/destination check (on at launch, as EC2's).
    #[serde(default = "check_on")]
    pub source_dest_check: bool,
}

/// A launched instance's source/destination check: on.
fn check_on() -> bool {
    true
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
            security_groups: self.groups.clone().into(),
            tags: self.meta.tags.clone(),
            max_age_secs: None,
            fleet: None,
            source_dest_check: self.source_dest_check,
        })
    }

    /// Its launch time, state and checks at `now`.
    pub fn life(&self, now: u64) -> InstanceLife {
        let state = self.state.observed(now);
        let health = if state != canon_model::InstanceState::Running {
            Health::Unknown
        } else if self.impaired {
            Health::Impaired
        } else if now < self.checks_at {
            Health::Initializing
        } else {
            Health::Ok
        };
        InstanceLife {
            launched_at: self.launched_at,
            state,
            health,
            address: None,
        }
    }
}

/// Someone outside Canon stops instance `i`.
pub(crate) fn stop(
    region: &mut RegionState,
    i: &str,
    timing: Timing,
) -> Result<Applied, CloudError> {
    live_mut(region, i, timing.now)?.state = InstanceState::Stopping {
        until: timing.now.saturating_add(timing.shutdown_ms),
    }
    .at(timing.now);
    Ok(Applied::mutated(
        changed(format!("stopped {i}")),
        Some(i.to_string()),
    ))
}

/// Instance `i`'s status checks fail from now on.
pub(crate) fn impair(region: &mut RegionState, i: &str, now: u64) -> Result<Applied, CloudError> {
    live_mut(region, i, now)?.impaired = true;
    Ok(Applied::mutated(
        changed(format!("impaired {i}")),
        Some(i.to_string()),
    ))
}

fn live_mut<'r>(
    region: &'r mut RegionState,
    i: &str,
    now: u64,
) -> Result<&'r mut Inst, CloudError> {
    region
        .instances
        .get_mut(i)
        .filter(|x| x.state.live(now))
        .ok_or_else(|| not_found(KIND, i))
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
        } => modify_groups(region, instance, security_groups, call.timing.now),
        Action::ModifyInstanceSourceDestCheck { instance, enabled } => {
            modify_source_dest_check(region, instance, *enabled, call.timing.now)
        }
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
            state: InstanceState::Pending {
                until: call.timing.now.saturating_add(call.timing.boot_ms),
            }
            .at(call.timing.now),
            launched_at: call.timing.now,
            checks_at: call
                .timing
                .now
                .saturating_add(call.timing.boot_ms)
                .saturating_add(call.timing.checks_ms),
            impaired: false,
            source_dest_check: true,
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
    now: u64,
) -> Result<Applied, CloudError> {
    let i = id(instance)?.to_string();
    let inst = region
        .instances
        .get(&i)
        .filter(|x| x.state.live(now))
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

fn modify_source_dest_check(
    region: &mut RegionState,
    instance: &CloudRef,
    enabled: bool,
    now: u64,
) -> Result<Applied, CloudError> {
    let i = id(instance)?.to_string();
    let inst = region
        .instances
        .get_mut(&i)
        .filter(|x| x.state.live(now))
        .ok_or_else(|| not_found(KIND, &i))?;
    inst.source_dest_check = enabled;
    let state = if enabled { "on" } else { "off" };
    Ok(Applied::mutated(
        changed(format!(
            "turned the source/destination check of {i} {state}"
        )),
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
    if !inst.state.live(call.timing.now) {
        return Ok(Applied::unchanged(
            Outcome::already_done(None, format!("{i} already terminated")),
            Some(i),
        ));
    }
    inst.state = InstanceState::ShuttingDown {
        until: call.timing.now.saturating_add(call.timing.shutdown_ms),
    }
    .at(call.timing.now);
    super::volume::detach_all(region, &i);
    super::network_interface::detach_all(region, &i);
    Ok(Applied::mutated(
        changed(format!("terminated {i}")),
        Some(i),
    ))
}
