//! The demo's story on one node, against the simulated cloud: run three
//! networks, kill one, run another, a rogue all-traffic rule is healed within
//! two ticks and recorded as drift, an update adds SSH, suspend leaves drift
//! in place and resume heals it; and a terminal error is not retried.

mod support;

use std::time::Duration;

use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

fn config() -> SchedulerConfig {
    quick_config(Duration::from_secs(1))
}

const JOB_TIME: Duration = Duration::from_secs(20);

fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_story_on_one_node() {
    let h = Harness::start(1, 4, config()).await;

    // Three running networks.
    let mut fids = std::collections::BTreeMap::new();
    for alias in ["staging", "dev-hector", "dev-lisa"] {
        let fid = Fid::random();
        h.run(alias, &network(fid, alias, false)).await;
        fids.insert(alias, fid);
    }
    for (alias, fid) in &fids {
        let p = h
            .wait_for(alias, *fid, JOB_TIME, "RUN to succeed", |p| {
                last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
            })
            .await;
        assert_eq!(p.state, ProcessState::Running);
        assert_eq!(p.bindings.len(), 6, "{alias}: {:?}", p.bindings);
        assert_eq!(h.owned(*fid).len(), 6, "{alias} owns six resources");
    }

    // Kill Lisa's: everything she owned is gone, the others are untouched.
    let lisa = fids["dev-lisa"];
    let job = h.kill_process("dev-lisa", lisa).await;
    let j = h.wait_job("dev-lisa", lisa, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    let p = h.process("dev-lisa", lisa).await;
    assert_eq!(p.state, ProcessState::Killed);
    assert!(p.bindings.is_empty());
    assert!(h.owned(lisa).is_empty(), "{:?}", h.owned(lisa));
    assert_eq!(h.owned(fids["dev-hector"]).len(), 6);

    // Sam's network.
    let sam = Fid::random();
    h.run("dev-sam", &network(sam, "dev-sam", false)).await;
    let p = h
        .wait_for("dev-sam", sam, JOB_TIME, "RUN to succeed", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
        })
        .await;
    let sg = h.cloud_id(&p, "web-sg");

    // Enforcement runs as a SYSTEM job.
    let p = h
        .wait_for(
            "dev-sam",
            sam,
            Duration::from_secs(5),
            "a SYSTEM job",
            |p| last_job(p, JobKind::System).is_some(),
        )
        .await;
    assert_eq!(
        last_job(&p, JobKind::System).unwrap().status,
        JobStatus::InProgress
    );

    // A rogue all-traffic rule is removed within two ticks and recorded.
    h.cloud
        .rogue_authorize_ingress(&scope(), &sg, all_traffic())
        .unwrap();
    let added = tokio::time::Instant::now();
    let two_ticks = config()
        .tick_interval
        .mul_f64(2.0 * (1.0 + config().jitter));
    loop {
        let rules = ingress_of(&h.cloud.describe(&scope(), &sg).unwrap());
        if !rules.contains(&all_traffic()) {
            assert_eq!(rules.len(), 2, "the two declared rules stay: {rules:?}");
            break;
        }
        assert!(
            added.elapsed() < two_ticks + Duration::from_millis(500),
            "rogue rule still there after {:?}",
            added.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let p = h
        .wait_for(
            "dev-sam",
            sam,
            Duration::from_secs(5),
            "the drift to be healed and its SYSTEM row closed",
            |p| {
                p.drift.values().any(|d| d.healed_at.is_some())
                    && p.jobs
                        .values()
                        .any(|j| j.kind == JobKind::System && j.status == JobStatus::Succeeded)
            },
        )
        .await;
    let d = p.drift.values().next().unwrap();
    assert_eq!(d.property, "ingress");
    assert_eq!(d.declared, None);
    assert_eq!(d.observed.as_deref(), Some("all traffic 0.0.0.0/0"));
    assert_eq!(d.cloud_id.as_deref(), Some(sg.as_str()));
    assert!(p
        .jobs
        .values()
        .any(|j| j.kind == JobKind::System && j.status == JobStatus::Succeeded));

    // Update: SSH is added, nothing else changes.
    let before = map_of(h.owned(sam));
    let job = h.update("dev-sam", &network(sam, "dev-sam", true)).await;
    let j = h.wait_job("dev-sam", sam, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    let after = map_of(h.owned(sam));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no resource replaced"
    );
    let rules = ingress_of(&after[&sg]);
    assert!(rules.contains(&Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(Ipv4Cidr::ANY))));
    assert_eq!(rules.len(), 3);

    // Suspended: drift stays. Resumed: healed.
    h.set_state("dev-sam", sam, ProcessState::Suspended).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.cloud
        .rogue_authorize_ingress(&scope(), &sg, all_traffic())
        .unwrap();
    tokio::time::sleep(two_ticks + Duration::from_millis(500)).await;
    assert!(ingress_of(&h.cloud.describe(&scope(), &sg).unwrap()).contains(&all_traffic()));
    h.set_state("dev-sam", sam, ProcessState::Running).await;
    let resumed = tokio::time::Instant::now();
    while ingress_of(&h.cloud.describe(&scope(), &sg).unwrap()).contains(&all_traffic()) {
        assert!(resumed.elapsed() < two_ticks + Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    assert!(h.cloud.writer_violations().is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_error_is_not_retried_and_explains_itself() {
    let h = Harness::start(1, 2, config()).await;
    h.cloud.fail_next("CreateVpc", "UnauthorizedOperation");
    let fid = Fid::random();
    h.run("denied", &network(fid, "denied", false)).await;
    let p = h
        .wait_for("denied", fid, JOB_TIME, "RUN to fail", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    let j = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.message.contains("UnauthorizedOperation"), "{}", j.message);
    assert!(j.message.contains("create_vpc"), "{}", j.message);
    // Parked: several ticks later, still exactly one attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    use canon_cloud::Cloud;
    let attempts = h.cloud.api_calls().get("CreateVpc");
    assert_eq!(attempts, 1, "a terminal failure must not be retried");
    assert!(h.owned(fid).is_empty());
    h.shutdown().await;
}
