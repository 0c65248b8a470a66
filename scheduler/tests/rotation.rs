//! An instance with a `maxAge` is replaced as it ages, surge first: the
//! actor launches the replacement, keeps the old instance while the new
//! one boots and its checks initialize, then terminates it; so one
//! instance at least is always serving and two at most exist. Each
//! replacement is a drift row whose property is its reason (`age`); a stop
//! out of band is replaced too (`state`).

mod support;

use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::Cloud;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    SchedulerConfig {
        tick_interval: Duration::from_millis(500),
        jitter: 0.1,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(2),
        ..SchedulerConfig::default()
    }
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
