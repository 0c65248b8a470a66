//! Test helpers over [`canon_raft::local::LocalCluster`]: a cluster of real
//! nodes on 127.0.0.1 with data in temp dirs.

#![allow(dead_code)]

pub mod cuttable;

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use canon_model::Fid;
use canon_raft::command::{Command, Composition, Request};
use canon_raft::local::LocalCluster;
use canon_raft::shard::group_of_alias;
use canon_raft::{GroupId, RaftNode, RaftSettings};

#[allow(unused_imports)]
pub use canon_raft::local::id_of;

pub struct Cluster {
    inner: LocalCluster,
    _dir: tempfile::TempDir,
}

impl Deref for Cluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        &self.inner
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.inner
    }
}

impl Cluster {
    pub async fn start(n: usize, shards: u32, settings: RaftSettings) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalCluster::start(dir.path(), n, shards, settings)
            .await
            .unwrap();
        Cluster { inner, _dir: dir }
    }

    /// The data directory of node index `i`.
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self._dir.path().join(format!("node-{}", id_of(i)))
    }

    pub fn node_opt(&self, i: usize) -> Option<&RaftNode> {
        self.inner.node(i)
    }

    pub fn node(&self, i: usize) -> &RaftNode {
        self.inner.node(i).expect("node is down")
    }

    pub async fn bootstrap(&self) {
        self.inner.bootstrap(Duration::from_secs(5)).await.unwrap();
    }

    pub async fn bootstrap_with(&self, members: &[usize]) {
        self.inner
            .bootstrap_with(members, Duration::from_secs(5))
            .await
            .unwrap();
    }

    pub async fn wait_leader(&self, group: GroupId, within: Duration) -> usize {
        self.inner.wait_leader(group, within).await.unwrap()
    }

    pub async fn kill(&mut self, i: usize) {
        self.inner.kill(i).await.unwrap();
    }

    pub async fn restart(&mut self, i: usize) {
        self.inner.restart(i).await.unwrap();
    }

    pub async fn shutdown(self) {
        self.inner.shutdown().await;
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
            imports: Default::default(),
            fid: Fid::random(),
            alias: alias.to_string(),
            account: "123456789012".into(),
            composition: Composition {
                bytes: alias.as_bytes().to_vec(),
                source_hash: format!("h-{alias}"),
            },
            tick_interval_ms: None,
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
