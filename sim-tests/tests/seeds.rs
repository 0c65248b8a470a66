//! Runs a fixed set of seeds on 3-node and 5-node clusters and fails with
//! the command that replays the first seed that broke an invariant.
//!
//! `SIM_SEEDS=N SIM_START=S` runs other seeds (`SIM_NODES` picks the cluster
//! size when set); `SIM_KEEP_GOING=1` runs them all, names each seed as it
//! starts, and fails at the end; `run-seeds.sh` runs thousands and prints a
//! summary. A seed whose run panics fails like one that broke an invariant:
//! with the panic's message and the command that replays it.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use sim_tests::fingerprint::first_difference;
use sim_tests::{run, Report, SimConfig};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs `seed` on `nodes` nodes; a panic becomes the run's one violation.
fn run_seed(seed: u64, nodes: usize) -> Report {
    catch_unwind(AssertUnwindSafe(|| run(SimConfig::new(seed, nodes)))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        Report {
            seed,
            nodes,
            violations: vec![format!("the run panicked: {message}")],
            ..Report::default()
        }
    })
}

/// Runs `seeds` seeds from `start` on `nodes` nodes; panics on a violation.
/// `SIM_SEEDS`/`SIM_START` replace the default range (`part` > 0 then
/// runs nothing: the default 3-node set is split in two tests so that the
/// suite keeps both cores busy).
fn sweep(nodes: usize, part: u64, default_start: u64, default_seeds: u64) {
    if env("SIM_NODES").is_some_and(|n| n as usize != nodes) {
        return;
    }
    let custom = env("SIM_SEEDS").is_some() || env("SIM_START").is_some();
    if custom && part > 0 {
        return;
    }
    let seeds = env("SIM_SEEDS").unwrap_or(if custom { 1 } else { default_seeds });
    let start = env("SIM_START").unwrap_or(if custom { 1 } else { default_start });
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some();
    let verbose = std::env::var_os("SIM_VERBOSE").is_some();
    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut acknowledged, mut calls) = (0, 0);
    let mut slowest = (0, 0);
    let mut failed: Vec<String> = Vec::new();
    // `SIM_BUDGET_SECS`: stop starting seeds after this long (long runs).
    let budget = env("SIM_BUDGET_SECS").map(std::time::Duration::from_secs);
    let sweep_began = std::time::Instant::now();
    let mut ran = 0;
    for seed in start..start + seeds {
        if budget.is_some_and(|b| sweep_began.elapsed() > b) {
            break;
        }
        ran += 1;
        if keep_going {
            // Names the seed in the output before it runs, so that a run
            // that dies outright (an abort, a kill) still says which seed.
            eprintln!("seed {seed} on {nodes} nodes: running");
        }
        let began = std::time::Instant::now();
        let report = run_seed(seed, nodes);
        if verbose {
            eprintln!(
                "seed {seed}: {} ms simulated in {:?}, converged in {} ms, {} calls (history {:016x}), {} steps (last {:016x}), {} cloud mutations (trace {:016x})",
                report.sim_ms,
                began.elapsed(),
                report.convergence_ms,
                report.calls,
                report.history,
                report.steps.len(),
                report.steps.last().map_or(0, |s| s.raft),
                report.trace.len(),
                sim_tests::fingerprint::of_debug(&report.trace),
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
        "{{\"nodes\":{nodes},\"seeds\":{ran},\"start\":{start},\"acknowledged_processes\":{acknowledged},\"sdk_calls\":{calls},\"faults\":{},\"violations\":{},\"failed_seeds\":[{}],\"slowest_convergence_ms\":{},\"slowest_convergence_seed\":{}}}",
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
    sweep(3, 0, 1, 75);
}

#[test]
fn more_three_node_seeds_keep_every_invariant() {
    sweep(3, 1, 76, 75);
}

#[test]
fn five_node_seeds_keep_every_invariant() {
    sweep(5, 0, 1, 50);
}

/// Runs of one seed in one process agree in everything they show: the
/// cluster's Raft state (roles, terms, votes, leaders, log and applied
/// indexes) after every simulation step, the SDK calls with their answers
/// and times, the simulated duration and every cloud mutation. (Each run
/// starts with other per-process random keys than the one before, as
/// another process would: tokio's and `HashMap`'s.) Seeds whose runs
/// parted most often while tokio drew from the OS (`(seed, runs)`; both
/// odd, so their nodes also run the cloud events consumer).
#[test]
fn a_seed_replays_exactly() {
    for (seed, runs) in [(3, 2), (25, 3)] {
        let config = SimConfig::new(seed, 3);
        let first = run(config.clone());
        assert!(!first.trace.is_empty() && !first.steps.is_empty());
        for _ in 1..runs {
            let again = run(config.clone());
            if let Some(i) = first_difference(&first.steps, &again.steps) {
                panic!(
                    "two runs of seed {seed} part at step {i}: {:?} then {:?}",
                    first.steps.get(i),
                    again.steps.get(i)
                );
            }
            assert_eq!(first.sim_ms, again.sim_ms, "seed {seed}: simulated time");
            assert_eq!(first.calls, again.calls, "seed {seed}: SDK calls");
            let history = (first.history, again.history);
            assert_eq!(history.0, history.1, "seed {seed}: the SDK calls' history");
            assert_eq!(first.trace, again.trace, "seed {seed}: cloud mutations");
        }
    }
}

/// What a simulated host's tokio runtime draws at random (here: which of
/// two ready branches of a `tokio::select!` it polls first; a `watch`
/// channel's wake-up order is drawn the same way) comes from the seed, as
/// turmoil arranges in `tokio_unstable` builds (`.cargo/config.toml`).
/// Drawn from the OS instead, they made a seed's runs part wherever such
/// a draw decided which of two events came first.
#[test]
fn simulated_hosts_draw_from_the_seed() {
    fn draws(seed: u64) -> Vec<u8> {
        let mut sim = sim_tests::world::simulation(seed);
        let out = Arc::new(Mutex::new(Vec::new()));
        let record = out.clone();
        sim.client("draws", async move {
            for _ in 0..64 {
                let first = tokio::select! {
                    () = std::future::ready(()) => 0,
                    () = std::future::ready(()) => 1,
                };
                record.lock().expect("not poisoned").push(first);
            }
            Ok(())
        });
        sim.run().expect("the simulation runs");
        let drawn = out.lock().expect("not poisoned").clone();
        drawn
    }
    let first = draws(7);
    assert_eq!(first.len(), 64);
    assert_eq!(
        first,
        draws(7),
        "a simulated host's runtime draws differently in two runs of one seed: \
         is tokio built with `--cfg tokio_unstable` (.cargo/config.toml; a RUSTFLAGS \
         variable replaces it)?"
    );
}
