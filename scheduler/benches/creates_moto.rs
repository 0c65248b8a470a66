//! Populating 600 resources on AWS's API (moto) through the real actor path
//! (issue #19 §3), beside a plain SDK loop making the same creates: 100
//! processes of a VPC, a subnet and four security groups, each run as
//! `canon run` does (the process and its RUN job proposed to the log), on a
//! one-node cluster whose scheduler acts through `AwsCloud`, timed until
//! every RUN job has succeeded. The plain loop makes the same 600 creates
//! with the same ownership tags and nothing else (no observation, no look-up,
//! no log), first one after another, then from as many tasks at once as the
//! scheduler lets mutate one account and region
//! (`SchedulerConfig::mutations_per_scope`). Each way starts on a fresh moto.
//! Client-side rate limits are off on both sides (moto does not throttle).
//! Prints one JSON object: times, API calls by action, ratios.
//!
//! `cargo bench -p canon-scheduler --bench creates_moto` (needs moto, found
//! as the cloud tests find it; `CREATES_PROCESSES` changes the size).
//! Without `--bench` (under `cargo test --all-targets`) it prints how to run
//! it and exits.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../../cloud/tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;
#[path = "../../cloud/tests/support/plain_sdk.rs"]
mod plain_sdk;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_cloud::{AwsCloud, AwsConfig, Cloud, RateLimits, RetryPolicy};
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use serde_json::json;
use support::*;

const GROUPS_PER_PROCESS: usize = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("creates_moto: run with `cargo bench -p canon-scheduler --bench creates_moto` (needs moto)");
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    bench::block_on(run());
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// The scheduler populating `processes` on a fresh moto.
async fn through_the_actors(processes: usize) -> serde_json::Value {
    let m = moto::moto();
    let aws = Arc::new(AwsCloud::from_sdk_config(
        moto::sdk_config(&m.endpoint).await,
        AwsConfig {
            rate_limits: RateLimits::unlimited(),
            retry: RetryPolicy::default(),
            ..AwsConfig::default()
        },
    ));
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(60),
        ..SchedulerConfig::default()
    };
    let acting = aws.clone();
    let h = Harness::start_through(1, 4, config, now_ms(), move |_| acting).await;
    let start = Instant::now();
    let mut fids = Vec::new();
    for i in 0..processes {
        let fid = Fid::random();
        let alias = format!("p{i}");
        h.run(
            &alias,
            &bench::vpc_with_groups(fid, true, GROUPS_PER_PROCESS, &[]),
        )
        .await;
        fids.push((alias, fid));
    }
    let runs_committed = start.elapsed();
    let mut passes = 0;
    for (alias, fid) in &fids {
        let p = h
            .wait_for(alias, *fid, Duration::from_secs(1800), "RUN", |p| {
                last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
            })
            .await;
        let job = last_job(&p, JobKind::Run).expect("a RUN job");
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        passes += p.passes.unwrap_or(0);
    }
    let took = start.elapsed();
    let calls = aws.api_calls();
    let snapshot = calls.snapshot();
    let owned = aws.observe(&scope()).await.expect("observe").len();
    h.shutdown().await;
    json!({
        "ms": ms(took),
        "runs_committed_ms": ms(runs_committed),
        "calls": calls.total(),
        "describes": calls.describes(),
        "by_action": snapshot,
        "passes": passes,
        "resources_owned": owned,
    })
}

/// The plain loop on a fresh moto, from `tasks` tasks at once.
async fn plain(processes: usize, tasks: usize) -> serde_json::Value {
    let m = moto::moto();
    let ec2 = aws_sdk_ec2::Client::new(&moto::sdk_config(&m.endpoint).await);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut running = Vec::new();
    for _ in 0..tasks {
        let (ec2, next) = (ec2.clone(), next.clone());
        running.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < processes {
                plain_sdk::create_process(&ec2, Fid::random(), GROUPS_PER_PROCESS).await;
            }
        }));
    }
    for r in running {
        r.await.expect("a plain task");
    }
    let took = start.elapsed();
    json!({
        "ms": ms(took),
        "calls": processes * (2 + GROUPS_PER_PROCESS),
        "tasks": tasks,
    })
}

async fn run() {
    let processes = bench::env_or("CREATES_PROCESSES", 100usize);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // moto loads a region's backend on its first call there (about a
    // second): paid here, not by whichever way runs first.
    plain(1, 1).await;
    let actors = through_the_actors(processes).await;
    let sequential = plain(processes, 1).await;
    let concurrent = plain(processes, SchedulerConfig::default().mutations_per_scope).await;
    let ratio = |a: &serde_json::Value, b: &serde_json::Value| {
        bench::round2(a["ms"].as_f64().unwrap_or(0.0) / b["ms"].as_f64().unwrap_or(1.0))
    };
    let out = json!({
        "bench": "creates_moto",
        "processes": processes,
        "resources": processes * (2 + GROUPS_PER_PROCESS),
        "actor_path": actors,
        "plain_sdk_loop_sequential": sequential,
        "plain_sdk_loop_concurrent": concurrent,
        "actor_vs_sequential": ratio(&actors, &sequential),
        "actor_vs_concurrent": ratio(&actors, &concurrent),
        "goal_time_vs_plain": 1.5,
        "loadavg_at_start": load.trim(),
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
