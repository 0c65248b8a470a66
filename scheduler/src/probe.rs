//! A fleet's `Tcp(port)` health check, done at the edge: before each pass
//! the actor connects to the instances whose readiness by that check the
//! planner will ask about (`Cloud::reach`: a real connect on AWS, a
//! modelled one on SimCloud), and hands the set it reached to
//! [`crate::reconcile::reconcile`], which decides from it purely
//! (`canon_model::Intent::reached`), as kube-rs reconcilers decide from
//! what was read. Which instances to probe is decided here, purely too
//! ([`targets`]), and tests give `reconcile` whatever outcome they want.
//!
//! Only an instance whose readiness gates something is probed: the new
//! instance of a member whose old one still serves (a surge replacement),
//! every member of a fleet without surge (its capacity floor counts ready
//! members), and a member with recorded failures (its recovery). An
//! established instance is never judged by the probe (`canon_model`'s
//! `rotation`), so a conductor that reaches no instance at all parks a
//! rollout instead of failing a fleet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use canon_cloud::{Cloud, Scope};
use canon_model::{DesiredState, HealthCheck, LogicalId, ObservedResource, ObservedState, Spec};
use canon_raft::state::ProcessRecord;
use tokio::task::JoinSet;

/// One connect to make: the instance, where it lives, and the port.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub scope: Scope,
    pub instance: ObservedResource,
    pub port: u16,
}

/// The instances of `record`'s `Tcp` fleets (as `desired` declares them)
/// whose readiness the planner needs, from `observed`: running and not
/// impaired, of a member that has an old copy still serving, is in a
/// fleet without surge, or has recorded failures.
pub fn targets(
    record: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
) -> Vec<Target> {
    let mut copies: BTreeMap<LogicalId, Vec<&ObservedResource>> = BTreeMap::new();
    for o in observed.owned_by(record.fid) {
        if let (Spec::Instance(_), Some(l)) = (&o.spec, o.owner()) {
            copies.entry(l).or_default().push(o);
        }
    }
    let mut out = Vec::new();
    for r in desired.resources.values() {
        let Spec::Instance(i) = &r.spec else { continue };
        let Some(fm) = &i.fleet else { continue };
        let HealthCheck::Tcp { port } = fm.health_check else {
            continue;
        };
        let serving: Vec<&ObservedResource> = copies
            .get(&r.id)
            .into_iter()
            .flatten()
            .copied()
            .filter(|o| o.life.as_ref().is_some_and(|x| x.serving()))
            .collect();
        let gates =
            serving.len() > 1 || fm.max_surge == 0 || record.rollout_failures.contains_key(&r.id);
        if !gates {
            continue;
        }
        out.extend(serving.into_iter().map(|o| Target {
            scope: Scope {
                account: record.account.clone(),
                region: o.region.clone(),
            },
            instance: o.clone(),
            port,
        }));
    }
    out
}

/// The instances of `record`'s `Tcp` fleets that `cloud` reaches now, of
/// those whose readiness the planner needs ([`targets`]): the
/// `Intent::reached` the actor plans with, and a dry run too, so that it
/// prints what the actor will do.
pub async fn probe(
    cloud: &Arc<dyn Cloud>,
    record: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
) -> BTreeSet<String> {
    let targets = targets(record, desired, observed);
    if targets.is_empty() {
        return BTreeSet::new();
    }
    reached(cloud, targets).await
}

/// The cloud ids of `targets` that `cloud` reaches, the connects made
/// side by side.
pub async fn reached(cloud: &Arc<dyn Cloud>, targets: Vec<Target>) -> BTreeSet<String> {
    let mut probes = JoinSet::new();
    for t in targets {
        let cloud = Arc::clone(cloud);
        probes.spawn(async move {
            let ok = cloud.reach(&t.scope, &t.instance, t.port).await;
            ok.then_some(t.instance.cloud_id)
        });
    }
    let mut out = BTreeSet::new();
    while let Some(done) = probes.join_next().await {
        // A probe task that panicked or was cancelled reached nothing.
        if let Ok(Some(id)) = done {
            out.insert(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use canon_model::{
        DesiredState, FleetMember, Health, HealthCheck, InstanceLife, InstanceSpec, InstanceState,
        LogicalId, ObservedResource, ObservedState, ProcessState, Ref, Region, Resource,
        RolloutFailure, Spec, Tags, OWNERSHIP_TAG,
    };

    use super::*;
    use crate::reconcile::tests::{fid, record};

    fn fleet(max_surge: u32, check: HealthCheck) -> (DesiredState, [LogicalId; 2]) {
        let mut d = DesiredState::empty(fid());
        let ids = [0u32, 1].map(|index| {
            let name = format!("web.instances[{index}]");
            let id = LogicalId::new(fid(), &name);
            d.insert(Resource {
                id,
                name,
                region: Region::new("us-west-2"),
                spec: Spec::Instance(InstanceSpec {
                    image_id: "ami-1".into(),
                    instance_type: "t3.micro".into(),
                    subnet: Ref::External("subnet-1".into()),
                    key_name: None,
                    user_data: None,
                    security_groups: [Ref::External("sg-1".into())].into(),
                    tags: Tags::new(),
                    max_age_secs: None,
                    fleet: Some(FleetMember {
                        fleet: "web".into(),
                        index,
                        count: 2,
                        max_surge,
                        max_unavailable: 1 - max_surge.min(1),
                        health_check: check,
                        health_grace_secs: 60,
                    }),
                    source_dest_check: true,
                }),
            })
            .unwrap();
            id
        });
        (d, ids)
    }

    fn machine(cloud_id: &str, serves: LogicalId, health: Health) -> ObservedResource {
        ObservedResource {
            cloud_id: cloud_id.into(),
            region: Region::new("us-west-2"),
            spec: Spec::Instance(InstanceSpec {
                image_id: "ami-1".into(),
                instance_type: "t3.micro".into(),
                subnet: "subnet-1".into(),
                key_name: None,
                user_data: None,
                security_groups: ["sg-1".to_string()].into(),
                tags: [(OWNERSHIP_TAG.to_string(), serves.to_string())].into(),
                max_age_secs: None,
                fleet: None,
                source_dest_check: true,
            }),
            association_ids: Default::default(),
            pending: false,
            life: Some(InstanceLife {
                launched_at: 1,
                state: InstanceState::Running,
                health,
                address: None,
            }),
        }
    }

    fn probed(targets: Vec<Target>) -> Vec<(String, u16)> {
        let mut out: Vec<(String, u16)> = targets
            .into_iter()
            .map(|t| (t.instance.cloud_id, t.port))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn only_instances_whose_tcp_readiness_gates_something_are_probed() {
        let tcp = HealthCheck::Tcp { port: 8080 };
        let (d, [m0, m1]) = fleet(1, tcp);
        let mut p = record(ProcessState::Running, vec![]);
        let o: ObservedState = [
            machine("i-old", m0, Health::Ok),
            machine("i-new", m0, Health::Initializing),
            machine("i-b", m1, Health::Ok),
        ]
        .into_iter()
        .collect();
        // Member 0 is mid-surge: both its copies; member 1 is established.
        assert_eq!(
            probed(targets(&p, &d, &o)),
            [("i-new".to_string(), 8080), ("i-old".to_string(), 8080)]
        );
        // A member with recorded failures is probed (its recovery).
        p.rollout_failures.insert(
            m1,
            RolloutFailure {
                count: 1,
                last_at: 0,
                cloud_id: "i-x".into(),
                name: String::new(),
            },
        );
        assert_eq!(targets(&p, &d, &o).len(), 3);
        // An impaired copy is never probed: it is not ready either way.
        let o: ObservedState = [
            machine("i-old", m0, Health::Ok),
            machine("i-new", m0, Health::Impaired),
        ]
        .into_iter()
        .collect();
        assert_eq!(probed(targets(&p, &d, &o)), []);
        // Without surge, every member's instance (the floor counts them).
        let (d, [m0, m1]) = fleet(0, tcp);
        let p = record(ProcessState::Running, vec![]);
        let o: ObservedState = [
            machine("i-a", m0, Health::Ok),
            machine("i-b", m1, Health::Ok),
        ]
        .into_iter()
        .collect();
        assert_eq!(targets(&p, &d, &o).len(), 2);
        // Another check: nothing to probe.
        let (d, _) = fleet(0, HealthCheck::Ec2Status);
        assert!(targets(&p, &d, &o).is_empty());
    }
}
