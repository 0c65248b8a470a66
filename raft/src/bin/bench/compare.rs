//! `bench --compare-etcd`: Canon's Raft and etcd measured like for like on
//! this machine, as a user sees them (issue #19 §3):
//!
//! - three Canon node processes (`--serve-node`: sled, fsync before
//!   acknowledging, real gRPC on loopback) beside a three-member etcd 3.4
//!   from Debian's package, both with a 50 ms heartbeat and elections drawn
//!   from 200–400 ms;
//! - a load generator that is a process of its own (`--load`), writing
//!   256-byte values into the replicated state (Canon: `BenchPut` into the
//!   group's state; etcd: `Put`), with 1, 16 and 64 clients into one group,
//!   and 64 clients over 16 shards (Canon) against etcd's one group;
//! - the two systems alternate, run after run, so a machine that slows
//!   down slows both; each pair and its ratio are printed, with every raw
//!   run;
//! - failover: the leader killed with SIGKILL, then the time to the next
//!   acknowledged write through a survivor, trials alternating.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use canon_raft::grpc::GrpcTransport;
use canon_raft::node::{find_leader, propose_via};
use canon_raft::shard::{all_groups, group_of_shard};
use canon_raft::{Command, GroupId, NodeId, RaftSettings, Request};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command as Process};

use super::etcd::{EtcdClient, EtcdCluster};
use super::load::{LoadArgs, System};
use super::node_process::NodeArgs;
use super::{cpu_seconds_of, load_average, now_ms, percentile};

/// How long a node process may take to serve.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Bound on one write attempt while a leader is being replaced.
const FAILOVER_ATTEMPT: Duration = Duration::from_millis(100);
/// Pause between failed attempts (Canon's own retry pause, both sides).
const FAILOVER_RETRY: Duration = Duration::from_millis(20);
/// Time a restarted member gets to catch up before the next trial.
const REJOIN_SETTLE: Duration = Duration::from_secs(2);

/// What `--compare-etcd` is told.
pub struct CompareArgs {
    pub clients: Vec<usize>,
    /// Writes of a 1-client run; runs with more clients make ten times as many.
    pub writes: usize,
    pub value_bytes: usize,
    pub shards: u32,
    pub trials: usize,
    /// Alternating rounds of every write scenario.
    pub rounds: usize,
}

impl CompareArgs {
    pub fn parse(flags: &[String]) -> Result<CompareArgs, String> {
        let mut a = CompareArgs {
            clients: vec![1, 16, 64],
            writes: 2000,
            value_bytes: 256,
            shards: 16,
            trials: 20,
            rounds: 2,
        };
        let mut it = flags.iter().filter(|f| *f != "--compare-etcd");
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--clients" => {
                    a.clients = value
                        .split(',')
                        .map(|c| {
                            c.parse::<usize>()
                                .map_err(|e| format!("--clients {c}: {e}"))
                        })
                        .collect::<Result<_, _>>()?
                }
                "--writes" => a.writes = number()?.max(1),
                "--value-bytes" => a.value_bytes = number()?,
                "--shards" => a.shards = u32::try_from(number()?.max(1)).unwrap_or(u32::MAX),
                "--trials" => a.trials = number()?,
                "--rounds" => a.rounds = number()?.max(1),
                other => return Err(format!("--compare-etcd: unknown flag {other}")),
            }
        }
        Ok(a)
    }
}

/// Three Canon node processes.
struct CanonProcesses {
    exe: PathBuf,
    nodes: Vec<NodeArgs>,
    children: Vec<Option<Child>>,
}

impl CanonProcesses {
    async fn start(exe: &Path, base: &Path, shards: u32) -> Result<CanonProcesses, String> {
        let addrs: Vec<String> = free_ports(3)?
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let members: BTreeMap<NodeId, String> = (1..).zip(addrs.iter().cloned()).collect();
        let nodes = (1..)
            .zip(&addrs)
            .map(|(id, addr)| NodeArgs {
                id,
                addr: addr.clone(),
                dir: base.join(format!("canon-{id}")),
                shards,
                members: members.clone(),
                init: id == 1,
            })
            .collect();
        let mut c = CanonProcesses {
            exe: exe.to_path_buf(),
            nodes,
            children: vec![None, None, None],
        };
        for i in 0..3 {
            c.launch(i).await?;
        }
        Ok(c)
    }

    async fn launch(&mut self, i: usize) -> Result<(), String> {
        let mut child = Process::new(&self.exe)
            .args(self.nodes[i].to_flags())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start node {}: {e}", i + 1))?;
        let stdout = child.stdout.take().ok_or("node stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_WITHIN, lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line == "ready" => {}
            other => return Err(format!("node {} did not start: {other:?}", i + 1)),
        }
        self.children[i] = Some(child);
        Ok(())
    }

    /// The running nodes' process ids.
    fn pids(&self) -> Vec<u32> {
        self.children
            .iter()
            .flatten()
            .filter_map(Child::id)
            .collect()
    }

    fn members(&self) -> Vec<(NodeId, String)> {
        self.nodes.iter().map(|n| (n.id, n.addr.clone())).collect()
    }

    fn endpoints(&self) -> String {
        self.members()
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL node index `i`.
    async fn kill(&mut self, i: usize) -> Result<(), String> {
        let mut child = self.children[i]
            .take()
            .ok_or_else(|| format!("node {} is not running", i + 1))?;
        child.start_kill().map_err(|e| e.to_string())?;
        child.wait().await.map(drop).map_err(|e| e.to_string())
    }

    async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].init = false;
        self.launch(i).await
    }
}

/// `n` ports free on 127.0.0.1 a moment ago.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// Waits until every group has a leader.
async fn wait_leaders(
    transport: &GrpcTransport,
    members: &[(NodeId, String)],
    groups: &[GroupId],
) -> Result<(), String> {
    let started = Instant::now();
    for g in groups {
        while find_leader(transport, members, *g, Duration::from_millis(500))
            .await
            .is_none()
        {
            if started.elapsed() > READY_WITHIN {
                return Err(format!("group {g} elected no leader"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// Waits (up to [`READY_WITHIN`]) for Canon's balancer to spread the
/// groups' leaders as a canond's does — no node leading two more than
/// another — and returns how many each node leads.
async fn wait_balanced(
    transport: &GrpcTransport,
    members: &[(NodeId, String)],
    groups: &[GroupId],
) -> BTreeMap<NodeId, usize> {
    let started = Instant::now();
    loop {
        let mut counts: BTreeMap<NodeId, usize> = members.iter().map(|(id, _)| (*id, 0)).collect();
        for g in groups {
            if let Some(l) = find_leader(transport, members, *g, Duration::from_millis(500)).await {
                *counts.entry(l).or_default() += 1;
            }
        }
        let most = counts.values().max().copied().unwrap_or(0);
        let least = counts.values().min().copied().unwrap_or(0);
        if most - least <= 1 || started.elapsed() > READY_WITHIN {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One write scenario: its name, clients and Canon's groups.
struct Scenario {
    name: String,
    clients: usize,
    groups: Vec<GroupId>,
}

fn scenarios(a: &CompareArgs) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = a
        .clients
        .iter()
        .map(|c| Scenario {
            name: format!("clients_{c}"),
            clients: *c,
            groups: vec![group_of_shard(0)],
        })
        .collect();
    let most = a.clients.iter().copied().max().unwrap_or(64);
    out.push(Scenario {
        name: format!("clients_{most}_over_{}_shards", a.shards),
        clients: most,
        groups: (0..a.shards).map(group_of_shard).collect(),
    });
    out
}

/// Runs one load generator process and returns its JSON.
async fn load_run(exe: &Path, args: LoadArgs) -> Result<Value, String> {
    let out = Process::new(exe)
        .args(args.to_flags())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("load generator: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "load generator ({}) failed: {}",
            args.system.name(),
            out.status
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("load generator output: {e}"))
}

/// Runs the comparison with data under `base`.
pub async fn run(a: CompareArgs, base: &Path) -> Result<Value, String> {
    let etcd_binary = EtcdCluster::find_binary()?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let settings = RaftSettings::loopback();
    let load_at_start = load_average();
    let mut canon = CanonProcesses::start(&exe, base, a.shards).await?;
    let transport = GrpcTransport::new(Duration::from_millis(500));
    let groups: Vec<GroupId> = all_groups(a.shards).collect();
    wait_leaders(&transport, &canon.members(), &groups).await?;
    let ports = free_ports(6)?;
    let pairs: Vec<(u16, u16)> = ports.chunks(2).map(|p| (p[0], p[1])).collect();
    let mut etcd = EtcdCluster::start(
        etcd_binary.clone(),
        base,
        &pairs,
        etcd_heartbeat_ms(&settings),
        millis(settings.election_min),
    )?;
    etcd.leader(READY_WITHIN).await?;
    let leaders_per_node = wait_balanced(&transport, &canon.members(), &groups).await;
    let writes = write_rounds(&a, &exe, &canon, &etcd).await?;
    let failover = failover_trials(&a, &mut canon, &mut etcd, &transport).await?;
    etcd.stop();
    let report = json!({
        "what": "3 Canon node processes vs 3 etcd members on loopback, a separate \
                 load-generator process, fsync before acknowledging on both",
        "etcd_version": etcd_version(&etcd_binary),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "value_bytes": a.value_bytes,
        "settings": {
            "heartbeat_ms": millis(settings.heartbeat),
            "election_ms": [millis(settings.election_min), millis(settings.election_max)],
            "etcd_flags": format!("--heartbeat-interval {} --election-timeout {}",
                etcd_heartbeat_ms(&settings), millis(settings.election_min)),
        },
        "load_average_at_start": load_at_start,
        "canon_leaders_per_node": leaders_per_node,
        "writes": writes,
        "failover": failover,
        "load_average_at_end": load_average(),
    });
    Ok(with_goals(report, &a))
}

/// etcd's heartbeat: Canon's, unless etcd refuses it (it wants an election
/// timeout at least 5 heartbeats long), then the longest it accepts.
fn etcd_heartbeat_ms(settings: &RaftSettings) -> u64 {
    millis(settings.heartbeat).min(millis(settings.election_min) / 5)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn etcd_version(binary: &Path) -> Option<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(str::to_string)
}

/// Every scenario `rounds` times, the two systems alternating; per
/// scenario the raw runs, each system's median and the ratio.
async fn write_rounds(
    a: &CompareArgs,
    exe: &Path,
    canon: &CanonProcesses,
    etcd: &EtcdCluster,
) -> Result<Value, String> {
    let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for round in 0..a.rounds {
        for s in scenarios(a) {
            let order = if round % 2 == 0 {
                [System::Canon, System::Etcd]
            } else {
                [System::Etcd, System::Canon]
            };
            for system in order {
                let endpoints = match system {
                    System::Canon => canon.endpoints(),
                    System::Etcd => etcd.urls().join(","),
                };
                let writes = if s.clients == 1 {
                    a.writes
                } else {
                    a.writes * 10
                };
                let args = LoadArgs {
                    system,
                    endpoints,
                    clients: s.clients,
                    writes,
                    value_bytes: a.value_bytes,
                    groups: s.groups.clone(),
                };
                let servers = match system {
                    System::Canon => canon.pids(),
                    System::Etcd => etcd.pids(),
                };
                let cpu_before = servers_cpu(&servers);
                let mut run = load_run(exe, args).await?;
                let cpu = servers_cpu(&servers).zip(cpu_before).map(|(b, a)| b - a);
                let writes = run["writes"].as_f64().unwrap_or(0.0).max(1.0);
                run["servers_cpu_seconds"] = json!(cpu);
                run["servers_cpu_ms_per_write"] = json!(cpu.map(|c| c * 1000.0 / writes));
                eprintln!("bench: {} {} {}", s.name, system.name(), run);
                runs.entry(s.name.clone()).or_default().push(run);
            }
        }
    }
    Ok(runs
        .into_iter()
        .map(|(name, runs)| (name, pair_summary(runs)))
        .collect::<serde_json::Map<_, _>>()
        .into())
}

/// CPU seconds the server processes `pids` have used, where Linux tells.
fn servers_cpu(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds_of(&p.to_string())).sum()
}

/// The median of `key` over the runs of `system`.
fn median(runs: &[Value], system: &str, key: &str) -> Option<f64> {
    let mut v: Vec<f64> = runs
        .iter()
        .filter(|r| r["system"] == system)
        .filter_map(|r| r[key].as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    let upper = v.len() / 2;
    // An even count: the mean of the middle two.
    match v.len() % 2 {
        1 => v.get(upper).copied(),
        _ => Some((v.get(upper.checked_sub(1)?)? + v.get(upper)?) / 2.0),
    }
}

fn pair_summary(runs: Vec<Value>) -> Value {
    let side = |system: &str| {
        json!({
            "writes_per_sec": median(&runs, system, "writes_per_sec"),
            "p50_ms": median(&runs, system, "p50_ms"),
            "p99_ms": median(&runs, system, "p99_ms"),
            "servers_cpu_ms_per_write": median(&runs, system, "servers_cpu_ms_per_write"),
        })
    };
    let ratio = match (
        median(&runs, "canon", "writes_per_sec"),
        median(&runs, "etcd", "writes_per_sec"),
    ) {
        (Some(c), Some(e)) if e > 0.0 => Some(c / e),
        _ => None,
    };
    json!({
        "canon": side("canon"),
        "etcd": side("etcd"),
        "canon_over_etcd_throughput": ratio,
        "runs": runs,
    })
}

/// Failover trials, alternating Canon's and etcd's.
async fn failover_trials(
    a: &CompareArgs,
    canon: &mut CanonProcesses,
    etcd: &mut EtcdCluster,
    transport: &GrpcTransport,
) -> Result<Value, String> {
    let (mut c, mut e) = (Vec::new(), Vec::new());
    for _ in 0..a.trials {
        c.push(canon_failover(canon, transport).await?);
        e.push(etcd_failover(etcd).await?);
    }
    c.sort();
    e.sort();
    let side = |t: &[Duration]| {
        json!({
            "trials": t.len(),
            "p50_ms": percentile(t, 0.50),
            "p99_ms": percentile(t, 0.99),
            "max_ms": t.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        })
    };
    let ratio = |p: f64| {
        let (cv, ev) = (percentile(&c, p), percentile(&e, p));
        (ev > 0.0).then(|| cv / ev)
    };
    Ok(json!({
        "canon": side(&c),
        "etcd": side(&e),
        "canon_over_etcd": { "p50": ratio(0.50), "p99": ratio(0.99) },
    }))
}

/// Kills the leader of shard 0's group; the time to the next write a
/// survivor acknowledges. The node is restarted and let catch up.
async fn canon_failover(
    canon: &mut CanonProcesses,
    transport: &GrpcTransport,
) -> Result<Duration, String> {
    let group = group_of_shard(0);
    let members = canon.members();
    let leader = find_leader(transport, &members, group, Duration::from_secs(1))
        .await
        .ok_or("no leader before the kill")?;
    let index = members
        .iter()
        .position(|(id, _)| *id == leader)
        .ok_or("leader is not a member")?;
    let survivors: Vec<_> = members
        .iter()
        .filter(|(id, _)| *id != leader)
        .cloned()
        .collect();
    let started = Instant::now();
    canon.kill(index).await?;
    loop {
        let req = Request::new(
            now_ms(),
            Command::BenchPut {
                key: 0,
                value: vec![0; 256],
            },
        );
        let answer = propose_via(
            transport,
            &survivors,
            group,
            &req,
            FAILOVER_ATTEMPT,
            FAILOVER_ATTEMPT,
        )
        .await;
        if answer.is_ok_and(|r| r.is_applied()) {
            break;
        }
        if started.elapsed() > READY_WITHIN {
            return Err("no write acknowledged after the kill".into());
        }
        tokio::time::sleep(FAILOVER_RETRY).await;
    }
    let took = started.elapsed();
    canon.restart(index).await?;
    tokio::time::sleep(REJOIN_SETTLE).await;
    Ok(took)
}

/// Kills etcd's leader; the time to the next put a survivor acknowledges.
async fn etcd_failover(etcd: &mut EtcdCluster) -> Result<Duration, String> {
    let leader = etcd.leader(READY_WITHIN).await?;
    let urls = etcd.urls();
    let mut survivors = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        if i != leader {
            let mut client = EtcdClient::new(url)?;
            // Warm the connection, as Canon's transport is warm.
            client.status(Duration::from_secs(1)).await?;
            survivors.push(client);
        }
    }
    let started = Instant::now();
    etcd.kill(leader)?;
    let mut next = 0usize;
    loop {
        let count = survivors.len();
        let client = &mut survivors[next % count];
        next += 1;
        let put = client
            .put(b"bench/failover".to_vec(), vec![0; 256], FAILOVER_ATTEMPT)
            .await;
        if put.is_ok() {
            break;
        }
        if started.elapsed() > READY_WITHIN {
            return Err("no etcd put acknowledged after the kill".into());
        }
        tokio::time::sleep(FAILOVER_RETRY).await;
    }
    let took = started.elapsed();
    etcd.restart(leader)?;
    tokio::time::sleep(REJOIN_SETTLE).await;
    Ok(took)
}

/// The goals, judged from the report.
fn with_goals(mut report: Value, a: &CompareArgs) -> Value {
    let w = &report["writes"];
    let ratio = |name: &str| w[name]["canon_over_etcd_throughput"].as_f64();
    let most = a.clients.iter().copied().max().unwrap_or(64);
    let sharded = format!("clients_{most}_over_{}_shards", a.shards);
    let canon_rate = |name: &str| w[name]["canon"]["writes_per_sec"].as_f64();
    let f = &report["failover"]["canon_over_etcd"];
    let goals = json!({
        "at_least_etcd_at_1_client": ratio("clients_1").map(|r| r >= 1.0),
        "at_least_2x_etcd_at_most_clients": ratio(&format!("clients_{most}")).map(|r| r >= 2.0),
        "shards_no_slower_than_one": canon_rate(&sharded)
            .zip(canon_rate(&format!("clients_{most}")))
            .map(|(s, one)| s >= one),
        "failover_p50_and_p99_at_most_etcds": f["p50"].as_f64()
            .zip(f["p99"].as_f64())
            .map(|(p50, p99)| p50 <= 1.0 && p99 <= 1.0),
    });
    report["goals"] = goals;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(system: &str, rate: f64) -> Value {
        json!({ "system": system, "writes_per_sec": rate, "p50_ms": 1.0, "p99_ms": 2.0 })
    }

    #[test]
    fn each_side_is_its_median_and_the_ratio_is_canon_over_etcd() {
        let runs = vec![
            run("canon", 100.0),
            run("etcd", 400.0),
            run("canon", 300.0),
            run("etcd", 200.0),
        ];
        assert_eq!(median(&runs, "canon", "writes_per_sec"), Some(200.0));
        assert_eq!(median(&runs, "etcd", "writes_per_sec"), Some(300.0));
        let odd = vec![run("canon", 5.0), run("canon", 1.0), run("canon", 3.0)];
        assert_eq!(median(&odd, "canon", "writes_per_sec"), Some(3.0));
        assert_eq!(median(&odd, "etcd", "writes_per_sec"), None);
        let s = pair_summary(runs);
        assert_eq!(
            s["canon_over_etcd_throughput"].as_f64(),
            Some(200.0 / 300.0)
        );
    }

    #[test]
    fn goals_are_judged_from_the_pairs_and_the_failover() {
        let a =
            CompareArgs::parse(&["--compare-etcd".into(), "--shards".into(), "4".into()]).unwrap();
        let pair = |canon: f64, etcd: f64| {
            json!({ "canon": { "writes_per_sec": canon }, "etcd": { "writes_per_sec": etcd },
                    "canon_over_etcd_throughput": canon / etcd })
        };
        let report = json!({
            "writes": {
                "clients_1": pair(900.0, 1000.0),
                "clients_64": pair(9000.0, 4000.0),
                "clients_64_over_4_shards": pair(9500.0, 4000.0),
            },
            "failover": { "canon_over_etcd": { "p50": 0.9, "p99": 1.2 } },
        });
        let g = &with_goals(report, &a)["goals"];
        assert_eq!(g["at_least_etcd_at_1_client"], json!(false));
        assert_eq!(g["at_least_2x_etcd_at_most_clients"], json!(true));
        assert_eq!(g["shards_no_slower_than_one"], json!(true));
        assert_eq!(g["failover_p50_and_p99_at_most_etcds"], json!(false));
    }

    #[test]
    fn node_and_load_flags_read_back_as_written() {
        let node = NodeArgs {
            id: 2,
            addr: "127.0.0.1:7002".into(),
            dir: PathBuf::from("/tmp/x"),
            shards: 16,
            members: [
                (1, "127.0.0.1:7001".to_string()),
                (2, "127.0.0.1:7002".to_string()),
            ]
            .into(),
            init: true,
        };
        let back = NodeArgs::parse(&node.to_flags()[1..]).unwrap();
        assert_eq!(
            (
                back.id,
                back.addr,
                back.dir,
                back.shards,
                back.members,
                back.init
            ),
            (
                node.id,
                node.addr,
                node.dir,
                node.shards,
                node.members,
                node.init
            )
        );
        let load = LoadArgs {
            system: System::Canon,
            endpoints: "1=127.0.0.1:7001".into(),
            clients: 64,
            writes: 20000,
            value_bytes: 256,
            groups: vec![1, 2, 3],
        };
        let back = LoadArgs::parse(&load.to_flags()[1..]).unwrap();
        assert_eq!(
            (
                back.system,
                back.clients,
                back.writes,
                back.value_bytes,
                back.groups
            ),
            (System::Canon, 64, 20000, 256, vec![1, 2, 3])
        );
        assert!(LoadArgs::parse(&["mysql".into()]).is_err());
        assert!(NodeArgs::parse(&["--id".into()]).is_err());
        assert!(CompareArgs::parse(&["--rounds".into(), "x".into()]).is_err());
    }
}
