//! Snapshots of large groups, printed as one JSON object.
//!
//! `cargo bench -p canon-raft --bench snapshots` (environment:
//! `SNAP_PROCESSES`, comma-separated sizes for the encoding phase, default
//! `10000,100000`; `SNAP_STALL_PROCESSES`, the group size of the stall
//! phase, default the largest of those; `SNAP_PHASES`, `encode,stall`).
//!
//! - **encode**, per size: a shard state of N processes filled by the
//!   commands the conductor proposes (`fleet_state`, the README's default
//!   keep: 11 bound resources, 50 jobs, 10 healed drift events), then the
//!   cost of a snapshot of it: the frozen view (clone under the read lock),
//!   1,000 commands each changing another record while the view is held
//!   (each copies its record and the tree nodes above it) and the same
//!   again once they are copied,
//!   the streamed file (time, bytes, peak extra heap while writing), reading
//!   it back, and for comparison the old whole-state encoding into one
//!   buffer. Heap is counted by a wrapping allocator.
//! - **stall**: three nodes over gRPC on loopback, one shard. The shard
//!   group's two up-to-date nodes are given a snapshot of N processes (as
//!   if they had applied them) while the third is down; the third then
//!   restarts and must install that snapshot from the leader, while the
//!   leader builds a new one. Meanwhile one writer per group (the shard and
//!   the meta group) commits a `Noop` every 5 ms and a ticker watches the
//!   runtime: the report gives the longest write, the longest gap between
//!   two commits, the oldest quorum acknowledgement the leaders reported,
//!   and the runtime's worst lateness, during the transfer, install and
//!   build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_raft::fleet_state::{fleet_state, FleetShape};
use canon_raft::local::{id_of, LocalCluster};
use canon_raft::shard::group_of_shard;
use canon_raft::store::snap_files::{self, SnapFiles};
use canon_raft::types::{LogId, SnapshotMeta};
use canon_raft::{codec, Command, RaftSettings, Request, META_GROUP};
use serde_json::{json, Value};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// This thread's CPU time so far (`/proc/thread-self/schedstat`, Linux),
/// zero where it cannot be read: on a shared machine, wall time alone
/// mixes in other processes' load.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time of the last [`measured`] call.
static LAST_CPU_NS: AtomicUsize = AtomicUsize::new(0);

/// Runs `f`; returns its result, its (wall) time and the peak heap above
/// what was live before it; its CPU time is left in `LAST_CPU_NS`.
fn measured<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let before = live();
    PEAK.store(before, Ordering::Relaxed);
    let cpu = thread_cpu();
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu);
    LAST_CPU_NS.store(cpu.as_nanos() as usize, Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (out, took, peak)
}

fn last_cpu_ms() -> f64 {
    ms(Duration::from_nanos(
        LAST_CPU_NS.load(Ordering::Relaxed) as u64
    ))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn mib(b: usize) -> f64 {
    (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0
}

fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn meta_at(index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
        last_membership: Default::default(),
        snapshot_id: format!("bench-{index}"),
    }
}

/// The encoding phase for `n` processes.
fn encode(n: u64, dir: &Path) -> Value {
    let generated = Instant::now();
    let heap_before = live();
    let mut state = fleet_state(n, FleetShape::DEFAULT_KEEP, n);
    let heap = live().saturating_sub(heap_before);
    let generate = generated.elapsed();
    let (view, freeze, freeze_peak) = measured(|| state.snapshot_view());
    let freeze_cpu = last_cpu_ms();
    // What the state pays for moving on while a view holds it: the first
    // change to a record copies it and the tree nodes above it.
    let fids: Vec<_> = state.processes.keys().copied().take(1000).collect();
    let mut at = state.clock;
    let mut suspect = |state: &mut canon_raft::CanonState| {
        for fid in &fids {
            at += 1;
            let command = Command::DriftSuspected {
                fid: *fid,
                event_at: at,
                by: None,
            };
            state.apply(&Request::new(at, command));
        }
    };
    let ((), frozen_apply, _) = measured(|| suspect(&mut state));
    let ((), free_apply, _) = measured(|| suspect(&mut state));
    let files = SnapFiles::new(dir, group_of_shard(0));
    files.prepare().expect("snapshot dir");
    let meta = meta_at(n);
    let (written, write, write_peak) = measured(|| files.write_temp("bench", &meta, view));
    let write_cpu = last_cpu_ms();
    let (temp, bytes) = written.expect("snapshot written");
    files.publish(&temp).expect("snapshot published");
    let file = files.current();
    let (read, read_time, read_peak) = measured(|| {
        let f = std::fs::File::open(&file).expect("snapshot file");
        snap_files::read_file(&file, f).expect("snapshot reads back")
    });
    let read_cpu = last_cpu_ms();
    assert_eq!(read.state.processes.len() as u64, n);
    drop(read);
    let (old, old_time, old_peak) = measured(|| codec::encode(&state).map(|b| b.len()));
    let old_cpu = last_cpu_ms();
    let old_bytes = old.expect("old encoding");
    json!({
        "processes": n,
        "state_heap_mib": mib(heap),
        "generate_s": generate.as_secs(),
        "freeze_us": (freeze.as_secs_f64() * 1e7).round() / 10.0,
        "apply_1000_records_while_frozen_ms": ms(frozen_apply),
        "apply_1000_records_again_ms": ms(free_apply),
        "freeze_cpu_ms": freeze_cpu,
        "freeze_peak_extra_mib": mib(freeze_peak),
        "snapshot_bytes": bytes,
        "snapshot_bytes_per_process": bytes / n.max(1),
        "build_ms": ms(write),
        "build_cpu_ms": write_cpu,
        "build_peak_extra_mib": mib(write_peak),
        "read_ms": ms(read_time),
        "read_cpu_ms": read_cpu,
        "read_peak_mib_including_the_decoded_state": mib(read_peak),
        "old_whole_image_encode_ms": ms(old_time),
        "old_whole_image_encode_cpu_ms": old_cpu,
        "old_whole_image_bytes": old_bytes,
        "old_whole_image_peak_extra_mib": mib(old_peak),
    })
}

/// What one probe saw.
#[derive(Default)]
struct Probe {
    latencies_ms: Vec<f64>,
    max_gap_ms: f64,
    errors: u64,
}

impl Probe {
    fn report(&mut self) -> Value {
        self.latencies_ms.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            let n = self.latencies_ms.len();
            if n == 0 {
                return 0.0;
            }
            self.latencies_ms[((n as f64 * p) as usize).min(n - 1)]
        };
        json!({
            "writes": self.latencies_ms.len(),
            "errors": self.errors,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "max_ms": self.latencies_ms.last().copied().unwrap_or(0.0),
            "max_gap_between_commits_ms": self.max_gap_ms,
        })
    }
}

/// Commits a `Noop` to `group` through node `via` every 5 ms until
/// `stop`.
async fn write_probe(node: canon_raft::RaftNode, group: u64, stop: Arc<AtomicBool>) -> Probe {
    let mut probe = Probe::default();
    let mut last = Instant::now();
    let mut at = 1;
    while !stop.load(Ordering::Relaxed) {
        at += 1;
        let started = Instant::now();
        match node.propose(group, Request::new(at, Command::Noop)).await {
            Ok(_) => {
                let now = Instant::now();
                probe.latencies_ms.push(ms(now - started));
                probe.max_gap_ms = probe.max_gap_ms.max(ms(now - last));
                last = now;
            }
            Err(_) => probe.errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    probe
}

/// The runtime's worst lateness waking a 2 ms ticker, until `stop`.
async fn lateness_probe(stop: Arc<AtomicBool>) -> f64 {
    let mut worst: f64 = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        worst = worst.max(ms(started.elapsed()) - 2.0);
    }
    worst
}

/// The oldest quorum acknowledgement a leader of `groups` reports, polled
/// every 5 ms until `stop`.
async fn quorum_probe(
    c: Vec<canon_raft::RaftNode>,
    groups: Vec<u64>,
    stop: Arc<AtomicBool>,
) -> Value {
    let mut worst = vec![0u64; groups.len()];
    while !stop.load(Ordering::Relaxed) {
        for (k, g) in groups.iter().enumerate() {
            for n in &c {
                if let Ok(m) = n.metrics(*g) {
                    let m = m.borrow();
                    if m.state == openraft::ServerState::Leader {
                        worst[k] = worst[k].max(m.millis_since_quorum_ack.unwrap_or(0));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    json!(groups
        .iter()
        .zip(worst)
        .map(|(g, w)| (format!("group_{g}"), json!(w)))
        .collect::<serde_json::Map<_, _>>())
}

/// Restarts node `i`, waiting for its database's lock: sled lets go of
/// it a moment after the node that held it stopped.
async fn restart(c: &mut LocalCluster, i: usize) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match c.restart(i).await {
            Ok(()) => return Ok(()),
            Err(e) if e.to_string().contains("lock") && started.elapsed().as_secs() < 60 => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn stall(n: u64, base: &Path) -> Result<Value, String> {
    let settings = RaftSettings {
        // Only the snapshots this bench asks for.
        snapshot_every: u64::MAX / 2,
        ..RaftSettings::loopback()
    };
    let heartbeat_ms = settings.heartbeat.as_millis();
    let chunk = settings.snapshot_chunk_bytes;
    let shard = group_of_shard(0);
    let mut c = LocalCluster::start(base, 3, 1, settings)
        .await
        .map_err(|e| e.to_string())?;
    c.bootstrap(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let leader = c
        .wait_leader(shard, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    c.wait_leader(META_GROUP, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let node = c.running(leader).map_err(|e| e.to_string())?.clone();
    for at in 0..5 {
        node.propose(shard, Request::new(at, Command::Noop))
            .await
            .map_err(|e| e.to_string())?;
    }
    let m = node
        .metrics(shard)
        .map_err(|e| e.to_string())?
        .borrow()
        .clone();
    let last = m.last_log_index.unwrap_or(0);
    let term = m.current_term;
    let membership = (*m.membership_config).clone();
    // Everyone has the entries; then all stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        c.kill(i).await.map_err(|e| e.to_string())?;
    }
    // The two up-to-date nodes "applied" N processes' worth of commands
    // after those entries: their snapshot says so.
    let lagging = (leader + 1) % 3;
    let index = last + 10;
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new(
            openraft::CommittedLeaderId::new(term, id_of(leader)),
            index,
        )),
        last_membership: membership,
        snapshot_id: format!("bench-{index}"),
    };
    // Generating and writing take a while: off the runtime, which is
    // still letting go of the stopped nodes.
    let dirs: Vec<_> = (0..3)
        .filter(|i| *i != lagging)
        .map(|i| base.join(format!("node-{}", id_of(i))))
        .collect();
    let meta2 = meta.clone();
    let (generate_s, snapshot_bytes) = tokio::task::spawn_blocking(move || {
        let generated = Instant::now();
        let state = fleet_state(n, FleetShape::DEFAULT_KEEP, n);
        let generate_s = generated.elapsed().as_secs();
        let mut snapshot_bytes = 0;
        for dir in dirs {
            let files = SnapFiles::new(&dir, shard);
            files.prepare().map_err(|e| e.to_string())?;
            let (temp, bytes) = files
                .write_temp("bench", &meta2, state.snapshot_view())
                .map_err(|e| e.to_string())?;
            files.publish(&temp).map_err(|e| e.to_string())?;
            snapshot_bytes = bytes;
        }
        Ok::<_, String>((generate_s, snapshot_bytes))
    })
    .await
    .map_err(|e| e.to_string())??;
    for i in (0..3).filter(|i| *i != lagging) {
        restart(&mut c, i).await?;
    }
    let leader = c
        .wait_leader(shard, Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let meta_leader = c
        .wait_leader(META_GROUP, Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let lead = c.running(leader).map_err(|e| e.to_string())?.clone();
    let lead_meta = c.running(meta_leader).map_err(|e| e.to_string())?.clone();
    // Let things settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let shard_probe = tokio::spawn(write_probe(lead.clone(), shard, stop.clone()));
    let meta_probe = tokio::spawn(write_probe(lead_meta.clone(), META_GROUP, stop.clone()));
    let late = tokio::spawn(lateness_probe(stop.clone()));
    let up: Vec<_> = (0..3)
        .filter(|i| *i != lagging)
        .filter_map(|i| c.running(i).ok().cloned())
        .collect();
    let quorum = tokio::spawn(quorum_probe(up, vec![shard, META_GROUP], stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    restart(&mut c, lagging).await?;
    let raft = lead.raft(shard).map_err(|e| e.to_string())?.clone();
    raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
    let lag = c.running(lagging).map_err(|e| e.to_string())?.clone();
    let mut installed = None;
    let mut built = None;
    while installed.is_none() || built.is_none() {
        if started.elapsed() > Duration::from_secs(900) {
            return Err("no install or build within 15 minutes".into());
        }
        if installed.is_none() {
            let m = lag
                .metrics(shard)
                .map_err(|e| e.to_string())?
                .borrow()
                .clone();
            if m.snapshot.is_some_and(|s| s.index >= index) {
                installed = Some(started.elapsed());
            }
        }
        if built.is_none() {
            let m = lead
                .metrics(shard)
                .map_err(|e| e.to_string())?
                .borrow()
                .clone();
            if m.snapshot.is_some_and(|s| s.index > index) {
                built = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer, then stop the probes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut shard_probe = shard_probe.await.map_err(|e| e.to_string())?;
    let mut meta_probe = meta_probe.await.map_err(|e| e.to_string())?;
    let late = late.await.map_err(|e| e.to_string())?;
    let quorum = quorum.await.map_err(|e| e.to_string())?;
    c.shutdown().await;
    Ok(json!({
        "processes": n,
        "snapshot_bytes": snapshot_bytes,
        "chunk_bytes": chunk,
        "heartbeat_ms": heartbeat_ms,
        "generate_s": generate_s,
        "lagging_node_installed_after_s": installed.map(|d| d.as_secs_f64()),
        "leader_built_after_s": built.map(|d| d.as_secs_f64()),
        "writes_shard_group": shard_probe.report(),
        "writes_meta_group": meta_probe.report(),
        "oldest_quorum_ack_ms": quorum,
        "runtime_worst_lateness_ms": late,
    }))
}

fn main() {
    // `RUST_LOG=canon_raft::store=info` shows each snapshot built (its
    // frozen view's and its writing's times) on stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,openraft=error".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let sizes = env_list("SNAP_PROCESSES", &[10_000, 100_000]);
    let stall_n = env_list(
        "SNAP_STALL_PROCESSES",
        &[sizes.iter().copied().max().unwrap_or(10_000)],
    );
    let phases = std::env::var("SNAP_PHASES").unwrap_or_else(|_| "encode,stall".into());
    let mut report = json!({ "bench": "snapshots", "shape": "default keep: 1.9 KB composition, 11 bindings, 50 jobs, 10 healed drift events" });
    if phases.contains("encode") {
        let rows: Vec<Value> = sizes
            .iter()
            .map(|n| {
                let dir = tempfile::tempdir().expect("temp dir");
                let row = encode(*n, dir.path());
                eprintln!("{row}");
                row
            })
            .collect();
        report["encode"] = json!(rows);
    }
    if phases.contains("stall") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let rows: Vec<Value> = stall_n
            .iter()
            .map(|n| {
                let dir = tempfile::tempdir().expect("temp dir");
                let row = rt
                    .block_on(stall(*n, dir.path()))
                    .unwrap_or_else(|e| json!({ "processes": n, "error": e }));
                eprintln!("{row}");
                row
            })
            .collect();
        report["stall"] = json!(rows);
    }
    println!("{report}");
}
