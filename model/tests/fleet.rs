//! Property tests of a fleet's rollout rules, against a small simulated
//! cloud of instances that boot and pass their checks after a delay: the
//! capacity never goes above `count + maxSurge` nor below `count -
//! maxUnavailable` ready; every instance stays younger than `maxAge` plus
//! the time a replacement takes; an image change replaces each member
//! exactly once; a replacement that fails its checks is replaced again and
//! the old instance kept.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    plan_at, Action, Bindings, CloudRef, DesiredState, Fid, FleetMember, Health, HealthCheck,
    InstanceLife, InstanceSpec, InstanceState, LogicalId, ObservedResource, ObservedState, Plan,
    Ref, Region, Resource, Spec, OWNERSHIP_TAG,
};
use proptest::prelude::*;

const SEC: u64 = 1000;

fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
}

/// The rules of one fleet.
#[derive(Debug, Clone, Copy)]
struct Rules {
    count: u32,
    surge: u32,
    unavailable: u32,
    max_age_secs: Option<u64>,
}

fn fleet(rules: Rules, image: &str) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    for index in 0..rules.count {
        let name = format!("web.instances[{index}]");
        d.insert(Resource {
            id: LogicalId::new(fid(), &name),
            name,
            region: Region::new("eu-west-1"),
            spec: Spec::Instance(InstanceSpec {
                image_id: image.into(),
                instance_type: "t3.micro".into(),
                subnet: Ref::External(format!("subnet-{}", index % 2)),
                key_name: None,
                user_data: None,
                security_groups: [Ref::External("sg-1".into())].into(),
                tags: BTreeMap::new(),
                max_age_secs: rules.max_age_secs,
                fleet: Some(FleetMember {
                    fleet: "web".into(),
                    index,
                    count: rules.count,
                    max_surge: rules.surge,
                    max_unavailable: rules.unavailable,
                    health_check: HealthCheck::Ec2Status,
                    health_grace_secs: 300,
                }),
            }),
        })
        .unwrap();
    }
    d
}

/// One simulated instance.
#[derive(Debug, Clone)]
struct Machine {
    serves: LogicalId,
    launched: u64,
    image: String,
    subnet: String,
    impaired: bool,
}

/// Instances that boot for `boot` and pass their checks `checks` later.
struct Cloud {
    now: u64,
    boot: u64,
    checks: u64,
    next: u64,
    machines: BTreeMap<String, Machine>,
    /// Members whose new instances fail their checks.
    failing: BTreeSet<LogicalId>,
    launches: BTreeMap<LogicalId, u32>,
}

impl Cloud {
    fn new(boot: u64, checks: u64) -> Cloud {
        Cloud {
            now: 1_767_225_600_000,
            boot,
            checks,
            next: 0,
            machines: BTreeMap::new(),
            failing: BTreeSet::new(),
            launches: BTreeMap::new(),
        }
    }

    fn life(&self, m: &Machine) -> InstanceLife {
        let up = m.launched + self.boot;
        let (state, health) = if self.now < up {
            (InstanceState::Pending, Health::Unknown)
        } else if m.impaired {
            (InstanceState::Running, Health::Impaired)
        } else if self.now < up + self.checks {
            (InstanceState::Running, Health::Initializing)
        } else {
            (InstanceState::Running, Health::Ok)
        };
        InstanceLife {
            launched_at: m.launched,
            state,
            health,
        }
    }

    fn ready(&self) -> usize {
        let ready = |m: &&Machine| self.life(m).ready();
        self.machines.values().filter(ready).count()
    }

    fn observe(&self) -> ObservedState {
        self.machines
            .iter()
            .map(|(id, m)| ObservedResource {
                cloud_id: id.clone(),
                region: Region::new("eu-west-1"),
                spec: Spec::Instance(InstanceSpec {
                    image_id: m.image.clone(),
                    instance_type: "t3.micro".into(),
                    subnet: m.subnet.clone(),
                    key_name: None,
                    user_data: None,
                    security_groups: ["sg-1".to_string()].into(),
                    tags: [(OWNERSHIP_TAG.to_string(), m.serves.to_string())].into(),
                    max_age_secs: None,
                    fleet: None,
                }),
                association_ids: BTreeMap::new(),
                pending: false,
                life: Some(self.life(m)),
            })
            .collect()
    }

    fn apply(&mut self, p: &Plan, b: &mut Bindings) {
        for r in &p.requests {
            match &r.action {
                Action::RunInstances {
                    image_id, subnet, ..
                } => {
                    self.next += 1;
                    let id = format!("i-{:04}", self.next);
                    let CloudRef::Id(subnet) = subnet else {
                        panic!("unresolved subnet");
                    };
                    self.machines.insert(
                        id.clone(),
                        Machine {
                            serves: r.target,
                            launched: self.now,
                            image: image_id.clone(),
                            subnet: subnet.clone(),
                            impaired: self.failing.contains(&r.target),
                        },
                    );
                    *self.launches.entry(r.target).or_default() += 1;
                    b.bind(r.target, id);
                }
                Action::TerminateInstances {
                    instance: CloudRef::Id(id),
                } => {
                    assert!(self.machines.remove(id).is_some(), "{id} twice");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// One tick: observe, plan at `now`, apply.
    fn tick(&mut self, d: &DesiredState, b: &mut Bindings) -> Plan {
        let p = plan_at(d, &self.observe(), b, self.now);
        self.apply(&p, b);
        p
    }
}

/// Ticks until every member has a ready instance and nothing else exists.
fn build(cloud: &mut Cloud, d: &DesiredState, b: &mut Bindings, step: u64) {
    for _ in 0..200 {
        let p = cloud.tick(d, b);
        if p.requests.is_empty() && p.waiting.is_empty() && cloud.ready() == d.resources.len() {
            return;
        }
        cloud.now += step;
    }
    panic!("the fleet never converged: {:#?}", cloud.machines);
}

fn rules() -> impl Strategy<Value = Rules> {
    (1u32..6, 0u32..3, 0u32..6).prop_map(|(count, surge, u)| {
        let unavailable = u % count;
        let surge = if surge + unavailable == 0 { 1 } else { surge };
        Rules {
            count,
            surge,
            unavailable,
            max_age_secs: Some(600),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Over three lifetimes of rotation, capacity stays within its floor
    /// and ceiling and no instance outlives maxAge by more than a
    /// replacement's time.
    #[test]
    fn rotation_holds_capacity_and_ages(
        rules in rules(),
        boot in 0u64..20,
        checks in 0u64..20,
        step in 1u64..10,
    ) {
        let (boot, checks, step) = (boot * SEC, checks * SEC, step * SEC);
        let d = fleet(rules, "ami-1");
        let mut cloud = Cloud::new(boot, checks);
        let mut b = Bindings::new();
        build(&mut cloud, &d, &mut b, step);
        let n = rules.count as usize;
        let slack = boot + checks + 3 * step;
        let end = cloud.now + 3 * 600 * SEC;
        while cloud.now < end {
            cloud.tick(&d, &mut b);
            prop_assert!(cloud.machines.len() <= n + rules.surge as usize,
                "{} instances over the ceiling", cloud.machines.len());
            prop_assert!(cloud.ready() + rules.unavailable as usize >= n,
                "{} ready under the floor", cloud.ready());
            for m in cloud.machines.values() {
                prop_assert!(cloud.now - m.launched <= 600 * SEC + slack,
                    "{:?} is {} s old", m.serves, (cloud.now - m.launched) / SEC);
            }
            cloud.now += step;
        }
        let rotations: u32 = cloud.launches.values().sum();
        prop_assert!(rotations as usize >= 3 * n, "only {rotations} launches");
    }

    /// An image change replaces each member exactly once, within capacity.
    #[test]
    fn an_image_change_replaces_each_member_once(
        rules in rules(),
        boot in 0u64..20,
        checks in 0u64..20,
        step in 1u64..10,
    ) {
        let (boot, checks, step) = (boot * SEC, checks * SEC, step * SEC);
        let rules = Rules { max_age_secs: None, ..rules };
        let mut cloud = Cloud::new(boot, checks);
        let mut b = Bindings::new();
        build(&mut cloud, &fleet(rules, "ami-1"), &mut b, step);
        cloud.launches.clear();
        let d = fleet(rules, "ami-2");
        let n = rules.count as usize;
        build_within(&mut cloud, &d, &mut b, step, rules)?;
        prop_assert!(cloud.machines.values().all(|m| m.image == "ami-2"));
        prop_assert_eq!(cloud.launches.len(), n);
        prop_assert!(cloud.launches.values().all(|c| *c == 1), "{:?}", cloud.launches);
    }
}

/// [`build`], checking the capacity rules at every tick.
fn build_within(
    cloud: &mut Cloud,
    d: &DesiredState,
    b: &mut Bindings,
    step: u64,
    rules: Rules,
) -> Result<(), TestCaseError> {
    let n = rules.count as usize;
    for _ in 0..1000 {
        let p = cloud.tick(d, b);
        prop_assert!(cloud.machines.len() <= n + rules.surge as usize);
        prop_assert!(cloud.ready() + rules.unavailable as usize >= n);
        if p.requests.is_empty() && p.waiting.is_empty() && cloud.ready() == n {
            return Ok(());
        }
        cloud.now += step;
    }
    Err(TestCaseError::fail("the image change never converged"))
}

#[test]
fn a_replacement_that_fails_its_checks_keeps_the_old_instance() {
    let rules = Rules {
        count: 3,
        surge: 1,
        unavailable: 0,
        max_age_secs: None,
    };
    let mut cloud = Cloud::new(10 * SEC, 10 * SEC);
    let mut b = Bindings::new();
    build(&mut cloud, &fleet(rules, "ami-1"), &mut b, 5 * SEC);
    let first = LogicalId::new(fid(), "web.instances[0]");
    cloud.failing.insert(first);
    let d = fleet(rules, "ami-2");
    let old: Vec<String> = cloud.machines.keys().cloned().collect();
    for _ in 0..100 {
        cloud.tick(&d, &mut b);
        assert!(cloud.machines.len() <= 4);
        assert!(cloud.ready() >= 3, "{:#?}", cloud.machines);
        cloud.now += 5 * SEC;
    }
    // The failing member's old instance still serves; it was retried,
    // one new instance at a time, and nothing else rolled past it.
    let kept: Vec<&Machine> = old.iter().filter_map(|i| cloud.machines.get(i)).collect();
    assert!(
        kept.iter().any(|m| m.serves == first),
        "{:#?}",
        cloud.machines
    );
    assert!(cloud.launches[&first] >= 2, "{:?}", cloud.launches);
}
