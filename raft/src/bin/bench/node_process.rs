//! `bench --serve-node`: one Canon Raft node as an OS process of its own,
//! for the comparison with etcd (`--compare-etcd`), which runs three of
//! them as etcd runs three members: each with its own sled database,
//! fsync before acknowledging, real gRPC on loopback, and the leader
//! balancer a canond runs.
//!
//! The node prints `ready` on stdout once it serves, and stops when its
//! stdin closes, so a parent that dies (or is killed) never leaves nodes
//! behind.
//!
//! `CANON_BENCH_RAFT_THREADS` (inherited from `--compare-etcd`) chooses
//! where the node's Raft work runs, to measure what the Raft runtime costs:
//! a number of `canon-raft` workers (default: as canond, one per two
//! cores), or `caller`:
//! everything on the process's main runtime.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use canon_raft::node::{NodeConfig, Storage};
use canon_raft::{NodeId, RaftNode, RaftSettings, RaftThreads};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// How often the node moves leaderships towards an even spread (canond's
/// `BALANCE_EVERY`).
const BALANCE_EVERY: Duration = Duration::from_secs(3);
/// How long `--init` keeps trying to initialise while peers come up.
const INIT_WITHIN: Duration = Duration::from_secs(10);

/// What `--serve-node` is told.
pub struct NodeArgs {
    pub id: NodeId,
    pub addr: String,
    pub dir: PathBuf,
    pub shards: u32,
    /// Every member: id → address (this node included).
    pub members: BTreeMap<NodeId, String>,
    /// Initialise every group with `members` as voters (one node does).
    pub init: bool,
}

impl NodeArgs {
    /// The flags that make a process this node (without the program name).
    pub fn to_flags(&self) -> Vec<String> {
        let members = self
            .members
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut flags = vec![
            "--serve-node".to_string(),
            "--id".into(),
            self.id.to_string(),
            "--addr".into(),
            self.addr.clone(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--shards".into(),
            self.shards.to_string(),
            "--members".into(),
            members,
        ];
        if self.init {
            flags.push("--init".into());
        }
        flags
    }

    /// Parses the flags after `--serve-node`.
    pub fn parse(flags: &[String]) -> Result<NodeArgs, String> {
        let mut a = NodeArgs {
            id: 0,
            addr: String::new(),
            dir: PathBuf::new(),
            shards: 1,
            members: BTreeMap::new(),
            init: false,
        };
        let mut it = flags.iter();
        while let Some(flag) = it.next() {
            if flag == "--init" {
                a.init = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--id" => a.id = value.parse().map_err(|e| format!("--id: {e}"))?,
                "--addr" => a.addr = value.clone(),
                "--dir" => a.dir = PathBuf::from(value),
                "--shards" => a.shards = value.parse().map_err(|e| format!("--shards: {e}"))?,
                "--members" => a.members = parse_members(value)?,
                other => return Err(format!("--serve-node: unknown flag {other}")),
            }
        }
        if a.id == 0 || a.addr.is_empty() || a.members.is_empty() {
            return Err("--serve-node needs --id, --addr and --members".into());
        }
        Ok(a)
    }
}

/// `1=127.0.0.1:7001,2=…` → id → address.
pub fn parse_members(value: &str) -> Result<BTreeMap<NodeId, String>, String> {
    value
        .split(',')
        .map(|pair| {
            let (id, addr) = pair
                .split_once('=')
                .ok_or_else(|| format!("member {pair:?}: expected ID=HOST:PORT"))?;
            let id = id.parse().map_err(|e| format!("member {pair:?}: {e}"))?;
            Ok((id, addr.to_string()))
        })
        .collect()
}

/// Serves one node until stdin closes.
pub async fn serve(a: NodeArgs) -> Result<(), String> {
    let listener = TcpListener::bind(&a.addr)
        .await
        .map_err(|e| format!("bind {}: {e}", a.addr))?;
    let node = RaftNode::start_grpc(NodeConfig {
        id: a.id,
        addr: a.addr.clone(),
        storage: Storage::Sled(a.dir.clone()),
        shard_count: a.shards,
        settings: RaftSettings::loopback(),
        link_faults: None,
        threads: raft_threads()?,
    })
    .await
    .map_err(|e| e.to_string())?;
    let server = node
        .spawn_peer_server(listener, std::future::pending::<()>())
        .map_err(|e| format!("serve {}: {e}", a.addr))?;
    if a.init {
        initialise(&node, &a.members).await?;
    }
    // The balancer ends by itself when the node stops.
    drop(node.spawn_balancer(BALANCE_EVERY));
    announce_ready()?;
    wait_for_stdin_to_close().await;
    node.shutdown().await;
    server.abort();
    Ok(())
}

/// The node's Raft threads as `CANON_BENCH_RAFT_THREADS` says (module docs).
fn raft_threads() -> Result<RaftThreads, String> {
    match std::env::var("CANON_BENCH_RAFT_THREADS") {
        Err(_) => Ok(RaftThreads::default()),
        Ok(v) if v == "caller" => Ok(RaftThreads::Caller),
        Ok(v) => v
            .parse()
            .map(|workers| RaftThreads::Own { workers })
            .map_err(|e| format!("CANON_BENCH_RAFT_THREADS={v}: {e} (a number or `caller`)")),
    }
}

/// Initialises every group, retrying while the peers start.
async fn initialise(node: &RaftNode, members: &BTreeMap<NodeId, String>) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    loop {
        match node.initialize(members).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= INIT_WITHIN => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn announce_ready() -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

async fn wait_for_stdin_to_close() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    // Anything read is ignored; end of input (or an error) means stop.
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
