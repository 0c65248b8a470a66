//! The planner's rules for an instance's life: replaced when older than
//! its `maxAge`, stopped or impaired; surge first (the old instance serves
//! until its replacement is ready); a replacement that fails its checks is
//! terminated and the old instance kept; at most one old instance per
//! declared one.

use std::collections::BTreeMap;

use canon_model::{
    plan, plan_at, plan_requested, Bindings, DesiredState, Fid, Health, InstanceLife, InstanceSpec,
    InstanceState, LogicalId, ObservedResource, ObservedState, Ref, Region, Resource,
    RotationRequest, RotationScope, Spec, OWNERSHIP_TAG,
};

const HOUR_MS: u64 = 3_600_000;

fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
}

fn box_id() -> LogicalId {
    LogicalId::new(fid(), "box")
}

fn declared(image: &str, subnet: &str) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    d.insert(Resource {
        id: box_id(),
        name: "box".into(),
        region: Region::new("eu-west-1"),
        spec: Spec::Instance(InstanceSpec {
            image_id: image.into(),
            instance_type: "t3.micro".into(),
            subnet: Ref::External(subnet.into()),
            key_name: None,
            user_data: None,
            security_groups: [Ref::External("sg-1".into())].into(),
            tags: Default::default(),
            max_age_secs: Some(3600),
            fleet: None,
            source_dest_check: true,
        }),
    })
    .unwrap();
    d
}

fn instance(id: &str, launched_at: u64, state: InstanceState, health: Health) -> ObservedResource {
    ObservedResource {
        cloud_id: id.into(),
        region: Region::new("eu-west-1"),
        spec: Spec::Instance(InstanceSpec {
            image_id: "ami-1".into(),
            instance_type: "t3.micro".into(),
            subnet: "subnet-1".into(),
            key_name: None,
            user_data: None,
            security_groups: ["sg-1".to_string()].into(),
            tags: [(OWNERSHIP_TAG.to_string(), box_id().to_string())].into(),
            max_age_secs: None,
            fleet: None,
            source_dest_check: true,
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: Some(InstanceLife {
            launched_at,
            state,
            health,
            address: None,
        }),
    }
}

fn running(id: &str, launched_at: u64) -> ObservedResource {
    instance(id, launched_at, InstanceState::Running, Health::Ok)
}

fn bound(id: &str) -> Bindings {
    [(box_id(), id.to_string())].into_iter().collect()
}

fn types(p: &canon_model::Plan) -> Vec<(&'static str, String)> {
    p.requests
        .iter()
        .map(|r| (r.request_type(), r.to_json()["params"].to_string()))
        .collect()
}

fn request_types(p: &canon_model::Plan) -> Vec<&'static str> {
    p.requests.iter().map(|r| r.request_type()).collect()
}

#[test]
fn a_young_instance_stays_and_an_old_one_is_replaced_surge_first() {
    let d = declared("ami-1", "subnet-1");
    let obs: ObservedState = [running("i-old", 0)].into_iter().collect();
    let young = plan_at(&d, &obs, &bound("i-old"), HOUR_MS - 1);
    assert!(young.is_empty(), "{:?}", types(&young));
    // Without a time, age plays no part.
    assert!(plan(&d, &obs, &bound("i-old")).is_empty());

    let p = plan_at(&d, &obs, &bound("i-old"), HOUR_MS);
    assert_eq!(request_types(&p), ["aws.ec2.run_instances"]);
    assert_eq!(
        p.waiting.len(),
        1,
        "the old instance waits: {:?}",
        p.waiting
    );
    let age = p.differences.iter().find(|x| x.property == "age").unwrap();
    assert_eq!(age.declared.as_deref(), Some("at most 1h"));
    assert_eq!(age.observed.as_deref(), Some("1h"));
}

#[test]
fn the_old_instance_serves_until_the_new_one_is_ready() {
    let d = declared("ami-1", "subnet-1");
    let now = HOUR_MS + 60_000;
    for (state, health) in [
        (InstanceState::Pending, Health::Unknown),
        (InstanceState::Running, Health::Initializing),
    ] {
        let obs: ObservedState = [
            running("i-old", 0),
            instance("i-new", HOUR_MS, state, health),
        ]
        .into_iter()
        .collect();
        let p = plan_at(&d, &obs, &bound("i-new"), now);
        assert!(p.only_waits(), "{state:?} {health:?}: {:?}", types(&p));
    }
    let obs: ObservedState = [running("i-old", 0), running("i-new", HOUR_MS)]
        .into_iter()
        .collect();
    let p = plan_at(&d, &obs, &bound("i-new"), now);
    assert_eq!(request_types(&p), ["aws.ec2.terminate_instances"]);
    assert!(types(&p)[0].1.contains("i-old"));
}

#[test]
fn a_replacement_that_fails_its_checks_goes_and_the_old_instance_stays() {
    let d = declared("ami-1", "subnet-1");
    let obs: ObservedState = [
        running("i-old", 0),
        instance("i-bad", HOUR_MS, InstanceState::Running, Health::Impaired),
    ]
    .into_iter()
    .collect();
    let p = plan_at(&d, &obs, &bound("i-bad"), HOUR_MS + 60_000);
    assert_eq!(
        request_types(&p),
        ["aws.ec2.run_instances", "aws.ec2.terminate_instances"]
    );
    assert!(types(&p)[1].1.contains("i-bad"), "{:?}", types(&p));
    assert!(p.waiting.iter().any(|w| w.part == "retire i-old"));
    assert!(p.differences.iter().any(|x| x.property == "health"));
}

#[test]
fn a_stopped_instance_is_replaced_at_once() {
    let d = declared("ami-1", "subnet-1");
    let obs: ObservedState = [instance("i-1", 0, InstanceState::Stopped, Health::Unknown)]
        .into_iter()
        .collect();
    let p = plan(&d, &obs, &bound("i-1"));
    assert_eq!(
        request_types(&p),
        ["aws.ec2.run_instances", "aws.ec2.terminate_instances"]
    );
    let state = p
        .differences
        .iter()
        .find(|x| x.property == "state")
        .unwrap();
    assert_eq!(state.observed.as_deref(), Some("stopped"));
}

#[test]
fn an_image_change_surges_too_and_keeps_one_old_instance_at_most() {
    let d = declared("ami-2", "subnet-1");
    let obs: ObservedState = [running("i-a", 0), running("i-b", 10), running("i-new", 20)]
        .into_iter()
        .collect();
    // i-new is bound but built from the old image: replaced; of the two
    // older copies only the youngest (i-new itself) stays while the
    // replacement starts.
    let p = plan_at(&d, &obs, &bound("i-new"), 30);
    assert_eq!(
        request_types(&p),
        [
            "aws.ec2.run_instances",
            "aws.ec2.terminate_instances",
            "aws.ec2.terminate_instances"
        ]
    );
    assert_eq!(p.waiting.len(), 1);
    assert_eq!(p.waiting[0].part, "retire i-new");
}

#[test]
fn a_change_during_a_surge_keeps_the_instance_that_serves() {
    // i-new, bound, still initializing, is replaced in turn (its image is
    // old too): of the two old copies, the ready one serves until the
    // third instance is ready, however much younger the other is.
    let d = declared("ami-2", "subnet-1");
    let obs: ObservedState = [
        running("i-old", 0),
        instance(
            "i-new",
            HOUR_MS,
            InstanceState::Running,
            Health::Initializing,
        ),
    ]
    .into_iter()
    .collect();
    let p = plan_at(&d, &obs, &bound("i-new"), HOUR_MS + 60_000);
    assert_eq!(
        request_types(&p),
        ["aws.ec2.run_instances", "aws.ec2.terminate_instances"]
    );
    assert!(types(&p)[1].1.contains("i-new"), "{:?}", types(&p));
    assert_eq!(p.waiting.len(), 1);
    assert_eq!(p.waiting[0].part, "retire i-old");
}

#[test]
fn a_subnet_change_surges_when_the_old_subnet_stays() {
    // The subnet changes: the old instance's subnet is not Canon's here,
    // so the old one may stay.
    let d = declared("ami-1", "subnet-2");
    let obs: ObservedState = [running("i-old", 0)].into_iter().collect();
    let p = plan_at(&d, &obs, &bound("i-old"), 10);
    assert_eq!(request_types(&p), ["aws.ec2.run_instances"]);
    assert_eq!(p.waiting.len(), 1);
}

#[test]
fn kill_terminates_every_copy_at_once() {
    let obs: ObservedState = [running("i-a", 0), running("i-b", 10)]
        .into_iter()
        .collect();
    let p = canon_model::plan_kill(fid(), &obs, &bound("i-b"));
    assert_eq!(p.requests.len(), 2);
    assert!(p.waiting.is_empty());
}

#[test]
fn a_requested_rotation_covers_an_instance_outside_a_fleet_only_with_all() {
    let d = declared("ami-1", "subnet-1");
    let obs: ObservedState = [running("i-old", 0)].into_iter().collect();
    let now = 60_000;
    let request = |scope| RotationRequest {
        before: 30_000,
        scope,
    };
    for scope in [RotationScope::Fleets, RotationScope::Fleet("web".into())] {
        let r = request(scope);
        let p = plan_requested(&d, &obs, &bound("i-old"), now, std::slice::from_ref(&r));
        assert!(
            p.is_empty() && p.rotating.is_empty(),
            "{r:?}: {:?}",
            types(&p)
        );
    }
    let all = request(RotationScope::All);
    let p = plan_requested(&d, &obs, &bound("i-old"), now, std::slice::from_ref(&all));
    assert_eq!(request_types(&p), ["aws.ec2.run_instances"]);
    assert_eq!(p.rotating, [box_id()]);
    let why = p
        .differences
        .iter()
        .find(|x| x.property == "rotation")
        .unwrap();
    assert_eq!(
        why.observed.as_deref(),
        Some("launched 30s before the request")
    );
    // Once the instance bound was launched after the request, it is done:
    // the old copy is retired as usual.
    let obs: ObservedState = [running("i-old", 0), running("i-new", 40_000)]
        .into_iter()
        .collect();
    let p = plan_requested(&d, &obs, &bound("i-new"), now, std::slice::from_ref(&all));
    assert!(p.rotating.is_empty());
    assert_eq!(request_types(&p), ["aws.ec2.terminate_instances"]);
}

#[test]
fn each_replacement_is_listed_once_with_its_reason() {
    let reasons = |p: &canon_model::Plan| -> Vec<(String, String, String)> {
        p.replacements
            .iter()
            .map(|r| (r.cloud_id.clone(), r.reason.to_string(), r.detail.clone()))
            .collect()
    };
    let d = declared("ami-1", "subnet-1");
    let old: ObservedState = [running("i-old", 0)].into_iter().collect();
    // Nothing replaced: nothing listed.
    assert!(plan_at(&d, &old, &bound("i-old"), 60_000)
        .replacements
        .is_empty());
    let aged = plan_at(&d, &old, &bound("i-old"), HOUR_MS);
    assert_eq!(
        reasons(&aged),
        [(
            "i-old".into(),
            "age".into(),
            "age: 1h, declared at most 1h".into()
        )]
    );
    // An image change is the change, even when the instance is old too.
    let changed = plan_at(
        &declared("ami-2", "subnet-1"),
        &old,
        &bound("i-old"),
        HOUR_MS,
    );
    assert_eq!(
        reasons(&changed),
        [(
            "i-old".into(),
            "change".into(),
            "imageId: ami-1, declared ami-2".into()
        )]
    );
    let stopped: ObservedState = [instance("i-1", 0, InstanceState::Stopped, Health::Unknown)]
        .into_iter()
        .collect();
    assert_eq!(reasons(&plan(&d, &stopped, &bound("i-1")))[0].1, "stopped");
    let impaired: ObservedState = [instance("i-1", 0, InstanceState::Running, Health::Impaired)]
        .into_iter()
        .collect();
    assert_eq!(reasons(&plan(&d, &impaired, &bound("i-1")))[0].1, "health");
    let all = RotationRequest {
        before: 30_000,
        scope: RotationScope::All,
    };
    let requested = plan_requested(&d, &old, &bound("i-old"), 60_000, &[all]);
    assert_eq!(reasons(&requested)[0].1, "requested");
    // Mid-surge (the new instance bound, starting), nothing more is listed.
    let surging: ObservedState = [
        running("i-old", 0),
        instance("i-new", HOUR_MS, InstanceState::Pending, Health::Unknown),
    ]
    .into_iter()
    .collect();
    let p = plan_at(&d, &surging, &bound("i-new"), HOUR_MS + 1);
    assert!(p.replacements.is_empty(), "{:?}", reasons(&p));
}
