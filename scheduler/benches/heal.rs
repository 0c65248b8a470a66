//! Heal latency and observation cost at scale: 10,000 security groups in
//! 1,000 processes ticking every second on the simulated cloud. Rogue rules
//! are added at random; the time until each is gone is the heal latency.
//! Prints one JSON object.
//!
//! `cargo bench -p canon-scheduler --bench heal` (set `HEAL_PROCESSES`,
//! `HEAL_GROUPS`, `HEAL_TRIALS` to change the size).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use canon_cloud::Cloud;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use rand::{Rng, SeedableRng};
use support::*;

fn main() {
    bench::block_on(run());
}

async fn run() {
    let processes = bench::env_or("HEAL_PROCESSES", 1000usize);
    let groups = bench::env_or("HEAL_GROUPS", 10usize);
    let trials = bench::env_or("HEAL_TRIALS", 200usize);
    let tick = Duration::from_secs(1);
    let config = SchedulerConfig {
        tick_interval: tick,
        jitter: 0.2,
        ..SchedulerConfig::default()
    };
    let h = Harness::start(1, 16, config).await;
    let vpc = h
        .cloud
        .rogue(
            &scope(),
            &Action::CreateVpc {
                cidr_block: "10.0.0.0/16".parse().expect("cidr"),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: Tags::new(),
            },
        )
        .expect("vpc")
        .cloud_id
        .expect("vpc id");

    let setup = Instant::now();
    let mut fids = Vec::new();
    for i in 0..processes {
        let fid = Fid::random();
        let d = demo::process_with_groups(fid, &vpc, groups, &format!("p{i}-g"), &[80, 443])
            .expect("groups");
        let alias = format!("p{i}");
        h.run(&alias, &d).await;
        fids.push((alias, fid));
    }
    for (alias, fid) in &fids {
        h.wait_for(alias, *fid, Duration::from_secs(600), "RUN", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    }
    let setup_s = setup.elapsed().as_secs_f64();

    // Observation cost in steady state.
    tokio::time::sleep(2 * tick).await;
    let stats = h.schedulers[0].as_ref().expect("scheduler").stats();
    let describes0 = h.cloud.api_calls().describes();
    let ticks0 = stats.ticks();
    let window = 10 * tick;
    tokio::time::sleep(window).await;
    let describes = h.cloud.api_calls().describes() - describes0;
    let ticks = stats.ticks() - ticks0;

    // Heal latency: rogue rules in batches, each timed until it is gone.
    let rogue = Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut latencies: Vec<u128> = Vec::new();
    let batch = 20;
    while latencies.len() < trials {
        let mut pending = Vec::new();
        for _ in 0..batch.min(trials - latencies.len()) {
            let (alias, fid) = &fids[rng.random_range(0..fids.len())];
            let p = h.process(alias, *fid).await;
            let g = rng.random_range(0..groups);
            let sg = h.cloud_id(&p, &format!("group{g}"));
            if pending.iter().any(|(s, _)| s == &sg) {
                continue;
            }
            h.cloud
                .rogue_authorize_ingress(&scope(), &sg, rogue.clone())
                .expect("rogue rule");
            pending.push((sg, Instant::now()));
            // Spread the changes over a tick, as real drift arrives.
            tokio::time::sleep(tick / batch as u32).await;
        }
        while !pending.is_empty() {
            pending.retain(|(sg, at)| {
                let healed = h
                    .cloud
                    .describe(&scope(), sg)
                    .map(|r| !ingress_of(&r).contains(&rogue))
                    .unwrap_or(true);
                if healed {
                    latencies.push(at.elapsed().as_millis());
                }
                !healed
            });
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    latencies.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "bench": "heal",
            "processes": processes,
            "security_groups": processes * groups,
            "tick_ms": tick.as_millis() as u64,
            "setup_s": (setup_s * 10.0).round() / 10.0,
            "trials": latencies.len(),
            "heal_p50_ms": bench::percentile(&latencies, 50.0) as u64,
            "heal_p99_ms": bench::percentile(&latencies, 99.0) as u64,
            "heal_max_ms": latencies.last().copied().unwrap_or(0) as u64,
            "ticks_per_s": ticks as f64 / window.as_secs_f64(),
            "describe_calls_per_tick_window": describes as f64 / (window.as_secs_f64() / tick.as_secs_f64()),
            "kinds": 7,
            "writer_violations": h.cloud.writer_violations().len(),
        })
    );
    h.shutdown().await;
}
