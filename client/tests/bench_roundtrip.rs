//! The CLI round-trip benchmark (ignored by default; it takes minutes):
//! a 3-node loopback dev cluster, N processes created through the SDK
//! (`run` to commit, p50/p99: 50 one at a time with one VPC each, then N
//! of an empty composition with 32 in flight unless
//! `CANON_BENCH_CONCURRENCY` says otherwise, which seeds 10,000 processes in
//! minutes), then `canon status` over all of them, both as an SDK call and
//! as a whole CLI process (p50/p99). Prints JSON.
//!
//! ```sh
//! CANON_BENCH_PROCESSES=10000 cargo test -p canon-client --release \
//!     --test bench_roundtrip -- --ignored --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_node::dev::{DevCluster, DevOptions};

mod support;
use support::dev_cluster::{admin_client, compiled as compile};
use support::latency::summary;

#[test]
#[ignore]
fn cli_round_trip() {
    let n: usize = std::env::var("CANON_BENCH_PROCESSES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = std::env::var("CANON_BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cluster = rt
        .block_on(DevCluster::start(DevOptions {
            tick: Duration::from_secs(60),
            signed_reads: false,
            tls: false,
            ..DevOptions::new(tmp.path())
        }))
        .unwrap();
    let _inside = rt.enter();
    let client_toml = support::dev_cluster::client_toml(&cluster, tmp.path());
    let client = admin_client(&cluster);
    let composition = compile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bench/one-vpc.lw"),
    );
    // The N processes declare nothing: `canon status` lists processes, not
    // resources, and N enforcement loops each observing a region of N VPCs
    // would measure the scheduler's observation cost instead (quadratic in
    // debug runs of thousands), not the API round trip.
    let empty_path = tmp.path().join("empty.lw");
    std::fs::write(&empty_path, "composition\n").unwrap();
    let empty = compile(&empty_path);

    // One at a time: what a user typing `canon run` waits for.
    let sequential_ms: Vec<f64> = (0..50)
        .map(|i| {
            let t = Instant::now();
            rt.block_on(client.run(&format!("seq-{i}"), composition.clone(), false))
                .unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let started = Instant::now();
    let run_ms = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let client = client.clone();
            let composition = empty.clone();
            set.spawn(async move {
                let t = Instant::now();
                let r = client.run(&format!("bench-{i}"), composition, false).await;
                drop(permit);
                r.map(|_| t.elapsed().as_secs_f64() * 1000.0)
                    .map_err(|e| e.to_string())
            });
        }
        let mut v = Vec::with_capacity(n);
        let mut errors = Vec::new();
        while let Some(r) = set.join_next().await {
            match r.unwrap() {
                Ok(ms) => v.push(ms),
                Err(e) => errors.push(e),
            }
        }
        (v, errors)
    });
    let (run_ms, run_errors) = run_ms;
    let created = run_ms.len();
    let create_secs = started.elapsed().as_secs_f64();

    let sdk_status_ms: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let s = rt.block_on(client.status("", false)).unwrap();
            assert!(s.processes.len() >= created + 50);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let cli_status_ms: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_canon"))
                .arg("status")
                .env("CANON_CONFIG", &client_toml)
                .output()
                .unwrap();
            assert!(out.status.success());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let report = serde_json::json!({
        "cluster": "3 nodes, loopback, one process (canon dev), simulated cloud, 4 shards",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "processes": n,
        "concurrency": concurrency,
        "run_to_commit_one_at_a_time": summary(sequential_ms),
        "run_to_commit_concurrent": summary(run_ms),
        "concurrent_runs_compose": "nothing (empty composition); one-at-a-time runs: one VPC",
        "runs_per_second": created as f64 / create_secs,
        "run_errors": run_errors.len(),
        "first_run_error": run_errors.first(),
        "status_all_sdk": summary(sdk_status_ms),
        "status_all_cli_process": summary(cli_status_ms),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    rt.block_on(cluster.shutdown());
}
