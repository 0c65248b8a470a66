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
//! - **stall**: three nodes over gRPC on loopback in this process, one
//!   shard. The shard group's two up-to-date nodes are given a snapshot of
//!   N processes (as if they had applied them) while the third is down.
//!   One writer per group (the shard and the meta group) commits a `Noop`
//!   every 5 ms through the group's leader and a ticker watches the
//!   runtime, over three windows of one run: a **baseline** of 5 s with no
//!   snapshot work; the **leader building** a new snapshot of the shard;
//!   the third node restarting and **installing** that snapshot from the
//!   leader. Per window: write latency p50/p99/max and writes over 50 ms,
//!   the longest gap between two commits, the oldest quorum
//!   acknowledgement the leaders reported and the runtime's worst
//!   lateness; and how many times the leader sent the snapshot.

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

/// What the probes saw, each sample stamped with when it was taken.
#[derive(Default)]
struct Samples {
    /// (completed at, latency ms) of each committed write.
    writes: Vec<(Instant, f64)>,
    /// Times of the writes that failed.
    errors: Vec<Instant>,
}

/// A stretch of the stall phase: its name and when it began and ended.
struct Window {
    name: &'static str,
    from: Instant,
    to: Instant,
}

impl Samples {
    /// p50/p99/max of the writes that completed in `w`, and the longest
    /// gap between two commits in it.
    fn report(&self, w: &Window) -> Value {
        let in_window: Vec<(Instant, f64)> = self
            .writes
            .iter()
            .copied()
            .filter(|(at, _)| *at >= w.from && *at <= w.to)
            .collect();
        let mut latencies: Vec<f64> = in_window.iter().map(|(_, l)| *l).collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            let n = latencies.len();
            if n == 0 {
                return 0.0;
            }
            latencies[((n as f64 * p) as usize).min(n - 1)]
        };
        let mut last = w.from;
        let mut max_gap: f64 = 0.0;
        for (at, _) in &in_window {
            max_gap = max_gap.max(ms(*at - last));
            last = *at;
        }
        max_gap = max_gap.max(ms(w.to.saturating_duration_since(last)));
        let errors = self
            .errors
            .iter()
            .filter(|at| **at >= w.from && **at <= w.to)
            .count();
        json!({
            "writes": latencies.len(),
            "errors": errors,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "max_ms": latencies.last().copied().unwrap_or(0.0),
            "over_50ms": latencies.iter().filter(|l| **l > 50.0).count(),
            "max_gap_between_commits_ms": max_gap,
        })
    }
}

/// Commits a `Noop` to `group` through node `via` every 5 ms until
/// `stop`.
async fn write_probe(node: canon_raft::RaftNode, group: u64, stop: Arc<AtomicBool>) -> Samples {
    let mut samples = Samples::default();
    let mut at = 1;
    while !stop.load(Ordering::Relaxed) {
        at += 1;
        let started = Instant::now();
        match node.propose(group, Request::new(at, Command::Noop)).await {
            Ok(_) => {
                let now = Instant::now();
                samples.writes.push((now, ms(now - started)));
            }
            Err(_) => samples.errors.push(Instant::now()),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples
}

/// How late the runtime woke a 2 ms ticker, sample by sample (time,
/// lateness ms), until `stop`.
async fn lateness_probe(stop: Arc<AtomicBool>) -> Vec<(Instant, f64)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = Instant::now();
        out.push((now, ms(now - started) - 2.0));
    }
    out
}

/// The age of the oldest quorum acknowledgement a leader of `groups`
/// reports, polled every 5 ms until `stop`: (time, group, age ms).
async fn quorum_probe(
    c: Vec<canon_raft::RaftNode>,
    groups: Vec<u64>,
    stop: Arc<AtomicBool>,
) -> Vec<(Instant, u64, u64)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for g in &groups {
            for n in &c {
                if let Ok(m) = n.metrics(*g) {
                    let m = m.borrow();
                    if m.state == openraft::ServerState::Leader {
                        out.push((Instant::now(), *g, m.millis_since_quorum_ack.unwrap_or(0)));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
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

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A snapshot index of `node`'s `group` at least `index`, within `within`:
/// how long it took.
async fn wait_snapshot(
    node: &canon_raft::RaftNode,
    group: u64,
    index: u64,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let m = node.metrics(group).map_err(err)?.borrow().clone();
        if m.snapshot.is_some_and(|s| s.index >= index) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(format!(
                "no snapshot at {index} of group {group} within {within:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three nodes, one shard, all stopped: two of them hold a snapshot of
/// `n` processes (as if they had applied them), the third (returned) is
/// behind it. Returns that node, the snapshot's index and size, and the
/// generation time.
async fn seed_cluster(
    c: &mut LocalCluster,
    n: u64,
    base: &Path,
) -> Result<(usize, u64, u64, u64), String> {
    let shard = group_of_shard(0);
    c.bootstrap(Duration::from_secs(10)).await.map_err(err)?;
    let leader = c
        .wait_leader(shard, Duration::from_secs(10))
        .await
        .map_err(err)?;
    c.wait_leader(META_GROUP, Duration::from_secs(10))
        .await
        .map_err(err)?;
    let m = {
        // Held only here: a clone of a node kept past its kill keeps its
        // database open, and its restart could not take sled's lock.
        let node = c.running(leader).map_err(err)?.clone();
        for at in 0..5 {
            node.propose(shard, Request::new(at, Command::Noop))
                .await
                .map_err(err)?;
        }
        let m = node.metrics(shard).map_err(err)?.borrow().clone();
        m
    };
    let last = m.last_log_index.unwrap_or(0);
    let membership = (*m.membership_config).clone();
    // Everyone has the entries; then all stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        c.kill(i).await.map_err(err)?;
    }
    // The two up-to-date nodes "applied" N processes' worth of commands
    // after those entries: their snapshot says so.
    let lagging = (leader + 1) % 3;
    let index = last + 10;
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new(
            openraft::CommittedLeaderId::new(m.current_term, id_of(leader)),
            index,
        )),
        last_membership: membership,
        snapshot_id: format!("bench-{index}"),
    };
    let dirs: Vec<_> = (0..3)
        .filter(|i| *i != lagging)
        .map(|i| base.join(format!("node-{}", id_of(i))))
        .collect();
    // Generating and writing take a while: off the runtime.
    let (generate_s, snapshot_bytes) = tokio::task::spawn_blocking(move || {
        let generated = Instant::now();
        let state = fleet_state(n, FleetShape::DEFAULT_KEEP, n);
        let generate_s = generated.elapsed().as_secs();
        let mut snapshot_bytes = 0;
        for dir in dirs {
            let files = SnapFiles::new(&dir, shard);
            files.prepare().map_err(err)?;
            let (temp, bytes) = files
                .write_temp("bench", &meta, state.snapshot_view())
                .map_err(err)?;
            files.publish(&temp).map_err(err)?;
            snapshot_bytes = bytes;
        }
        Ok::<_, String>((generate_s, snapshot_bytes))
    })
    .await
    .map_err(err)??;
    for i in (0..3).filter(|i| *i != lagging) {
        restart(c, i).await?;
    }
    Ok((lagging, index, snapshot_bytes, generate_s))
}

/// The stall phase: writes to the shard (through its leader) and to the
/// meta group, measured in three windows of one run: a baseline with no
/// snapshot work, the leader building a snapshot of the large shard, and
/// the lagging follower receiving and installing it.
async fn stall(n: u64, base: &Path) -> Result<Value, String> {
    let settings = RaftSettings {
        // Only the snapshots this bench asks for.
        snapshot_every: u64::MAX / 2,
        ..RaftSettings::loopback()
    };
    let heartbeat_ms = settings.heartbeat.as_millis();
    let chunk = settings.snapshot_chunk_bytes;
    let chunk_timeout_ms = settings.snapshot_chunk_timeout.as_millis();
    let shard = group_of_shard(0);
    let mut c = LocalCluster::start(base, 3, 1, settings)
        .await
        .map_err(err)?;
    let (lagging, index, snapshot_bytes, generate_s) = seed_cluster(&mut c, n, base).await?;
    let leader = c
        .wait_leader(shard, Duration::from_secs(30))
        .await
        .map_err(err)?;
    let meta_leader = c
        .wait_leader(META_GROUP, Duration::from_secs(30))
        .await
        .map_err(err)?;
    let lead = c.running(leader).map_err(err)?.clone();
    let lead_meta = c.running(meta_leader).map_err(err)?.clone();
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

    let baseline_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let build_from = Instant::now();
    let raft = lead.raft(shard).map_err(err)?.clone();
    raft.trigger().snapshot().await.map_err(err)?;
    let built = wait_snapshot(&lead, shard, index + 1, Duration::from_secs(600)).await?;
    let build_to = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let install_from = Instant::now();
    restart(&mut c, lagging).await?;
    let lag = c.running(lagging).map_err(err)?.clone();
    let installed = wait_snapshot(&lag, shard, index + 1, Duration::from_secs(900)).await;
    let install_to = Instant::now();
    let sent = lead.snapshots_sent(shard, id_of(lagging)).map_err(err)?;
    // A little longer, then stop the probes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let shard_samples = shard_probe.await.map_err(err)?;
    let meta_samples = meta_probe.await.map_err(err)?;
    let late = late.await.map_err(err)?;
    let quorum = quorum.await.map_err(err)?;
    drop((lag, lead, lead_meta, raft));
    c.shutdown().await;
    let windows = [
        Window {
            name: "baseline",
            from: baseline_from,
            to: build_from,
        },
        Window {
            name: "leader_building",
            from: build_from,
            to: build_to,
        },
        Window {
            name: "follower_installing",
            from: install_from,
            to: install_to,
        },
    ];
    let mut phases = serde_json::Map::new();
    for w in &windows {
        let worst_late = late
            .iter()
            .filter(|(at, _)| *at >= w.from && *at <= w.to)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max);
        let oldest_ack = |g: u64| {
            quorum
                .iter()
                .filter(|(at, group, _)| *group == g && *at >= w.from && *at <= w.to)
                .map(|(_, _, age)| *age)
                .max()
                .unwrap_or(0)
        };
        phases.insert(
            w.name.to_string(),
            json!({
                "seconds": ms(w.to - w.from) / 1000.0,
                "writes_shard_group": shard_samples.report(w),
                "writes_meta_group": meta_samples.report(w),
                "oldest_quorum_ack_ms": { "shard": oldest_ack(shard), "meta": oldest_ack(META_GROUP) },
                "runtime_worst_lateness_ms": worst_late,
            }),
        );
    }
    Ok(json!({
        "processes": n,
        "snapshot_bytes": snapshot_bytes,
        "chunk_bytes": chunk,
        "chunk_timeout_ms": chunk_timeout_ms,
        "heartbeat_ms": heartbeat_ms,
        "generate_s": generate_s,
        "leader_built_after_s": built.as_secs_f64(),
        "lagging_node_installed_after_s": installed.as_ref().ok().map(|d| d.as_secs_f64()),
        "install_error": installed.err(),
        "snapshot_transfers_to_the_lagging_node": sent,
        "phases": phases,
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
