//! Processes share an account-region's budget fairly: a process with one
//! request is not held up behind another's eighty, and a process that
//! fails does not block the rest.

mod support;

use std::time::Duration;

use canon_cloud::sim::Faults;
use canon_model::*;
use canon_raft::Command;
use canon_scheduler::SchedulerConfig;
use support::*;

fn groups(fid: Fid, vpc: &str, n: usize, prefix: &str) -> DesiredState {
    demo::process_with_groups(fid, vpc, n, &format!("{prefix}-"), &[443]).unwrap()
}

async fn create(h: &Harness, alias: &str, d: &DesiredState) {
    let r = h
        .propose(
            alias,
            Command::ProcessCreated {
                imports: Default::default(),
                fid: d.fid,
                alias: alias.into(),
                account: ACCOUNT.into(),
                composition: encode(d),
                tick_interval_ms: None,
            },
        )
        .await;
    assert!(r.is_applied());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_job_is_not_starved_by_a_big_one() {
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(1),
        mutations_per_scope: 1,
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        ..SchedulerConfig::default()
    };
    let h = Harness::start(1, 1, config).await;
    let vpc = h
        .cloud
        .rogue(
            &scope(),
            &Action::CreateVpc {
                cidr_block: "10.0.0.0/16".parse().unwrap(),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    h.cloud.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::none()
    });

    // The big one: 80 groups, 160 requests, one at a time (~3.2 s of calls;
    // 40 groups were enough while every create made a look-up first, and
    // no longer outlast the small job's first observation).
    // Were the budget held per plan rather than per request, the small job
    // below would wait for all of them.
    let big = groups(Fid::random(), &vpc, 80, "big");
    create(&h, "big", &big).await;
    h.start_job("big", big.fid, JobKind::Run).await;
    h.wait_for(
        "big",
        big.fid,
        Duration::from_secs(10),
        "the big job to start",
        |p| !p.bindings.is_empty(),
    )
    .await;

    // The small one arrives while the big one holds the budget.
    let small = groups(Fid::random(), &vpc, 1, "small");
    create(&h, "small", &small).await;
    h.start_job("small", small.fid, JobKind::Run).await;
    let p = h
        .wait_for(
            "small",
            small.fid,
            Duration::from_secs(20),
            "the small job",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished()),
        )
        .await;
    assert_eq!(
        last_job(&p, JobKind::Run).unwrap().status,
        JobStatus::Succeeded
    );
    // When the small job is done, the big one is still far from done.
    let b = h.process("big", big.fid).await;
    assert!(
        b.bindings.len() < 60,
        "the small job waited for {} of the big job's 80 creates",
        b.bindings.len()
    );
    let b = h
        .wait_for(
            "big",
            big.fid,
            Duration::from_secs(30),
            "the big job",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished()),
        )
        .await;
    assert_eq!(
        last_job(&b, JobKind::Run).unwrap().status,
        JobStatus::Succeeded
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_process_does_not_block_the_others() {
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(1),
        mutations_per_scope: 1,
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        ..SchedulerConfig::default()
    };
    let h = Harness::start(1, 1, config).await;
    // The failing one refers to a VPC that does not exist: its job fails
    // (InvalidVpcID.NotFound is terminal) and the process parks; the others,
    // sharing a budget of one mutation at a time, carry on.
    let broken = groups(Fid::random(), "vpc-00000000deadbeef", 1, "broken");
    create(&h, "broken", &broken).await;
    h.start_job("broken", broken.fid, JobKind::Run).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let vpc = h
        .cloud
        .rogue(
            &scope(),
            &Action::CreateVpc {
                cidr_block: "10.1.0.0/16".parse().unwrap(),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    for i in 0..3 {
        let d = groups(Fid::random(), &vpc, 2, &format!("ok{i}"));
        let alias = format!("ok{i}");
        create(&h, &alias, &d).await;
        h.start_job(&alias, d.fid, JobKind::Run).await;
        let p = h
            .wait_for(
                &alias,
                d.fid,
                Duration::from_secs(10),
                "a healthy job",
                |p| last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished()),
            )
            .await;
        assert_eq!(
            last_job(&p, JobKind::Run).unwrap().status,
            JobStatus::Succeeded
        );
    }
    h.shutdown().await;
}
