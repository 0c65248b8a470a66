//! A thousand processes ticking every second on one node stay on schedule,
//! and the shared observer keeps describe calls to about one per kind per
//! tick window, however many processes there are.

mod support;

use std::time::Duration;

use canon_cloud::Cloud;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

const PROCESSES: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_processes_tick_on_schedule() {
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(1),
        jitter: 0.2,
        ..SchedulerConfig::default()
    };
    let h = Harness::start(1, 4, config).await;
    // A VPC made outside Canon, shared by every process's group.
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

    let mut fids = Vec::new();
    for i in 0..PROCESSES {
        let fid = Fid::random();
        let d = demo::process_with_groups(fid, &vpc, 1, &format!("group-{i}-"), &[443]).unwrap();
        let alias = format!("p{i}");
        h.run(&alias, &d).await;
        fids.push((alias, fid));
    }
    // Every RUN finishes.
    for (alias, fid) in &fids {
        let p = h
            .wait_for(alias, *fid, Duration::from_secs(120), "RUN", |p| {
                last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
            })
            .await;
        let run = last_job(&p, JobKind::Run).unwrap();
        assert_eq!(run.status, JobStatus::Succeeded, "{run:?}");
    }
    assert_eq!(h.cloud.all_owned(&scope()).len(), PROCESSES);

    // Steady state: measure lag and describe calls over a few ticks.
    let stats = h.schedulers[0].as_ref().unwrap().stats();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stats.clear_lags();
    let ticks_before = stats.ticks();
    let describes_before = h.cloud.api_calls().describes();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let ticks = stats.ticks() - ticks_before;
    let describes = h.cloud.api_calls().describes() - describes_before;
    let p50 = stats.lag_percentile(50.0).unwrap();
    let p99 = stats.lag_percentile(99.0).unwrap();
    println!(
        "{{\"processes\":{PROCESSES},\"ticks\":{ticks},\"describes\":{describes},\"lag_p50_ms\":{},\"lag_p99_ms\":{}}}",
        p50.as_millis(),
        p99.as_millis()
    );
    // About one tick per process per second.
    assert!(
        ticks as f64 >= PROCESSES as f64 * window.as_secs_f64() * 0.7,
        "only {ticks} ticks in {window:?}"
    );
    assert!(p99 < Duration::from_millis(200), "tick lag p99 {p99:?}");
    // One observation per tick window: seven kinds, one page each, a few
    // windows (plus slack for windows that straddle the measurement).
    let windows = window.as_secs() + 2;
    assert!(
        describes <= 7 * windows * 2,
        "{describes} describe calls for {ticks} ticks"
    );
    h.shutdown().await;
}
