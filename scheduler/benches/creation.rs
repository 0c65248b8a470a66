//! Creation at scale on the simulated cloud (issue #19 §2): N processes of
//! ten resources each (a VPC and nine security groups with an https rule,
//! as `examples/bench/ten-resources.lw`), run as `canon run` does (the
//! process and its RUN job proposed to the log) on a one-node cluster of
//! four shards with a 60 s tick, timed until every RUN job has succeeded.
//! The cost per process must stay flat as N grows: a creating pass that
//! looks at the whole region costs O(N), a fleet's creation O(N²).
//! Prints one JSON object: the time, the time per process, API calls
//! (describes among them) per process, by action.
//!
//! `cargo bench -p canon-scheduler --bench creation` (`CREATION_PROCESSES`,
//! 500 by default; `CREATION_CONVERGE_SECS`, give up after, 1800).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use canon_cloud::Cloud;
use canon_model::*;
use canon_scheduler::SchedulerConfig;
use serde_json::json;
use support::*;

const GROUPS_PER_PROCESS: usize = 9;

fn main() {
    bench::block_on(run());
}

fn per(x: f64, n: usize) -> f64 {
    bench::round2(x / n.max(1) as f64)
}

async fn run() {
    let processes = bench::env_or("CREATION_PROCESSES", 500usize);
    let converge = Duration::from_secs(bench::env_or("CREATION_CONVERGE_SECS", 1800u64));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let config = SchedulerConfig {
        tick_interval: Duration::from_secs(60),
        ..SchedulerConfig::default()
    };
    let h = Harness::start_with_cloud_epoch(1, 4, config, now_ms()).await;
    let start = Instant::now();
    let mut fids = Vec::with_capacity(processes);
    for i in 0..processes {
        let fid = Fid::random();
        let alias = format!("p{i:06}");
        h.run(
            &alias,
            &bench::vpc_with_groups(fid, false, GROUPS_PER_PROCESS, &[443]),
        )
        .await;
        fids.push((alias, fid));
    }
    let committed = start.elapsed();
    let mut passes = 0;
    for (alias, fid) in &fids {
        let p = h
            .wait_for(alias, *fid, converge, "RUN", |p| {
                last_job(p, JobKind::Run).is_some_and(|j| j.status.is_finished())
            })
            .await;
        let job = last_job(&p, JobKind::Run).expect("a RUN job");
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        passes += p.passes.unwrap_or(0);
    }
    let took = start.elapsed();
    let calls = h.cloud.api_calls();
    let (total, describes, by_action) = (calls.total(), calls.describes(), calls.snapshot());
    let owned = h.cloud.all_owned(&scope()).len();
    h.shutdown().await;
    let ms = took.as_secs_f64() * 1e3;
    let out = json!({
        "bench": "creation",
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "processes": processes,
        "resources_per_process": 1 + GROUPS_PER_PROCESS,
        "resources_owned": owned,
        "runs_committed_ms": bench::round2(committed.as_secs_f64() * 1e3),
        "all_converged_ms": bench::round2(ms),
        "processes_per_s": bench::round2(processes as f64 / took.as_secs_f64()),
        "ms_per_process": per(ms, processes),
        "calls_per_process": per(total as f64, processes),
        "describes_per_process": per(describes as f64, processes),
        "passes_per_process": per(passes as f64, processes),
        "calls_by_action": by_action,
        "loadavg_at_start": load.trim(),
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
