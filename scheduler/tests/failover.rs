//! Failover in the middle of a RUN job with a slow cloud: the shard's new
//! leader resumes the job, no resource is created twice, and no two
//! conductors' mutations interleave.

mod support;

use std::time::Duration;

use canon_cloud::sim::Faults;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_job_survives_leader_crash_without_duplicates() {
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(1),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        ..SchedulerConfig::default()
    };
    let mut h = Harness::start(3, 2, config).await;
    h.cloud.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::none()
    });

    let fid = Fid::random();
    h.run("dev-sam", &network(fid, "dev-sam", false)).await;
    // Crash the shard's leader once the job is part-way through.
    h.wait_for(
        "dev-sam",
        fid,
        Duration::from_secs(20),
        "some progress",
        |p| p.bindings.len() >= 2,
    )
    .await;
    let leader = h.leader_of("dev-sam").await;
    h.crash(leader).await;

    let p = h
        .wait_for(
            "dev-sam",
            fid,
            Duration::from_secs(30),
            "RUN to finish",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished()),
        )
        .await;
    let run = last_job(&p, JobKind::Run).unwrap();
    assert_eq!(run.status, JobStatus::Succeeded, "{run:?}");

    // Exactly the six declared resources, each bound once.
    let owned = h.owned(fid);
    assert_eq!(owned.len(), 6, "duplicates: {owned:#?}");
    let bound: std::collections::BTreeSet<_> =
        p.bindings.values().map(|b| b.cloud_id.clone()).collect();
    for r in &owned {
        assert!(bound.contains(&r.cloud_id), "{} is not bound", r.cloud_id);
    }
    assert!(
        h.cloud.writer_violations().is_empty(),
        "{:?}",
        h.cloud.writer_violations()
    );
    let new_leader = h.leader_of("dev-sam").await;
    assert_ne!(new_leader, leader);
    h.shutdown().await;
}
