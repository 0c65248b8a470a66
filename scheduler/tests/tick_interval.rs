//! Each process ticks at its own interval when it has one, else at the
//! node's: a process set to 1 s heals a rogue rule within seconds while a
//! process elsewhere on the node's 30 s default has not looked yet, and an
//! update that gives that one 1 s makes it heal as quickly. A process on a
//! long tick whose neighbour in the same account and region looks every
//! second heals within seconds too: the neighbour's observation shows its
//! change, and wakes it. A cloud event's poke heals at once on a 30 s tick,
//! at the cost of the process alone.

mod support;

use std::time::Duration;

use canon_cloud::{Cloud, Scope};
use canon_model::*;
use canon_raft::Command;
use canon_scheduler::SchedulerConfig;
use support::*;

fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}

/// The node's default tick of these tests: 30 s, 10 % jitter.
fn thirty_second_ticks() -> SchedulerConfig {
    SchedulerConfig {
        tick_interval: Duration::from_secs(30),
        jitter: 0.1,
        ..SchedulerConfig::default()
    }
}

/// How long a rogue rule on `sg` in `scope` survives, up to `limit`.
async fn survives(h: &Harness, scope: &Scope, sg: &str, limit: Duration) -> Duration {
    h.cloud
        .rogue_authorize_ingress(scope, sg, all_traffic())
        .unwrap();
    survives_now_in(h, scope, sg, limit).await
}

/// Runs `d` as `alias` with its own tick (`tick_ms`), and the cloud id of
/// its `web-sg` once its RUN succeeded.
async fn run_until_built(
    h: &Harness,
    alias: &str,
    d: &DesiredState,
    tick_ms: Option<u64>,
) -> String {
    h.run_ticking(alias, d, tick_ms).await;
    let p = h
        .wait_for(
            alias,
            d.fid,
            Duration::from_secs(20),
            "RUN to succeed",
            |p| last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded),
        )
        .await;
    h.cloud_id(&p, "web-sg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_process_ticks_at_its_own_interval() {
    let h = Harness::start(1, 4, thirty_second_ticks()).await;
    let (fast, slow) = (Fid::random(), Fid::random());
    // The slow process in a region of its own: no neighbour's look of its
    // scope can show it its drift (see the next test).
    let elsewhere = Scope::new(ACCOUNT, "eu-west-1");
    let slow_network = network_in("eu-west-1", slow, "slow", false);
    let sgs = [
        run_until_built(&h, "fast", &network(fast, "fast", false), Some(1_000)).await,
        run_until_built(&h, "slow", &slow_network, None).await,
    ];
    assert_eq!(h.process("fast", fast).await.tick_interval_ms, Some(1_000));
    assert_eq!(h.process("slow", slow).await.tick_interval_ms, None);

    // Two ticks of 1 s (+10% jitter) and some slack.
    let quick = Duration::from_millis(3_000);
    let t = survives(&h, &scope(), &sgs[0], quick).await;
    assert!(t < quick, "the 1 s process healed only after {t:?}");
    let t = survives(&h, &elsewhere, &sgs[1], quick).await;
    assert!(
        t >= quick,
        "the process on the node's 30 s default healed after {t:?}"
    );

    // Give the slow process 1 s; the update's own pass heals what is
    // there, and from then on it ticks every second.
    let job = h.update_ticking("slow", &slow_network, Some(1_000)).await;
    let j = h.wait_job("slow", slow, job, Duration::from_secs(20)).await;
    assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
    assert_eq!(h.process("slow", slow).await.tick_interval_ms, Some(1_000));
    let t = survives(&h, &elsewhere, &sgs[1], quick).await;
    assert!(t < quick, "after the update it healed only after {t:?}");

    // An update that names no interval keeps the process's own.
    let job = h.update("fast", &network(fast, "fast", true)).await;
    h.wait_job("fast", fast, job, Duration::from_secs(20)).await;
    assert_eq!(h.process("fast", fast).await.tick_interval_ms, Some(1_000));
    h.shutdown().await;
}

/// A process that looks every 10 minutes, beside one that looks every
/// second in the same account and region: a rogue rule on the slow one's
/// group shows in the fast one's next observation, which wakes the slow
/// one, and it heals within seconds. Quiet observations do not wake it:
/// it makes no calls between its own changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_neighbours_observation_wakes_a_process_whose_resources_changed() {
    let h = Harness::start(1, 4, thirty_second_ticks()).await;
    let (fast, slow) = (Fid::random(), Fid::random());
    let _ = run_until_built(&h, "fast", &network(fast, "fast", false), Some(1_000)).await;
    let sg = run_until_built(&h, "slow", &network(slow, "slow", false), Some(600_000)).await;
    // Past the slow one's own verifying passes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ticks = h.schedulers[0].as_ref().unwrap().stats().ticks();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quiet_ticks = h.schedulers[0].as_ref().unwrap().stats().ticks() - ticks;
    assert!(
        quiet_ticks <= 5,
        "only the fast process ticks while nothing changes: {quiet_ticks} ticks in 3 s"
    );

    let quick = Duration::from_millis(3_000);
    for round in 0..3 {
        let t = survives(&h, &scope(), &sg, quick).await;
        assert!(
            t < quick,
            "round {round}: the slow process healed only after {t:?}"
        );
    }
    let p = h.process("slow", slow).await;
    assert_eq!(p.drift.len(), 3, "each rogue rule is recorded as drift");
    h.shutdown().await;
}

/// A cloud event's poke (`DriftSuspected`) heals a rogue rule within
/// moments on a 30 s tick, and the event costs the process alone: the look
/// it asks for and the passes that check the heal describe only the kinds
/// the process holds, by id. A whole-scope look would describe every kind
/// (instances too, which the network has none of) of the whole estate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_heals_at_once_at_the_cost_of_the_process_alone() {
    let h = Harness::start(1, 2, thirty_second_ticks()).await;
    let fid = Fid::random();
    h.run("ev", &network(fid, "ev", false)).await;
    let p = h
        .wait_for("ev", fid, Duration::from_secs(20), "RUN to succeed", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status == JobStatus::Succeeded)
        })
        .await;
    let sg = h.cloud_id(&p, "web-sg");
    // Past the run's own passes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.cloud.api_calls().reset();

    h.cloud
        .rogue_authorize_ingress(&scope(), &sg, all_traffic())
        .unwrap();
    let poke = Command::DriftSuspected {
        fid,
        event_at: now_ms(),
        by: Some("arn:aws:iam::123456789012:user/mallory".into()),
    };
    assert!(h.propose("ev", poke).await.is_applied());
    let t = survives_now(&h, &sg, Duration::from_secs(5)).await;
    assert!(
        t < Duration::from_secs(5),
        "the poke healed only after {t:?}"
    );
    // The passes that check the heal, and any wake they cause.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let calls = h.cloud.api_calls().snapshot();
    assert_eq!(calls.get("DescribeInstances"), None, "{calls:?}");
    assert!(
        calls.get("DescribeSecurityGroups").copied().unwrap_or(0) >= 2,
        "the look and the check of its heal: {calls:?}"
    );
    assert_eq!(
        calls.get("RevokeSecurityGroupIngress"),
        Some(&1),
        "{calls:?}"
    );
    let p = h.process("ev", fid).await;
    let d = p.drift.values().next().expect("the drift is recorded");
    assert!(
        matches!(d.detected_by, DetectedBy::Event { .. }),
        "{:?}",
        d.detected_by
    );
    assert!(d.healed_at.is_some(), "{d:?}");
    assert_eq!(p.suspected, None, "the suspicion is settled");
    h.shutdown().await;
}

/// How long the rogue rule already on `sg` survives, up to `limit`.
async fn survives_now(h: &Harness, sg: &str, limit: Duration) -> Duration {
    survives_now_in(h, &scope(), sg, limit).await
}

async fn survives_now_in(h: &Harness, scope: &Scope, sg: &str, limit: Duration) -> Duration {
    let from = tokio::time::Instant::now();
    while from.elapsed() < limit {
        let rules = ingress_of(&h.cloud.describe(scope, sg).unwrap());
        if !rules.contains(&all_traffic()) {
            return from.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    from.elapsed()
}
