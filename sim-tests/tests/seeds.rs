//! Runs a fixed set of seeds on 3-node and 5-node clusters and fails with
//! the command that replays the first seed that broke an invariant.
//!
//! `SIM_SEEDS=N SIM_START=S` runs other seeds (`SIM_NODES` picks the cluster
//! size when set); `SIM_KEEP_GOING=1` runs them all and fails at the end;
//! `run-seeds.sh` runs thousands and prints a summary.

use std::collections::BTreeMap;

use sim_tests::{run, SimConfig};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `seeds` seeds from `start` on `nodes` nodes; panics on a violation.
fn sweep(nodes: usize, default_seeds: u64) {
    if env("SIM_NODES").is_some_and(|n| n as usize != nodes) {
        return;
    }
    let seeds = env("SIM_SEEDS").unwrap_or(default_seeds);
    let start = env("SIM_START").unwrap_or(1);
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some();
    let verbose = std::env::var_os("SIM_VERBOSE").is_some();
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut acknowledged, mut calls) = (0, 0);
    let mut slowest = (0, 0);
    let mut failed: Vec<String> = Vec::new();
    for seed in start..start + seeds {
        let began = std::time::Instant::now();
        let report = run(SimConfig::new(seed, nodes));
        if verbose {
            eprintln!(
                "seed {seed}: {} ms simulated in {:?}, converged in {} ms, {} calls",
                report.sim_ms,
                began.elapsed(),
                report.convergence_ms,
                report.calls
            );
        }
        for (k, n) in &report.faults {
            *faults.entry(k).or_insert(0) += n;
        }
        acknowledged += report.acknowledged;
        calls += report.calls;
        slowest = slowest.max((report.convergence_ms, seed));
        let mut broken = report.violations.clone();
        if report.acknowledged == 0 {
            broken.push("nothing acknowledged".into());
        }
        if !broken.is_empty() {
            let msg = format!(
                "seed {seed} broke invariants:\n  {}\nreplay: {}",
                broken.join("\n  "),
                report.repro()
            );
            assert!(keep_going, "{msg}");
            eprintln!("{msg}");
            failed.push(seed.to_string());
        }
    }
    println!(
        "{{\"nodes\":{nodes},\"seeds\":{seeds},\"start\":{start},\"acknowledged_processes\":{acknowledged},\"sdk_calls\":{calls},\"faults\":{},\"violations\":{},\"failed_seeds\":[{}],\"slowest_convergence_ms\":{},\"slowest_convergence_seed\":{}}}",
        serde_json::to_string(&faults).unwrap_or_default(),
        failed.len(),
        failed.join(","),
        slowest.0,
        slowest.1
    );
    assert!(failed.is_empty(), "seeds {failed:?} broke invariants");
}

#[test]
fn three_node_seeds_keep_every_invariant() {
    sweep(3, 150);
}

#[test]
fn five_node_seeds_keep_every_invariant() {
    sweep(5, 50);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [5, 99] {
        let config = SimConfig::new(seed, 3);
        let a = run(config.clone());
        let b = run(config);
        assert!(!a.trace.is_empty());
        assert_eq!(a.trace, b.trace, "two runs of seed {seed} differ");
    }
}
