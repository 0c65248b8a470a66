//! Runs a fixed set of seeds on 3-node and 5-node clusters and fails with
//! the command that replays the first seed that broke an invariant.
//!
//! `SIM_SEEDS=N SIM_START=S` runs other seeds (`SIM_NODES` picks the cluster
//! size when set); `run-seeds.sh` runs thousands and prints a summary.

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
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let mut acknowledged = 0;
    for seed in start..start + seeds {
        let report = run(SimConfig {
            seed,
            nodes,
            processes: 4,
        });
        for (k, n) in &report.faults {
            *faults.entry(k).or_insert(0) += n;
        }
        acknowledged += report.acknowledged;
        assert!(
            report.violations.is_empty(),
            "seed {seed} broke invariants:\n  {}\nreplay: {}",
            report.violations.join("\n  "),
            report.repro()
        );
        assert!(report.acknowledged > 0, "seed {seed}: nothing acknowledged");
    }
    println!(
        "{{\"nodes\":{nodes},\"seeds\":{seeds},\"start\":{start},\"acknowledged_processes\":{acknowledged},\"faults\":{},\"violations\":0}}",
        serde_json::to_string(&faults).unwrap_or_default()
    );
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
        let config = SimConfig {
            seed,
            nodes: 3,
            processes: 3,
        };
        let a = run(config.clone());
        let b = run(config);
        assert!(!a.trace.is_empty());
        assert_eq!(a.trace, b.trace, "two runs of seed {seed} differ");
    }
}
