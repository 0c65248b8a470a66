//! Property test: whatever the cloud shows (drift, this process's own tag
//! or binding on the resource), the planner never changes, tags or deletes
//! a resource the declaration names as external (`Kind.external(…)` in the
//! language, `Ref::External` here), neither in a run or enforcement pass
//! nor in a kill.

mod support;

use std::collections::BTreeMap;

use canon_model::{plan, Bindings, CloudRef, DesiredState, Fid, LogicalId, Ref, Resource};
use proptest::prelude::*;
use support::gen;
use support::reference::RefCloud;

fn fid() -> Fid {
    "5d1e4c2a-9b7f-4f3e-8a61-2c0d9e8b7a65".parse().unwrap()
}

/// Builds `d` in the reference cloud (two passes: routes may wait for a
/// NAT gateway).
fn build(cloud: &mut RefCloud, d: &DesiredState, bindings: &mut Bindings) {
    for _ in 0..2 {
        let p = plan(d, &cloud.state, bindings);
        cloud.apply_plan(&p, bindings).unwrap();
        cloud.settle();
    }
}

/// `d` with the resources of `externals` no longer declared: references to
/// them name their cloud ids instead.
fn externalised(d: &DesiredState, externals: &BTreeMap<LogicalId, String>) -> DesiredState {
    let mut out = DesiredState::empty(d.fid);
    for r in d.resources.values() {
        if externals.contains_key(&r.id) {
            continue;
        }
        let spec = r.spec.map_refs(|x| match x {
            Ref::Managed(l) => match externals.get(l) {
                Some(cloud_id) => Ref::External(cloud_id.clone()),
                None => Ref::Managed(*l),
            },
            Ref::External(id) => Ref::External(id.clone()),
        });
        out.insert(Resource { spec, ..r.clone() }).unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_planner_never_acts_on_an_external_resource(
        seed in any::<u64>(),
        size in 1u64..4,
        pick in any::<u64>(),
        drift_seed in any::<u64>(),
        drifts in 0u64..4,
        forget_bindings in any::<bool>(),
        kill in any::<bool>(),
    ) {
        let d = gen::desired(fid(), seed, size);
        let mut cloud = RefCloud::new();
        let mut bindings = Bindings::new();
        build(&mut cloud, &d, &mut bindings);
        // Some of what was built becomes external: still tagged as this
        // process's, and still bound unless `forget_bindings`.
        let externals: BTreeMap<LogicalId, String> = d
            .resources
            .keys()
            .enumerate()
            .filter(|(i, _)| pick >> (i % 64) & 1 == 1)
            .filter_map(|(_, l)| Some((*l, bindings.cloud_id(l)?.to_string())))
            .collect();
        let declared = externalised(&d, &externals);
        if forget_bindings {
            for l in externals.keys() {
                bindings.unbind(l);
            }
        }
        if drifts > 0 {
            gen::drift(&mut cloud, fid(), drift_seed, drifts);
        }
        let target = if kill { declared.emptied() } else { declared };
        let named = target.external_ids();
        let p = plan(&target, &cloud.state, &bindings);
        for r in &p.requests {
            let on = r.action.changes().and_then(CloudRef::id);
            prop_assert!(
                on.is_none_or(|id| !named.contains(id)),
                "{} acts on external {:?}", r.request_type(), on
            );
        }
        for (_, cloud_id) in &p.adoptions {
            prop_assert!(!named.contains(cloud_id), "adopted external {}", cloud_id);
        }
    }
}

/// The property is not vacuous: a VPC made external is named, and a kill
/// that ignored it would delete it (it carries this process's tag).
#[test]
fn externals_would_be_deleted_if_the_planner_did_not_know_them() {
    let d = gen::desired(fid(), 11, 3);
    let mut cloud = RefCloud::new();
    let mut bindings = Bindings::new();
    build(&mut cloud, &d, &mut bindings);
    let first = d
        .resources
        .values()
        .find(|r| r.kind() == canon_model::ResourceKind::Vpc)
        .unwrap()
        .id;
    let externals: BTreeMap<LogicalId, String> =
        [(first, bindings.cloud_id(&first).unwrap().to_string())].into();
    let declared = externalised(&d, &externals);
    let killed = declared.emptied();
    let named = killed.external_ids();
    let deletes_named = |p: &canon_model::Plan| {
        p.requests
            .iter()
            .filter_map(|r| r.action.deletes().and_then(CloudRef::id))
            .any(|id| named.contains(id))
    };
    assert!(!named.is_empty(), "the VPC is referenced by what is in it");
    assert!(deletes_named(&plan(
        &DesiredState::empty(fid()),
        &cloud.state,
        &bindings
    )));
    assert!(!deletes_named(&plan(&killed, &cloud.state, &bindings)));
}
