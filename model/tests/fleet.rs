//! Property tests of a fleet's rollout rules, against a small simulated
//! cloud of instances that boot and pass their checks after a delay: the
//! capacity never goes above `count + maxSurge` nor below `count -
//! maxUnavailable` ready (by the fleet's health check); while members'
//! rotations do not overlap, every instance stays younger than `maxAge`
//! plus the time a replacement takes, and while they do (a short `maxAge`
//! for the count), the rationing holds capacity and a member waits at most
//! for the others' replacements; an image change replaces each member
//! exactly once; a replacement that fails its checks is replaced again and
//! the old instance kept; a requested rotation (`canon fleet rotate`)
//! replaces each member it covers exactly once, within capacity, and is
//! then done.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::rollout_failure::PARK_AFTER;
use canon_model::rotation_request::rollout_steps;
use canon_model::{
    plan_with, Action, Bindings, CloudRef, DesiredState, Difference, Fid, FleetMember, Health,
    HealthCheck, InstanceLife, InstanceSpec, InstanceState, Intent, LogicalId, ObservedResource,
    ObservedState, Plan, Ref, Region, Resource, RolloutFailure, RotationRequest, RotationScope,
    Spec, OWNERSHIP_TAG,
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
    check: HealthCheck,
}

/// How fast the simulated cloud and the ticks go (milliseconds): the
/// boot and check delays of a new instance, the time between ticks.
#[derive(Debug, Clone, Copy)]
struct Pace {
    boot: u64,
    checks: u64,
    step: u64,
}

impl Pace {
    /// The longest one replacement takes to be seen ready: its boot, its
    /// checks and a few ticks.
    fn replacement(self) -> u64 {
        self.boot + self.checks + 3 * self.step
    }
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
                tags: Default::default(),
                max_age_secs: rules.max_age_secs,
                fleet: Some(FleetMember {
                    fleet: "web".into(),
                    index,
                    count: rules.count,
                    max_surge: rules.surge,
                    max_unavailable: rules.unavailable,
                    health_check: rules.check,
                    health_grace_secs: 300,
                }),
                source_dest_check: true,
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
    /// Its checks never pass.
    stuck: bool,
    /// Its port does not answer the conductor (a `Tcp` check fails).
    deaf: bool,
}

/// Instances that boot for `pace.boot` and pass their checks
/// `pace.checks` later.
struct Cloud {
    now: u64,
    pace: Pace,
    next: u64,
    machines: BTreeMap<String, Machine>,
    /// Members whose new instances fail their checks.
    failing: BTreeSet<LogicalId>,
    /// Members whose new instances never pass their checks.
    stuck: BTreeSet<LogicalId>,
    /// Members whose new instances the conductor cannot connect to.
    deaf: BTreeSet<LogicalId>,
    launches: BTreeMap<LogicalId, u32>,
    /// The rotation the user requested, which every tick plans with.
    requested: Option<RotationRequest>,
    /// Failed replacements, recorded from each plan as the scheduler
    /// does, which every tick plans with.
    failures: BTreeMap<LogicalId, RolloutFailure>,
    /// The most instances there were at once while the last plan was
    /// applied, request by request (a plan that launches before it
    /// terminates goes over the ceiling in between).
    peak: usize,
}

impl Cloud {
    fn new(pace: Pace) -> Cloud {
        Cloud {
            now: 1_767_225_600_000,
            pace,
            next: 0,
            machines: BTreeMap::new(),
            failing: BTreeSet::new(),
            stuck: BTreeSet::new(),
            deaf: BTreeSet::new(),
            launches: BTreeMap::new(),
            requested: None,
            failures: BTreeMap::new(),
            peak: 0,
        }
    }

    fn life(&self, m: &Machine) -> InstanceLife {
        let up = m.launched + self.pace.boot;
        let (state, health) = if self.now < up {
            (InstanceState::Pending, Health::Unknown)
        } else if m.impaired {
            (InstanceState::Running, Health::Impaired)
        } else if m.stuck || self.now < up + self.pace.checks {
            (InstanceState::Running, Health::Initializing)
        } else {
            (InstanceState::Running, Health::Ok)
        };
        InstanceLife {
            launched_at: m.launched,
            state,
            health,
            address: None,
        }
    }

    /// How many instances are ready by `check`.
    fn ready(&self, check: HealthCheck) -> usize {
        let tcp = matches!(check, HealthCheck::Tcp { .. });
        let ready = |m: &&Machine| self.life(m).ready_by(check) && !(tcp && m.deaf);
        self.machines.values().filter(ready).count()
    }

    /// Whether the fleet keeps within its limits now: at most `count +
    /// maxSurge` instances (at any point of the last plan), at least
    /// `count - maxUnavailable` ready.
    fn within_limits(&self, rules: Rules) -> Result<(), TestCaseError> {
        let (n, ready) = (rules.count as usize, self.ready(rules.check));
        prop_assert!(
            self.peak.max(self.machines.len()) <= n + rules.surge as usize,
            "{} instances over the ceiling: {:#?}",
            self.peak,
            self.machines
        );
        prop_assert!(
            ready + rules.unavailable as usize >= n,
            "{ready} ready under the floor: {:#?}",
            self.machines
        );
        Ok(())
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
                    source_dest_check: true,
                }),
                association_ids: BTreeMap::new(),
                pending: false,
                life: Some(self.life(m)),
            })
            .collect()
    }

    fn apply(&mut self, p: &Plan, b: &mut Bindings) {
        self.peak = self.machines.len();
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
                            stuck: self.stuck.contains(&r.target),
                            deaf: self.deaf.contains(&r.target),
                        },
                    );
                    *self.launches.entry(r.target).or_default() += 1;
                    self.peak = self.peak.max(self.machines.len());
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

    /// One tick: observe, plan at `now` (with the requested rotation),
    /// apply.
    fn tick(&mut self, d: &DesiredState, b: &mut Bindings) -> Plan {
        let requested: Vec<RotationRequest> = self.requested.iter().cloned().collect();
        // The conductor's probe: every serving instance that answers.
        let reached: BTreeSet<String> = self
            .machines
            .iter()
            .filter(|(_, m)| !m.deaf && self.life(m).serving())
            .map(|(id, _)| id.clone())
            .collect();
        let intent = Intent {
            rotations: &requested,
            failures: &self.failures,
            reached: &reached,
            ..Intent::default()
        };
        let p = plan_with(d, &self.observe(), b, self.now, intent);
        self.apply(&p, b);
        for (l, cloud_id) in &p.failed {
            let f = self.failures.entry(*l).or_insert(RolloutFailure {
                count: 0,
                last_at: 0,
                cloud_id: String::new(),
                name: String::new(),
            });
            f.count += 1;
            f.last_at = self.now;
            f.cloud_id = cloud_id.clone();
        }
        for l in &p.recovered {
            self.failures.remove(l);
        }
        p
    }

    /// Ticks until every member of `rules`' fleet of `image` has a ready
    /// instance and nothing else exists, checking the fleet's limits at
    /// every tick once it was `built`; an error if that takes more than
    /// `ticks`.
    fn converge(
        &mut self,
        rules: Rules,
        image: &str,
        b: &mut Bindings,
        ticks: usize,
        built: bool,
    ) -> Result<(), TestCaseError> {
        let d = fleet(rules, image);
        for _ in 0..ticks {
            let p = self.tick(&d, b);
            if built {
                self.within_limits(rules)?;
            }
            let done = self.ready(rules.check) == d.resources.len();
            if p.requests.is_empty() && p.waiting.is_empty() && done {
                return Ok(());
            }
            self.now += self.pace.step;
        }
        Err(TestCaseError::fail(format!(
            "the fleet never converged: {:#?}",
            self.machines
        )))
    }
}

/// A cloud at `pace` in which `rules`' fleet of `image` is built, without
/// a `maxAge` (so nothing rotates while it is built), and its bindings.
fn built(rules: Rules, pace: Pace, image: &str) -> (Cloud, Bindings) {
    let mut cloud = Cloud::new(pace);
    let mut b = Bindings::new();
    let ageless = Rules {
        max_age_secs: None,
        ..rules
    };
    if let Err(e) = cloud.converge(ageless, image, &mut b, 200, false) {
        panic!("{e}");
    }
    (cloud, b)
}

/// Ticks `rules`' fleet (of `ami-1`) from now until `end`: it keeps
/// within its limits at every tick, no instance gets older than `oldest`
/// (milliseconds), and each member rotated about three times.
fn rotate_until(
    cloud: &mut Cloud,
    rules: Rules,
    b: &mut Bindings,
    end: u64,
    oldest: u64,
) -> Result<(), TestCaseError> {
    let d = fleet(rules, "ami-1");
    while cloud.now < end {
        cloud.tick(&d, b);
        cloud.within_limits(rules)?;
        for m in cloud.machines.values() {
            prop_assert!(
                cloud.now - m.launched <= oldest,
                "{:?} is {} s old",
                m.serves,
                (cloud.now - m.launched) / SEC
            );
        }
        cloud.now += cloud.pace.step;
    }
    let rotations: u32 = cloud.launches.values().sum();
    prop_assert!(rotations >= 3 * rules.count, "only {rotations} launches");
    Ok(())
}

/// A fleet's rules, each with the `maxAge` `max_age_secs`.
fn rules_aged(
    count: std::ops::Range<u32>,
    max_age_secs: std::ops::Range<u64>,
) -> impl Strategy<Value = Rules> {
    (count, 0u32..3, 0u32..6, max_age_secs, any::<bool>()).prop_map(
        |(count, surge, u, max_age, ec2_status)| {
            let unavailable = u % count;
            let surge = if surge + unavailable == 0 { 1 } else { surge };
            Rules {
                count,
                surge,
                unavailable,
                max_age_secs: Some(max_age),
                check: if ec2_status {
                    HealthCheck::Ec2Status
                } else {
                    HealthCheck::None
                },
            }
        },
    )
}

/// A fleet of 1 to 5 whose members live 600 s: its members' rotations,
/// `600 / count` s apart, never overlap at any [`pace`].
fn rules() -> impl Strategy<Value = Rules> {
    rules_aged(1..6, 600..601)
}

/// Boot and check delays of 0 to 19 s, 1 to 9 s between ticks.
fn pace() -> impl Strategy<Value = Pace> {
    (0u64..20, 0u64..20, 1u64..10).prop_map(|(boot, checks, step)| Pace {
        boot: boot * SEC,
        checks: checks * SEC,
        step: step * SEC,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Over three lifetimes of rotation, capacity stays within its floor
    /// and ceiling and no instance outlives maxAge by more than a
    /// replacement's time (the rotations do not overlap: see [`rules`]).
    #[test]
    fn rotation_holds_capacity_and_ages(rules in rules(), pace in pace()) {
        let (mut cloud, mut b) = built(rules, pace, "ami-1");
        let end = cloud.now + 3 * 600 * SEC;
        rotate_until(&mut cloud, rules, &mut b, end, 600 * SEC + pace.replacement())?;
    }

    /// With a `maxAge` short for the count (1 to 5 minutes for 2 to 5
    /// members), members come due while others are being replaced: the
    /// rationing holds the fleet's floor and ceiling, and a member waits
    /// at most for every other's replacement besides its own. (When the
    /// fleet cannot replace `count` instances within `maxAge`, it rotates
    /// as fast as its limits allow, so the run lasts three of the longest
    /// lives rather than three `maxAge`s.)
    #[test]
    fn overlapping_rotations_hold_capacity(
        rules in rules_aged(2..6, 60..300),
        pace in pace(),
    ) {
        let max_age = rules.max_age_secs.unwrap_or_default() * SEC;
        let (mut cloud, mut b) = built(rules, pace, "ami-1");
        let oldest = max_age + u64::from(rules.count) * pace.replacement();
        let end = cloud.now + 3 * oldest;
        rotate_until(&mut cloud, rules, &mut b, end, oldest)?;
    }

    /// An image change replaces each member exactly once, within capacity.
    #[test]
    fn an_image_change_replaces_each_member_once(rules in rules(), pace in pace()) {
        let rules = Rules { max_age_secs: None, ..rules };
        let (mut cloud, mut b) = built(rules, pace, "ami-1");
        cloud.launches.clear();
        cloud.converge(rules, "ami-2", &mut b, 1000, true)?;
        prop_assert!(cloud.machines.values().all(|m| m.image == "ami-2"));
        prop_assert_eq!(cloud.launches.len(), rules.count as usize);
        prop_assert!(cloud.launches.values().all(|c| *c == 1), "{:?}", cloud.launches);
    }
}

/// What ticking `rules`' fleet with a rotation requested of `scope` did.
struct Requested {
    cloud: Cloud,
    /// The instances before the request.
    old: Vec<String>,
    /// Every difference planned.
    differences: Vec<Difference>,
    /// Whether a pass found the request done (`Plan::rotating` empty) and
    /// the fleet ready and as declared.
    done: bool,
}

/// Builds `rules`' fleet (no `maxAge`: only the request rotates), requests
/// a rotation of `scope` a second later and ticks until a pass finds it
/// done and the fleet converged (or 1000 ticks), checking the fleet's
/// limits at every tick.
fn rotate_on_request(
    rules: Rules,
    pace: Pace,
    scope: RotationScope,
) -> Result<Requested, TestCaseError> {
    let rules = Rules {
        max_age_secs: None,
        ..rules
    };
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    cloud.now += SEC;
    cloud.requested = Some(RotationRequest {
        before: cloud.now,
        scope,
    });
    cloud.now += pace.step;
    cloud.launches.clear();
    let old: Vec<String> = cloud.machines.keys().cloned().collect();
    let d = fleet(rules, "ami-1");
    let mut differences = Vec::new();
    for _ in 0..1000 {
        let p = cloud.tick(&d, &mut b);
        cloud.within_limits(rules)?;
        let settled = p.is_empty() && cloud.ready(rules.check) == d.resources.len();
        differences.extend(p.differences);
        if p.rotating.is_empty() && settled {
            return Ok(Requested {
                cloud,
                old,
                differences,
                done: true,
            });
        }
        cloud.now += pace.step;
    }
    Ok(Requested {
        cloud,
        old,
        differences,
        done: false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A requested rotation of every fleet member replaces each exactly
    /// once, for the reason "requested", within the fleet's floor and
    /// ceiling, and is then done: none of the old instances is left.
    #[test]
    fn a_requested_rotation_replaces_each_member_once_within_capacity(
        rules in rules(),
        pace in pace(),
        named in any::<bool>(),
    ) {
        let scope = if named { RotationScope::Fleet("web".into()) } else { RotationScope::Fleets };
        let r = rotate_on_request(rules, pace, scope)?;
        prop_assert!(r.done, "never done: {:#?}", r.cloud.machines);
        prop_assert_eq!(r.cloud.launches.len(), rules.count as usize);
        prop_assert!(r.cloud.launches.values().all(|c| *c == 1), "{:?}", r.cloud.launches);
        prop_assert!(r.old.iter().all(|i| !r.cloud.machines.contains_key(i)));
        // Each replacement says why; the rest is each old copy retired.
        let retired = |x: &Difference| {
            x.property == "existence" && x.cloud_id.as_ref().is_some_and(|i| r.old.contains(i))
        };
        prop_assert!(
            r.differences.iter().all(|x| x.property == "rotation" || retired(x)),
            "{:?}",
            r.differences
        );
    }
}

#[test]
fn a_requested_rotation_of_another_fleet_replaces_nothing() {
    let (rules, pace) = three();
    let r = rotate_on_request(rules, pace, RotationScope::Fleet("db".into())).unwrap();
    assert!(r.done);
    assert!(r.cloud.launches.is_empty(), "{:?}", r.cloud.launches);
    assert!(r.differences.is_empty(), "{:?}", r.differences);
}

#[test]
fn a_requested_rotation_goes_one_surge_at_a_time_and_says_why() {
    // Three members, one surge: one replacement at a time, so at no tick
    // are two new instances starting, and the steps forecast is three.
    let (rules, pace) = three();
    let d = fleet(rules, "ami-1");
    let members: Vec<LogicalId> = d.resources.keys().copied().collect();
    assert_eq!(rollout_steps(&d, &members), 3);
    let wide = fleet(Rules { surge: 2, ..rules }, "ami-1");
    assert_eq!(rollout_steps(&wide, &members), 2);
    assert_eq!(rollout_steps(&d, &[]), 0);
    let r = rotate_on_request(rules, pace, RotationScope::Fleets).unwrap();
    assert!(r.done);
    let first = r.differences.first().expect("a replacement");
    assert_eq!(first.property, "rotation");
    assert_eq!(first.declared.as_deref(), Some("requested"));
    assert!(
        first
            .observed
            .as_deref()
            .is_some_and(|o| o.starts_with("launched ") && o.ends_with(" before the request")),
        "{first:?}"
    );
}

/// A fleet of three, surge 1, no unavailability, in a cloud whose new
/// instances boot for 10 s and pass their checks 10 s later, ticked every
/// 5 s.
fn three() -> (Rules, Pace) {
    let rules = Rules {
        count: 3,
        surge: 1,
        unavailable: 0,
        max_age_secs: None,
        check: HealthCheck::Ec2Status,
    };
    let pace = Pace {
        boot: 10 * SEC,
        checks: 10 * SEC,
        step: 5 * SEC,
    };
    (rules, pace)
}

/// What [`roll_past_a_bad_member`] leaves.
struct Rolled {
    cloud: Cloud,
    /// The member whose new instances are bad.
    bad: LogicalId,
    /// The instances before the roll.
    old: Vec<String>,
    /// Every difference planned during the roll.
    differences: Vec<Difference>,
    bindings: Bindings,
}

/// Rolls [`three`] from `ami-1` to `ami-2` for 750 s (twice the health
/// grace and more), the first member's new instances spoilt by `spoil`,
/// the fleet within its limits at every tick.
fn roll_past_a_bad_member(spoil: fn(&mut Cloud, LogicalId)) -> Rolled {
    let (rules, pace) = three();
    roll_bad(rules, pace, 150, spoil)
}

/// Rolls `rules`' fleet from `ami-1` to `ami-2` for `ticks` ticks, the
/// first member's new instances spoilt by `spoil`, the fleet within its
/// limits at every tick.
fn roll_bad(rules: Rules, pace: Pace, ticks: usize, spoil: fn(&mut Cloud, LogicalId)) -> Rolled {
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    let bad = LogicalId::new(fid(), "web.instances[0]");
    spoil(&mut cloud, bad);
    let d = fleet(rules, "ami-2");
    let old: Vec<String> = cloud.machines.keys().cloned().collect();
    let mut differences = Vec::new();
    for _ in 0..ticks {
        differences.extend(cloud.tick(&d, &mut b).differences);
        cloud.within_limits(rules).unwrap();
        cloud.now += pace.step;
    }
    Rolled {
        cloud,
        bad,
        old,
        differences,
        bindings: b,
    }
}

impl Rolled {
    /// The bad member's old instance still serves; its new ones were
    /// replaced, one at a time, and nothing else rolled past it.
    fn kept_the_old_instance(&self) {
        let machines = &self.cloud.machines;
        let kept: Vec<&Machine> = self.old.iter().filter_map(|i| machines.get(i)).collect();
        assert!(kept.iter().any(|m| m.serves == self.bad), "{machines:#?}");
        assert!(
            self.cloud.launches[&self.bad] >= 2,
            "{:?}",
            self.cloud.launches
        );
    }
}

#[test]
fn repeated_failures_back_off_then_park_the_rollout_with_the_old_instance_serving() {
    let rolled = roll_past_a_bad_member(|cloud, bad| {
        cloud.failing.insert(bad);
    });
    rolled.kept_the_old_instance();
    // Tried PARK_AFTER times (30 s, then 60 s apart) after its first
    // launch, then parked: no further launch of any member, however long
    // it runs.
    assert_eq!(
        rolled.cloud.launches[&rolled.bad],
        1 + PARK_AFTER,
        "{:?}",
        rolled.cloud.launches
    );
    let f = &rolled.cloud.failures[&rolled.bad];
    assert!(f.parked(), "{f:?}");
    let (rules, pace) = three();
    let mut cloud = rolled.cloud;
    let launched: u32 = cloud.launches.values().sum();
    let mut b = rolled.bindings;
    let d = fleet(rules, "ami-2");
    for _ in 0..100 {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        cloud.now += pace.step;
    }
    assert_eq!(cloud.launches.values().sum::<u32>(), launched, "parked");
    // The members not rolled yet still serve from the old image.
    assert!(cloud
        .machines
        .values()
        .any(|m| m.serves == rolled.bad && m.image == "ami-1"));
}

#[test]
fn a_tcp_replacement_the_conductor_cannot_reach_keeps_the_old_instance_then_parks() {
    let (three, pace) = three();
    let rules = Rules {
        check: HealthCheck::Tcp { port: 8080 },
        ..three
    };
    // Each new instance fails only once its grace (5 min) is over.
    let rolled = roll_bad(rules, pace, 250, |cloud, bad| {
        cloud.deaf.insert(bad);
    });
    rolled.kept_the_old_instance();
    assert_eq!(
        rolled.cloud.launches[&rolled.bad],
        1 + PARK_AFTER,
        "{:?} {:?}",
        rolled.cloud.launches,
        rolled.cloud.failures
    );
    assert!(rolled.cloud.failures[&rolled.bad].parked());
    let unreachable: Vec<&Difference> = rolled
        .differences
        .iter()
        .filter(|x| x.observed.as_deref() == Some("unreachable"))
        .collect();
    assert!(!unreachable.is_empty());
    assert!(
        unreachable.iter().all(|x| x.resource == rolled.bad
            && x.declared.as_deref() == Some("tcp 8080 reachable from the conductor within 5m")),
        "{unreachable:?}"
    );
}

#[test]
fn a_conductor_that_reaches_no_instance_parks_the_rollout_and_fails_no_instance() {
    // As on EC2 with nothing listening: no instance, old or new, answers.
    // The established instances are never judged by the probe, so none
    // is replaced for it; each replacement falls back to its old instance
    // and the rollout parks, with every old instance serving throughout.
    let (three, pace) = three();
    let rules = Rules {
        check: HealthCheck::Tcp { port: 8080 },
        ..three
    };
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    for m in cloud.machines.values_mut() {
        m.deaf = true;
    }
    let members: Vec<LogicalId> = cloud.machines.values().map(|m| m.serves).collect();
    cloud.deaf.extend(members);
    let old: Vec<String> = cloud.machines.keys().cloned().collect();
    let d = fleet(rules, "ami-2");
    for _ in 0..400 {
        cloud.tick(&d, &mut b);
        // The capacity the cloud sees (running instances) never drops.
        cloud
            .within_limits(Rules {
                check: HealthCheck::None,
                ..rules
            })
            .unwrap();
        assert!(
            old.iter().all(|i| cloud.machines.contains_key(i)),
            "an old instance went: {:#?}",
            cloud.machines
        );
        cloud.now += pace.step;
    }
    assert!(
        cloud.failures.values().any(|f| f.parked()),
        "{:?}",
        cloud.failures
    );
    let launched: u32 = cloud.launches.values().sum();
    assert!(
        launched <= rules.count * (1 + PARK_AFTER),
        "{:?}",
        cloud.launches
    );
}

#[test]
fn without_surge_a_failing_replacement_backs_off_then_parks_within_the_floor() {
    // maxSurge 0: each member is terminated before its replacement
    // launches, so there is no old instance to keep. A new instance that
    // never passes its checks is recorded, kept until its backoff is over
    // (30 s, then 60 s), replaced, and after PARK_AFTER failures the
    // rollout parks; no other member goes down meanwhile.
    let (three, pace) = three();
    let rules = Rules {
        surge: 0,
        unavailable: 1,
        ..three
    };
    let rolled = roll_bad(rules, pace, 300, |cloud, bad| {
        cloud.stuck.insert(bad);
    });
    let cloud = &rolled.cloud;
    assert_eq!(
        cloud.launches[&rolled.bad],
        1 + PARK_AFTER,
        "{:?}",
        cloud.launches
    );
    let f = &cloud.failures[&rolled.bad];
    assert!(f.parked(), "{f:?}");
    assert!(
        rolled
            .differences
            .iter()
            .any(|x| x.resource == rolled.bad && x.declared.as_deref() == Some("ok within 5m")),
        "the failures were planned as health"
    );
    // The floor (count - 1 ready) held at every tick (`roll_bad`), and
    // the other members each serve from one ready instance.
    let others_ready = cloud
        .machines
        .values()
        .filter(|m| m.serves != rolled.bad && cloud.life(m).ready())
        .count();
    assert_eq!(others_ready, 2, "{:#?}", cloud.machines);
    // Parked: however long it runs, nothing launches.
    let mut cloud = rolled.cloud;
    let mut b = rolled.bindings;
    let launched: u32 = cloud.launches.values().sum();
    let d = fleet(rules, "ami-2");
    for _ in 0..100 {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        cloud.now += pace.step;
    }
    assert_eq!(cloud.launches.values().sum::<u32>(), launched, "parked");
}

#[test]
fn without_surge_a_failed_replacement_waits_out_its_backoff() {
    let (three, pace) = three();
    let rules = Rules {
        surge: 0,
        unavailable: 1,
        ..three
    };
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    let bad = LogicalId::new(fid(), "web.instances[0]");
    cloud.stuck.insert(bad);
    let d = fleet(rules, "ami-2");
    while !cloud.failures.contains_key(&bad) {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        cloud.now += pace.step;
        assert!(cloud.now < 1_767_225_600_000 + 3_600 * SEC, "never failed");
    }
    let failed_at = cloud.failures[&bad].last_at;
    let launches = cloud.launches[&bad];
    while cloud.now < failed_at + 30 * SEC {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        assert_eq!(
            cloud.launches[&bad],
            launches,
            "retried at {}",
            cloud.now - failed_at
        );
        cloud.now += pace.step;
    }
    for _ in 0..3 {
        cloud.tick(&d, &mut b);
        cloud.now += pace.step;
    }
    assert_eq!(cloud.launches[&bad], launches + 1, "retried after it");
}

#[test]
fn without_surge_a_failed_instance_that_passes_late_clears_its_failure() {
    let (three, pace) = three();
    let rules = Rules {
        surge: 0,
        unavailable: 1,
        ..three
    };
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    let bad = LogicalId::new(fid(), "web.instances[0]");
    cloud.stuck.insert(bad);
    let d = fleet(rules, "ami-2");
    while !cloud.failures.contains_key(&bad) {
        cloud.tick(&d, &mut b);
        cloud.now += pace.step;
        assert!(cloud.now < 1_767_225_600_000 + 3_600 * SEC, "never failed");
    }
    // Its checks pass during the backoff: it is kept, not replaced, and
    // the failure is cleared.
    let failed = cloud.failures[&bad].cloud_id.clone();
    for m in cloud.machines.values_mut() {
        m.stuck = false;
    }
    cloud.stuck.clear();
    let launches = cloud.launches[&bad];
    for _ in 0..3 {
        cloud.tick(&d, &mut b);
        cloud.now += pace.step;
    }
    assert!(!cloud.failures.contains_key(&bad), "{:?}", cloud.failures);
    assert!(cloud.machines.contains_key(&failed));
    assert_eq!(cloud.launches[&bad], launches);
}

#[test]
fn a_failed_replacement_is_retried_after_its_backoff() {
    let (rules, pace) = three();
    let (mut cloud, mut b) = built(rules, pace, "ami-1");
    let bad = LogicalId::new(fid(), "web.instances[0]");
    cloud.failing.insert(bad);
    let d = fleet(rules, "ami-2");
    while !cloud.failures.contains_key(&bad) {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        cloud.now += pace.step;
        assert!(cloud.now < 1_767_225_600_000 + 3_600 * SEC, "never failed");
    }
    let failed_at = cloud.failures[&bad].last_at;
    let launches = cloud.launches[&bad];
    // Within the first backoff (30 s) the member is not launched again.
    while cloud.now < failed_at + 30 * SEC {
        cloud.tick(&d, &mut b);
        cloud.within_limits(rules).unwrap();
        assert_eq!(
            cloud.launches[&bad],
            launches,
            "retried at {}",
            cloud.now - failed_at
        );
        cloud.now += pace.step;
    }
    for _ in 0..3 {
        cloud.tick(&d, &mut b);
        cloud.now += pace.step;
    }
    assert_eq!(
        cloud.launches[&bad],
        launches + 1,
        "retried after the backoff"
    );
}

#[test]
fn a_replacement_that_fails_its_checks_keeps_the_old_instance() {
    let rolled = roll_past_a_bad_member(|cloud, bad| {
        cloud.failing.insert(bad);
    });
    rolled.kept_the_old_instance();
}

#[test]
fn a_replacement_still_initializing_after_the_grace_is_replaced_and_the_old_instance_kept() {
    let rolled = roll_past_a_bad_member(|cloud, bad| {
        cloud.stuck.insert(bad);
    });
    rolled.kept_the_old_instance();
    let graceless: Vec<&Difference> = rolled
        .differences
        .iter()
        .filter(|x| x.declared.as_deref() == Some("ok within 5m"))
        .collect();
    assert!(!graceless.is_empty());
    assert!(
        graceless
            .iter()
            .all(|x| x.resource == rolled.bad && x.property == "health"),
        "{graceless:?}"
    );
}

#[test]
fn an_instance_past_its_grace_is_not_kept_while_its_replacement_starts() {
    // Member 1 is mid-surge (its old instance serves, its new one starts):
    // the fleet's one surge is in use. Member 0's instance never passed
    // its checks and its grace is over: it is replaced, and goes at once,
    // or the fleet would hold count + maxSurge + 1 instances.
    let (three, pace) = three();
    let rules = Rules {
        count: 2,
        unavailable: 1,
        ..three
    };
    let mut cloud = Cloud::new(pace);
    let mut b = Bindings::new();
    let member = |i: u32| LogicalId::new(fid(), &format!("web.instances[{i}]"));
    let now = cloud.now;
    let machine = |serves, image: &str, launched, stuck| Machine {
        serves,
        launched,
        image: image.into(),
        subnet: "subnet-0".into(),
        impaired: false,
        stuck,
        deaf: false,
    };
    for (id, m) in [
        (
            "i-stuck",
            machine(member(0), "ami-2", now - 400 * SEC, true),
        ),
        ("i-old", machine(member(1), "ami-1", now - 900 * SEC, false)),
        ("i-new", machine(member(1), "ami-2", now - 5 * SEC, false)),
    ] {
        cloud.machines.insert(id.into(), m);
    }
    b.bind(member(0), "i-stuck".to_string());
    b.bind(member(1), "i-new".to_string());
    cloud.within_limits(rules).unwrap();
    let p = cloud.tick(&fleet(rules, "ami-2"), &mut b);
    assert!(
        p.differences
            .iter()
            .any(|x| x.resource == member(0) && x.declared.as_deref() == Some("ok within 5m")),
        "{:?}",
        p.differences
    );
    cloud.within_limits(rules).unwrap();
    assert!(!cloud.machines.contains_key("i-stuck"));
    assert!(cloud.machines.contains_key("i-old"));
}
