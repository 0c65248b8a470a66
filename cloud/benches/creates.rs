//! Creates on moto, four ways, each on a fresh moto: `AwsCloud` with a
//! look-up before every create of a kind without client tokens (as before
//! batching), `AwsCloud` with one look-up per kind and pass
//! (`Cloud::look_up_owned`, as the actor does for a pass that may repeat
//! an earlier attempt), `AwsCloud` sending first attempts
//! (`ExecContext::never_sent`, as the actor does for creates it knows were
//! never sent: no look-up), and a plain SDK loop making the same creates
//! with the same tags and no look-ups. 100
//! processes of a VPC, a subnet and four security groups: 600 resources,
//! one pass each. Prints one JSON object with the times, the calls and the
//! ratios to the plain loop.
//!
//! `cargo bench -p canon-cloud --bench creates` (needs moto, found as the
//! tests find it; `CREATES_PROCESSES` changes the size). Without `--bench`
//! (under `cargo test --all-targets`) it prints how to run it and exits.

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;
#[path = "../tests/support/plain_sdk.rs"]
mod plain_sdk;

use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_cloud::{AwsCloud, AwsConfig, Cloud, ExecContext, RateLimits, RetryPolicy, Scope};
use canon_model::{
    Action, CloudRef, Fid, LogicalId, Region, Request, Tags, Tenancy, OWNERSHIP_TAG,
};
use serde_json::{json, Value};

const GROUPS_PER_PROCESS: usize = 4;

fn owned(l: LogicalId) -> Tags {
    [(OWNERSHIP_TAG.to_string(), l.to_string())]
        .into_iter()
        .collect()
}

/// Process `p`'s logical ids: its VPC, its subnet, its groups.
fn ids(p: usize) -> (LogicalId, LogicalId, Vec<LogicalId>) {
    let f = Fid(uuid::Uuid::from_u128(
        0xc0de_0000_0000_4000_8000_0000_0000_0000 | p as u128,
    ));
    let groups = (0..GROUPS_PER_PROCESS)
        .map(|g| LogicalId::new(f, &format!("sg{g}")))
        .collect();
    (
        LogicalId::new(f, "vpc"),
        LogicalId::new(f, "subnet"),
        groups,
    )
}

fn req(target: LogicalId, action: Action) -> Request {
    Request {
        target,
        part: None,
        region: Region::new("us-west-2"),
        action,
    }
}

/// Process `p`'s creates, the VPC's id given as `vpc` (a pending reference
/// until it exists: a look-up needs only the ownership tags).
fn creates(p: usize, vpc: CloudRef) -> Vec<Request> {
    let (lv, ls, groups) = ids(p);
    let mut out = vec![
        req(
            lv,
            Action::CreateVpc {
                cidr_block: "10.0.0.0/16".parse().expect("cidr"),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: owned(lv),
            },
        ),
        req(
            ls,
            Action::CreateSubnet {
                vpc: vpc.clone(),
                cidr_block: "10.0.1.0/24".parse().expect("cidr"),
                availability_zone: "us-west-2a".into(),
                ipv6_cidr_block: None,
                tags: owned(ls),
            },
        ),
    ];
    for (g, lg) in groups.into_iter().enumerate() {
        out.push(req(
            lg,
            Action::CreateSecurityGroup {
                vpc: vpc.clone(),
                group_name: format!("sg{g}"),
                description: "bench".into(),
                tags: owned(lg),
            },
        ));
    }
    out
}

/// How a create of a kind without client tokens makes sure it was not
/// made already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LookUp {
    /// A look-up of its own before each create.
    PerCreate,
    /// One look-up per kind before the pass.
    Batched,
    /// None: the first attempt of each create.
    NeverSent,
}

/// Each process through `AwsCloud`, a pass each, looking up as `look_up`
/// says.
async fn through_canon(aws: &AwsCloud, processes: usize, look_up: LookUp) {
    let scope = Scope::new("123456789012", "us-west-2");
    for p in 0..processes {
        let mut ctx = ExecContext::new("123456789012", format!("bench.{p}"), 1, 1);
        ctx.never_sent = look_up == LookUp::NeverSent;
        let (lv, _, _) = ids(p);
        if look_up == LookUp::Batched {
            let pending = creates(p, CloudRef::Pending(lv));
            let found = aws.look_up_owned(&scope, &pending).await.expect("look-up");
            ctx.looked_up = Some(Arc::new(found));
        }
        let all = creates(p, CloudRef::Pending(lv));
        let vpc = aws
            .execute(&all[0], &ctx)
            .await
            .expect("create vpc")
            .cloud_id
            .expect("vpc id");
        for r in creates(p, CloudRef::Id(vpc)).iter().skip(1) {
            aws.execute(r, &ctx).await.expect("create");
        }
    }
}

/// The same creates straight through the SDK: what a script would do.
async fn plain(ec2: &aws_sdk_ec2::Client, processes: usize) -> usize {
    for p in 0..processes {
        let (vpc, _, _) = ids(p);
        plain_sdk::create_process(ec2, vpc.fid, GROUPS_PER_PROCESS).await;
    }
    processes * (2 + GROUPS_PER_PROCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(processes: usize) -> Value {
    let config = AwsConfig {
        rate_limits: RateLimits::unlimited(),
        retry: RetryPolicy::default(),
        ..AwsConfig::default()
    };
    let mut ways = Vec::new();
    for look_up in [LookUp::PerCreate, LookUp::Batched, LookUp::NeverSent] {
        let m = moto::moto();
        let aws = AwsCloud::from_sdk_config(moto::sdk_config(&m.endpoint).await, config.clone());
        let start = Instant::now();
        through_canon(&aws, processes, look_up).await;
        let took = start.elapsed();
        ways.push((took, aws.api_calls().total(), aws.api_calls().describes()));
    }
    let m = moto::moto();
    let ec2 = aws_sdk_ec2::Client::new(&moto::sdk_config(&m.endpoint).await);
    let start = Instant::now();
    let plain_calls = plain(&ec2, processes);
    let plain_calls = plain_calls.await;
    let plain_took = start.elapsed();
    let ratio = |d: Duration| d.as_secs_f64() / plain_took.as_secs_f64();
    json!({
        "processes": processes,
        "resources": processes * (2 + GROUPS_PER_PROCESS),
        "per_create_look_ups": {"ms": ms(ways[0].0), "calls": ways[0].1, "describes": ways[0].2, "time_vs_plain": ratio(ways[0].0)},
        "batched_look_ups": {"ms": ms(ways[1].0), "calls": ways[1].1, "describes": ways[1].2, "time_vs_plain": ratio(ways[1].0)},
        "first_attempts_no_look_up": {"ms": ms(ways[2].0), "calls": ways[2].1, "describes": ways[2].2, "time_vs_plain": ratio(ways[2].0)},
        "plain_sdk_loop": {"ms": ms(plain_took), "calls": plain_calls},
        "goal_time_vs_plain": 1.5,
    })
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("creates: run with `cargo bench -p canon-cloud --bench creates` (needs moto)");
        return;
    }
    let processes = std::env::var("CREATES_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(run(processes));
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
