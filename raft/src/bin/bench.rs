//! `bench`: starts 3 nodes on 127.0.0.1 (real gRPC, sled with fsync) and
//! prints, as JSON, commits per second with 1 and with 64 concurrent
//! writers, p50/p99 commit latency, and failover time (leader killed → first
//! successful write through a survivor) over several trials.
//!
//! Usage: `bench [--writes N] [--trials N] [--writers N] [--shards N]`
//! (defaults 2000, 20, 64, 16). The 1-writer and N-writer runs write to one
//! shard; a second N-writer run spreads the writers over every shard (as
//! processes spread over shards). Data goes to a fresh directory under the
//! system temp dir, which is removed at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use canon_raft::local::LocalCluster;
use canon_raft::shard::group_of_shard;
use canon_raft::{Command, GroupId, RaftNode, RaftSettings, Request};
use serde_json::json;

struct Args {
    writes: usize,
    trials: usize,
    writers: usize,
    shards: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        writes: 2000,
        trials: 20,
        writers: 64,
        shards: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<usize>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--writes" => args.writes = value,
            "--trials" => args.trials = value,
            "--writers" => args.writers = value.max(1),
            "--shards" => args.shards = u32::try_from(value.max(1)).unwrap_or(u32::MAX),
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

/// `total` Noop commits by `writers` concurrent writers; writer `k` writes
/// to `targets[k % targets.len()]` (a group and the node leading it).
async fn run_writes(
    targets: &[(RaftNode, GroupId)],
    writers: usize,
    total: usize,
) -> Result<serde_json::Value, String> {
    let per = total.div_ceil(writers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..writers {
        let Some((node, group)) = targets.get(k % targets.len().max(1)).cloned() else {
            return Err("no target".into());
        };
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                node.propose(group, Request::new(now_ms(), Command::Noop))
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
    all.sort();
    Ok(json!({
        "writers": writers,
        "commits": all.len(),
        "seconds": elapsed.as_secs_f64(),
        "commits_per_sec": all.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
    }))
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

async fn run(args: Args, base: PathBuf) -> Result<serde_json::Value, String> {
    let settings = RaftSettings::loopback();
    let mut c = LocalCluster::start(&base, 3, args.shards, settings.clone())
        .await
        .map_err(|e| e.to_string())?;
    c.bootstrap(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let group = group_of_shard(0);
    let leader = c
        .wait_leader(group, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let node = c.running(leader).map_err(|e| e.to_string())?.clone();
    let one_group = vec![(node, group)];
    let mut every_group = Vec::new();
    for shard in 0..args.shards {
        let g = group_of_shard(shard);
        let l = c
            .wait_leader(g, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        every_group.push((c.running(l).map_err(|e| e.to_string())?.clone(), g));
    }
    // Warm up connections and caches.
    run_writes(&one_group, 4, 200).await?;
    let one = run_writes(&one_group, 1, args.writes).await?;
    let many = run_writes(&one_group, args.writers, args.writes * 10).await?;
    let spread = run_writes(&every_group, args.writers, args.writes * 10).await?;
    drop(one_group);
    drop(every_group);
    let fo = failover(&mut c, group, args.trials).await?;
    c.shutdown().await;
    Ok(json!({
        "nodes": 3,
        "shards": args.shards,
        "fsync": true,
        "settings": {
            "heartbeat_ms": settings.heartbeat.as_millis() as u64,
            "election_min_ms": settings.election_min.as_millis() as u64,
            "election_max_ms": settings.election_max.as_millis() as u64,
        },
        "single_writer": one,
        "concurrent_writers": many,
        "concurrent_writers_all_shards": spread,
        "failover": fo,
    }))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let base = std::env::temp_dir().join(format!(
        "canon-raft-bench-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(run(args, base.clone()));
    drop(runtime);
    // Best effort: a leftover temp dir is not worth failing the run for.
    let _ = std::fs::remove_dir_all(&base);
    match result {
        Ok(report) => println!("{report:#}"),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
