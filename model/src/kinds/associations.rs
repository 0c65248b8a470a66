//! Subnet associations, which route tables and network ACLs both have and
//! treat alike but for their requests: a new resource associates each of
//! its subnets; a kept one lets go of the subnets it holds but no longer
//! declares (unless the subnet is deleted first) and takes the declared
//! subnets it lacks; the quiet-tick check compares the two sets. Each kind
//! says how it takes a subnet and how it lets one go.

use crate::draft::{Draft, Kept, STEP_ASSOCIATE, STEP_UNLINK};
use crate::sorted_vec::SortedVecSet;
use crate::{Action, CloudRef, Ref, Resource};

/// How one kind associates subnets.
pub(super) trait Associate {
    /// The request that associates `subnet` with the resource `me`.
    fn take(&self, me: CloudRef, subnet: CloudRef) -> Action;
    /// The request that ends the association of `subnet` (a cloud id,
    /// declared as `declared`), if one must be sent.
    fn release(
        &self,
        draft: &Draft<'_>,
        k: &Kept<'_>,
        subnet: &str,
        declared: &Ref,
    ) -> Option<Action>;
}

/// Associates each of a new resource's subnets.
pub(super) fn create(
    draft: &mut Draft<'_>,
    d: &Resource,
    subnets: &SortedVecSet<Ref>,
    kind: &impl Associate,
) {
    let me = CloudRef::Pending(d.id);
    for subnet in subnets {
        let action = kind.take(me.clone(), draft.cref(subnet));
        draft.apply(d, STEP_ASSOCIATE, Some("associations"), action);
    }
}

/// Lets go of the subnets `raw` (observed, by cloud id) holds that `want`
/// does not declare, takes those `want` declares and `have` (observed, in
/// declared terms) lacks.
pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    (want, have, raw): (
        &SortedVecSet<Ref>,
        &SortedVecSet<Ref>,
        &SortedVecSet<String>,
    ),
    kind: &impl Associate,
) {
    for subnet in raw {
        let declared = draft.translate_id(subnet);
        if want.contains(&declared) {
            continue;
        }
        draft.drift(k, "associations", None, Some(subnet.clone()));
        if draft.early.contains(subnet.as_str()) {
            // The subnet is deleted first; its association goes with it.
            continue;
        }
        if let Some(action) = kind.release(draft, k, subnet, &declared) {
            draft.apply(k.d, STEP_UNLINK, Some("associations"), action);
        }
    }
    for subnet in want.difference(have) {
        let declared = Some(draft.shown(subnet));
        draft.drift(k, "associations", declared, None);
        let action = kind.take(k.me.clone(), draft.cref(subnet));
        draft.apply(k.d, STEP_ASSOCIATE, Some("associations"), action);
    }
}

/// Whether the declared subnets `want` are the observed ones `have`.
pub(super) fn unchanged(
    draft: &Draft<'_>,
    want: &SortedVecSet<Ref>,
    have: &SortedVecSet<String>,
) -> bool {
    want.len() == have.len() && have.iter().all(|a| want.contains(&draft.translate_id(a)))
}
