//! The planner: `plan(desired, observed, bindings)` decides what to do.
//!
//! It is one diff for every purpose — a first run (nothing observed), an
//! update (a new declaration), enforcement (drift found by a tick) and kill
//! (an empty declaration) — so there is exactly one place where Canon decides
//! which cloud calls to make. The steps:
//!
//! 1. **Match** each declared resource to the cloud resource it is bound to,
//!    or else to one carrying its ownership tag (an *adoption*: the cloud has
//!    it but the bindings lost it, e.g. after a crash between create and
//!    commit). Owned cloud resources matched to nothing are *orphans*.
//! 2. **Translate** observed references from cloud ids to logical ids through
//!    the matches, and compare with the declaration property by property.
//! 3. **Replace** a resource whose replacement-required property differs;
//!    references to a replaced resource then point at the old cloud id, so its
//!    dependents are compared against that and cascade as the cloud demands.
//! 4. **Order**: creates and in-place changes go in dependency order, deletes
//!    of orphans and replaced resources in reverse, after them
//!    (create-new-then-delete-old). Where the old resource would block the
//!    new one — a subnet whose range overlaps, a group with the same name in
//!    the same VPC — the old one is deleted first.
//!
//! 5. **Wait**: a change that needs a resource that is not ready — a route
//!    through a NAT gateway this plan creates, or that the cloud shows
//!    still `pending` — is left out and listed in [`Plan::waiting`]; a
//!    later pass makes it, once the cloud shows the resource ready. So is
//!    the terminate of an old instance whose replacement is not ready yet
//!    (`rotation`: instances are also replaced when older than their
//!    `maxAge`, stopped out of band or impaired).
//!
//! Step 1 is `matching`; the state carried between the steps is the
//! `Draft` (`draft`); what each kind does in steps 2 to 4 is in its module
//! under `kinds/`. This module runs the steps.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::draft::Draft;
pub use crate::draft::{Difference, Waiting};
use crate::matching::Matching;
use crate::{
    kinds, rotation, Bindings, DesiredState, Intent, LogicalId, ObservedResource, ObservedState,
    ReplaceReason, ReplacedInstance, Request, Resource, RotationRequest, Spec, UnixMillis,
};

/// What the planner decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The requests to execute, in order.
    pub requests: Vec<Request>,
    /// Every difference found, in declaration order.
    pub differences: Vec<Difference>,
    /// Cloud resources found by their ownership tag but missing from the
    /// bindings: the caller should bind them.
    pub adoptions: Vec<(LogicalId, String)>,
    /// Changes left for a later pass because a resource they need is not
    /// ready yet (a route through a NAT gateway that is still `pending`,
    /// or that this plan creates). They are not differences yet: they are
    /// recorded, and healed, once they can be made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
    /// The declared instances the rotation requests planned with still
    /// cover: bound to an instance launched before a request, replaced by
    /// this plan or waiting their turn. Empty once every request is done
    /// (and without one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotating: Vec<LogicalId>,
    /// The instances this plan replaces (launching their successors), each
    /// with its reason: what the replacement history records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacements: Vec<ReplacedInstance>,
    /// Fleet members whose new instance failed its checks while the old
    /// one serves: this plan terminates it (the cloud id) and keeps the
    /// old one. In a fleet without surge (no old one to keep), a new
    /// instance that did not pass its check within the grace: kept until
    /// its backoff is over, then replaced. The caller records the failure
    /// (`rollout_failure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<(LogicalId, String)>,
    /// Members with recorded failures whose instance is now one launched
    /// after the last failure and ready: the caller clears their failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<LogicalId>,
}

impl Plan {
    /// True when the cloud matches the declaration: nothing to do and
    /// nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.waiting.is_empty()
    }

    /// True when nothing can be done now but something waits for a
    /// resource to become ready: the caller should look again later.
    pub fn only_waits(&self) -> bool {
        self.requests.is_empty() && !self.waiting.is_empty()
    }

    /// The requests as the dry-run prints them.
    pub fn to_json(&self) -> Value {
        Value::Array(self.requests.iter().map(Request::to_json).collect())
    }
}

/// Plans the requests that make the cloud match `desired`.
///
/// `observed` may hold other processes' resources too; only those owned by
/// `desired.fid` (by tag) or bound in `bindings` are considered, so a plan
/// never touches anything the process does not own.
pub fn plan(desired: &DesiredState, observed: &ObservedState, bindings: &Bindings) -> Plan {
    let draft = Draft::new(desired, Matching::new(desired, observed, bindings), None);
    run(draft)
}

/// [`plan`] at time `now`: instances older than their declared `maxAge`
/// (by the launch time the cloud reports) are replaced too. Without a
/// time, age plays no part; stopped and impaired instances are replaced
/// either way.
pub fn plan_at(
    desired: &DesiredState,
    observed: &ObservedState,
    bindings: &Bindings,
    now: UnixMillis,
) -> Plan {
    plan_requested(desired, observed, bindings, now, &[])
}

/// [`plan_at`] with the rotations the user requested (`canon fleet
/// rotate`) that are still outstanding: every instance one covers is
/// replaced too (reason "requested"), rationed by its fleet's rules, and
/// [`Plan::rotating`] lists those still to go.
pub fn plan_requested(
    desired: &DesiredState,
    observed: &ObservedState,
    bindings: &Bindings,
    now: UnixMillis,
    requested: &[RotationRequest],
) -> Plan {
    let intent = Intent {
        rotations: requested,
        ..Intent::default()
    };
    plan_with(desired, observed, bindings, now, intent)
}

/// [`plan_requested`] with every piece of replicated intent: the rotations
/// requested and the fleets' failed replacements, which hold a member's
/// next replacement back until its backoff is over and park a fleet's
/// rollout after `rollout_failure::PARK_AFTER` in a row.
pub fn plan_with(
    desired: &DesiredState,
    observed: &ObservedState,
    bindings: &Bindings,
    now: UnixMillis,
    intent: Intent<'_>,
) -> Plan {
    let mut draft = Draft::new(
        desired,
        Matching::new(desired, observed, bindings),
        Some(now),
    );
    draft.requested = intent.rotations;
    draft.failures = intent.failures;
    draft.reached = intent.reached;
    draft.replaced_at = intent.replaced_at;
    run(draft)
}

/// Plans the deletion of everything process `fid` owns: `kill`.
pub fn plan_kill(fid: crate::Fid, observed: &ObservedState, bindings: &Bindings) -> Plan {
    plan(&DesiredState::empty(fid), observed, bindings)
}

/// Steps 2 to 4, once matching is done.
fn run(mut draft: Draft<'_>) -> Plan {
    find_replacements(&mut draft);
    find_early_deletes(&mut draft);
    draft.doomed_ids = doomed(&draft).iter().map(|o| o.cloud_id.as_str()).collect();

    let desired = draft.desired;
    let mut order: Vec<&Resource> = desired.resources.values().collect();
    order.sort_by_key(|r| (r.kind().rank(), r.id));
    let mut replacements = Vec::new();
    for d in order {
        if draft.fallen.contains(&d.id) {
            continue;
        }
        match draft.matched.get(&d.id).copied() {
            Some(o) if !draft.replaced.contains(&d.id) => kinds::update(&mut draft, d, o),
            Some(o) => {
                let have = draft.translate(o);
                let mut why = kinds::replace_differences(&d.spec, &have);
                let due = rotation::due(&draft, &d.spec, o);
                why.extend(due.map(rotation::Reason::difference));
                if let Spec::Instance(_) = d.spec {
                    replacements.push(replaced_instance(d.id, o, due, &why));
                }
                for (property, declared, observed) in why {
                    draft.differ(
                        d.id,
                        d.kind(),
                        Some(o),
                        property,
                        Some(declared),
                        Some(observed),
                    );
                }
                kinds::create(&mut draft, d);
            }
            None => {
                draft.differ(
                    d.id,
                    d.kind(),
                    None,
                    "existence".into(),
                    Some("present".into()),
                    None,
                );
                kinds::create(&mut draft, d);
            }
        }
    }

    let mut failed = fall_back(&mut draft, &mut replacements);
    failed.extend(rotation::failed_in_place(&draft));
    let recovered = rotation::recovered(&draft);
    let mut doomed: Vec<(LogicalId, &ObservedResource)> = draft.orphans.clone();
    for (l, o) in &draft.matched {
        if draft.replaced.contains(l) {
            doomed.push((*l, o));
        }
    }
    doomed.sort_by_key(|(l, o)| (std::cmp::Reverse(o.kind().rank()), *l, o.cloud_id.clone()));
    let orphan_ids: BTreeSet<&str> = draft
        .orphans
        .iter()
        .map(|(_, o)| o.cloud_id.as_str())
        .collect();
    let held = rotation::held(&draft, &doomed);
    let occupied = occupied(&draft);
    for (l, o) in doomed {
        if held.get(&l).is_some_and(|h| h.cloud_id == o.cloud_id) {
            draft.wait_for_replacement(l, o);
            continue;
        }
        if let Some(tenant) = occupied.get(o.cloud_id.as_str()) {
            draft.wait_for_tenant(l, o, *tenant);
            continue;
        }
        if orphan_ids.contains(o.cloud_id.as_str()) {
            draft.differ(
                l,
                o.kind(),
                Some(o),
                "existence".into(),
                None,
                Some("present".into()),
            );
        }
        kinds::delete(&mut draft, l, o);
    }

    let rotating = rotation::outstanding(&draft);
    let finished = draft.finish();
    Plan {
        requests: finished.requests,
        differences: finished.differences,
        adoptions: finished.adoptions,
        waiting: finished.waiting,
        rotating,
        replacements,
        failed,
        recovered,
    }
}

/// Terminates the failed new instance of each member that falls back to
/// its old one (`Draft::fallen`), recording why; returns (member, failed
/// instance) for the caller to record.
fn fall_back(
    draft: &mut Draft<'_>,
    replacements: &mut Vec<ReplacedInstance>,
) -> Vec<(LogicalId, String)> {
    let fallen: Vec<LogicalId> = draft.fallen.iter().copied().collect();
    let mut failed = Vec::new();
    for l in fallen {
        let Some(o) = draft.matched.get(&l).copied() else {
            continue;
        };
        let Some(d) = draft.desired.resources.get(&l) else {
            continue;
        };
        let why: Vec<(String, String, String)> = rotation::due(draft, &d.spec, o)
            .map(rotation::Reason::difference)
            .into_iter()
            .collect();
        let mut replaced = replaced_instance(l, o, rotation::due(draft, &d.spec, o), &why);
        replaced.detail.push_str("; the old instance is kept");
        replacements.push(replaced);
        for (property, declared, observed) in why {
            draft.differ(
                l,
                d.kind(),
                Some(o),
                property,
                Some(declared),
                Some(observed),
            );
        }
        kinds::delete(draft, l, o);
        failed.push((l, o.cloud_id.clone()));
    }
    failed
}

/// The replacement of the instance `o` serving `l`, with the reason the
/// history gives it: a changed property first (an image change during a
/// rotation is the image change), else its life's reason (`due`), else a
/// resource it needs that is replaced.
fn replaced_instance(
    l: LogicalId,
    o: &ObservedResource,
    due: Option<rotation::Reason>,
    why: &[(String, String, String)],
) -> ReplacedInstance {
    let changed = why.len() > usize::from(due.is_some());
    let reason = match due {
        Some(r) if !changed => r.cause(),
        _ => ReplaceReason::Change,
    };
    let detail = why.first().map_or_else(
        || "a resource it needs is replaced".to_string(),
        |(property, declared, observed)| format!("{property}: {observed}, declared {declared}"),
    );
    ReplacedInstance {
        resource: l,
        cloud_id: o.cloud_id.clone(),
        reason,
        detail,
    }
}

/// Marks replacements until nothing changes: replacing one resource can
/// make its dependents' references stale.
fn find_replacements(draft: &mut Draft<'_>) {
    loop {
        let mut newly = Vec::new();
        let mut fallen = Vec::new();
        for (l, o) in &draft.matched {
            if draft.replaced.contains(l) || draft.fallen.contains(l) {
                continue;
            }
            let Some(d) = draft.desired.resources.get(l) else {
                continue;
            };
            let due = rotation::due(draft, &d.spec, o);
            if rotation::falls_back(draft, *l, due) {
                fallen.push(*l);
            } else if due.is_some() || kinds::needs_replacement(draft, &d.spec, &o.spec) {
                newly.push((*l, due));
            }
        }
        draft.fallen.extend(fallen);
        let newly = rotation::within_budget(draft, newly);
        if newly.is_empty() {
            return;
        }
        draft.replaced.extend(newly);
    }
}

/// Finds deletes that must happen before the creates: an old subnet whose
/// range overlaps a new one in the same VPC, an old group with a new
/// one's name in the same VPC, an old NAT gateway holding a new one's
/// address or keeping an internet gateway from being detached; then
/// whatever depends on those and goes too; the old instances of fleet
/// members without surge. An instance kept but using an early-deleted
/// group is replaced.
fn find_early_deletes<'a>(draft: &mut Draft<'a>) {
    loop {
        let doomed: Vec<&'a ObservedResource> = doomed(draft);
        let mut early: BTreeSet<&'a str> = BTreeSet::new();
        for d in draft.desired.resources.values() {
            let creating = !draft.matched.contains_key(&d.id) || draft.replaced.contains(&d.id);
            if !creating {
                continue;
            }
            for o in &doomed {
                if kinds::conflicts(draft, d, o) {
                    early.insert(o.cloud_id.as_str());
                }
            }
        }
        // Doomed resources that block an in-place change of a kept one (a
        // public NAT gateway, the detach of its VPC's internet gateway).
        for o in &doomed {
            if kinds::must_go_first(draft, o) {
                early.insert(o.cloud_id.as_str());
            }
        }
        // A fleet without surge never holds more than its count: a
        // member's old instance goes before its new one launches.
        early.extend(rotation::terminated_first(draft));
        // Whatever references an early delete and goes anyway goes early too.
        loop {
            let before = early.len();
            for o in &doomed {
                if o.spec
                    .references()
                    .iter()
                    .any(|r| early.contains(r.as_str()))
                {
                    early.insert(o.cloud_id.as_str());
                }
            }
            if early.len() == before {
                break;
            }
        }
        // Kept instances in an early-deleted subnet or using an
        // early-deleted group must be replaced, whatever their fleet's
        // rules: nothing else makes room for the new resource. So must a
        // kept interface endpoint with such a subnet or group (EC2 will
        // not delete either while the endpoint has it).
        let mut forced = Vec::new();
        for (l, o) in &draft.matched {
            if draft.replaced.contains(l) {
                continue;
            }
            let uses_early = match &o.spec {
                Spec::Instance(_) => o
                    .spec
                    .references()
                    .iter()
                    .any(|r| early.contains(r.as_str())),
                Spec::VpcEndpoint(e) => e
                    .subnets
                    .iter()
                    .chain(&e.security_groups)
                    .any(|r| early.contains(r.as_str())),
                _ => false,
            };
            if uses_early {
                forced.push(*l);
            }
        }
        draft.early = early;
        if forced.is_empty() {
            return;
        }
        draft.replaced.extend(forced);
        find_replacements(draft);
    }
}

/// Doomed cloud resources that must outlive this plan, each with an
/// instance that keeps it: the subnets of instances that stay this pass
/// (their replacement rationed by their fleet's rules; EC2 refuses to
/// delete a subnet with instances in it), and, transitively, the doomed
/// resources those subnets need (their VPC). A later pass deletes them,
/// once the last instance has moved.
fn occupied<'a>(draft: &Draft<'a>) -> BTreeMap<&'a str, LogicalId> {
    let mut out: BTreeMap<&'a str, LogicalId> = BTreeMap::new();
    for (l, o) in &draft.matched {
        if let (false, Spec::Instance(i)) = (draft.replaced.contains(l), &o.spec) {
            if draft.doomed_ids.contains(i.subnet.as_str()) {
                out.entry(i.subnet.as_str()).or_insert(*l);
            }
        }
    }
    let mut frontier: Vec<(&'a str, LogicalId)> = out.iter().map(|(c, l)| (*c, *l)).collect();
    while let Some((cloud_id, tenant)) = frontier.pop() {
        let Some(o) = draft.observed(cloud_id) else {
            continue;
        };
        for r in o.spec.references() {
            if let Some(&needed) = draft.doomed_ids.get(r.as_str()) {
                if !out.contains_key(needed) {
                    out.insert(needed, tenant);
                    frontier.push((needed, tenant));
                }
            }
        }
    }
    out
}

/// Cloud resources that this plan deletes: orphans and replaced ones.
fn doomed<'a>(draft: &Draft<'a>) -> Vec<&'a ObservedResource> {
    let mut v: Vec<&'a ObservedResource> = draft.orphans.iter().map(|(_, o)| *o).collect();
    for (l, o) in &draft.matched {
        if draft.replaced.contains(l) {
            v.push(o);
        }
    }
    v
}
