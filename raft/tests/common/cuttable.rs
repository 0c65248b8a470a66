//! Three real nodes over gRPC on 127.0.0.1 whose links a test can cut
//! (memory storage): for tests of elections and failover.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_raft::grpc::{self, GrpcTransport};
use canon_raft::network::{BatchItem, RpcKind, Transport, TransportError};
use canon_raft::store::MemDisk;
use canon_raft::{GroupId, NodeConfig, NodeId, RaftNode, RaftSettings, RaftThreads, Storage};
use futures::future::BoxFuture;
use futures::FutureExt;

/// Links cut by the test: `(from, to, votes_pass)` means every call `from`
/// makes to `to` (but votes, if `votes_pass`) fails at once, as to a port
/// that refuses connections.
pub type Cuts = Arc<Mutex<BTreeSet<(NodeId, NodeId, bool)>>>;

/// Links silenced by the test: `(from, to)` means every call `from` makes
/// to `to` gets no answer (it times out), as over a partition.
pub type Silenced = Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>;

/// The gRPC transport, with links that can be cut or silenced.
pub struct Cuttable {
    me: NodeId,
    inner: GrpcTransport,
    cuts: Cuts,
    silenced: Silenced,
    /// AppendEntries messages this node sent (lone calls and batch items).
    appends: Arc<AtomicU64>,
}

impl Cuttable {
    fn cut(&self, target: NodeId, kind: RpcKind) -> bool {
        let cuts = self.cuts.lock().unwrap();
        cuts.contains(&(self.me, target, false))
            || (kind != RpcKind::Vote && cuts.contains(&(self.me, target, true)))
    }

    fn silenced(&self, target: NodeId) -> bool {
        self.silenced.lock().unwrap().contains(&(self.me, target))
    }

    /// No answer: the call's timeout, then a timeout error.
    fn unanswered(target: NodeId, after: Duration) -> BoxFuture<'static, TransportError> {
        async move {
            tokio::time::sleep(after).await;
            TransportError::Timeout { target, after }
        }
        .boxed()
    }

    fn refused(target: NodeId, addr: &str) -> TransportError {
        TransportError::Unreachable {
            target,
            addr: addr.to_string(),
            reason: "connection refused (cut by the test)".into(),
        }
    }
}

impl Transport for Cuttable {
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        kind: RpcKind,
        group: GroupId,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        if kind == RpcKind::AppendEntries {
            self.appends.fetch_add(1, Ordering::Relaxed);
        }
        if self.cut(target, kind) {
            let e = Cuttable::refused(target, addr);
            return async move { Err(e) }.boxed();
        }
        if self.silenced(target) {
            let silence = Cuttable::unanswered(target, timeout);
            return async move { Err(silence.await) }.boxed();
        }
        self.inner.call(target, addr, kind, group, payload, timeout)
    }

    fn call_batch(
        &self,
        target: NodeId,
        addr: &str,
        items: Vec<BatchItem>,
    ) -> BoxFuture<'static, ()> {
        self.appends
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        if self.cut(target, RpcKind::AppendEntries) {
            for i in items {
                let _ = i.reply.send(Err(Cuttable::refused(target, addr)));
            }
            return async {}.boxed();
        }
        if self.silenced(target) {
            return async move {
                let answers = items.into_iter().map(|i| async move {
                    let e = Cuttable::unanswered(target, i.timeout).await;
                    let _ = i.reply.send(Err(e));
                });
                futures::future::join_all(answers).await;
            }
            .boxed();
        }
        self.inner.call_batch(target, addr, items)
    }
}

/// Nodes 1 to 3, each with a [`Cuttable`] transport sharing `cuts`.
pub struct CutCluster {
    pub nodes: BTreeMap<NodeId, RaftNode>,
    pub addrs: BTreeMap<NodeId, String>,
    pub servers: Vec<tokio::task::JoinHandle<()>>,
    pub cuts: Cuts,
    pub silenced: Silenced,
    /// AppendEntries messages each node sent.
    pub appends: BTreeMap<NodeId, Arc<AtomicU64>>,
}

impl CutCluster {
    /// Starts the three nodes (not initialised) with `shards` shards.
    pub async fn start(settings: &RaftSettings, shards: u32) -> CutCluster {
        let cuts: Cuts = Arc::default();
        let silenced: Silenced = Arc::default();
        let mut nodes = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let mut servers = Vec::new();
        let mut appends = BTreeMap::new();
        for id in 1..=3u64 {
            let sent = Arc::new(AtomicU64::new(0));
            appends.insert(id, sent.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let transport = Arc::new(Cuttable {
                me: id,
                inner: GrpcTransport::new(settings.connect_timeout),
                cuts: cuts.clone(),
                silenced: silenced.clone(),
                appends: sent,
            });
            let node = RaftNode::start(
                NodeConfig {
                    id,
                    addr: addr.clone(),
                    storage: Storage::Memory(MemDisk::new()),
                    shard_count: shards,
                    settings: settings.clone(),
                    link_faults: None,
                    // Tests here drive cuts from the test's runtime.
                    threads: RaftThreads::Caller,
                },
                transport,
            )
            .await
            .unwrap();
            let service = node.grpc_service();
            servers.push(tokio::spawn(async move {
                let _ = grpc::serve(service, listener, std::future::pending()).await;
            }));
            nodes.insert(id, node);
            addrs.insert(id, addr);
        }
        CutCluster {
            nodes,
            addrs,
            servers,
            cuts,
            silenced,
            appends,
        }
    }

    /// AppendEntries messages node `id` has sent so far.
    pub fn appends_sent(&self, id: NodeId) -> u64 {
        self.appends[&id].load(Ordering::Relaxed)
    }

    /// Silences every link to and from `node`, both ways: a partition,
    /// where nothing is refused and nothing answers.
    pub fn isolate(&self, node: NodeId) {
        let mut silenced = self.silenced.lock().unwrap();
        for other in self.nodes.keys().filter(|n| **n != node) {
            silenced.insert((node, *other));
            silenced.insert((*other, node));
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cuts.lock().unwrap().clear();
        self.silenced.lock().unwrap().clear();
    }

    /// Stops every node and server.
    pub async fn shutdown(self) {
        for n in self.nodes.values() {
            n.shutdown().await;
        }
        for s in self.servers {
            s.abort();
        }
    }
}

/// Waits (up to `within`) until `group` has a leader that acts as one:
/// its id.
pub async fn wait_acting_leader(
    nodes: &BTreeMap<NodeId, RaftNode>,
    group: GroupId,
    within: Duration,
) -> NodeId {
    let started = tokio::time::Instant::now();
    loop {
        let l = nodes
            .values()
            .find(|n| n.leadership(group).unwrap().borrow().is_me);
        if let Some(l) = l {
            return l.id();
        }
        assert!(
            started.elapsed() < within,
            "group {group}: no leader within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
