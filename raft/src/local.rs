//! A whole cluster inside one process on 127.0.0.1: real nodes, real gRPC on
//! ephemeral ports, one sled database per node under a base directory.
//!
//! For `canon dev`, the benchmark and the multi-node tests: nodes can be
//! killed (as by a crash: their groups stop and their port goes dark) and
//! restarted from their data directories on the same address.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::RaftSettings;
use crate::ids::{GroupId, NodeId};
use crate::node::{NodeConfig, NodeError, RaftNode, Storage};
use crate::shard::all_groups;
use crate::threads::RaftThreads;

/// How long killing a node waits for its database to close (a test that
/// still holds the node keeps it open).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How long a restarted node keeps trying to bind its old port.
const REBIND_WAIT: Duration = Duration::from_secs(5);

/// Errors of a local cluster.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("node index {0} is not running")]
    NotRunning(usize),
    #[error("node index {0} is already running")]
    Running(usize),
}

struct Running {
    node: RaftNode,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// A cluster of nodes in this process. Node index `i` has id `i + 1`.
pub struct LocalCluster {
    shards: u32,
    settings: RaftSettings,
    dirs: Vec<PathBuf>,
    addrs: Vec<String>,
    nodes: Vec<Option<Running>>,
    balance_every: Option<Duration>,
}

/// The node id of node index `i`.
pub fn id_of(i: usize) -> NodeId {
    i as NodeId + 1
}

impl LocalCluster {
    /// Starts `n` nodes with data under `base/node-<id>`. Groups are not
    /// initialised: call [`LocalCluster::bootstrap`] for a new cluster.
    pub async fn start(
        base: &Path,
        n: usize,
        shards: u32,
        settings: RaftSettings,
    ) -> Result<LocalCluster, LocalError> {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..n {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| LocalError::Io {
                    what: "bind 127.0.0.1:0".into(),
                    source,
                })?;
            let addr = l.local_addr().map_err(|source| LocalError::Io {
                what: "local address".into(),
                source,
            })?;
            addrs.push(addr.to_string());
            listeners.push(l);
            dirs.push(base.join(format!("node-{}", id_of(i))));
        }
        let mut c = LocalCluster {
            shards,
            settings,
            dirs,
            addrs,
            nodes: (0..n).map(|_| None).collect(),
            balance_every: None,
        };
        for (i, l) in listeners.into_iter().enumerate() {
            c.launch(i, l).await?;
        }
        Ok(c)
    }

    async fn launch(&mut self, i: usize, listener: TcpListener) -> Result<(), LocalError> {
        let node = RaftNode::start_grpc(NodeConfig {
            id: id_of(i),
            addr: self.addrs[i].clone(),
            storage: Storage::Sled(self.dirs[i].clone()),
            shard_count: self.shards,
            settings: self.settings.clone(),
            link_faults: None,
            threads: RaftThreads::default(),
        })
        .await?;
        let (stop, stopped) = oneshot::channel::<()>();
        // Beside the node's groups, on its own threads: peers' heartbeats
        // are read however busy the caller's runtime is.
        let server = node
            .spawn_peer_server(listener, async {
                // Either a stop signal or the sender dropped: stop serving.
                let _ = stopped.await;
            })
            .map_err(|source| LocalError::Io {
                what: format!("serving {}", self.addrs[i]),
                source,
            })?;
        if let Some(every) = self.balance_every {
            // The balancer ends by itself when the node stops.
            drop(node.spawn_balancer(every));
        }
        self.nodes[i] = Some(Running { node, stop, server });
        Ok(())
    }

    /// Runs leader balancing every `every` on every node, now and after
    /// restarts.
    pub fn enable_balancer(&mut self, every: Duration) {
        self.balance_every = Some(every);
        for r in self.nodes.iter().flatten() {
            drop(r.node.spawn_balancer(every));
        }
    }

    /// How many groups each running node leads (node index → count).
    pub fn leader_counts(&self) -> BTreeMap<usize, usize> {
        let mut counts: BTreeMap<usize, usize> = (0..self.nodes.len())
            .filter(|i| self.node(*i).is_some())
            .map(|i| (i, 0))
            .collect();
        for g in self.groups() {
            if let Some(i) = self.leader_of(g) {
                *counts.entry(i).or_default() += 1;
            }
        }
        counts
    }

    /// Number of node slots (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the cluster has no node slots.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The shard count.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Address of node index `i`.
    pub fn addr(&self, i: usize) -> Option<&str> {
        self.addrs.get(i).map(String::as_str)
    }

    /// Node index `i`, if running.
    pub fn node(&self, i: usize) -> Option<&RaftNode> {
        self.nodes.get(i)?.as_ref().map(|r| &r.node)
    }

    /// Node index `i`, or an error if it is down.
    pub fn running(&self, i: usize) -> Result<&RaftNode, LocalError> {
        self.node(i).ok_or(LocalError::NotRunning(i))
    }

    /// Every node: id → address.
    pub fn members(&self) -> BTreeMap<NodeId, String> {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (id_of(i), a.clone()))
            .collect()
    }

    /// Every group of the cluster.
    pub fn groups(&self) -> Vec<GroupId> {
        all_groups(self.shards).collect()
    }

    /// Initialises every group with all nodes as voters and waits (up to
    /// `within`) for each to elect a leader.
    pub async fn bootstrap(&self, within: Duration) -> Result<(), LocalError> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.bootstrap_with(&all, within).await
    }

    /// Initialises every group with the nodes `members` (indexes) as voters.
    pub async fn bootstrap_with(
        &self,
        members: &[usize],
        within: Duration,
    ) -> Result<(), LocalError> {
        let chosen = members
            .iter()
            .map(|i| {
                let addr = self.addr(*i).ok_or(LocalError::NotRunning(*i))?;
                Ok((id_of(*i), addr.to_string()))
            })
            .collect::<Result<BTreeMap<NodeId, String>, LocalError>>()?;
        let first = *members.first().ok_or(LocalError::NotRunning(0))?;
        self.running(first)?.initialize(&chosen).await?;
        for g in self.groups() {
            self.wait_leader(g, within).await?;
        }
        Ok(())
    }

    /// The index of the running node that leads `group`, if one does.
    pub fn leader_of(&self, group: GroupId) -> Option<usize> {
        self.nodes.iter().enumerate().find_map(|(i, n)| {
            let l = *n.as_ref()?.node.leadership(group).ok()?.borrow();
            l.is_me.then_some(i)
        })
    }

    /// Waits up to `within` for `group` to have a leader among running nodes.
    pub async fn wait_leader(&self, group: GroupId, within: Duration) -> Result<usize, LocalError> {
        let started = Instant::now();
        loop {
            if let Some(i) = self.leader_of(group) {
                return Ok(i);
            }
            if started.elapsed() >= within {
                return Err(NodeError::NoLeader {
                    group,
                    after: within,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops node `i` as a crash would: its groups stop and its server goes
    /// away; its data directory stays. Once this returns, the node's
    /// runtime is gone and its database closed (unless something else
    /// still holds the node: then after a warning): nothing writes to its
    /// data directory any more.
    pub async fn kill(&mut self, i: usize) -> Result<(), LocalError> {
        let r = self
            .nodes
            .get_mut(i)
            .and_then(Option::take)
            .ok_or(LocalError::NotRunning(i))?;
        let Running { node, stop, server } = r;
        node.shutdown().await;
        // The server may already be gone; then there is nobody to tell.
        let _ = stop.send(());
        let mut server = server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        let closed = node.closed();
        drop(node);
        if tokio::time::timeout(CLOSE_WAIT, closed).await.is_err() {
            tracing::warn!(
                node = id_of(i),
                "database still open: someone holds the node"
            );
        }
        Ok(())
    }

    /// Starts node `i` again from its data directory on its old address.
    pub async fn restart(&mut self, i: usize) -> Result<(), LocalError> {
        if i >= self.nodes.len() {
            return Err(LocalError::NotRunning(i));
        }
        if self.node(i).is_some() {
            return Err(LocalError::Running(i));
        }
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(&self.addrs[i]).await {
                Ok(l) => break l,
                Err(_) if started.elapsed() < REBIND_WAIT => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => {
                    return Err(LocalError::Io {
                        what: format!("bind {}", self.addrs[i]),
                        source,
                    })
                }
            }
        };
        self.launch(i, listener).await
    }

    /// Stops every running node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            // Only running nodes are stopped; the rest are already down.
            let _ = self.kill(i).await;
        }
    }
}
