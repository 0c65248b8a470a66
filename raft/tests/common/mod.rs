//! A cluster of real nodes on 127.0.0.1 (ephemeral ports, real gRPC, sled in
//! temp dirs) for the multi-node tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canon_model::Fid;
use canon_raft::command::{Command, Composition, Request};
use canon_raft::grpc;
use canon_raft::shard::group_of_alias;
use canon_raft::{GroupId, NodeConfig, NodeId, RaftNode, RaftSettings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    pub node: RaftNode,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

pub struct Cluster {
    pub shards: u32,
    pub settings: RaftSettings,
    pub dirs: Vec<tempfile::TempDir>,
    pub addrs: Vec<String>,
    pub nodes: Vec<Option<Running>>,
}

pub fn id_of(i: usize) -> NodeId {
    i as NodeId + 1
}

async fn bind(addr: &str) -> TcpListener {
    // A restarted node reuses its port; the old socket may linger briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("bind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    }
}

impl Cluster {
    pub async fn start(n: usize, shards: u32, settings: RaftSettings) -> Cluster {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(l.local_addr().unwrap().to_string());
            listeners.push(l);
            dirs.push(tempfile::tempdir().unwrap());
        }
        let mut c = Cluster {
            shards,
            settings,
            dirs,
            addrs,
            nodes: (0..n).map(|_| None).collect(),
        };
        for (i, l) in listeners.into_iter().enumerate() {
            c.launch(i, l).await;
        }
        c
    }

    async fn launch(&mut self, i: usize, listener: TcpListener) {
        let node = RaftNode::start_grpc(NodeConfig {
            id: id_of(i),
            addr: self.addrs[i].clone(),
            data_dir: self.dirs[i].path().to_path_buf(),
            shard_count: self.shards,
            settings: self.settings.clone(),
        })
        .await
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = node.grpc_service();
        let server = tokio::spawn(async move {
            let _ = grpc::serve(service, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        self.nodes[i] = Some(Running { node, stop, server });
    }

    pub fn node(&self, i: usize) -> &RaftNode {
        &self.nodes[i].as_ref().expect("node is down").node
    }

    pub fn members(&self) -> BTreeMap<NodeId, String> {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (id_of(i), a.clone()))
            .collect()
    }

    pub fn groups(&self) -> Vec<GroupId> {
        canon_raft::shard::all_groups(self.shards).collect()
    }

    /// Initialises every group from node 0 and waits for leaders.
    pub async fn bootstrap(&self) {
        self.node(0).initialize(&self.members()).await.unwrap();
        for g in self.groups() {
            self.wait_leader(g, Duration::from_secs(5)).await;
        }
    }

    /// The index of the live node that leads `group`, if one does.
    pub fn leader_of(&self, group: GroupId) -> Option<usize> {
        self.nodes.iter().enumerate().find_map(|(i, n)| {
            let n = n.as_ref()?;
            let l = *n.node.leadership(group).ok()?.borrow();
            l.is_me.then_some(i)
        })
    }

    pub async fn wait_leader(&self, group: GroupId, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader_of(group) {
                return i;
            }
            assert!(Instant::now() < deadline, "no leader for group {group}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops node `i` as a crash would: its server stops answering and its
    /// groups stop; the data dir stays.
    pub async fn kill(&mut self, i: usize) {
        let r = self.nodes[i].take().expect("node already down");
        r.node.shutdown().await;
        let _ = r.stop.send(());
        let mut server = r.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        drop(r.node);
    }

    /// Starts node `i` again from its data dir on its old address.
    pub async fn restart(&mut self, i: usize) {
        let l = bind(&self.addrs[i]).await;
        self.launch(i, l).await;
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                self.kill(i).await;
            }
        }
    }

    /// Waits until node `i` has applied at least `index` in `group`.
    pub async fn wait_applied(&self, i: usize, group: GroupId, index: u64, within: Duration) {
        self.node(i)
            .raft(group)
            .unwrap()
            .wait(Some(within))
            .applied_index_at_least(Some(index), "catch up")
            .await
            .unwrap_or_else(|e| panic!("node {i} group {group}: {e}"));
    }

    /// The last applied index of `group` on node `i`.
    pub fn applied(&self, i: usize, group: GroupId) -> u64 {
        let m = self.node(i).metrics(group).unwrap();
        let idx = m.borrow().last_applied.map(|l| l.index).unwrap_or(0);
        idx
    }
}

/// `n` distinct aliases that all belong to `group`.
pub fn aliases_in(group: GroupId, shards: u32, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|a| group_of_alias(a, shards) == group)
        .take(n)
        .collect()
}

pub fn create(alias: &str, at: u64) -> Request {
    Request::new(
        at,
        Command::ProcessCreated {
            fid: Fid::random(),
            alias: alias.to_string(),
            account: "123456789012".into(),
            composition: Composition {
                bytes: alias.as_bytes().to_vec(),
                source_hash: format!("h-{alias}"),
            },
        },
    )
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,openraft=error".into()),
        )
        .with_test_writer()
        .try_init();
}
