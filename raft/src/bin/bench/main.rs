//! `bench`: starts 3 nodes on 127.0.0.1 (real gRPC, the WAL and sled with
//! fsync) and prints, as JSON, commits per second with 1 and with N
//! concurrent writers — all into one shard, and spread over every shard —
//! with p50/p99 commit latency, and failover time (leader killed → first
//! successful write through a survivor) over several trials.
//!
//! Usage: `bench [--writes N] [--trials N] [--writers N] [--shards N]
//! [--signed 0|1|both] [--pairs N] [--single 0|1] [--audit-keep N]
//! [--only PHASE,...]` (defaults 2000, 20, 64, 16, 0, 1, 1, 20000, every
//! phase). With `--signed 1` every write carries a
//! principal and the door's context, as a user's command does, so each one
//! is authorised work for the state machine's audit chain (a record hashed
//! per write); without it, writes are bare `Noop`s, which leave no record.
//! `--signed both` runs every write run bare and signed in the same
//! cluster and reports the signed run's latency and throughput as ratios
//! of the bare one's (`signed_over_bare`): what the audit costs, measured
//! in one run on one machine.
//!
//! The cluster only grows (log, state, audit chain, heap), so whichever
//! run goes second meets a bigger one. `--pairs N` (with `--signed both`)
//! makes N pairs and alternates which side goes first (bare first in pairs
//! 1, 3, …, signed first in pairs 2, 4, …), so with an even N each side
//! goes first as often. With N > 1, `bare` and `signed` hold the median
//! of each figure over that side's N runs (and `runs`: N), and
//! `signed_over_bare` is the ratio of those medians; added beside them:
//! `median_pair_ratio` (per figure, the median over the pairs of signed ÷
//! bare within the pair, which cancels the load the two runs of a pair
//! shared) and `pair_runs` (every pair: its order, both runs and its
//! ratios). With N = 1 (the default) the output is as before: one bare
//! run, then one signed run.
//!
//! Before each run the bench trims every target group's audit chain to
//! its newest `--audit-keep N` records (default 20000, canond's default
//! `audit_keep_records`; 0: never trim), with an `AuditTrimmed` in the
//! log, as canond's retention sweep does each minute. Without it the chain
//! of a cluster that ran many signed runs holds every record of all of
//! them (a million and more), which no canond holds, and every later run,
//! bare or signed, pays for that heap and for snapshotting it. A run's own
//! records are kept: the sweep runs each minute, a run lasts seconds.
//!
//! A 1-writer run makes `--writes` commits, an N-writer run ten times as
//! many; `--single 0` skips the 1-writer runs. Phases:
//! `one_shard`, `all_shards`, `failover`. In `all_shards`, writer `k`'s
//! `i`-th commit goes to shard `(k + i·N) mod shards`, so one writer visits
//! every shard and N writers spread evenly. Every run reports the CPU time
//! the process used and the load average at its start: the machine may be
//! shared, and a CPU-starved run measures the machine, not the code.
//! Data goes to a fresh directory under the system temp dir, removed at the
//! end.
//!
//! These figures are in-process: the writers live in the leader's process
//! and skip the client hop. `bench --compare-etcd [--clients 1,16,64]
//! [--writes N] [--value-bytes 256] [--shards 16] [--trials 20] [--rounds 2]`
//! measures like a user sees it instead, beside etcd ([`compare`]): three
//! node processes (this binary with `--serve-node`, [`node_process`]) and a
//! load generator of its own (`--load`, [`load`]) against Debian's etcd 3.4
//! ([`etcd`]).

mod compare;
mod etcd;
mod load;
mod node_process;
#[path = "../../../benches/support/signed_write.rs"]
mod signed_write;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use canon_raft::local::LocalCluster;
use canon_raft::shard::group_of_shard;
use canon_raft::{Command, GroupId, RaftNode, RaftSettings, Request};
use serde_json::json;

const PHASES: [&str; 3] = ["one_shard", "all_shards", "failover"];

/// canond's default `audit_keep_records` (`canon_node`'s retention, which
/// this crate cannot name).
const AUDIT_KEEP_RECORDS: u64 = 20_000;

struct Args {
    writes: usize,
    trials: usize,
    writers: usize,
    shards: u32,
    signing: Signing,
    /// Pairs of bare and signed runs (`--signed both`).
    pairs: usize,
    /// Whether each phase has a 1-writer run (`--single 0`: only N writers).
    single: bool,
    /// Audit records each target group keeps before a run (0: all).
    audit_keep: u64,
    phases: Vec<String>,
}

/// Which writes a run makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signing {
    Bare,
    Signed,
    /// Each run bare, then signed, with the ratios.
    Both,
}

impl Signing {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "0" => Ok(Self::Bare),
            "1" => Ok(Self::Signed),
            "both" => Ok(Self::Both),
            other => Err(format!("--signed: {other} (0, 1 or both)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Signed => "signed",
            Self::Both => "both",
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        writes: 2000,
        trials: 20,
        writers: 64,
        shards: 16,
        signing: Signing::Bare,
        pairs: 1,
        single: true,
        audit_keep: AUDIT_KEEP_RECORDS,
        phases: PHASES.iter().map(|p| p.to_string()).collect(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--only" {
            args.phases = value.split(',').map(str::to_string).collect();
            if let Some(bad) = args.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
                return Err(format!(
                    "unknown phase {bad} (phases: {})",
                    PHASES.join(",")
                ));
            }
            continue;
        }
        if flag == "--signed" {
            args.signing = Signing::parse(&value)?;
            continue;
        }
        let value = value.parse::<usize>().map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--writes" => args.writes = value,
            "--trials" => args.trials = value,
            "--writers" => args.writers = value.max(1),
            "--shards" => args.shards = u32::try_from(value.max(1)).unwrap_or(u32::MAX),
            "--pairs" => args.pairs = value.max(1),
            "--single" => args.single = value != 0,
            "--audit-keep" => args.audit_keep = value as u64,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// CPU seconds (user + system) this process has used, where Linux tells.
fn cpu_seconds() -> Option<f64> {
    cpu_seconds_of("self")
}

/// CPU seconds (user + system) process `pid` ("self": this one) has used,
/// where Linux tells.
fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

/// The 1-minute load average, where Linux tells.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The sum of the targets' last log indexes (as their leaders see them).
fn log_entries(targets: &[(RaftNode, GroupId)]) -> u64 {
    targets
        .iter()
        .filter_map(|(node, group)| node.metrics(*group).ok()?.borrow().last_log_index)
        .sum()
}

/// Trims each target group's audit chain to its newest `keep` records (0:
/// leaves it), as canond's retention sweep does, through the group's
/// leader; the records the chains hold then.
async fn trim_audit(targets: &[(RaftNode, GroupId)], keep: u64) -> Result<u64, String> {
    let mut held = 0;
    for (node, group) in targets {
        let (_, (len, through)) = node
            .read_applied(*group, |s| {
                let through = Some(keep)
                    .filter(|&k| k > 0)
                    .and_then(|k| s.audit.trim_point_keeping(k));
                (s.audit.records.len() as u64, through)
            })
            .map_err(|e| e.to_string())?;
        held += len;
        if let Some(through) = through {
            let trim = Request::new(now_ms(), Command::AuditTrimmed { through });
            node.propose(*group, trim)
                .await
                .map_err(|e| e.to_string())?;
            // The records kept and the trim's own.
            held -= len - keep - 1;
        }
    }
    Ok(held)
}

/// `total` Noop commits by `writers` concurrent writers, after trimming
/// the targets' audit chains to `audit_keep` records ([`trim_audit`]); writer `k`'s
/// `i`-th commit goes to `targets[(k + i * writers) % targets.len()]` (a
/// group and the node leading it).
async fn run_writes(
    targets: &[(RaftNode, GroupId)],
    writers: usize,
    total: usize,
    signed: bool,
    audit_keep: u64,
) -> Result<serde_json::Value, String> {
    if targets.is_empty() {
        return Err("no target".into());
    }
    let audit_records = trim_audit(targets, audit_keep).await?;
    let per = total.div_ceil(writers);
    let load = load_average();
    let entries_before = log_entries(targets);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..writers {
        let targets = targets.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let (node, group) = &targets[(k + i * writers) % targets.len()];
                let t = Instant::now();
                node.propose(*group, signed_write::write(signed, now_ms()))
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = Vec::with_capacity(per * writers);
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    let entries = log_entries(targets) - entries_before;
    let cpu = match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    all.sort();
    Ok(json!({
        "writers": writers,
        "signed": signed,
        "groups": targets.len(),
        "commits": all.len(),
        "seconds": elapsed.as_secs_f64(),
        "commits_per_sec": all.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
        "log_entries": entries,
        "commits_per_entry": all.len() as f64 / entries.max(1) as f64,
        "cpu_seconds": cpu,
        "cpu_ms_per_commit": cpu.map(|c| c * 1000.0 / all.len().max(1) as f64),
        "load_average_at_start": load,
        "audit_records_at_start": audit_records,
    }))
}

/// The 1-writer run (unless `--single 0`) and the N-writer run into
/// `targets`.
async fn write_phase(
    targets: &[(RaftNode, GroupId)],
    args: &Args,
) -> Result<serde_json::Value, String> {
    let mut report = json!({});
    if args.single {
        report["writers_1"] = signing_runs(
            targets,
            1,
            args.writes,
            args.signing,
            args.pairs,
            args.audit_keep,
        )
        .await?;
    }
    report[format!("writers_{}", args.writers)] = signing_runs(
        targets,
        args.writers,
        args.writes * 10,
        args.signing,
        args.pairs,
        args.audit_keep,
    )
    .await?;
    Ok(report)
}

/// One run of `total` writes as `signing` says; with `Both`, `pairs`
/// pairs of a bare and a signed run, alternating which goes first, and
/// the signed side's figures over the bare side's (see the module doc).
async fn signing_runs(
    targets: &[(RaftNode, GroupId)],
    writers: usize,
    total: usize,
    signing: Signing,
    pairs: usize,
    audit_keep: u64,
) -> Result<serde_json::Value, String> {
    let run = |signed| run_writes(targets, writers, total, signed, audit_keep);
    if signing != Signing::Both {
        return run(signing == Signing::Signed).await;
    }
    let (mut bare_runs, mut signed_runs, mut pair_runs) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let signed_first = pair % 2 == 1;
        let first = run(signed_first).await?;
        let second = run(!signed_first).await?;
        let (bare, signed) = match signed_first {
            true => (second, first),
            false => (first, second),
        };
        pair_runs.push(json!({
            "order": if signed_first { "signed, bare" } else { "bare, signed" },
            "signed_over_bare": ratios(&signed, &bare),
            "bare": bare,
            "signed": signed,
        }));
        bare_runs.push(bare);
        signed_runs.push(signed);
    }
    if let ([bare], [signed]) = (&bare_runs[..], &signed_runs[..]) {
        return Ok(json!({
            "bare": bare,
            "signed": signed,
            "signed_over_bare": ratios(signed, bare),
        }));
    }
    let (bare, signed) = (medians(&bare_runs), medians(&signed_runs));
    let pair_ratios: Vec<serde_json::Value> = pair_runs
        .iter()
        .map(|p| p["signed_over_bare"].clone())
        .collect();
    Ok(json!({
        "pairs": pairs,
        "signed_over_bare": ratios(&signed, &bare),
        "median_pair_ratio": medians(&pair_ratios),
        "bare": bare,
        "signed": signed,
        "pair_runs": pair_runs,
    }))
}

/// The figures a comparison of two runs reports.
const COMPARED: [&str; 4] = ["p50_ms", "p99_ms", "commits_per_sec", "cpu_ms_per_commit"];

/// `signed`'s figures over `bare`'s (null where either is missing or
/// `bare`'s is zero).
fn ratios(signed: &serde_json::Value, bare: &serde_json::Value) -> serde_json::Value {
    let ratio = |key: &str| match (signed[key].as_f64(), bare[key].as_f64()) {
        (Some(s), Some(b)) if b > 0.0 => json!(s / b),
        _ => serde_json::Value::Null,
    };
    COMPARED.iter().map(|k| (k.to_string(), ratio(k))).collect()
}

/// Per figure of a run report, the median over `runs` (the mean of the
/// middle two for an even count); figures missing from every run are
/// left out. `runs`: how many were summarised.
fn medians(runs: &[serde_json::Value]) -> serde_json::Value {
    const FIGURES: [&str; 11] = [
        "p50_ms",
        "p99_ms",
        "commits_per_sec",
        "cpu_ms_per_commit",
        "cpu_seconds",
        "seconds",
        "commits",
        "log_entries",
        "commits_per_entry",
        "load_average_at_start",
        "audit_records_at_start",
    ];
    let mut out = serde_json::Map::new();
    out.insert("runs".into(), json!(runs.len()));
    for key in FIGURES {
        let mut values: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        if let Some(m) = median(&mut values) {
            out.insert(key.into(), json!(m));
        }
    }
    serde_json::Value::Object(out)
}

/// The median of `values` (reordered), none if empty.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

async fn failover(
    c: &mut LocalCluster,
    group: GroupId,
    trials: usize,
) -> Result<serde_json::Value, String> {
    let mut times = Vec::new();
    let n = c.len();
    for _ in 0..trials {
        let leader = c
            .wait_leader(group, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        let survivor = (leader + 1) % n;
        let node = c.running(survivor).map_err(|e| e.to_string())?.clone();
        let started = Instant::now();
        c.kill(leader).await.map_err(|e| e.to_string())?;
        node.propose(group, Request::new(now_ms(), Command::Noop))
            .await
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        c.restart(leader).await.map_err(|e| e.to_string())?;
        // Let the restarted node catch up before the next trial.
        let target = node
            .metrics(group)
            .map_err(|e| e.to_string())?
            .borrow()
            .last_applied
            .map(|l| l.index);
        c.running(leader)
            .map_err(|e| e.to_string())?
            .raft(group)
            .map_err(|e| e.to_string())?
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(target, "catch up")
            .await
            .map_err(|e| e.to_string())?;
    }
    times.sort();
    Ok(json!({
        "trials": times.len(),
        "p50_ms": percentile(&times, 0.50),
        "p99_ms": percentile(&times, 0.99),
        "max_ms": times.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    }))
}

/// Each group's leader node, in shard order.
async fn leaders(c: &LocalCluster, shards: u32) -> Result<Vec<(RaftNode, GroupId)>, String> {
    let mut out = Vec::new();
    for shard in 0..shards {
        let g = group_of_shard(shard);
        let l = c
            .wait_leader(g, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        out.push((c.running(l).map_err(|e| e.to_string())?.clone(), g));
    }
    Ok(out)
}

async fn run(args: Args, base: PathBuf) -> Result<serde_json::Value, String> {
    let settings = RaftSettings::loopback();
    let mut c = LocalCluster::start(&base, 3, args.shards, settings.clone())
        .await
        .map_err(|e| e.to_string())?;
    c.bootstrap(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let every_group = leaders(&c, args.shards).await?;
    let one_group = every_group[..1].to_vec();
    // Warm up connections and caches.
    let (n, writes) = (4 * every_group.len(), 50 * every_group.len());
    let warm_signed = args.signing != Signing::Bare;
    run_writes(&every_group, n, writes, warm_signed, args.audit_keep).await?;
    let mut report = json!({
        "nodes": 3,
        "shards": args.shards,
        "fsync": true,
        "signing": args.signing.name(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "settings": {
            "heartbeat_ms": settings.heartbeat.as_millis() as u64,
            "election_min_ms": settings.election_min.as_millis() as u64,
            "election_max_ms": settings.election_max.as_millis() as u64,
        },
    });
    let has = |p: &str| args.phases.iter().any(|q| q == p);
    if has("one_shard") {
        report["one_shard"] = write_phase(&one_group, &args).await?;
    }
    if has("all_shards") {
        report["all_shards"] = write_phase(&every_group, &args).await?;
    }
    drop(one_group);
    drop(every_group);
    if has("failover") {
        report["failover"] = failover(&mut c, group_of_shard(0), args.trials).await?;
    }
    c.shutdown().await;
    report["load_average_at_end"] = json!(load_average());
    Ok(report)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    match argv.first().map(String::as_str) {
        Some("--serve-node") => {
            let served = node_process::NodeArgs::parse(&argv[1..])
                .map(|a| runtime.block_on(node_process::serve(a)));
            finish(served.and_then(|r| r).map(|()| None))
        }
        Some("--load") => {
            let measured =
                load::LoadArgs::parse(&argv[1..]).map(|a| runtime.block_on(load::run(a)));
            finish(measured.and_then(|r| r).map(Some))
        }
        _ if argv.iter().any(|a| a == "--compare-etcd") => {
            let base = temp_base();
            let compared = compare::CompareArgs::parse(&argv)
                .map(|a| runtime.block_on(compare::run(a, &base)));
            drop(runtime);
            // Best effort: a leftover temp dir is not worth failing the run for.
            let _ = std::fs::remove_dir_all(&base);
            finish(compared.and_then(|r| r).map(Some))
        }
        _ => {
            let args = match parse_args() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("bench: {e}");
                    std::process::exit(2);
                }
            };
            let base = temp_base();
            let result = runtime.block_on(run(args, base.clone()));
            drop(runtime);
            // Best effort: a leftover temp dir is not worth failing the run for.
            let _ = std::fs::remove_dir_all(&base);
            finish(result.map(Some))
        }
    }
}

/// A fresh directory under the system temp dir for this run's data.
fn temp_base() -> PathBuf {
    std::env::temp_dir().join(format!(
        "canon-raft-bench-{}-{}",
        std::process::id(),
        now_ms()
    ))
}

/// Prints the report (if any) or the error, and exits accordingly.
fn finish(result: Result<Option<serde_json::Value>, String>) {
    match result {
        Ok(Some(report)) => println!("{report:#}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_run_of_each_figure() {
        let runs = [
            json!({"p50_ms": 3.0, "cpu_ms_per_commit": 0.5}),
            json!({"p50_ms": 1.0, "cpu_ms_per_commit": null}),
            json!({"p50_ms": 2.0, "cpu_ms_per_commit": 0.3}),
        ];
        let m = medians(&runs);
        assert_eq!(m["runs"], json!(3));
        assert_eq!(m["p50_ms"], json!(2.0));
        // Two known values: their mean.
        assert_eq!(m["cpu_ms_per_commit"], json!(0.4));
        assert!(m.get("p99_ms").is_none());
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn ratios_are_signed_over_bare_and_null_without_a_bare_figure() {
        let bare = json!({"p50_ms": 2.0, "p99_ms": 0.0, "commits_per_sec": 100.0});
        let signed = json!({"p50_ms": 3.0, "p99_ms": 1.0, "commits_per_sec": 80.0});
        let r = ratios(&signed, &bare);
        assert_eq!(r["p50_ms"], json!(1.5));
        assert_eq!(r["commits_per_sec"], json!(0.8));
        assert!(r["p99_ms"].is_null());
        assert!(r["cpu_ms_per_commit"].is_null());
    }
}
