//! Fleets at scale (issue #18 §6): 1,000 fleets of 10 instances with
//! `maxAge` 1 h on the simulated cloud (each call 50 ms), measured in
//! steady state over a window of real time. Each fleet rotates from its
//! own phase of the hour (`FleetMember::phase_ms`), so the fleets'
//! replacements arrive evenly and a window of minutes shows the hourly
//! rate. Reports the rotation rate against the expected one, API calls per
//! replacement, tick lag, and the share of the mutation budget (the
//! `mutations_per_scope` slots in flight) that rotation takes. Prints one
//! JSON object. Not run in CI.
//!
//! `cargo bench -p canon-scheduler --bench fleets` (set `FLEETS`,
//! `FLEET_SIZE`, `FLEET_MAX_AGE_S`, `FLEETS_WINDOW_S`, `FLEETS_TICK_S`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::Cloud;
use canon_model::*;
use canon_raft::Command;
use canon_scheduler::SchedulerConfig;
use support::*;

/// What every simulated call costs (EC2 mutations take longer; this keeps
/// the run short while making the budget's slots a real constraint).
const CALL_LATENCY: Duration = Duration::from_millis(50);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// A fleet of `size` behind the process's `web-sg`, spread over its two
/// public subnets, living at most `max_age_secs`.
fn fleet(fid: Fid, name: &str, size: u32, max_age_secs: u64) -> DesiredState {
    let mut d = network(fid, name, false);
    for index in 0..size {
        let path = format!("web.instances[{index}]");
        d.insert(Resource {
            id: LogicalId::new(fid, &path),
            name: path,
            region: Region::new(REGION),
            spec: Spec::Instance(InstanceSpec {
                image_id: "ami-0123456789abcdef0".into(),
                instance_type: "t3.micro".into(),
                subnet: Ref::Managed(LogicalId::new(
                    fid,
                    &format!("net.publicSubnets[{}]", index % 2),
                )),
                key_name: None,
                user_data: None,
                security_groups: [Ref::Managed(LogicalId::new(fid, "web-sg"))].into(),
                tags: Tags::new(),
                max_age_secs: Some(max_age_secs),
                fleet: Some(FleetMember {
                    fleet: "web".into(),
                    index,
                    count: size,
                    max_surge: 1,
                    max_unavailable: 0,
                    health_check: HealthCheck::Ec2Status,
                    health_grace_secs: 300,
                }),
            }),
        })
        .expect("a fleet member");
    }
    d
}

async fn run() {
    let fleets = env("FLEETS", 1000);
    let size = u32::try_from(env("FLEET_SIZE", 10)).unwrap_or(10);
    let max_age_s = env("FLEET_MAX_AGE_S", 3600);
    let window = Duration::from_secs(env("FLEETS_WINDOW_S", 180));
    let tick = Duration::from_secs(env("FLEETS_TICK_S", 10));
    let config = SchedulerConfig {
        tick_interval: tick,
        jitter: 0.2,
        ..SchedulerConfig::default()
    };
    let slots = config.mutations_per_scope;
    let h = Harness::start_with_cloud_epoch(1, 16, config, now_ms()).await;
    h.cloud.set_faults(Faults {
        latency: CALL_LATENCY,
        instance_boot_delay: Duration::from_secs(2),
        status_check_delay: Duration::from_secs(2),
        ..Faults::none()
    });

    let setup = Instant::now();
    let mut fids = Vec::new();
    for i in 0..fleets {
        let fid = Fid::random();
        let alias = format!("f{i}");
        let d = fleet(fid, &alias, size, max_age_s);
        let created = Command::ProcessCreated {
            imports: Default::default(),
            fid,
            alias: alias.clone(),
            account: ACCOUNT.into(),
            composition: encode(&d),
            tick_interval_ms: None,
        };
        assert!(h.propose(&alias, created).await.is_applied());
        h.start_job(&alias, fid, JobKind::Run).await;
        fids.push((alias, fid));
    }
    for (alias, fid) in &fids {
        h.wait_for(alias, *fid, Duration::from_secs(3600), "RUN", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    }
    let setup_s = setup.elapsed().as_secs_f64();

    // Steady state: past the first builds' own passes.
    tokio::time::sleep(2 * tick).await;
    let stats = h.schedulers[0].as_ref().expect("scheduler").stats();
    stats.clear_lags();
    let calls0 = h.cloud.api_calls().snapshot();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed_s = started.elapsed().as_secs_f64();
    let calls = delta(&calls0, &h.cloud.api_calls().snapshot());
    let lag_ms = |p: f64| stats.lag_percentile(p).map(|d| d.as_millis() as u64);

    let launched = calls.get("RunInstances").copied().unwrap_or(0);
    let terminated = calls.get("TerminateInstances").copied().unwrap_or(0);
    let mutating: u64 = calls
        .iter()
        .filter(|(k, _)| !k.starts_with("Describe"))
        .map(|(_, v)| v)
        .sum();
    let all: u64 = calls.values().sum();
    let per = |n: u64| {
        if terminated == 0 {
            f64::NAN
        } else {
            round2(n as f64 / terminated as f64)
        }
    };
    let instances = fleets * u64::from(size);
    let expected_per_h = instances as f64 * 3600.0 / max_age_s as f64;
    // Each mutating call holds one of the budget's slots for its latency.
    let budget_share = mutating as f64 * CALL_LATENCY.as_secs_f64() / (slots as f64 * elapsed_s);
    println!(
        "{}",
        serde_json::json!({
            "bench": "fleets",
            "fleets": fleets,
            "instances": instances,
            "max_age_s": max_age_s,
            "tick_s": tick.as_secs(),
            "call_latency_ms": CALL_LATENCY.as_millis() as u64,
            "setup_s": round2(setup_s),
            "window_s": round2(elapsed_s),
            "replacements": terminated,
            "launches": launched,
            "rotations_per_h": round2(terminated as f64 * 3600.0 / elapsed_s),
            "expected_rotations_per_h": round2(expected_per_h),
            "mutating_calls_per_replacement": per(mutating),
            "api_calls_per_replacement": per(all),
            "calls": calls,
            "tick_lag_ms": {"p50": lag_ms(50.0), "p99": lag_ms(99.0)},
            "mutation_budget_share": round2(budget_share),
            "duplicate_owners": h.cloud.duplicate_owners(&scope()).len(),
            "writer_violations": h.cloud.writer_violations().len(),
        })
    );
    h.shutdown().await;
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
