//! The checker must be able to fail: with the scheduler's fencing broken on
//! purpose (`SchedulerConfig::break_fencing`, compiled in through this
//! crate's dev-dependency), a few hundred seeds must show two conductors'
//! mutations of one process interleaved. A checker that never fires proves
//! nothing.
//!
//! `SIM_CANARY_SEEDS=N` bounds the search (default 300).

use canon_scheduler::SchedulerConfig;
use sim_tests::{run, SimConfig};

fn break_fencing(config: &mut SchedulerConfig) {
    config.break_fencing = true;
}

#[test]
fn broken_fencing_is_caught() {
    let budget: u64 = std::env::var("SIM_CANARY_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for (tried, seed) in (1..=budget).enumerate() {
        let nodes = if seed % 4 == 0 { 5 } else { 3 };
        let report = run(SimConfig {
            scheduler: Some(break_fencing),
            ..SimConfig::new(seed, nodes)
        });
        let writers: Vec<&String> = report
            .violations
            .iter()
            .filter(|v| v.contains("mutated in term") || v.contains("after #"))
            .collect();
        if let Some(first) = writers.first() {
            println!(
                "{{\"canary\":\"caught\",\"seeds_tried\":{},\"seed\":{seed},\"nodes\":{nodes},\"violation\":{:?}}}",
                tried + 1,
                first
            );
            return;
        }
    }
    panic!("broken fencing went unnoticed for {budget} seeds: the checker cannot fail");
}
