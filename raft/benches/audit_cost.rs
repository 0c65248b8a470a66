//! What a user's write costs beyond a bare one, piece by piece, in one
//! thread and without a cluster, printed as one JSON object.
//!
//! `cargo bench -p canon-raft --bench audit_cost` (environment:
//! `AUDIT_COST_WRITES`, requests per measured run, default 200000;
//! `AUDIT_COST_ROUNDS`, default 5).
//!
//! The raft bench (`bench --signed both --pairs N`) measures the whole
//! overhead of a signed write at 64 writers, but on a shared machine its
//! ratios swing by tens of percent. This one measures the parts that are
//! per request and deterministic, so that a change to one of them can be
//! judged without that noise:
//!
//! - **apply**: `CanonState::apply_at` of `AUDIT_COST_WRITES` requests
//!   into a fresh shard state, bare `Noop`s and the same signed as the
//!   raft bench signs them (a principal and the door's context, so each
//!   leaves an audit record), alternating, per round; µs per request.
//!   Every replica applies every request.
//! - **chain_hash**: one record's [`chain_hash`] (canonical JSON and
//!   SHA-256), and the canonical JSON alone, µs per call; and the same
//!   bytes written by `serde_json` (`canonical_json_serde_json_us`), which
//!   wrote them before the hand-written writer.
//! - **codec**: making a batch of 33 requests (the raft bench's typical
//!   batch at 64 writers), encoding it as a log entry and decoding it
//!   again, µs per request, and the entry's bytes per request. The leader
//!   encodes each entry once; each follower decodes it.
//!
//! - **trim**: applying the `AuditTrimmed` a retention sweep proposes,
//!   of `AUDIT_COST_TRIM` records (default 40000, a busy group's minute)
//!   from a chain of that many and 20,000 more; ms for the apply.
//!
//! Each figure is the median over the rounds, in CPU time of the measuring
//! thread (Linux's `/proc/thread-self/schedstat`, in ns), so that other
//! work on a shared machine does not count; where that is not readable,
//! in wall time (`"clock"` says which).

use canon_raft::command::{Batch, EntryAt};
use canon_raft::entry_codec::{decode_entry, encode_entry};
use canon_raft::shard::group_of_shard;
use canon_raft::state::CanonState;
use canon_raft::types::Entry;
use canon_raft::Request;

#[path = "support/signed_write.rs"]
mod signed_write;
use canon_trust::audit::{canonical, chain_hash};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use serde_json::json;
use signed_write::write;

/// Requests per batch in the codec figures.
const BATCH: usize = 33;

/// µs per request of applying `n` requests into a fresh shard state (the
/// requests are made before the clock starts).
fn apply_us(signed: bool, n: usize) -> f64 {
    let mut state = CanonState::new(group_of_shard(0), 16);
    let base = 1_700_000_000_000u64;
    let requests: Vec<Request> = (0..n as u64)
        .map(|i| write(signed, base + i / 10))
        .collect();
    let started = Started::now();
    for (i, r) in requests.iter().enumerate() {
        let at = EntryAt {
            term: 1,
            index: i as u64 + 1,
        };
        state.apply_at(r, Some(at));
    }
    per(started, n)
}

/// ms for applying an `AuditTrimmed` of `trimmed` records from a chain
/// holding 20,000 more (the records made before the clock starts).
fn trim_ms(trimmed: usize) -> f64 {
    const KEPT: usize = 20_000;
    let mut state = CanonState::new(group_of_shard(0), 16);
    let base = 1_700_000_000_000u64;
    for i in 0..(trimmed + KEPT) as u64 {
        let at = EntryAt {
            term: 1,
            index: i + 1,
        };
        state.apply_at(&write(true, base + i / 10), Some(at));
    }
    let through = state.audit.records[trimmed - 1].entry.seq;
    let trim = Request::new(base, canon_raft::Command::AuditTrimmed { through });
    let started = Started::now();
    state.apply_at(
        &trim,
        Some(EntryAt {
            term: 1,
            index: (trimmed + KEPT) as u64 + 1,
        }),
    );
    let ms = per(started, 1) / 1e3;
    // The newest kept, and the trim's own record after them.
    assert_eq!(
        state.audit.records.len(),
        KEPT + 1,
        "the trim kept the newest"
    );
    ms
}

/// µs per call of the chain hash of a signed write's record, of its
/// canonical JSON alone, and of the same bytes written by serde_json (what
/// the hand-written writer replaced); the canonical bytes' length.
fn hash_us(n: usize) -> (f64, f64, f64, usize) {
    let mut state = CanonState::new(group_of_shard(0), 16);
    state.apply(&write(true, 1_700_000_000_000));
    let Some(record) = state.audit.records.front().cloned() else {
        return (0.0, 0.0, 0.0, 0);
    };
    let prev = record.prev.to_string();
    let started = Started::now();
    for _ in 0..n {
        std::hint::black_box(chain_hash(&prev, std::hint::black_box(&record.entry)));
    }
    let hash = per(started, n);
    let started = Started::now();
    for _ in 0..n {
        std::hint::black_box(canonical(std::hint::black_box(&record.entry)));
    }
    let json = per(started, n);
    let started = Started::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_vec(std::hint::black_box(&record.entry)).ok());
    }
    let serde = per(started, n);
    (hash, json, serde, canonical(&record.entry).len())
}

/// µs per request of making, encoding and decoding batches of [`BATCH`]
/// requests as log entries, and the entry's bytes per request.
fn codec_us(signed: bool, n: usize) -> Result<(f64, f64), String> {
    let batches = n.div_ceil(BATCH);
    let mut bytes = 0;
    let started = Started::now();
    for k in 0..batches as u64 {
        let requests: Vec<Request> = (0..BATCH as u64)
            .map(|i| write(signed, 1_700_000_000_000 + i))
            .collect();
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), k + 1),
            payload: EntryPayload::Normal(Batch::from(requests)),
        };
        let encoded = encode_entry(&entry).map_err(|e| e.to_string())?;
        bytes = encoded.len();
        std::hint::black_box(decode_entry(&encoded).map_err(|e| e.to_string())?);
    }
    Ok((per(started, batches * BATCH), bytes as f64 / BATCH as f64))
}

/// A point on the clock the figures are measured in.
#[derive(Clone, Copy)]
enum Started {
    /// CPU ns this thread had used.
    Cpu(u64),
    Wall(std::time::Instant),
}

impl Started {
    fn now() -> Started {
        thread_cpu_ns().map_or_else(|| Started::Wall(std::time::Instant::now()), Started::Cpu)
    }
}

/// CPU ns this thread has run, where Linux tells (schedstat's first field).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// µs per item of `n` since `started`.
fn per(started: Started, n: usize) -> f64 {
    let us = match started {
        Started::Cpu(ns) => thread_cpu_ns().unwrap_or(ns).saturating_sub(ns) as f64 / 1e3,
        Started::Wall(at) => at.elapsed().as_secs_f64() * 1e6,
    };
    us / n.max(1) as f64
}

/// The median of `values` (reordered); 0 if empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn main() {
    let n = env_usize("AUDIT_COST_WRITES", 200_000);
    let rounds = env_usize("AUDIT_COST_ROUNDS", 5);
    let trimmed = env_usize("AUDIT_COST_TRIM", 40_000);
    let mut figures: [Vec<f64>; 9] = Default::default();
    let mut trims = Vec::new();
    let mut canonical_bytes = 0;
    for round in 0..rounds {
        // Alternate which side goes first: the heap each meets differs.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for signed in order {
            let i = usize::from(signed);
            figures[i].push(apply_us(signed, n));
            match codec_us(signed, n / 4) {
                Ok((us, bytes)) => {
                    figures[2 + i].push(us);
                    figures[4 + i].push(bytes);
                }
                Err(e) => {
                    eprintln!("audit_cost: {e}");
                    std::process::exit(1);
                }
            }
        }
        let (hash, json, serde, len) = hash_us(n / 4);
        figures[6].push(hash);
        figures[7].push(json);
        figures[8].push(serde);
        canonical_bytes = len;
        trims.push(trim_ms(trimmed));
    }
    let [apply_bare, apply_signed, codec_bare, codec_signed, bytes_bare, bytes_signed, hash, json, serde] =
        figures.map(|mut v| median(&mut v));
    let clock = match Started::now() {
        Started::Cpu(_) => "thread cpu",
        Started::Wall(_) => "wall",
    };
    let report = json!({
        "clock": clock,
        "writes": n,
        "rounds": rounds,
        "apply_us": {
            "bare": apply_bare,
            "signed": apply_signed,
            "signed_minus_bare": apply_signed - apply_bare,
        },
        "chain_hash_us": hash,
        "canonical_json_us": json,
        "canonical_json_serde_json_us": serde,
        "canonical_bytes": canonical_bytes,
        "codec_us": {
            "bare": codec_bare,
            "signed": codec_signed,
            "signed_minus_bare": codec_signed - codec_bare,
        },
        "entry_bytes_per_request": { "bare": bytes_bare, "signed": bytes_signed },
        "trim": { "records": trimmed, "apply_ms": median(&mut trims) },
    });
    println!("{report:#}");
}
