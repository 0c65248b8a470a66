//! The scale benchmark of issue #19 §2 (ignored by default; it takes from
//! minutes at 10k processes to hours at 100k): a 3-node loopback dev
//! cluster on the simulated cloud, N processes of ten resources each (a
//! VPC and nine security groups: `examples/bench/ten-resources.lw`), a
//! 60 s tick. Prints one JSON object:
//! - creation: runs committed per second, and the time until every RUN job
//!   succeeded (all converged);
//! - steady state: process CPU time (`/proc/self/stat`, user + system) over
//!   a window, per tick and per 1,000 processes; the process's RSS. The
//!   three nodes, the simulated cloud and this client share one process
//!   here, so the figure is for all of them: a node's share is at most a
//!   third of it plus the cloud's, and each node's replicated state is
//!   measured as encoded bytes per group;
//! - heal: a rogue "all traffic" rule on one security group of each of 100
//!   processes while the rest are enforced; the time until the cloud shows
//!   the group as declared again, p50/p99;
//! - reads: `canon status` first page (100) and `canon status ALIAS`, over
//!   the SDK and as a whole CLI process, p50/p99;
//! - restart: one node stopped and started on its own data; the time until
//!   it serves, and until it leads shards again with an actor for every
//!   process of them (enforcing);
//! - memory by difference: the resident memory given back as each node
//!   stops (heap trimmed), then as the simulated cloud is dropped: what a
//!   node holds, apart from the cloud sharing its process here.
//!
//! ```sh
//! CANON_BENCH_PROCESSES=10000 nice cargo test -p canon-client --release \
//!     --test bench_scale -- --ignored --nocapture
//! ```
//! Other knobs: `CANON_BENCH_CONCURRENCY` (runs in flight, 64),
//! `CANON_BENCH_SHARDS` (8), `CANON_BENCH_TICK_SECS` (60), `CANON_BENCH_STEADY_SECS` (window, 120),
//! `CANON_BENCH_CONVERGE_SECS` (give up after, 7200), `CANON_BENCH_RAFT`
//! (`canond`, the default: canond's Raft timings; `loopback`: `canon dev`'s); `RUST_LOG` (the nodes' logs on stderr).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_client::{pb, Client};
use canon_cloud::Scope;
use canon_model::{Ipv4Cidr, Peer, Protocol, Rule};
use canon_node::dev::{DevCluster, DevOptions};
use futures::StreamExt;
use serde_json::json;

mod support;
use support::dev_cluster::{admin_client, compiled as compile};
use support::latency::summary;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The nodes' Raft timings: `CANON_BENCH_RAFT=canond` (the default) for
/// canond's (100 ms heartbeat, 400–800 ms elections), as a deployment
/// runs; `loopback` for `canon dev`'s quick ones (50 ms, 200–400 ms).
fn raft_timings() -> canon_raft::RaftSettings {
    match std::env::var("CANON_BENCH_RAFT").as_deref() {
        Ok("loopback") => canon_raft::RaftSettings::loopback(),
        _ => canon_raft::RaftSettings::default(),
    }
}

/// This process's CPU time (user + system), seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY-free: sysconf is not wrapped; Linux's USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// VmRSS and VmHWM of this process, MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| (kb / 1024.0).round())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Every live process, paged through (page of 1000).
async fn every_process(client: &Client) -> Vec<pb::ProcessSummary> {
    let mut rows = Vec::new();
    let mut pages = std::pin::pin!(client.status_pages(false, 1000));
    while let Some(page) = pages.next().await {
        match page {
            Ok(mut p) => rows.append(&mut p),
            Err(e) => {
                eprintln!("listing failed: {e}");
                return Vec::new();
            }
        }
    }
    rows
}

/// Creates `n` processes, `concurrency` in flight: commit latencies (ms)
/// and errors.
async fn create(
    client: &Arc<Client>,
    n: usize,
    concurrency: usize,
    c: &pb::CompiledComposition,
) -> (Vec<f64>, Vec<String>) {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    let mut ms = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (client, c) = (client.clone(), c.clone());
        set.spawn(async move {
            let t = Instant::now();
            let r = client.run(&format!("p-{i:06}"), c, false).await;
            drop(permit);
            r.map(|_| t.elapsed().as_secs_f64() * 1000.0)
                .map_err(|e| e.to_string())
        });
        while let Some(done) = set.try_join_next() {
            match done.unwrap() {
                Ok(v) => ms.push(v),
                Err(e) => errors.push(e),
            }
        }
        if i % 10_000 == 9_999 {
            eprintln!("[bench] {} runs committed", ms.len());
        }
    }
    while let Some(done) = set.join_next().await {
        match done.unwrap() {
            Ok(v) => ms.push(v),
            Err(e) => errors.push(e),
        }
    }
    (ms, errors)
}

/// Waits until every process's RUN job succeeded (or `limit` passes): the
/// time it took and how many had.
async fn converge(client: &Client, n: usize, limit: Duration) -> (f64, usize) {
    let t = Instant::now();
    loop {
        let rows = every_process(client).await;
        let done = rows.iter().filter(|p| p.last_message == "SUCCESS").count();
        eprintln!(
            "[bench] {done}/{n} converged after {:.0} s",
            t.elapsed().as_secs_f64()
        );
        if done >= n || t.elapsed() > limit {
            return (t.elapsed().as_secs_f64(), done);
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Times `f` `n` times (ms).
async fn time_each<F, Fut>(n: usize, mut f: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms
}

/// A whole `canon ARGS` process (ms), which must succeed.
fn cli_ms(config: &std::path::Path, args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canon"))
        .args(args)
        .env("CANON_CONFIG", config)
        .env_remove("CANON_ENDPOINTS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64() * 1000.0
}

/// A rogue rule on a group, not yet seen healed: its scope, group id,
/// the group as declared, and when the rule was made.
type Rogue = (Scope, String, canon_model::ObservedSpec, Instant);

/// Rogue rules on one group of each of `aliases`, spread over a tick,
/// watched for their heal (every 100 ms) from the moment each is made:
/// the time until each group is as declared again (ms), and how many never
/// healed within `limit` after the last rule was made.
async fn heal(
    cluster: &DevCluster,
    client: &Client,
    aliases: &[String],
    tick: Duration,
    limit: Duration,
) -> (Vec<f64>, usize) {
    let sim = cluster.sim.clone().expect("a simulated cloud");
    let spacing = tick / aliases.len().max(1) as u32;
    let mut to_make = aliases.iter().enumerate();
    let mut next_at = Instant::now();
    let mut last_made = None;
    let mut pending: Vec<Rogue> = Vec::new();
    let mut healed = Vec::new();
    loop {
        if last_made.is_none() && Instant::now() >= next_at {
            match to_make.next() {
                Some((i, alias)) => {
                    pending.extend(make_rogue(&sim, client, i, alias).await);
                    next_at += spacing;
                }
                None => last_made = Some(Instant::now()),
            }
        }
        pending.retain(|(scope, id, before, at)| {
            let done = sim.describe(scope, id).is_some_and(|r| r.spec == *before);
            if done {
                healed.push(at.elapsed().as_secs_f64() * 1000.0);
            }
            !done
        });
        if last_made.is_some_and(|t: Instant| pending.is_empty() || t.elapsed() >= limit) {
            return (healed, pending.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A rogue "all traffic" rule on one of `alias`'s groups (the `i`-th, round
/// the groups), if it has any.
async fn make_rogue(
    sim: &canon_cloud::SimCloud,
    client: &Client,
    i: usize,
    alias: &str,
) -> Option<Rogue> {
    let status = client.status(alias, false).await.unwrap();
    let account = status.processes[0].account.clone();
    let groups: Vec<&pb::ResourceView> = status
        .resources
        .iter()
        .filter(|r| r.cloud_id.starts_with("sg-"))
        .collect();
    let group = groups.get(i % groups.len().max(1))?;
    let scope = Scope::new(account, group.region.clone());
    let before = sim.describe(&scope, &group.cloud_id).unwrap().spec;
    let rogue = Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY));
    sim.rogue_authorize_ingress(&scope, &group.cloud_id, rogue)
        .unwrap();
    Some((scope, group.cloud_id.clone(), before, Instant::now()))
}

/// Over the three nodes: processes new observations named as changed,
/// actors woken for it, and actors that ticked for it.
fn observed_news(cluster: &DevCluster) -> (u64, u64, u64) {
    (1..=3)
        .filter_map(|id| cluster.scheduler_stats(id))
        .map(|s| s.observed_news())
        .fold((0, 0, 0), |a, n| (a.0 + n.0, a.1 + n.1, a.2 + n.2))
}

/// Each node's newest observation: the resources it kept (of the
/// processes it leads), those it refused, and how long it took.
fn observations_by_node(cluster: &DevCluster) -> serde_json::Value {
    (1..=3)
        .filter_map(|id| {
            let stats = cluster.scheduler_stats(id)?;
            let (kept, refused) = stats.last_observation();
            let took_ms = stats.last_observation_took().as_millis() as u64;
            Some((
                id.to_string(),
                json!({"kept": kept, "refused": refused, "took_ms": took_ms}),
            ))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Each group's state encoded (bytes) on member `id`: what a node holds.
async fn state_bytes(cluster: &DevCluster, id: u64) -> BTreeMap<u64, usize> {
    let node = cluster.node(id).expect("the node runs");
    let mut out = BTreeMap::new();
    for g in node.groups() {
        let bytes = node
            .read(g, canon_raft::Consistency::Stale, |s| {
                canon_raft::codec::encode(s).map(|b| b.len()).unwrap_or(0)
            })
            .await
            .unwrap_or(0);
        out.insert(g, bytes);
    }
    out
}

/// Restarts member `id`: seconds until it serves again, and until it
/// leads shards again with an actor started for each of their processes
/// (None: not within `limit`).
async fn restart(
    cluster: &mut DevCluster,
    id: u64,
    per_group: &BTreeMap<u64, usize>,
    limit: Duration,
) -> serde_json::Value {
    let t = Instant::now();
    cluster.restart_node(id).await.unwrap();
    let serving = t.elapsed().as_secs_f64();
    let mut enforcing = None;
    let mut led = Vec::new();
    while t.elapsed() < limit {
        let node = cluster.node(id).unwrap();
        led = node
            .groups()
            .into_iter()
            .filter(|g| *g != canon_raft::META_GROUP)
            .filter(|g| node.leadership(*g).is_ok_and(|l| l.borrow().is_me))
            .collect();
        let processes: usize = led
            .iter()
            .map(|g| per_group.get(g).copied().unwrap_or(0))
            .sum();
        let started = cluster
            .scheduler_stats(id)
            .map_or(0, |s| s.actors_started() as usize);
        if !led.is_empty() && started >= processes {
            enforcing = Some(t.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    json!({
        "node": id,
        "serving_s": (serving * 100.0).round() / 100.0,
        "enforcing_s": enforcing.map(|s| (s * 100.0).round() / 100.0),
        "shards_led_after": led,
    })
}

#[test]
#[ignore]
fn scale() {
    // As canond's main does, before this process's threads start (the
    // test harness's and the runtime's; canon_node::malloc says why).
    let arenas = canon_node::malloc::cap_arenas();
    // `RUST_LOG=warn` (say): the nodes' logs on stderr, to see why a run
    // stalls (elections, replication errors).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let n: usize = env_or("CANON_BENCH_PROCESSES", 100_000);
    let concurrency: usize = env_or("CANON_BENCH_CONCURRENCY", 64);
    let shards: u32 = env_or("CANON_BENCH_SHARDS", 8);
    let steady = Duration::from_secs(env_or("CANON_BENCH_STEADY_SECS", 120));
    let tick = Duration::from_secs(env_or("CANON_BENCH_TICK_SECS", 60));
    let converge_limit = Duration::from_secs(env_or("CANON_BENCH_CONVERGE_SECS", 7200));
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (rss_start, _) = rss_mib();
    let mut cluster = rt
        .block_on(DevCluster::start(DevOptions {
            tick,
            shards,
            signed_reads: false,
            tls: false,
            save_cloud: false,
            raft: raft_timings(),
            ..DevOptions::new(tmp.path())
        }))
        .unwrap();
    let _inside = rt.enter();
    let config = support::dev_cluster::client_toml(&cluster, tmp.path());
    let client = admin_client(&cluster);
    let composition = compile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/bench/ten-resources.lw"),
    );
    let (rss_empty, _) = rss_mib();
    // The idle cluster's own cost (heartbeats of every group on three
    // nodes, the balancer): subtracted from the steady state's.
    let idle = steady.min(Duration::from_secs(60));
    let cpu0 = cpu_secs();
    std::thread::sleep(idle);
    let idle_cpu_per_s = (cpu_secs() - cpu0) / idle.as_secs_f64();
    let mut report = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        eprintln!("[bench] {key}: {value}");
        report.insert(key.to_string(), value);
    };
    put("cluster", json!(format!("3 nodes, loopback, one process (DevCluster), simulated cloud, {shards} shards, tick {} s, unsigned reads, no TLS", tick.as_secs())));
    put(
        "profile",
        json!(if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }),
    );
    put("processes", json!(n));
    put("resources_per_process", json!(10));
    put("malloc_arenas_capped_at", json!(arenas));
    let raft = raft_timings();
    put(
        "raft_timings_ms",
        json!({
            "heartbeat": raft.heartbeat.as_millis() as u64,
            "election_min": raft.election_min.as_millis() as u64,
            "election_max": raft.election_max.as_millis() as u64,
        }),
    );

    // Creation.
    let started = Instant::now();
    let cpu0 = cpu_secs();
    let (run_ms, run_errors) = rt.block_on(create(&client, n, concurrency, &composition));
    let commit_s = started.elapsed().as_secs_f64();
    put(
        "creation",
        json!({
            "concurrency": concurrency,
            "committed": run_ms.len(),
            "errors": run_errors.len(),
            "first_error": run_errors.first(),
            "commit_s": (commit_s * 10.0).round() / 10.0,
            "runs_per_s": (run_ms.len() as f64 / commit_s).round(),
            "run_to_commit": summary(run_ms.clone()),
        }),
    );
    let (converge_s, converged) = rt.block_on(converge(&client, run_ms.len(), converge_limit));
    let all_converged_s = started.elapsed().as_secs_f64();
    put(
        "converged",
        json!({
            "processes": converged,
            "of": run_ms.len(),
            "after_last_commit_s": converge_s.round(),
            "from_first_run_s": all_converged_s.round(),
            "cpu_s": (cpu_secs() - cpu0).round(),
        }),
    );

    // Steady state: settle one tick, then a window.
    std::thread::sleep(tick);
    let ticks0: u64 = (1..=3)
        .filter_map(|id| cluster.scheduler_stats(id))
        .map(|s| s.ticks())
        .sum();
    let cpu0 = cpu_secs();
    std::thread::sleep(steady);
    let cpu = cpu_secs() - cpu0;
    let ticks: u64 = (1..=3)
        .filter_map(|id| cluster.scheduler_stats(id))
        .map(|s| s.ticks())
        .sum::<u64>()
        - ticks0;
    let tick_intervals = steady.as_secs_f64() / tick.as_secs_f64();
    let (rss, hwm) = rss_mib();
    let state = rt.block_on(state_bytes(&cluster, 1));
    let state_total: usize = state.values().sum();
    put(
        "steady",
        json!({
            "window_s": steady.as_secs(),
            "process_cpu_s": (cpu * 100.0).round() / 100.0,
            "cpu_ms_per_tick_per_1k_processes": (cpu * 1000.0 / tick_intervals / (n as f64 / 1000.0) * 10.0).round() / 10.0,
        "idle_cluster_cpu_share_of_one_core": (idle_cpu_per_s * 1000.0).round() / 1000.0,
        "net_of_idle_cpu_ms_per_tick_per_1k_processes": ((cpu - idle_cpu_per_s * steady.as_secs_f64()).max(0.0) * 1000.0 / tick_intervals / (n as f64 / 1000.0) * 10.0).round() / 10.0,
            "cpu_share_of_one_core": (cpu / steady.as_secs_f64() * 1000.0).round() / 1000.0,
            "actor_ticks_in_window": ticks,
            "rss_mib": {"before_cluster": rss_start, "empty_cluster": rss_empty, "now": rss, "peak": hwm},
            "rss_note": "one process holds 3 nodes, the simulated cloud (all resources) and the client",
            "state_bytes_per_node": state_total,
            "observation_resources_by_node": observations_by_node(&cluster),
            "state_bytes_per_group_node_1": state,
        }),
    );

    // Heal: 100 processes spread over the estate.
    let every = rt.block_on(every_process(&client));
    let step = (every.len() / 100).max(1);
    let chosen: Vec<String> = every
        .iter()
        .step_by(step)
        .take(100)
        .map(|p| p.alias.clone())
        .collect();
    let news0 = observed_news(&cluster);
    let (healed, unhealed) = rt.block_on(heal(&cluster, &client, &chosen, tick, 5 * tick));
    let news = observed_news(&cluster);
    put(
        "heal",
        json!({
            "trials": chosen.len(),
            "unhealed_within_5_ticks": unhealed,
            "observed_news_during": {
                "processes_named": news.0 - news0.0,
                "actors_woken": news.1 - news0.1,
                "actors_ticked": news.2 - news0.2,
            },
            "latency": summary(healed),
            "goal_p99_ms": tick.as_millis() as u64 + 1000,
        }),
    );

    // Reads.
    let aliases: Vec<String> = every.iter().map(|p| p.alias.clone()).collect();
    let pick = |i: usize| aliases[(i * 7919) % aliases.len()].clone();
    let sdk_page = rt.block_on(time_each(50, |_| {
        let client = client.clone();
        async move {
            let page = client.status_page(false, 100, "").await.unwrap();
            assert_eq!(page.processes.len(), 100.min(n));
        }
    }));
    let sdk_alias = rt.block_on(time_each(50, |i| {
        let (client, alias) = (client.clone(), pick(i));
        async move {
            client.status(&alias, false).await.unwrap();
        }
    }));
    let cli_page: Vec<f64> = (0..10)
        .map(|_| cli_ms(&config, &["status", "--limit", "100"]))
        .collect();
    let cli_alias: Vec<f64> = (0..10)
        .map(|i| cli_ms(&config, &["status", &pick(i + 100)]))
        .collect();
    let t = Instant::now();
    let listed = rt.block_on(every_process(&client)).len();
    let all_pages_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let whole = rt
        .block_on(client.status("", false))
        .map(|r| r.processes.len());
    let unpaged_s = t.elapsed().as_secs_f64();
    put(
        "reads",
        json!({
            "status_first_page_100_sdk": summary(sdk_page),
            "status_first_page_100_cli_process": summary(cli_page),
            "status_alias_sdk": summary(sdk_alias),
            "status_alias_cli_process": summary(cli_alias),
            "every_page_of_1000_sdk_s": (all_pages_s * 100.0).round() / 100.0,
            "processes_listed": listed,
            "unpaged_status_s": (unpaged_s * 100.0).round() / 100.0,
            "unpaged_status_rows": whole.map_err(|e| e.to_string()),
        }),
    );

    // Restart one node with everything.
    let mut per_group: BTreeMap<u64, usize> = BTreeMap::new();
    for p in &every {
        *per_group.entry(p.group).or_default() += 1;
    }
    let restarted = rt.block_on(restart(
        &mut cluster,
        2,
        &per_group,
        Duration::from_secs(1800),
    ));
    put("restart", restarted);
    put(
        "memory_by_difference",
        rt.block_on(memory_by_difference(cluster)),
    );

    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(report)).unwrap()
    );
}

/// The process's RSS (MiB) after its heap's free pages went back to the
/// system and a moment for tasks to end.
async fn trimmed_rss_mib() -> f64 {
    tokio::time::sleep(Duration::from_secs(3)).await;
    canon_node::malloc::trim();
    rss_mib().0
}

/// What the nodes and the simulated cloud hold, measured by difference:
/// each node stopped in turn (the heap trimmed after each), then the
/// cloud dropped. A node stopped after another includes what it took over
/// from it (the survivors lead its shards), so the mean is the fairer
/// per-node figure; what is left at the end is the client, the runtime
/// and malloc's fragmentation.
async fn memory_by_difference(mut cluster: DevCluster) -> serde_json::Value {
    let mut before = trimmed_rss_mib().await;
    let with_everything = before;
    let mut freed = serde_json::Map::new();
    for id in 1..=3 {
        if cluster.stop_node(id).await.is_err() {
            continue;
        }
        let after = trimmed_rss_mib().await;
        freed.insert(format!("node_{id}"), json!(before - after));
        before = after;
    }
    let nodes_mib = with_everything - before;
    cluster.shutdown().await;
    let after_cloud = trimmed_rss_mib().await;
    json!({
        "rss_trimmed_mib": with_everything,
        "freed_stopping_each_node_mib": freed,
        "nodes_mib": nodes_mib,
        "node_mean_mib": (nodes_mib / 3.0).round(),
        "simulated_cloud_mib": before - after_cloud,
        "left_mib": after_cloud,
        "note": "nodes stopped in turn, heap trimmed (malloc_trim) after each; a later node includes the shards it took over from an earlier one",
    })
}
