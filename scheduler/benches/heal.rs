//! Heal latency and observation cost at scale: 1,000 processes ticking
//! every second on the simulated cloud, drifted at random by a console
//! user; the time until each change is undone is the heal latency. Prints
//! one JSON object.
//!
//! Two fleets (`HEAL_FLEET`):
//! - `groups` (the default): each process is `HEAL_GROUPS` (10) security
//!   groups in a VPC made outside Canon; the drift is a rogue "all traffic
//!   from 0.0.0.0/0" rule.
//! - `mixed`: each process is `demo::mixed_network` (the planner bench's
//!   mixed fleet: VPC, internet gateway, two subnets, Elastic IP, NAT
//!   gateway, instance, EBS volume, route table through the NAT gateway and
//!   the instance, network ACL); the drifts take turns: a deleted route, a
//!   replaced route, a rogue ACL entry, a disassociated route table, a
//!   detached volume. Latencies are reported per drift as well.
//!
//! `cargo bench -p canon-scheduler --bench heal` (set `HEAL_FLEET`,
//! `HEAL_PROCESSES`, `HEAL_GROUPS`, `HEAL_TRIALS` to change it).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canon_cloud::Cloud;
use canon_model::*;
use canon_raft::state::ProcessRecord;
use canon_scheduler::SchedulerConfig;
use rand::{Rng, SeedableRng};
use support::*;

fn main() {
    bench::block_on(run());
}

/// The fleet under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FleetKind {
    Groups,
    Mixed,
}

/// The drifts of the mixed fleet, in turn.
const MIXED_DRIFTS: [&str; 5] = [
    "delete-route",
    "replace-route",
    "add-nacl-entry",
    "disassociate-route-table",
    "detach-volume",
];

async fn run() {
    let fleet = match std::env::var("HEAL_FLEET").as_deref() {
        Ok("mixed") => FleetKind::Mixed,
        _ => FleetKind::Groups,
    };
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
    // The groups fleet's processes share a VPC made outside Canon.
    let vpc = match fleet {
        FleetKind::Groups => outside_vpc(&h),
        FleetKind::Mixed => String::new(),
    };

    let setup = Instant::now();
    let mut fids = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for i in 0..processes {
        let fid = Fid::random();
        let d = match fleet {
            FleetKind::Groups => {
                demo::process_with_groups(fid, &vpc, groups, &format!("p{i}-g"), &[80, 443])
            }
            FleetKind::Mixed => demo::mixed_network(fid),
        }
        .expect("a valid process");
        kinds.extend(d.resources.values().map(|r| r.kind().to_string()));
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

    // Heal latency: drifts in batches, each timed until it is undone.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut latencies: Vec<u128> = Vec::new();
    let mut by_drift: BTreeMap<&str, Vec<u128>> = BTreeMap::new();
    let batch = 20;
    let mut turn = 0usize;
    while latencies.len() < trials {
        let mut pending: Vec<Pending> = Vec::new();
        for _ in 0..batch.min(trials - latencies.len()) {
            let (alias, fid) = &fids[rng.random_range(0..fids.len())];
            let p = h.process(alias, *fid).await;
            let drift = match fleet {
                FleetKind::Groups => {
                    let g = rng.random_range(0..groups);
                    let sg = h.cloud_id(&p, &format!("group{g}"));
                    rogue_rule(&h, &sg, &pending)
                }
                FleetKind::Mixed => {
                    turn += 1;
                    mixed_drift(&h, &p, MIXED_DRIFTS[turn % MIXED_DRIFTS.len()], &pending)
                }
            };
            pending.extend(drift);
            // Spread the changes over a tick, as real drift arrives.
            tokio::time::sleep(tick / batch as u32).await;
        }
        while !pending.is_empty() {
            pending.retain(|d| {
                let healed = h
                    .cloud
                    .describe(&scope(), &d.cloud_id)
                    .is_some_and(|r| r.spec == d.before);
                if healed {
                    let ms = d.at.elapsed().as_millis();
                    latencies.push(ms);
                    by_drift.entry(d.drift).or_default().push(ms);
                }
                !healed
            });
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    latencies.sort_unstable();
    let per_drift: serde_json::Map<String, serde_json::Value> = by_drift
        .into_iter()
        .map(|(drift, mut ms)| {
            ms.sort_unstable();
            let summary = serde_json::json!({
                "trials": ms.len(),
                "p50_ms": bench::percentile(&ms, 50.0) as u64,
                "p99_ms": bench::percentile(&ms, 99.0) as u64,
            });
            (drift.to_string(), summary)
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "bench": "heal",
            "fleet": if fleet == FleetKind::Mixed { "mixed" } else { "groups" },
            "processes": processes,
            "resources_per_process": match fleet {
                FleetKind::Groups => groups,
                FleetKind::Mixed => demo::MIXED_PATHS.len(),
            },
            "kinds": kinds,
            "tick_ms": tick.as_millis() as u64,
            "setup_s": (setup_s * 10.0).round() / 10.0,
            "trials": latencies.len(),
            "heal_p50_ms": bench::percentile(&latencies, 50.0) as u64,
            "heal_p99_ms": bench::percentile(&latencies, 99.0) as u64,
            "heal_max_ms": latencies.last().copied().unwrap_or(0) as u64,
            "per_drift": per_drift,
            "ticks_per_s": ticks as f64 / window.as_secs_f64(),
            "describe_calls_per_tick_window": describes as f64 / (window.as_secs_f64() / tick.as_secs_f64()),
            "writer_violations": h.cloud.writer_violations().len(),
        })
    );
    h.shutdown().await;
}

/// A drift made and not yet undone: the resource, its cloud copy before
/// the change (healed when the cloud shows it again), and when.
struct Pending {
    drift: &'static str,
    cloud_id: String,
    before: ObservedSpec,
    at: Instant,
}

/// The VPC the groups fleet's processes share, made outside Canon.
fn outside_vpc(h: &Harness) -> String {
    let action = Action::CreateVpc {
        cidr_block: "10.0.0.0/16".parse().expect("cidr"),
        instance_tenancy: Tenancy::Default,
        amazon_provided_ipv6_cidr_block: false,
        tags: Tags::new(),
    };
    h.cloud
        .rogue(&scope(), &action)
        .expect("vpc")
        .cloud_id
        .expect("vpc id")
}

/// The cloud copy of `cloud_id` now.
fn seen(h: &Harness, cloud_id: &str) -> ObservedResource {
    h.cloud.describe(&scope(), cloud_id).expect("described")
}

/// A rogue "all traffic from anywhere" rule on group `sg` (none if a
/// drift of this batch is already on it).
fn rogue_rule(h: &Harness, sg: &str, pending: &[Pending]) -> Option<Pending> {
    if pending.iter().any(|d| d.cloud_id == sg) {
        return None;
    }
    let before = seen(h, sg).spec;
    let rogue = Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY));
    h.cloud
        .rogue_authorize_ingress(&scope(), sg, rogue)
        .expect("rogue rule");
    Some(Pending {
        drift: "authorize-ingress",
        cloud_id: sg.into(),
        before,
        at: Instant::now(),
    })
}

/// The mixed fleet's `drift` made on process `p`'s network (none if a
/// drift of this batch is already on the resource it changes).
fn mixed_drift(
    h: &Harness,
    p: &ProcessRecord,
    drift: &'static str,
    pending: &[Pending],
) -> Option<Pending> {
    let id = |path: &str| h.cloud_id(p, path);
    let cref = |path: &str| CloudRef::Id(id(path));
    let (changed, action) = match drift {
        "delete-route" => (
            id("private-rt"),
            Action::DeleteRoute {
                route_table: cref("private-rt"),
                destination: IpCidr::V4(Ipv4Cidr::ANY),
            },
        ),
        "replace-route" => (
            id("private-rt"),
            Action::ReplaceRoute {
                route_table: cref("private-rt"),
                destination: IpCidr::V4("198.51.100.0/24".parse().expect("cidr")),
                gateway: cref("nat"),
                hop: Hop::NatGateway,
            },
        ),
        "add-nacl-entry" => {
            let mut entry = demo::vpc_acl_entry(false, 1, AclAction::Allow);
            entry.range = IpCidr::V4(Ipv4Cidr::ANY);
            let network_acl = cref("acl");
            (
                id("acl"),
                Action::CreateNetworkAclEntry { network_acl, entry },
            )
        }
        "disassociate-route-table" => {
            // The table's copy gives the association id and is the "before".
            let table = seen(h, &id("private-rt"));
            let association_id = table.association_ids.get(&id("private"))?.clone();
            let action = Action::DisassociateRouteTable { association_id };
            return rogue(h, drift, table, action, pending);
        }
        _ => (
            id("data"),
            Action::DetachVolume {
                volume: cref("data"),
                instance: cref("server"),
            },
        ),
    };
    rogue(h, drift, seen(h, &changed), action, pending)
}

/// Makes `action` to `before`'s resource behind Canon's back (none if a
/// drift of this batch is already on it).
fn rogue(
    h: &Harness,
    drift: &'static str,
    before: ObservedResource,
    action: Action,
    pending: &[Pending],
) -> Option<Pending> {
    if pending.iter().any(|d| d.cloud_id == before.cloud_id) {
        return None;
    }
    h.cloud.rogue(&scope(), &action).expect("rogue change");
    Some(Pending {
        drift,
        cloud_id: before.cloud_id,
        before: before.spec,
        at: Instant::now(),
    })
}
