//! Rogue change → healed, with a 30 s tick: the tick alone against the
//! cloud events path (the simulated cloud's event feed, delay 0, read by
//! the real consumer, `canon_node::cloud_events`), at 10,000 security
//! groups (1,000 processes of 10) on SimCloud. Each rogue rule is timed
//! from the call (its event's arrival: the feed's delay is 0) until a
//! describe shows it gone. Prints one JSON object. Not run in CI.
//!
//! `cargo bench -p canon-node --bench event_heal` (set
//! `EVENT_HEAL_PROCESSES`, `EVENT_HEAL_GROUPS`, `EVENT_HEAL_TICK_TRIALS`,
//! `EVENT_HEAL_EVENT_TRIALS` to change the size).

#[path = "../../scheduler/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_model::*;
use canon_node::cloud_events::{self, EventsFrom};
use canon_raft::META_GROUP;
use canon_scheduler::{SchedulerConfig, SystemClock};
use rand::{Rng, SeedableRng};
use support::*;

/// The tick the goal is stated for.
const TICK: Duration = Duration::from_secs(30);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u128], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize] as u64
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let processes = env("EVENT_HEAL_PROCESSES", 1000);
    let groups = env("EVENT_HEAL_GROUPS", 10);
    let tick_trials = env("EVENT_HEAL_TICK_TRIALS", 20);
    let event_trials = env("EVENT_HEAL_EVENT_TRIALS", 200);
    let config = SchedulerConfig {
        tick_interval: TICK,
        jitter: 0.2,
        ..SchedulerConfig::default()
    };
    let h = Harness::start_with_cloud_epoch(1, 16, config, now_ms()).await;
    let setup = Instant::now();
    let fids = start_processes(&h, processes, groups).await;
    let setup_s = setup.elapsed().as_secs_f64();

    // The tick alone: rules spread over one tick, each healed by its
    // process's next tick.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let by_tick = heal_times(&h, &fids, groups, tick_trials, tick_trials, TICK, &mut rng).await;

    // The event path: the meta leader's consumer on the cloud's feed.
    let node = h.cluster.node(0).expect("node 0").clone();
    let lead = node.leadership(META_GROUP).expect("meta group");
    let feed = EventsFrom::Sim(h.cloud.clone());
    let consumer = cloud_events::spawn(node, lead, &feed, Arc::new(SystemClock));
    let spread = Duration::from_secs(1);
    let by_event = heal_times(&h, &fids, groups, event_trials, 20, spread, &mut rng).await;
    consumer.abort();

    let stats = |l: &[u128]| {
        serde_json::json!({
            "trials": l.len(),
            "p50_ms": percentile(l, 50.0),
            "p99_ms": percentile(l, 99.0),
            "max_ms": l.last().copied().unwrap_or(0) as u64,
        })
    };
    println!(
        "{}",
        serde_json::json!({
            "bench": "event_heal",
            "processes": processes,
            "security_groups": processes * groups,
            "tick_ms": TICK.as_millis() as u64,
            "event_delay_ms": 0,
            "setup_s": (setup_s * 10.0).round() / 10.0,
            "tick_only": stats(&by_tick),
            "event_path": stats(&by_event),
            "feed": format!("{:?}", h.cloud.event_counts()),
            "writer_violations": h.cloud.writer_violations().len(),
        })
    );
    h.shutdown().await;
}

/// Creates `processes` processes of `groups` security groups each in one
/// VPC and waits for their RUN jobs.
async fn start_processes(h: &Harness, processes: usize, groups: usize) -> Vec<(String, Fid)> {
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
        h.wait_for(alias, *fid, Duration::from_secs(1200), "RUN", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    }
    fids
}

/// Adds `trials` rogue all-traffic rules to random groups, `batch` at a
/// time spread over `spread`, and returns how long each took to be healed
/// (sorted).
async fn heal_times(
    h: &Harness,
    fids: &[(String, Fid)],
    groups: usize,
    trials: usize,
    batch: usize,
    spread: Duration,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<u128> {
    let rogue = Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY));
    let mut latencies: Vec<u128> = Vec::new();
    while latencies.len() < trials {
        let mut pending = Vec::new();
        for _ in 0..batch.min(trials - latencies.len()) {
            let (alias, fid) = &fids[rng.random_range(0..fids.len())];
            let p = h.process(alias, *fid).await;
            let sg = h.cloud_id(&p, &format!("group{}", rng.random_range(0..groups)));
            if pending.iter().any(|(s, _)| s == &sg) {
                continue;
            }
            h.cloud
                .rogue_authorize_ingress(&scope(), &sg, rogue.clone())
                .expect("rogue rule");
            pending.push((sg, Instant::now()));
            // Heals are looked for while the batch is still being made: a
            // rule is timed until it is gone, not until the batch is done.
            let next = Instant::now() + spread / batch as u32;
            while Instant::now() < next {
                collect_healed(h, &rogue, &mut pending, &mut latencies);
                tokio::time::sleep(LOOK_EVERY.min(next - Instant::now())).await;
            }
        }
        while !pending.is_empty() {
            collect_healed(h, &rogue, &mut pending, &mut latencies);
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }
    latencies.sort_unstable();
    latencies
}

/// How often the rules not yet healed are described.
const LOOK_EVERY: Duration = Duration::from_millis(5);

/// Moves each rule of `pending` that a describe shows gone into
/// `latencies`, as the time since it was added.
fn collect_healed(
    h: &Harness,
    rogue: &Rule<String>,
    pending: &mut Vec<(String, Instant)>,
    latencies: &mut Vec<u128>,
) {
    pending.retain(|(sg, at)| {
        let healed = h
            .cloud
            .describe(&scope(), sg)
            .map(|r| !ingress_of(&r).contains(rogue))
            .unwrap_or(true);
        if healed {
            latencies.push(at.elapsed().as_millis());
        }
        !healed
    });
}
