//! The organisation's validations as a node evaluates them (issue #20 §4):
//! the modules the meta group stores, run against a stored composition
//! (the API, off the async runtime, before it takes a run or an update,
//! and for `canon validation report`) and against a process as the cloud
//! shows it, to label drift (the scheduler's [`drift_labeller`]). Pure and
//! synchronous.

use std::collections::{BTreeMap, BTreeSet};

use canon_lang::validation::{failures_of_all, Failure, Subject, ValidationSource};
use canon_model::{DesiredState, LogicalId, ObservedState, Ref};
use canon_raft::state::StoredValidation;
use canon_raft::Composition;

/// The stored modules as the language takes them, in name order.
pub fn sources(stored: &BTreeMap<String, StoredValidation>) -> Vec<ValidationSource> {
    stored
        .iter()
        .map(|(name, v)| ValidationSource::new(name, &v.file, &v.text))
        .collect()
}

/// Every failure of `modules` against the resources `composition`
/// declares; the error is a composition that does not decode.
pub fn failures(
    modules: &[ValidationSource],
    composition: &Composition,
) -> Result<Vec<Failure>, String> {
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let compiled = canon_lang::Compiled::decode(&composition.bytes).map_err(|e| e.to_string())?;
    Ok(failures_of_all(modules, &Subject::of_compiled(&compiled)))
}

/// What a refused command answers: each failure on its own line, with its
/// validation and place.
pub fn refusal(failures: &[Failure]) -> String {
    let mut text = format!(
        "refused by the organisation's validations ({} failure{}):",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for f in failures {
        text.push_str("\n  ");
        text.push_str(&f.to_string());
    }
    text
}

/// The scheduler's drift labeller: [`drift_labels`] over the stored
/// modules.
pub fn drift_labeller() -> canon_scheduler::DriftLabeller {
    std::sync::Arc::new(|stored, desired, observed, resource, cloud_id| {
        drift_labels(&sources(stored), desired, observed, resource, cloud_id)
    })
}

/// The validations `resource` breaks as the cloud has it (bound to
/// `cloud_id`; gone, if the cloud has none): the declaration with that
/// resource as observed fails them, the declaration itself does not.
/// Empty for a resource the declaration does not name.
pub fn drift_labels(
    modules: &[ValidationSource],
    desired: &DesiredState,
    observed: &ObservedState,
    resource: LogicalId,
    cloud_id: Option<&str>,
) -> Vec<String> {
    let Some(drifted) = desired.resources.get(&resource) else {
        return Vec::new();
    };
    if modules.is_empty() {
        return Vec::new();
    }
    let declared = subjects(desired);
    let mut seen: Vec<Subject> = declared
        .iter()
        .filter(|s| s.path != drifted.name)
        .cloned()
        .collect();
    if let Some(o) = cloud_id.and_then(|id| observed.get(id)) {
        seen.push(Subject {
            path: drifted.name.clone(),
            region: o.region.as_str().to_string(),
            spec: o.spec.clone(),
        });
    }
    let before: BTreeSet<(String, String)> = failures_of_all(modules, &declared)
        .into_iter()
        .map(|f| (f.validation, f.message))
        .collect();
    let mut names: Vec<String> = failures_of_all(modules, &seen)
        .into_iter()
        .filter(|f| !before.contains(&(f.validation.clone(), f.message.clone())))
        .map(|f| f.validation)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A declaration's resources as validations see them: references as the
/// referenced resource's path (or, for one Canon does not manage, its
/// cloud id).
fn subjects(desired: &DesiredState) -> Vec<Subject> {
    let path = |r: &Ref| match r {
        Ref::Managed(id) => desired
            .resources
            .get(id)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| id.to_string()),
        Ref::External(cloud_id) => cloud_id.clone(),
    };
    desired
        .resources
        .values()
        .map(|r| Subject {
            path: r.name.clone(),
            region: r.region.as_str().to_string(),
            spec: r.spec.map_refs(path),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_model::{Ipv4Cidr, ObservedResource, Peer, Protocol, Rule, Spec};

    fn sam() -> DesiredState {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/VPC-sam.lw");
        let out =
            canon_lang::compile_file(std::path::Path::new(path), Default::default()).expect("read");
        let compiled = out.compiled.expect("VPC-sam compiles");
        compiled
            .instantiate(canon_model::Fid::random())
            .expect("valid")
    }

    fn policy() -> Vec<ValidationSource> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policy.lw");
        let text = std::fs::read_to_string(path).expect("read");
        vec![ValidationSource::new("org", "policy.lw", text)]
    }

    /// The declaration's `path` as the cloud shows it, changed by `change`.
    fn observed(
        desired: &DesiredState,
        path: &str,
        change: impl FnOnce(&mut Spec<String>),
    ) -> (LogicalId, ObservedState) {
        let r = desired
            .resources
            .values()
            .find(|r| r.name == path)
            .expect("declared");
        let mut spec = r.spec.map_refs(|x| x.to_string());
        change(&mut spec);
        let mut seen = ObservedState::new();
        seen.insert(ObservedResource {
            cloud_id: "sg-1".into(),
            region: r.region.clone(),
            spec,
            association_ids: Default::default(),
            pending: false,
            life: None,
        });
        (r.id, seen)
    }

    fn open(port: i32) -> impl FnOnce(&mut Spec<String>) {
        move |spec| {
            if let Spec::SecurityGroup(g) = spec {
                g.ingress.insert(Rule::new(
                    Protocol::Tcp,
                    port,
                    port,
                    Peer::Cidr(Ipv4Cidr::ANY),
                ));
            }
        }
    }

    #[test]
    fn drift_is_labelled_with_the_validations_it_newly_breaks() {
        let desired = sam();
        let (sg, ssh) = observed(&desired, "dev-sam-sg", open(22));
        assert_eq!(
            drift_labels(&policy(), &desired, &ssh, sg, Some("sg-1")),
            ["org.no-admin-ports"]
        );
        let (_, web) = observed(&desired, "dev-sam-sg", open(8080));
        assert!(drift_labels(&policy(), &desired, &web, sg, Some("sg-1")).is_empty());
        // Without modules, or for a resource the declaration lacks: none.
        assert!(drift_labels(&[], &desired, &ssh, sg, Some("sg-1")).is_empty());
        let stranger = LogicalId::new(canon_model::Fid::random(), "x");
        assert!(drift_labels(&policy(), &desired, &ssh, stranger, Some("sg-1")).is_empty());
    }

    #[test]
    fn a_resource_gone_from_the_cloud_is_judged_absent() {
        let desired = sam();
        let subnet = desired
            .resources
            .values()
            .find(|r| r.name == "dev-network.publicSubnets[1]")
            .expect("second subnet")
            .id;
        // Sam's subnets are in two zones; without the second, one.
        assert_eq!(
            drift_labels(&policy(), &desired, &ObservedState::new(), subnet, None),
            ["org.multi-az"]
        );
    }
}
