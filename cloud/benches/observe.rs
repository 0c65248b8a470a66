//! Observation benchmark: `observe` of N owned security groups (with their
//! VPCs and subnets, ten groups per process) on SimCloud, counting API calls
//! against the goal of ⌈N/1000⌉ per kind; and the same observation through
//! AwsCloud against moto for 500 groups, beside the number of calls a
//! per-resource describe would need. Prints one JSON object.
//!
//! `cargo bench -p canon-cloud --bench observe` runs the full sizes (needs
//! moto, found like the tests find it); without `--bench` (e.g. under
//! `cargo test --all-targets`) it runs a small SimCloud smoke only.

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::time::{Duration, Instant};

use canon_cloud::{
    AwsCloud, AwsConfig, Cloud, ExecContext, RateLimits, RetryPolicy, Scope, SimCloud,
};
use canon_model::{
    Action, CloudRef, Fid, LogicalId, Region, Request, ResourceKind, Tags, Tenancy, OWNERSHIP_TAG,
};
use serde_json::{json, Value};

const GROUPS_PER_PROCESS: usize = 10;

/// A request still waiting for its VPC's cloud id.
type NeedsVpc = Box<dyn Fn(&str) -> Request>;

fn owned(l: LogicalId) -> Tags {
    [(OWNERSHIP_TAG.to_string(), l.to_string())]
        .into_iter()
        .collect()
}

fn fid(n: usize) -> Fid {
    Fid(uuid::Uuid::from_u128(
        0x5eed_0000_0000_4000_8000_0000_0000_0000 | n as u128,
    ))
}

/// The actions that build `processes` processes of one VPC, one subnet and
/// `groups` groups each; `vpc` is filled in per process by the caller.
fn process_actions(p: usize, groups: usize) -> (Request, Vec<NeedsVpc>) {
    let f = fid(p);
    let req = |target: LogicalId, action: Action| Request {
        target,
        part: None,
        region: Region::new("us-west-2"),
        action,
    };
    let lv = LogicalId::new(f, "vpc");
    let vpc = req(
        lv,
        Action::CreateVpc {
            cidr_block: "10.0.0.0/16".parse().expect("cidr"),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: owned(lv),
        },
    );
    let mut rest: Vec<NeedsVpc> = Vec::new();
    let ls = LogicalId::new(f, "subnet");
    rest.push(Box::new(move |v: &str| {
        req(
            ls,
            Action::CreateSubnet {
                vpc: CloudRef::Id(v.to_string()),
                cidr_block: "10.0.1.0/24".parse().expect("cidr"),
                availability_zone: "us-west-2a".into(),
                ipv6_cidr_block: None,
                tags: owned(ls),
            },
        )
    }));
    for g in 0..groups {
        let lg = LogicalId::new(f, &format!("sg{g}"));
        rest.push(Box::new(move |v: &str| {
            req(
                lg,
                Action::CreateSecurityGroup {
                    vpc: CloudRef::Id(v.to_string()),
                    group_name: format!("sg{g}"),
                    description: "bench".into(),
                    tags: owned(lg),
                },
            )
        }));
    }
    (vpc, rest)
}

async fn populate(cloud: &dyn Cloud, processes: usize, ctx: &ExecContext) {
    for p in 0..processes {
        let (vpc, rest) = process_actions(p, GROUPS_PER_PROCESS);
        let v = cloud
            .execute(&vpc, ctx)
            .await
            .expect("create vpc")
            .cloud_id
            .expect("vpc id");
        for r in rest {
            cloud.execute(&r(&v), ctx).await.expect("create");
        }
    }
}

/// Observes `runs` times; returns (resources, calls per action of the last
/// run, median wall time).
async fn measure(cloud: &dyn Cloud, scope: &Scope, runs: usize) -> (usize, Value, Duration) {
    let mut times = Vec::new();
    let mut resources = 0;
    let mut calls = Value::Null;
    for _ in 0..runs {
        cloud.api_calls().reset();
        let start = Instant::now();
        let obs = cloud.observe(scope).await.expect("observe");
        times.push(start.elapsed());
        resources = obs.len();
        calls = json!(cloud.api_calls().snapshot());
    }
    times.sort();
    (resources, calls, times[times.len() / 2])
}

fn goal(groups: usize) -> usize {
    groups.div_ceil(1000)
}

async fn sim(groups: usize) -> Value {
    let sim = SimCloud::new(1);
    let scope = Scope::new("123456789012", "us-west-2");
    let ctx = ExecContext::new("123456789012", "bench", 1, 1);
    let processes = groups / GROUPS_PER_PROCESS;
    let start = Instant::now();
    populate(&sim, processes, &ctx).await;
    let built = start.elapsed();
    let (resources, calls, wall) = measure(&sim, &scope, 5).await;
    let sg_calls = sim.api_calls().get("DescribeSecurityGroups") as usize;
    json!({
        "cloud": "sim",
        "groups": groups,
        "processes": processes,
        "resources": resources,
        "populate_ms": built.as_millis(),
        "observe_ms_median": wall.as_secs_f64() * 1e3,
        "describe_calls": sim.api_calls().describes(),
        "calls": calls,
        "goal_per_kind": goal(groups),
        "security_group_calls_within_goal": sg_calls <= goal(groups),
        "per_resource_describes_would_be": resources,
    })
}

async fn aws(groups: usize) -> Value {
    let m = moto::moto();
    let cfg = moto::sdk_config(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(
        cfg,
        AwsConfig {
            rate_limits: RateLimits::unlimited(),
            retry: RetryPolicy::default(),
            ..AwsConfig::default()
        },
    );
    let scope = Scope::new("123456789012", "us-west-2");
    let ctx = ExecContext::new("123456789012", "bench", 1, 1);
    let processes = groups / GROUPS_PER_PROCESS;
    let start = Instant::now();
    populate(&aws, processes, &ctx).await;
    let built = start.elapsed();
    // The first observation also reads each VPC's DNS attributes.
    let (_, first_calls, first) = measure(&aws, &scope, 1).await;
    let (resources, calls, wall) = measure(&aws, &scope, 5).await;
    json!({
        "cloud": "aws (moto)",
        "groups": groups,
        "processes": processes,
        "resources": resources,
        "populate_ms": built.as_millis(),
        "first_observe_ms": first.as_secs_f64() * 1e3,
        "first_observe_calls": first_calls,
        "observe_ms_median": wall.as_secs_f64() * 1e3,
        "describe_calls": aws.api_calls().describes(),
        "calls": calls,
        "per_resource_describes_would_be": resources + 2 * processes,
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = rt.block_on(async {
        if full {
            json!({ "sim": sim(10_000).await, "aws": aws(500).await, "kinds": ResourceKind::ALL.len() })
        } else {
            json!({ "sim": sim(1_000).await, "smoke": true })
        }
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}
