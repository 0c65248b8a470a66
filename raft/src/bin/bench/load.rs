//! `bench --load SYSTEM`: the load generator of `--compare-etcd`, a process
//! of its own as an etcd benchmark client is, so the client hop (gRPC,
//! encoding, forwarding) is measured on both sides. `--clients` writers
//! each write `--value-bytes` values under a key of their own, one write
//! in flight per writer, to the leader of the group it writes (found once
//! at the start, as a warmed-up client knows it), and the process prints
//! one JSON object of what it measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use canon_raft::grpc::GrpcTransport;
use canon_raft::node::{find_leader, propose_via};
use canon_raft::{Command, GroupId, NodeId, Request};
use serde_json::json;

use super::etcd::{leader_among, EtcdClient};
use super::node_process::parse_members;
use super::{cpu_seconds, now_ms, percentile};

/// Bound on one write; a write that takes longer fails the run.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which system a load generator writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Canon,
    Etcd,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Canon => "canon",
            System::Etcd => "etcd",
        }
    }
}

/// What `--load` is told.
pub struct LoadArgs {
    pub system: System,
    /// Canon: `ID=HOST:PORT,…`; etcd: `http://HOST:PORT,…`.
    pub endpoints: String,
    pub clients: usize,
    /// Writes in all, over every client.
    pub writes: usize,
    pub value_bytes: usize,
    /// Canon: the groups written, writer `k`'s `i`-th write to
    /// `groups[(k + i·clients) mod len]`. Ignored for etcd (one group).
    pub groups: Vec<GroupId>,
}

impl LoadArgs {
    /// The flags that make a process this load generator.
    pub fn to_flags(&self) -> Vec<String> {
        let groups = self
            .groups
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        vec![
            "--load".into(),
            self.system.name().into(),
            "--endpoints".into(),
            self.endpoints.clone(),
            "--clients".into(),
            self.clients.to_string(),
            "--writes".into(),
            self.writes.to_string(),
            "--value-bytes".into(),
            self.value_bytes.to_string(),
            "--groups".into(),
            groups,
        ]
    }

    /// Parses the flags after `--load`.
    pub fn parse(flags: &[String]) -> Result<LoadArgs, String> {
        let (system, rest) = flags.split_first().ok_or("--load needs canon or etcd")?;
        let system = match system.as_str() {
            "canon" => System::Canon,
            "etcd" => System::Etcd,
            other => return Err(format!("--load {other}: canon or etcd")),
        };
        let mut a = LoadArgs {
            system,
            endpoints: String::new(),
            clients: 1,
            writes: 1000,
            value_bytes: 256,
            groups: vec![],
        };
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--endpoints" => a.endpoints = value.clone(),
                "--clients" => a.clients = number()?.max(1),
                "--writes" => a.writes = number()?.max(1),
                "--value-bytes" => a.value_bytes = number()?,
                "--groups" => {
                    a.groups = value
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(|g| g.parse().map_err(|e| format!("--groups {g}: {e}")))
                        .collect::<Result<_, String>>()?
                }
                other => return Err(format!("--load: unknown flag {other}")),
            }
        }
        if a.endpoints.is_empty() {
            return Err("--load needs --endpoints".into());
        }
        if a.system == System::Canon && a.groups.is_empty() {
            return Err("--load canon needs --groups".into());
        }
        Ok(a)
    }
}

/// The value of writer `k`'s `i`-th write: `bytes` long, never the same
/// twice in a row.
fn value(k: usize, i: usize, bytes: usize) -> Vec<u8> {
    let mut v = vec![b'v'; bytes];
    for (slot, b) in v
        .iter_mut()
        .zip((k as u64 ^ (i as u64) << 20).to_le_bytes())
    {
        *slot = b;
    }
    v
}

/// Runs the load and returns what it measured.
pub async fn run(a: LoadArgs) -> Result<serde_json::Value, String> {
    let per = a.writes.div_ceil(a.clients);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let latencies = match a.system {
        System::Canon => canon_writes(&a, per).await?,
        System::Etcd => etcd_writes(&a, per).await?,
    };
    let elapsed = started.elapsed();
    let cpu = cpu_seconds().zip(cpu_before).map(|(b, a)| b - a);
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    Ok(json!({
        "system": a.system.name(),
        "clients": a.clients,
        // etcd has one group, whatever Canon's scenario spreads over.
        "groups": if a.system == System::Etcd { 1 } else { a.groups.len() },
        "value_bytes": a.value_bytes,
        "writes": all.len(),
        "seconds": elapsed.as_secs_f64(),
        "writes_per_sec": all.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
        "max_ms": all.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        "load_generator_cpu_seconds": cpu,
    }))
}

/// Every writer's latencies, writing to Canon's group leaders through the
/// peer Propose call a client's command takes after the door.
async fn canon_writes(a: &LoadArgs, per: usize) -> Result<Vec<Vec<Duration>>, String> {
    let members: Vec<(NodeId, String)> = parse_members(&a.endpoints)?.into_iter().collect();
    let transport = Arc::new(GrpcTransport::new(Duration::from_millis(500)));
    // Per group, the members with its leader first.
    let mut routes = Vec::new();
    for group in &a.groups {
        let leader = find_leader(&*transport, &members, *group, Duration::from_secs(1))
            .await
            .ok_or_else(|| format!("group {group} has no leader"))?;
        let mut ordered = members.clone();
        ordered.sort_by_key(|(id, _)| *id != leader);
        routes.push((*group, ordered));
    }
    let routes = Arc::new(routes);
    let mut tasks = Vec::new();
    for k in 0..a.clients {
        let (transport, routes) = (transport.clone(), routes.clone());
        let (clients, bytes) = (a.clients, a.value_bytes);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let (group, nodes) = &routes[(k + i * clients) % routes.len()];
                let command = Command::BenchPut {
                    key: k as u64,
                    value: value(k, i, bytes),
                };
                let t = Instant::now();
                let answer = propose_via(
                    &*transport,
                    nodes,
                    *group,
                    &Request::new(now_ms(), command),
                    WRITE_TIMEOUT,
                    WRITE_TIMEOUT,
                )
                .await
                .map_err(|e| e.to_string())?;
                if !answer.is_applied() {
                    return Err(format!("write refused: {answer:?}"));
                }
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    join_all(tasks).await
}

/// Every writer's latencies, writing to etcd's leader.
async fn etcd_writes(a: &LoadArgs, per: usize) -> Result<Vec<Vec<Duration>>, String> {
    let urls: Vec<&str> = a.endpoints.split(',').collect();
    let leader_url = etcd_leader_url(&urls).await?;
    // One connection shared by every writer, as etcd's client shares one.
    let client = EtcdClient::new(&leader_url)?;
    let mut tasks = Vec::new();
    for k in 0..a.clients {
        let mut client = client.clone();
        let bytes = a.value_bytes;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let key = format!("bench/{k}").into_bytes();
                let t = Instant::now();
                client.put(key, value(k, i, bytes), WRITE_TIMEOUT).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    join_all(tasks).await
}

/// The client URL of the member every member calls leader.
async fn etcd_leader_url(urls: &[&str]) -> Result<String, String> {
    let asked: Vec<Option<&str>> = urls.iter().map(|u| Some(*u)).collect();
    leader_among(&asked, Duration::from_secs(1))
        .await
        .map(|i| urls[i].to_string())
        .ok_or_else(|| "etcd has no leader".to_string())
}

async fn join_all(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<Duration>, String>>>,
) -> Result<Vec<Vec<Duration>>, String> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}
