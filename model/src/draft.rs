//! The plan being drafted: what the planner has matched and decided so far,
//! and the requests and differences it has written.
//!
//! The per-kind rules (`kinds/`) read it through reference translation
//! (declared terms ↔ cloud ids, knowing what this plan replaces and
//! deletes) and write to it through [`Draft::apply`], [`Draft::delete`],
//! [`Draft::push`] and [`Draft::drift`]; `plan` runs the steps and sorts
//! what they wrote by [`Slot`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::matching::Matching;
use crate::sorted_vec::SortedVecSet;
use crate::{
    Action, CloudRef, DesiredSpec, DesiredState, Hop, LogicalId, ObservedResource, Ref, Request,
    Resource, ResourceKind, RolloutFailure, RotationRequest, Rule, UnixMillis,
};

/// One difference between the declaration and the cloud, as data: what the
/// scheduler logs and alerts as drift while a process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub resource: LogicalId,
    pub kind: ResourceKind,
    /// The cloud resource concerned, if one exists.
    pub cloud_id: Option<String>,
    /// The property (`ingress`, `tags.Name`, `cidrBlock`, …), or `existence`
    /// when the whole resource is missing or unwanted.
    pub property: String,
    pub declared: Option<String>,
    pub observed: Option<String>,
}

/// A change held back until the resource `on` is ready (see
/// `Plan::waiting`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The resource whose change waits.
    pub resource: LogicalId,
    /// Which part of it (`routes.0.0.0.0/0`).
    pub part: String,
    /// What it waits for.
    pub on: LogicalId,
}

/// Where a request goes in the plan: phase, then rank within the phase, then
/// step within the kind, then generation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    phase: Phase,
    rank: usize,
    step: u8,
    seq: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Deletes that must precede creates (conflicting replacements).
    EarlyDelete,
    /// Creates and in-place changes, in dependency order.
    Apply,
    /// Deletes, in reverse dependency order.
    Delete,
}

// Steps within one kind in the Apply phase.
pub(crate) const STEP_CREATE: u8 = 0;
pub(crate) const STEP_ATTRIBUTES: u8 = 1;
pub(crate) const STEP_UNLINK: u8 = 2;
pub(crate) const STEP_LINK: u8 = 3;
pub(crate) const STEP_ASSOCIATE: u8 = 4;
pub(crate) const STEP_TAGS: u8 = 5;
// Steps within one kind in the delete phases.
pub(crate) const STEP_DETACH: u8 = 0;
pub(crate) const STEP_DELETE: u8 = 1;

/// A declared resource that keeps its cloud resource, as the update rules
/// see it.
pub(crate) struct Kept<'r> {
    pub(crate) d: &'r Resource,
    pub(crate) o: &'r ObservedResource,
    /// The cloud resource, as a request parameter.
    pub(crate) me: CloudRef,
}

/// A cloud resource this plan deletes, as the delete rules see it.
pub(crate) struct Going<'r> {
    /// The logical id it served.
    pub(crate) serves: LogicalId,
    pub(crate) o: &'r ObservedResource,
    /// The cloud resource, as a request parameter.
    pub(crate) me: CloudRef,
}

/// What a finished draft hands the planner.
pub(crate) struct Finished {
    pub(crate) requests: Vec<Request>,
    pub(crate) differences: Vec<Difference>,
    pub(crate) adoptions: Vec<(LogicalId, String)>,
    pub(crate) waiting: Vec<Waiting>,
}

pub(crate) struct Draft<'a> {
    pub(crate) desired: &'a DesiredState,
    /// Declared resource → the cloud resource it matches.
    pub(crate) matched: BTreeMap<LogicalId, &'a ObservedResource>,
    /// Cloud id → logical id, for matched resources.
    pub(crate) rev: HashMap<&'a str, LogicalId>,
    /// Owned cloud resources matched to nothing, with the logical id they
    /// serve(d).
    pub(crate) orphans: Vec<(LogicalId, &'a ObservedResource)>,
    adoptions: Vec<(LogicalId, String)>,
    /// Declared resources whose cloud resource must be replaced.
    pub(crate) replaced: BTreeSet<LogicalId>,
    /// Cloud ids deleted in the early phase.
    pub(crate) early: BTreeSet<&'a str>,
    /// Cloud ids this plan deletes, in any phase.
    pub(crate) doomed_ids: BTreeSet<&'a str>,
    /// The time of this plan, if instances' ages count.
    pub(crate) now: Option<UnixMillis>,
    /// The rotations the user requested that are still outstanding.
    pub(crate) requested: &'a [RotationRequest],
    /// Fleet members whose replacements failed (backoff, parking).
    pub(crate) failures: &'a BTreeMap<LogicalId, RolloutFailure>,
    /// Members whose new instance failed while the old one serves: the
    /// new one is terminated, the old one kept (and bound again).
    pub(crate) fallen: BTreeSet<LogicalId>,
    /// The instances (cloud ids) the conductor reached on their fleet's
    /// `Tcp` health-check port before this plan.
    pub(crate) reached: &'a BTreeSet<String>,
    /// When each member's latest replacement was recorded.
    pub(crate) replaced_at: &'a BTreeMap<LogicalId, UnixMillis>,
    out: Vec<(Slot, Request)>,
    differences: Vec<Difference>,
    waiting: Vec<Waiting>,
}

impl<'a> Draft<'a> {
    pub(crate) fn new(
        desired: &'a DesiredState,
        matching: Matching<'a>,
        now: Option<UnixMillis>,
    ) -> Self {
        let Matching {
            matched,
            rev,
            orphans,
            adoptions,
        } = matching;
        Draft {
            desired,
            matched,
            rev,
            orphans,
            adoptions,
            replaced: BTreeSet::new(),
            early: BTreeSet::new(),
            doomed_ids: BTreeSet::new(),
            now,
            requested: &[],
            failures: &crate::rollout_failure::NO_FAILURES,
            fallen: BTreeSet::new(),
            reached: &crate::rollout_failure::NO_REACHED,
            replaced_at: &crate::rollout_failure::NO_REPLACEMENTS,
            out: Vec::new(),
            differences: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// The requests in plan order, the differences in the order found, the
    /// adoptions, and the changes left waiting.
    pub(crate) fn finish(mut self) -> Finished {
        self.out.sort_by_key(|(slot, _)| *slot);
        Finished {
            requests: self.out.into_iter().map(|(_, r)| r).collect(),
            differences: self.differences,
            adoptions: self.adoptions,
            waiting: self.waiting,
        }
    }

    /// The route target a declared reference names, if it cannot be used
    /// yet: one of a kind that starts out pending (a NAT gateway) that this
    /// plan creates or replaces, or that the cloud still shows pending; or
    /// one of a kind ranked after route tables (an instance) that this
    /// plan creates or replaces, since its create comes after the table's
    /// routes.
    pub(crate) fn not_ready(&self, r: &Ref) -> Option<LogicalId> {
        let Ref::Managed(l) = r else {
            return None;
        };
        let d = self.desired.resources.get(l)?;
        let made_later = d.kind().rank() > ResourceKind::RouteTable.rank();
        if !d.kind().starts_pending() && !made_later {
            return None;
        }
        match self.matched.get(l) {
            Some(o) if !self.replaced.contains(l) && !o.pending => None,
            _ => Some(*l),
        }
    }

    /// Leaves the change `part` of `d` for a later pass, once `on` is ready.
    pub(crate) fn wait(&mut self, d: &Resource, part: String, on: LogicalId) {
        self.waiting.push(Waiting {
            resource: d.id,
            part,
            on,
        });
    }

    /// Keeps the old instance `o` of `l` in service until what replaces
    /// it is ready: its terminate waits for a later pass.
    pub(crate) fn wait_for_replacement(&mut self, l: LogicalId, o: &ObservedResource) {
        self.waiting.push(Waiting {
            resource: l,
            part: format!("retire {}", o.cloud_id),
            on: l,
        });
    }

    /// Keeps the doomed resource `o` (which served `l`) until `tenant`,
    /// an instance still in it, has moved: its delete waits for a later
    /// pass.
    pub(crate) fn wait_for_tenant(
        &mut self,
        l: LogicalId,
        o: &ObservedResource,
        tenant: LogicalId,
    ) {
        self.waiting.push(Waiting {
            resource: l,
            part: format!("delete {}", o.cloud_id),
            on: tenant,
        });
    }

    /// An observed resource this plan matched or found orphaned, by cloud id.
    pub(crate) fn observed(&self, cloud_id: &str) -> Option<&'a ObservedResource> {
        if let Some(l) = self.rev.get(cloud_id) {
            return self.matched.get(l).copied();
        }
        self.orphans
            .iter()
            .find(|(_, o)| o.cloud_id == cloud_id)
            .map(|(_, o)| *o)
    }

    /// The existing cloud resource a declared reference will point at, if it
    /// is kept (not created or replaced by this plan).
    pub(crate) fn physical<'r>(&self, r: &'r Ref) -> Option<&'r str>
    where
        'a: 'r,
    {
        match r {
            Ref::External(id) => Some(id),
            Ref::Managed(l) if !self.replaced.contains(l) => {
                self.matched.get(l).map(|o| o.cloud_id.as_str())
            }
            Ref::Managed(_) => None,
        }
    }

    /// An observed spec with references translated to the declaration's terms:
    /// a kept, matched resource by logical id; anything else by cloud id.
    pub(crate) fn translate(&self, o: &ObservedResource) -> DesiredSpec {
        o.spec.map_refs(|id| self.translate_id(id))
    }

    pub(crate) fn translate_id(&self, id: &str) -> Ref {
        match self.rev.get(id) {
            Some(l) if !self.replaced.contains(l) => Ref::Managed(*l),
            _ => Ref::External(id.to_string()),
        }
    }

    /// Whether the declared reference `want` and the observed cloud id
    /// `have` name the same thing (as `translate_id` would, without
    /// allocating).
    pub(crate) fn ref_eq(&self, want: &Ref, have: &str) -> bool {
        match (want, self.rev.get(have)) {
            (Ref::Managed(l), Some(h)) => l == h && !self.replaced.contains(l),
            (Ref::Managed(_), None) => false,
            (Ref::External(x), Some(h)) => x == have && self.replaced.contains(h),
            (Ref::External(x), None) => x == have,
        }
    }

    /// [`Draft::ref_eq`] for an optional reference: both absent, or both
    /// present and naming the same thing.
    pub(crate) fn opt_ref_eq(&self, want: Option<&Ref>, have: Option<&str>) -> bool {
        match (want, have) {
            (Some(w), Some(h)) => self.ref_eq(w, h),
            (None, None) => true,
            _ => false,
        }
    }

    /// A rule in declared terms (allocates only for unmanaged peers).
    pub(crate) fn translate_rule(&self, r: &Rule<String>) -> Rule<Ref> {
        r.map_peer(|g| self.translate_id(g))
    }

    /// A declared reference as a request parameter.
    pub(crate) fn cref(&self, r: &Ref) -> CloudRef {
        match r {
            Ref::External(id) => CloudRef::Id(id.clone()),
            Ref::Managed(l) => match self.matched.get(l) {
                Some(o) if !self.replaced.contains(l) => CloudRef::Id(o.cloud_id.clone()),
                _ => CloudRef::Pending(*l),
            },
        }
    }

    /// What kind of next hop a declared route target is (a managed one by
    /// its declared kind, another by its id).
    pub(crate) fn hop(&self, r: &Ref) -> Hop {
        match r {
            Ref::Managed(l) => self
                .desired
                .resources
                .get(l)
                .map_or(Hop::InternetGateway, |d| Hop::of_kind(d.kind())),
            Ref::External(id) => Hop::of_id(id),
        }
    }

    /// Adds `request` to the plan at `step` of `kind` in `phase`.
    pub(crate) fn push(&mut self, phase: Phase, kind: ResourceKind, step: u8, request: Request) {
        let rank = match phase {
            Phase::Apply => kind.rank(),
            Phase::EarlyDelete | Phase::Delete => ResourceKind::ALL.len() - kind.rank(),
        };
        let seq = self.out.len();
        self.out.push((
            Slot {
                phase,
                rank,
                step,
                seq,
            },
            request,
        ));
    }

    /// Adds a create or in-place change of `d` (its `part`, if any).
    pub(crate) fn apply(&mut self, d: &Resource, step: u8, part: Option<&str>, action: Action) {
        let request = Request {
            target: d.id,
            part: part.map(str::to_string),
            region: d.region.clone(),
            action,
        };
        self.push(Phase::Apply, d.kind(), step, request);
    }

    /// Adds a request that takes the doomed resource `g` (or its `part`)
    /// apart: in the early phase if it must go before the creates.
    pub(crate) fn delete(&mut self, g: &Going<'_>, step: u8, part: Option<&str>, action: Action) {
        let phase = if self.early.contains(g.o.cloud_id.as_str()) {
            Phase::EarlyDelete
        } else {
            Phase::Delete
        };
        let request = Request {
            target: g.serves,
            part: part.map(str::to_string),
            region: g.o.region.clone(),
            action,
        };
        self.push(phase, g.o.kind(), step, request);
    }

    /// Records a difference.
    pub(crate) fn differ(
        &mut self,
        resource: LogicalId,
        kind: ResourceKind,
        o: Option<&ObservedResource>,
        property: String,
        declared: Option<String>,
        observed: Option<String>,
    ) {
        self.differences.push(Difference {
            resource,
            kind,
            cloud_id: o.map(|o| o.cloud_id.clone()),
            property,
            declared,
            observed,
        });
    }

    /// Records a difference in `property` of the kept resource `k`.
    pub(crate) fn drift(
        &mut self,
        k: &Kept<'_>,
        property: impl Into<String>,
        declared: Option<String>,
        observed: Option<String>,
    ) {
        self.differ(
            k.d.id,
            k.d.kind(),
            Some(k.o),
            property.into(),
            declared,
            observed,
        );
    }

    /// How a drift record shows reference `r`: a declared resource by its
    /// name and, once it exists, its cloud id (`firewall (i-0ab…)`), not
    /// by its logical id; anything else by its cloud id.
    pub(crate) fn shown(&self, r: &Ref) -> String {
        match r {
            Ref::Managed(l) => {
                let name = self
                    .desired
                    .resources
                    .get(l)
                    .map_or_else(|| l.to_string(), |d| d.name.clone());
                match self.matched.get(l) {
                    Some(o) => format!("{name} ({})", o.cloud_id),
                    None => name,
                }
            }
            Ref::External(id) => id.clone(),
        }
    }

    /// The references of `set`, as [`Draft::shown`] shows each, joined.
    pub(crate) fn shown_all(&self, set: &SortedVecSet<Ref>) -> String {
        set.iter()
            .map(|r| self.shown(r))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Records that `property` of `k` is `observed` but declared `declared`.
    pub(crate) fn drift_value<T: ToString>(
        &mut self,
        k: &Kept<'_>,
        property: &str,
        declared: &T,
        observed: &T,
    ) {
        self.drift(
            k,
            property,
            Some(declared.to_string()),
            Some(observed.to_string()),
        );
    }
}
