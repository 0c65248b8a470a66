//! Memory per process in the replicated state (issue #19 §1): how many
//! bytes one process costs a replica, in memory and in a snapshot, with
//! the staging network of the examples (Staging.lw: 11 resources — VPC,
//! subnets, gateway, route tables, security groups) bound to cloud ids and a history of jobs and healed
//! drift events: none yet, the default retention's 50 jobs (with 10
//! healed drift events), and 200 jobs. Live heap bytes are counted by a global allocator that wraps the
//! system's, over a copy of the state decoded from its encoding (so
//! capacity a trim left behind is not counted: what a replica holds after
//! a restart or snapshot install; a clone would share the persistent
//! collections and count only the derived indexes). The audit chain and the command-id memory are bounded per
//! group, not per process (20,000 records and an hour of ids by default):
//! they are reported apart, per record. Prints one JSON object.
//!
//! `cargo bench -p canon-node --bench state_memory` (`STATE_PROCESSES`,
//! default 5000, changes the count).

use canon_model::live_heap::{live_bytes, CountingAllocator};
use std::path::Path;

use canon_model::{Fid, ResourceKind, UnixMillis};
use canon_raft::fleet_state::history_commands;
use canon_raft::shard::group_of_shard;
use canon_raft::state::{CanonState, DEDUP_WINDOW_MS};
use canon_raft::{Command, Composition, Request, Response};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What every process of a run looks like.
struct Shape {
    composition: Composition,
    resources: Vec<(String, ResourceKind)>,
    jobs: u64,
    drift: u64,
}

/// A shard's state and the time of its last command.
struct Built {
    state: CanonState,
    at: UnixMillis,
}

fn main() {
    let processes: u64 = std::env::var("STATE_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/Staging.lw");
    let out = canon_lang::compile_file(&example, canon_lang::Options::default())
        .expect("the example reads");
    let compiled = out.compiled.expect("the example compiles");
    let resources: Vec<_> = compiled
        .resources
        .iter()
        .map(|r| (r.path.clone(), r.spec.kind()))
        .collect();
    let composition = Composition {
        bytes: compiled.encode(),
        source_hash: compiled.source_hash.clone(),
    };
    let mut rows = Vec::new();
    for (jobs, drift) in [(1, 0), (50, 10), (200, 50)] {
        let shape = Shape {
            composition: composition.clone(),
            resources: resources.clone(),
            jobs,
            drift,
        };
        rows.push(measure(processes, &shape));
    }
    let report = json!({
        "bench": "state_memory",
        "processes": processes,
        "resources_per_process": resources.len(),
        "composition_bytes": composition.bytes.len(),
        "rows": rows,
    });
    println!("{report}");
}

/// One row: the bytes per process of `n` processes of `shape`, and the
/// bytes per audit record and remembered command id.
fn measure(n: u64, shape: &Shape) -> serde_json::Value {
    let Built { mut state, at } = build(n, shape);
    let with_logs = copy_size(&state);
    let records = state.audit.records.len() as u64;
    // An hour later every command id is forgotten; the chain is trimmed
    // to its last record.
    let later = at + DEDUP_WINDOW_MS + 1;
    state.apply(&Request::new(later, Command::Noop));
    if let Some(last) = state.audit.records.back().map(|r| r.entry.seq) {
        let through = last.saturating_sub(1);
        state.apply(&Request::new(later + 1, Command::AuditTrimmed { through }));
    }
    let heap = copy_size(&state);
    let snapshot = canon_raft::codec::encode(&state).map_or(0, |b| b.len());
    json!({
        "jobs_per_process": shape.jobs,
        "healed_drift_per_process": shape.drift,
        "heap_bytes_per_process": heap as u64 / n,
        "snapshot_bytes_per_process": snapshot as u64 / n,
        "audit_records": records,
        "heap_bytes_per_audit_record_and_command_id":
            with_logs.saturating_sub(heap) as u64 / records.max(1),
    })
}

/// The live heap bytes a copy of `state` takes: decoded from its
/// encoding, as a restart or a snapshot install makes it (a `clone` would
/// share the persistent collections' trees and count only the indexes).
fn copy_size(state: &CanonState) -> usize {
    let Ok(bytes) = canon_raft::codec::encode(state) else {
        return 0;
    };
    let before = live_bytes();
    let copy = CanonState::decode(&bytes);
    let size = live_bytes().saturating_sub(before);
    drop(copy);
    size
}

/// A shard's state holding `n` processes of `shape`.
fn build(n: u64, shape: &Shape) -> Built {
    let mut s = CanonState::new(group_of_shard(0), 1);
    let mut at = 1_000;
    let mut apply = |s: &mut CanonState, command: Command| {
        at += 1;
        let r = s.apply(&Request::new(at, command));
        assert_eq!(r, Response::Applied, "{r:?}");
    };
    for i in 0..n {
        let fid = Fid::random();
        apply(
            &mut s,
            Command::ProcessCreated {
                imports: Default::default(),
                fid,
                alias: format!("process-{i}"),
                account: "123456789012".into(),
                composition: shape.composition.clone(),
                tick_interval_ms: None,
            },
        );
        let bound: Vec<(String, ResourceKind, String)> = shape
            .resources
            .iter()
            .enumerate()
            .map(|(k, (path, kind))| (path.clone(), *kind, format!("r-{i:08x}{k:09x}")))
            .collect();
        let (path, kind) = &shape.resources[0];
        for command in history_commands(fid, &bound, shape.jobs, shape.drift, (path, *kind)) {
            apply(&mut s, command);
        }
    }
    Built { state: s, at }
}
