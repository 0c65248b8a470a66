//! An instance with a `maxAge` is replaced as it ages, surge first: the
//! actor launches the replacement, keeps the old instance while the new
//! one boots and its checks initialize, then terminates it; so one
//! instance at least is always serving and two at most exist. Each
//! replacement is a drift row whose property is its reason (`age`); a stop
//! out of band is replaced too (`state`). A fleet checked by `Tcp(port)`
//! whose new instances the conductor cannot reach keeps its old instances
//! and parks its rollout, with one alert; without surge, a replacement
//! the conductor cannot reach fails too (it is kept through its backoff,
//! never under the floor), and the fleet parks with one alert.

mod support;

use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::Cloud;
use canon_model::*;
use canon_raft::Command;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    quick_config(Duration::from_millis(500))
}

fn with_box(fid: Fid, name: &str, max_age_secs: Option<u64>) -> DesiredState {
    let mut d = network(fid, name, false);
    d.insert(Resource {
        id: LogicalId::new(fid, "box"),
        name: "box".into(),
        region: Region::new(REGION),
        spec: Spec::Instance(InstanceSpec {
            image_id: "ami-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            subnet: Ref::Managed(LogicalId::new(fid, "net.publicSubnets[0]")),
            key_name: None,
            user_data: None,
            security_groups: [Ref::Managed(LogicalId::new(fid, "web-sg"))].into(),
            tags: Tags::new(),
            max_age_secs,
            fleet: None,
            source_dest_check: true,
        }),
    })
    .unwrap();
    d
}

/// The process's instances as the cloud shows them now.
async fn instances(h: &Harness, fid: Fid) -> Vec<ObservedResource> {
    let observed = h.cloud.observe(&scope()).await.unwrap();
    observed
        .owned_by(fid)
        .filter(|r| r.kind() == ResourceKind::Instance)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_a_max_age_rotates_with_capacity_held() {
    let h = Harness::start_with_cloud_epoch(1, 2, config(), now_ms()).await;
    h.cloud.set_faults(Faults {
        instance_boot_delay: Duration::from_millis(800),
        status_check_delay: Duration::from_millis(800),
        ..Faults::none()
    });
    let fid = Fid::random();
    h.run("rot", &with_box(fid, "rot", Some(4))).await;

    let mut seen = std::collections::BTreeSet::new();
    let (mut most, mut serving_once) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let live = instances(&h, fid).await;
        let serving = live
            .iter()
            .filter(|r| r.life.is_some_and(|l| l.serving()))
            .count();
        if serving_once {
            assert!(serving >= 1, "no instance serving: {live:#?}");
        }
        serving_once |= serving >= 1;
        most = most.max(live.len());
        seen.extend(live.iter().map(|r| r.cloud_id.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most <= 2, "more than one surge instance: {most}");
    assert!(seen.len() >= 4, "too few rotations in 20 s: {seen:?}");
    let p = h.process("rot", fid).await;
    let ages = p.drift.values().filter(|d| d.property == "age").count();
    assert!(
        ages >= 2,
        "replacements recorded with their reason: {:#?}",
        p.drift
    );

    // Stopped out of band (a box of another process, which does not
    // rotate): replaced, with the reason.
    let other = Fid::random();
    h.run("stop", &with_box(other, "stop", None)).await;
    let p = h
        .wait_for(
            "stop",
            other,
            Duration::from_secs(10),
            "RUN to succeed",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
        )
        .await;
    let stopped = h.cloud_id(&p, "box");
    h.cloud.rogue_stop_instance(&scope(), &stopped).unwrap();
    h.wait_for(
        "stop",
        other,
        Duration::from_secs(10),
        "the stop healed",
        |p| {
            p.drift
                .values()
                .any(|d| d.property == "state" && d.cloud_id.as_deref() == Some(&stopped))
                && p.bindings[&LogicalId::new(other, "box")].cloud_id != stopped
        },
    )
    .await;
    h.shutdown().await;
}

/// A fleet of two behind `web-sg` in the process's network: `maxAge`
/// 6 s (below the language's minute: a scheduler test), surge 1, checked
/// by a TCP connect to port 8080 within 1 s.
fn tcp_fleet(fid: Fid, name: &str) -> (DesiredState, [LogicalId; 2]) {
    tcp_fleet_surging(fid, name, 1)
}

/// [`tcp_fleet`] with `max_surge` (and, without surge, one unavailable).
fn tcp_fleet_surging(fid: Fid, name: &str, max_surge: u32) -> (DesiredState, [LogicalId; 2]) {
    let mut d = network(fid, name, false);
    let ids = [0u32, 1].map(|index| {
        let path = format!("web.instances[{index}]");
        let id = LogicalId::new(fid, &path);
        d.insert(Resource {
            id,
            name: path,
            region: Region::new(REGION),
            spec: Spec::Instance(InstanceSpec {
                image_id: "ami-0123456789abcdef0".into(),
                instance_type: "t3.micro".into(),
                subnet: Ref::Managed(LogicalId::new(fid, &format!("net.publicSubnets[{index}]"))),
                key_name: None,
                user_data: None,
                security_groups: [Ref::Managed(LogicalId::new(fid, "web-sg"))].into(),
                tags: Tags::new(),
                max_age_secs: Some(6),
                fleet: Some(FleetMember {
                    fleet: "web".into(),
                    index,
                    count: 2,
                    max_surge,
                    max_unavailable: u32::from(max_surge == 0),
                    health_check: HealthCheck::Tcp { port: 8080 },
                    health_grace_secs: 1,
                }),
                source_dest_check: true,
            }),
        })
        .unwrap();
        id
    });
    (d, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_fleet_the_conductor_cannot_reach_keeps_its_old_instances_and_parks() {
    let h = Harness::start_with_cloud_epoch(1, 2, config(), now_ms()).await;
    h.cloud.set_faults(Faults {
        instance_boot_delay: Duration::from_millis(300),
        status_check_delay: Duration::from_millis(300),
        ..Faults::none()
    });
    let fid = Fid::random();
    let (d, members) = tcp_fleet(fid, "tcp");
    h.run("tcp", &d).await;
    h.wait_for("tcp", fid, Duration::from_secs(10), "RUN to succeed", |p| {
        last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    // Built: both members serve (a RUN does not wait for instances to boot).
    let deadline = Instant::now() + Duration::from_secs(10);
    let old = loop {
        let live = instances(&h, fid).await;
        let serving = live
            .iter()
            .filter(|r| r.life.is_some_and(|l| l.serving()))
            .count();
        if serving == 2 && live.len() == 2 {
            break ids(&live);
        }
        assert!(Instant::now() < deadline, "never built: {live:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // From now on nothing answers on 8080 (as on EC2 with no listener).
    h.cloud.set_faults(Faults {
        tcp_unreachable: true,
        ..h.cloud.faults()
    });
    // Two failures of each member already, long enough ago for their
    // backoff to be over (the real 30 s + 60 s would make this test slow):
    // the next failed replacement parks the fleet.
    let long_ago = now_ms() - 600_000;
    for m in members {
        for seeded in ["i-seeded-1", "i-seeded-2"] {
            let failed = Command::RolloutFailed {
                fid,
                resource: m,
                cloud_id: seeded.into(),
                name: "seeded".into(),
            };
            assert!(h.propose_at("tcp", long_ago, failed).await.is_applied());
        }
    }

    // The capacity floor holds throughout (two serving, at most three),
    // and the rollout parks with one alert.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.heard.of("rollout.parked", "tcp").is_empty() {
        assert!(Instant::now() < deadline, "never parked");
        check_floor(&h, fid).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = h.process("tcp", fid).await;
    let parked: Vec<&RolloutFailure> = p.rollout_failures.values().filter(|f| f.parked()).collect();
    assert_eq!(parked.len(), 1, "{:?}", p.rollout_failures);
    assert!(
        p.replacements
            .values()
            .any(|r| r.replaced.detail.contains("tcp 8080")),
        "the history says why: {:#?}",
        p.replacements
    );
    // The failed replacement goes; then the fleet is what it was before
    // the port closed (its old instances kept), and stays so: parked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kept = ids(&instances(&h, fid).await);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.is_subset(&old), "kept {kept:?}, had {old:?}");
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        check_floor(&h, fid).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ids(&instances(&h, fid).await),
        kept,
        "a parked fleet rolled"
    );
    assert_eq!(h.heard.of("rollout.parked", "tcp").len(), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_surge_a_replacement_the_conductor_cannot_reach_fails_and_parks() {
    let h = Harness::start_with_cloud_epoch(1, 2, config(), now_ms()).await;
    h.cloud.set_faults(Faults {
        instance_boot_delay: Duration::from_millis(300),
        status_check_delay: Duration::from_millis(300),
        ..Faults::none()
    });
    let fid = Fid::random();
    let (d, _) = tcp_fleet_surging(fid, "deaf", 0);
    h.run("deaf", &d).await;
    h.wait_for(
        "deaf",
        fid,
        Duration::from_secs(10),
        "RUN to succeed",
        |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
    )
    .await;
    // RUN succeeds once both are launched; the floor holds from when both
    // serve.
    let deadline = Instant::now() + Duration::from_secs(10);
    while instances(&h, fid)
        .await
        .iter()
        .filter(|r| r.life.is_some_and(|l| l.serving()))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the fleet never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // From now on every new instance is deaf on 8080 (a broken image);
    // the two built still answer.
    h.cloud.set_faults(Faults {
        tcp_unreachable_launched_from: Some(now_ms()),
        ..h.cloud.faults()
    });
    // The first rotation (maxAge 6 s) replaces one member; its new
    // instance never answers within its grace (1 s): recorded as failed,
    // and kept through its backoff (30 s) with the other member serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (member, failed) = loop {
        check_floor_of(&h, "deaf", fid, 1, 2).await;
        let p = h.process("deaf", fid).await;
        if let Some((m, f)) = p.rollout_failures.iter().next() {
            break (*m, f.cloud_id.clone());
        }
        assert!(Instant::now() < deadline, "the failure was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        check_floor_of(&h, "deaf", fid, 1, 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ids(&instances(&h, fid).await).contains(&failed),
        "retried before its backoff"
    );
    assert!(h.heard.of("rollout.parked", "deaf").is_empty());
    // One more failure of that member, long enough ago for the backoff to
    // be over (the real 60 s would make this test slow): the failed
    // instance counts as the third, and the rollout parks with an alert.
    let seeded = Command::RolloutFailed {
        fid,
        resource: member,
        cloud_id: "i-seeded".into(),
        name: "seeded".into(),
    };
    assert!(h
        .propose_at("deaf", now_ms() - 600_000, seeded)
        .await
        .is_applied());
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.heard.of("rollout.parked", "deaf").is_empty() {
        assert!(Instant::now() < deadline, "never parked");
        check_floor_of(&h, "deaf", fid, 1, 2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = h.process("deaf", fid).await;
    let f = &p.rollout_failures[&member];
    assert!(f.parked(), "{f:?}");
    assert!(f.parked_message().contains("parked"), "{f:?}");
    // Parked: nothing more launches, the floor holds.
    let kept = ids(&instances(&h, fid).await);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        check_floor_of(&h, "deaf", fid, 1, 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ids(&instances(&h, fid).await),
        kept,
        "a parked fleet rolled"
    );
    assert_eq!(h.heard.of("rollout.parked", "deaf").len(), 1);
    h.shutdown().await;
}

fn ids(rs: &[ObservedResource]) -> std::collections::BTreeSet<String> {
    rs.iter().map(|r| r.cloud_id.clone()).collect()
}

/// The fleet's capacity floor and ceiling: two instances serving (count
/// - maxUnavailable), three at most (count + maxSurge).
async fn check_floor(h: &Harness, fid: Fid) {
    check_floor_of(h, "tcp", fid, 2, 3).await;
}

/// Process `alias`'s fleet has at least `floor` instances serving and at
/// most `ceiling` in all.
async fn check_floor_of(h: &Harness, alias: &str, fid: Fid, floor: usize, ceiling: usize) {
    let live = instances(h, fid).await;
    let serving = live
        .iter()
        .filter(|r| r.life.is_some_and(|l| l.serving()))
        .count();
    if serving < floor {
        let p = h.process(alias, fid).await;
        panic!(
            "under the floor: {live:#?}\nreplacements {:#?}\nfailures {:#?}",
            p.replacements, p.rollout_failures
        );
    }
    assert!(live.len() <= ceiling, "over the ceiling: {live:#?}");
}
