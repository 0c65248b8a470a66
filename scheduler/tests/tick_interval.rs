//! Each process ticks at its own interval when it has one, else at the
//! node's: a process set to 1 s heals a rogue rule within seconds while its
//! neighbour on the node's 30 s default has not looked yet, and an update
//! that gives the neighbour 1 s makes it heal as quickly.

mod support;

use std::time::Duration;

use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}

/// How long a rogue rule on `sg` survives, up to `limit`.
async fn survives(h: &Harness, sg: &str, limit: Duration) -> Duration {
    h.cloud
        .rogue_authorize_ingress(&scope(), sg, all_traffic())
        .unwrap();
    let added = tokio::time::Instant::now();
    while added.elapsed() < limit {
        let rules = ingress_of(&h.cloud.describe(&scope(), sg).unwrap());
        if !rules.contains(&all_traffic()) {
            return added.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    added.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_process_ticks_at_its_own_interval() {
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(30),
        jitter: 0.1,
        ..SchedulerConfig::default()
    };
    let h = Harness::start(1, 4, config).await;
    let (fast, slow) = (Fid::random(), Fid::random());
    h.run_ticking("fast", &network(fast, "fast", false), Some(1_000))
        .await;
    h.run("slow", &network(slow, "slow", false)).await;
    let mut sgs = Vec::new();
    for (alias, fid) in [("fast", fast), ("slow", slow)] {
        let p = h
            .wait_for(alias, fid, Duration::from_secs(20), "RUN to succeed", |p| {
                last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
            })
            .await;
        sgs.push(h.cloud_id(&p, "web-sg"));
    }
    assert_eq!(h.process("fast", fast).await.tick_interval_ms, Some(1_000));
    assert_eq!(h.process("slow", slow).await.tick_interval_ms, None);

    // Two ticks of 1 s (+10% jitter) and some slack.
    let quick = Duration::from_millis(3_000);
    let t = survives(&h, &sgs[0], quick).await;
    assert!(t < quick, "the 1 s process healed only after {t:?}");
    let t = survives(&h, &sgs[1], quick).await;
    assert!(
        t >= quick,
        "the process on the node's 30 s default healed after {t:?}"
    );

    // Give the slow process 1 s; the update's own pass heals what is
    // there, and from then on it ticks every second.
    let job = h
        .update_ticking("slow", &network(slow, "slow", false), Some(1_000))
        .await;
    let j = h.wait_job("slow", slow, job, Duration::from_secs(20)).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    assert_eq!(h.process("slow", slow).await.tick_interval_ms, Some(1_000));
    let t = survives(&h, &sgs[1], quick).await;
    assert!(t < quick, "after the update it healed only after {t:?}");

    // An update that names no interval keeps the process's own.
    let job = h.update("fast", &network(fast, "fast", true)).await;
    h.wait_job("fast", fast, job, Duration::from_secs(20)).await;
    assert_eq!(h.process("fast", fast).await.tick_interval_ms, Some(1_000));
    h.shutdown().await;
}
