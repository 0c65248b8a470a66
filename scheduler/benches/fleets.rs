//! Fleets at scale (issue #18 §6): 1,000 fleets of 10 instances with
//! `maxAge` 1 h on the simulated cloud (each call 50 ms once they are
//! built), measured in steady state over a window of real time. The fleets
//! share one VPC, two subnets and a group made outside Canon, so that
//! building 10,000 instances takes minutes, not the hour a network per
//! fleet would. Each fleet rotates from its
//! own phase of the hour (`FleetMember::phase_ms`), so the fleets'
//! replacements arrive evenly and a window of minutes shows the hourly
//! rate. Reports the rotation rate against the expected one, API calls per
//! replacement, tick lag, and the share of the mutation budget (the
//! `mutations_per_scope` slots in flight) that rotation takes. Prints one
//! JSON object. Not run in CI.
//!
//! `cargo bench -p canon-scheduler --bench fleets` (set `FLEETS`,
//! `FLEET_SIZE`, `FLEET_MAX_AGE_S`, `FLEETS_WINDOW_S`, `FLEETS_TICK_S`,
//! `FLEETS_SETUP_S`: how long the fleets may take to build).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canon_cloud::sim::Faults;
use canon_cloud::Cloud;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use support::*;

/// What every simulated call costs (EC2 mutations take longer; this keeps
/// the run short while making the budget's slots a real constraint).
const CALL_LATENCY: Duration = Duration::from_millis(50);

fn main() {
    bench::block_on(run());
}

/// What the fleets are built in: a VPC, two subnets and a group, made by
/// hand (as a platform team's shared network is).
struct Shared {
    subnets: [String; 2],
    group: String,
}

/// Makes the shared network outside Canon.
fn shared_network(h: &Harness) -> Shared {
    let make = |action: Action| {
        h.cloud
            .rogue(&scope(), &action)
            .expect("a shared resource")
            .cloud_id
            .expect("its id")
    };
    let vpc = make(Action::CreateVpc {
        cidr_block: "10.0.0.0/16".parse().expect("cidr"),
        instance_tenancy: Tenancy::Default,
        amazon_provided_ipv6_cidr_block: false,
        tags: Tags::new(),
    });
    let subnet = |cidr: &str, zone: &str| {
        make(Action::CreateSubnet {
            vpc: CloudRef::Id(vpc.clone()),
            cidr_block: cidr.parse().expect("cidr"),
            availability_zone: zone.into(),
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let subnets = [
        subnet("10.0.0.0/17", "us-west-2a"),
        subnet("10.0.128.0/17", "us-west-2b"),
    ];
    let group = make(Action::CreateSecurityGroup {
        vpc: CloudRef::Id(vpc.clone()),
        group_name: "fleets".into(),
        description: "the benchmark's fleets".into(),
        tags: Tags::new(),
    });
    Shared { subnets, group }
}

/// A fleet of `size` in the shared network, spread over its two subnets,
/// living at most `max_age_secs`.
fn fleet(fid: Fid, shared: &Shared, size: u32, max_age_secs: u64) -> DesiredState {
    let mut d = DesiredState::empty(fid);
    for index in 0..size {
        let path = format!("web.instances[{index}]");
        d.insert(Resource {
            id: LogicalId::new(fid, &path),
            name: path,
            region: Region::new(REGION),
            spec: Spec::Instance(InstanceSpec {
                image_id: "ami-0123456789abcdef0".into(),
                instance_type: "t3.micro".into(),
                subnet: Ref::External(shared.subnets[index as usize % 2].clone()),
                key_name: None,
                user_data: None,
                security_groups: [Ref::External(shared.group.clone())].into(),
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
                source_dest_check: true,
            }),
        })
        .expect("a fleet member");
    }
    d
}

async fn run() {
    let fleets: u64 = bench::env_or("FLEETS", 1000);
    let size: u32 = bench::env_or("FLEET_SIZE", 10);
    let max_age_s: u64 = bench::env_or("FLEET_MAX_AGE_S", 3600);
    let window = Duration::from_secs(bench::env_or("FLEETS_WINDOW_S", 180));
    let tick = Duration::from_secs(bench::env_or("FLEETS_TICK_S", 10));
    let config = SchedulerConfig {
        tick_interval: tick,
        jitter: 0.2,
        ..SchedulerConfig::default()
    };
    let slots = config.mutations_per_scope;
    let h = Harness::start_with_cloud_epoch(1, 16, config, now_ms()).await;
    // Built without call latency: the setup is not what is measured.
    let shared = shared_network(&h);
    let setup = Instant::now();
    let mut fids = Vec::new();
    for i in 0..fleets {
        let fid = Fid::random();
        let alias = format!("f{i}");
        let d = fleet(fid, &shared, size, max_age_s);
        h.run(&alias, &d).await;
        fids.push((alias, fid));
    }
    // A fleet not built by then is a finding: the panic shows its record.
    let setup_max = Duration::from_secs(bench::env_or("FLEETS_SETUP_S", 900));
    for (alias, fid) in &fids {
        let left = setup_max.saturating_sub(setup.elapsed());
        h.wait_for(alias, *fid, left, "RUN", |p| {
            last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
        })
        .await;
    }
    let setup_s = setup.elapsed().as_secs_f64();
    h.cloud.set_faults(Faults {
        latency: CALL_LATENCY,
        instance_boot_delay: Duration::from_secs(2),
        status_check_delay: Duration::from_secs(2),
        ..Faults::none()
    });

    // Steady state: past the first builds' own passes.
    tokio::time::sleep(2 * tick).await;
    let stats = h.schedulers[0].as_ref().expect("scheduler").stats();
    stats.clear_lags();
    let calls0 = h.cloud.api_calls().snapshot();
    let started = Instant::now();
    let mut limits = Limits::default();
    while started.elapsed() < window {
        limits.sample(&h);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
            bench::round2(n as f64 / terminated as f64)
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
            "setup_s": bench::round2(setup_s),
            "window_s": bench::round2(elapsed_s),
            "replacements": terminated,
            "launches": launched,
            "rotations_per_h": bench::round2(terminated as f64 * 3600.0 / elapsed_s),
            "expected_rotations_per_h": bench::round2(expected_per_h),
            "mutating_calls_per_replacement": per(mutating),
            "api_calls_per_replacement": per(all),
            "calls": calls,
            "tick_lag_ms": {"p50": lag_ms(50.0), "p99": lag_ms(99.0)},
            "mutation_budget_share": bench::round2(budget_share),
            "samples": limits.samples,
            "most_instances_in_a_fleet": limits.most,
            "fewest_ready_in_a_fleet": limits.fewest_ready,
            "writer_violations": h.cloud.writer_violations().len(),
        })
    );
    h.shutdown().await;
}

/// The fleets' capacity limits as sampled during the window: the most
/// instances any one fleet had (its ceiling is `size + maxSurge`) and the
/// fewest ready (its floor is `size - maxUnavailable`).
#[derive(Default)]
struct Limits {
    samples: u64,
    most: usize,
    fewest_ready: Option<usize>,
}

impl Limits {
    fn sample(&mut self, h: &Harness) {
        let mut fleets: BTreeMap<Fid, (usize, usize)> = BTreeMap::new();
        for r in h.cloud.all_owned(&scope()) {
            let (Some(owner), Some(life)) = (r.owner(), r.life.as_ref()) else {
                continue;
            };
            let (all, ready) = fleets.entry(owner.fid).or_default();
            *all += 1;
            *ready += usize::from(life.ready());
        }
        self.samples += 1;
        for (all, ready) in fleets.values() {
            self.most = self.most.max(*all);
            self.fewest_ready = Some(self.fewest_ready.map_or(*ready, |f| f.min(*ready)));
        }
    }
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
