//! Step 1 of planning: which cloud resource serves each declared one.
//!
//! A declared resource matches the cloud resource it is bound to, or else
//! one carrying its ownership tag (an *adoption*: the cloud has it but the
//! bindings lost it, e.g. after a crash between create and commit). Cloud
//! resources the process owns or has bound that match nothing are
//! *orphans*, to be deleted. Only such resources are ever considered, so a
//! plan never touches anything the process does not own. A resource the
//! declaration names as external (`Ref::External`, `DesiredState::externals`)
//! is never one of them, whatever its tags or bindings say: it is read,
//! never changed or deleted.

use std::collections::{BTreeMap, HashMap};

use crate::{Bindings, DesiredState, LogicalId, ObservedResource, ObservedState};

/// The outcome of matching a declaration to the cloud.
pub(crate) struct Matching<'a> {
    /// Declared resource → the cloud resource it matches.
    pub(crate) matched: BTreeMap<LogicalId, &'a ObservedResource>,
    /// Cloud id → logical id, for matched resources.
    pub(crate) rev: HashMap<&'a str, LogicalId>,
    /// Owned cloud resources matched to nothing, with the logical id they
    /// serve(d), by cloud id.
    pub(crate) orphans: Vec<(LogicalId, &'a ObservedResource)>,
    /// Matches found by ownership tag but missing from the bindings.
    pub(crate) adoptions: Vec<(LogicalId, String)>,
}

impl<'a> Matching<'a> {
    /// Matches `desired` to what `observed` holds that the process owns (by
    /// tag) or has bound.
    pub(crate) fn new(
        desired: &'a DesiredState,
        observed: &'a ObservedState,
        bindings: &Bindings,
    ) -> Self {
        let fid = desired.fid;
        let external = desired.external_ids();
        // Everything this process may touch: tagged as its own, or bound;
        // never what it names as external.
        let mut candidates: HashMap<&'a str, &'a ObservedResource> = observed
            .owned_by(fid)
            .map(|o| (o.cloud_id.as_str(), o))
            .collect();
        for (_, cloud) in bindings.iter() {
            if let Some(o) = observed.get(cloud) {
                candidates.insert(o.cloud_id.as_str(), o);
            }
        }
        candidates.retain(|id, _| !external.contains(*id));
        // Resources by the logical id in their ownership tag, for adoption;
        // built only if some declared resource is not bound (rare: parsing
        // every tag on every tick would dominate the planner's cost).
        let all_bound = desired.resources.keys().all(|l| {
            bindings
                .cloud_id(l)
                .is_some_and(|c| candidates.contains_key(c))
        });
        let mut by_owner: HashMap<LogicalId, Vec<&'a ObservedResource>> = HashMap::new();
        if !all_bound {
            for o in candidates.values() {
                if let Some(owner) = o.owner() {
                    by_owner.entry(owner).or_default().push(o);
                }
            }
        }

        let mut matched = BTreeMap::new();
        let mut rev = HashMap::new();
        let mut adoptions = Vec::new();
        for d in desired.resources.values() {
            let bound = bindings
                .cloud_id(&d.id)
                .and_then(|c| candidates.get(c))
                .filter(|o| o.kind() == d.kind() && !rev.contains_key(o.cloud_id.as_str()));
            let found = match bound {
                Some(o) => Some(*o),
                None => {
                    // Adopt the first (by cloud id) tagged resource of the right kind.
                    let tagged = by_owner.get(&d.id).and_then(|os| {
                        os.iter()
                            .filter(|o| {
                                o.kind() == d.kind() && !rev.contains_key(o.cloud_id.as_str())
                            })
                            .min_by(|a, b| a.cloud_id.cmp(&b.cloud_id))
                            .copied()
                    });
                    if let Some(o) = tagged {
                        adoptions.push((d.id, o.cloud_id.clone()));
                    }
                    tagged
                }
            };
            if let Some(o) = found {
                matched.insert(d.id, o);
                rev.insert(o.cloud_id.as_str(), d.id);
            }
        }

        let mut unmatched: Vec<&'a ObservedResource> = candidates
            .values()
            .filter(|o| !rev.contains_key(o.cloud_id.as_str()))
            .copied()
            .collect();
        unmatched.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
        let orphans = unmatched
            .into_iter()
            .filter_map(|o| {
                let serves = bindings.logical_id(&o.cloud_id).or_else(|| o.owner())?;
                Some((serves, o))
            })
            .collect();

        Matching {
            matched,
            rev,
            orphans,
            adoptions,
        }
    }
}
