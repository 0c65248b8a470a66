//! A process whose declaration leaves a region: what it held there is
//! still the process's until it is gone. The actor looks wherever the
//! process still holds something (each binding records its region), not
//! only where it declares, so an update that drops a region deletes what
//! was there instead of forgetting it in the cloud.

mod support;

use std::time::Duration;

use canon_cloud::Scope;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

const FAR: &str = "eu-west-1";
const JOB_TIME: Duration = Duration::from_secs(20);

fn config() -> SchedulerConfig {
    quick_config(Duration::from_millis(500))
}

fn far() -> Scope {
    Scope::new(ACCOUNT, FAR)
}

/// The test network in the home region, plus one in `eu-west-1`.
fn two_regions(fid: Fid, name: &str) -> DesiredState {
    let mut d = network(fid, name, false);
    let eu = demo::DemoNetwork {
        prefix: "eu".into(),
        group_path: "eu-sg".into(),
        group_name: format!("{name}-eu-sg"),
        name_tag: format!("{name}-eu"),
        environment: name.into(),
        dhcp_domain: None,
        ssh: false,
        region: FAR.into(),
    }
    .build(fid)
    .unwrap();
    d.resources.extend(eu.resources);
    d
}

fn owned_far(h: &Harness, fid: Fid) -> Vec<ObservedResource> {
    h.cloud
        .all_owned(&far())
        .into_iter()
        .filter(|r| r.owner().is_some_and(|o| o.fid == fid))
        .collect()
}

async fn running_in_two(h: &Harness, alias: &str) -> Fid {
    let fid = Fid::random();
    h.run(alias, &two_regions(fid, alias)).await;
    h.wait_for(alias, fid, JOB_TIME, "RUN to succeed", |p| {
        last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
    })
    .await;
    assert_eq!(h.owned(fid).len(), 6);
    assert_eq!(owned_far(h, fid).len(), 6);
    fid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_drops_a_region_deletes_what_the_process_held_there() {
    let h = Harness::start(1, 2, config()).await;
    let fid = running_in_two(&h, "two").await;
    let job = h.update("two", &network(fid, "two", false)).await;
    let j = h.wait_job("two", fid, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    assert!(owned_far(&h, fid).is_empty(), "{:?}", owned_far(&h, fid));
    assert_eq!(h.owned(fid).len(), 6, "the home region is untouched");
    let p = h.process("two", fid).await;
    assert_eq!(p.bindings.len(), 6, "{:?}", p.bindings);
    assert!(p
        .bindings
        .values()
        .all(|b| b.region.as_ref().map(ToString::to_string).as_deref() == Some(REGION)));

    let job = h.kill_process("two", fid).await;
    let j = h.wait_job("two", fid, job, JOB_TIME).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    assert!(h.owned(fid).is_empty(), "{:?}", h.owned(fid));
    h.shutdown().await;
}
