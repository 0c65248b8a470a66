//! Starting a node: opening its database (or memory disk) and every group
//! over it. Called by `canond`, `canon dev`'s cluster, simulations and
//! tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::batcher::{spawn_batcher, Hold};
use super::failover::GroupFailover;
use super::lease::watch_leadership;
use super::{Group, NodeConfig, NodeError, NodeInner, RaftNode, Storage};
use crate::coalesce::Coalescer;
use crate::grpc::{self, GrpcTransport};
use crate::ids::{GroupId, NodeId};
use crate::link_fault::FaultyTransport;
use crate::network::{NetworkFactory, Transport};
use crate::shard::all_groups;
use crate::store::sm::StateMachineStore;
use crate::store::{Store, StoreError};
use crate::threads::RaftRuntime;
use crate::types::{Raft, TypeConfig};

/// How long start-up waits for a previous owner of the database (e.g. the
/// process being replaced) to let go of it.
const DB_LOCK_WAIT: Duration = Duration::from_secs(5);

impl RaftNode {
    /// Starts a node with the gRPC transport.
    pub async fn start_grpc(config: NodeConfig) -> Result<RaftNode, NodeError> {
        RaftNode::start_grpc_tls(config, None).await
    }

    /// [`RaftNode::start_grpc`], dialing peers with TLS when `tls` is
    /// given (this node's certificate, the peer CA).
    pub async fn start_grpc_tls(
        config: NodeConfig,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<RaftNode, NodeError> {
        let runtime = RaftRuntime::start(config.threads).map_err(threads_error)?;
        let timeout = config.settings.connect_timeout;
        let transport = match tls {
            Some(tls) => GrpcTransport::with_tls(timeout, tls),
            None => GrpcTransport::new(timeout),
        };
        // A channel silent for an election timeout is one a follower would
        // already campaign over: dial afresh rather than wait out TCP's
        // retransmission backoff (see `Dial::redial_silence`). Channels
        // live on the Raft runtime, whoever calls first.
        let transport = transport
            .redialing_after(config.settings.election_min)
            .on_runtime(runtime.handle().clone());
        RaftNode::start_on(config, Arc::new(transport), runtime).await
    }

    /// Opens the database and starts every group (meta + shards). A group
    /// of a new cluster waits, uninitialised, for [`RaftNode::initialize`]
    /// on some node.
    pub async fn start(
        config: NodeConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<RaftNode, NodeError> {
        let runtime = RaftRuntime::start(config.threads).map_err(threads_error)?;
        RaftNode::start_on(config, transport, runtime).await
    }

    /// [`RaftNode::start`] with every group's tasks on `runtime`.
    async fn start_on(
        config: NodeConfig,
        transport: Arc<dyn Transport>,
        runtime: RaftRuntime,
    ) -> Result<RaftNode, NodeError> {
        let store = match &config.storage {
            Storage::Sled(dir) => Some(open_store(dir, &config).await?),
            Storage::Memory(_) => None,
        };
        let transport: Arc<dyn Transport> = match &config.link_faults {
            Some(f) => Arc::new(FaultyTransport::new(transport, f.clone())),
            None => transport,
        };
        let mut groups = BTreeMap::new();
        // Replication of every group shares one queue per peer.
        let replication: Arc<dyn Transport> = Arc::new(Coalescer::new(transport.clone()));
        for g in all_groups(config.shard_count) {
            let cfg = Arc::new(config.settings.openraft_config(g)?);
            let net = NetworkFactory::new(
                config.id,
                g,
                replication.clone(),
                config.settings.unreachable_backoff,
            );
            let snapshots_sent = net.snapshots_sent();
            let (raft, (state, applied)) = match (&store, &config.storage) {
                (Some(store), _) => {
                    // Decoding a large group's snapshot takes seconds: off
                    // the runtime.
                    let (store2, shards) = (store.clone(), config.shard_count);
                    let (log, sm) =
                        tokio::task::spawn_blocking(move || store2.open_group(g, shards))
                            .await
                            .map_err(|e| NodeError::Fatal {
                                group: g,
                                reason: format!("opening the group did not finish: {e}"),
                            })??;
                    let shared = (sm.shared(), sm.applied_sender());
                    let raft = new_raft(&runtime, config.id, g, cfg, net, (log, sm)).await?;
                    (raft, shared)
                }
                (None, Storage::Memory(disk)) => {
                    let (log, sm) = disk.open_group(g, config.shard_count)?;
                    let shared = (sm.shared(), sm.applied_sender());
                    let raft = new_raft(&runtime, config.id, g, cfg, net, (log, sm)).await?;
                    (raft, shared)
                }
                (None, Storage::Sled(dir)) => {
                    return Err(NodeError::Fatal {
                        group: g,
                        reason: format!("database {} not open", dir.display()),
                    })
                }
            };
            let (failover, failover_hold) = GroupFailover::new();
            let leadership = watch_leadership(
                config.id,
                raft.metrics(),
                failover_hold,
                config.settings.election_max,
                config.settings.heartbeat,
                runtime.handle(),
            );
            let hold = Arc::new(Hold::default());
            let batcher = spawn_batcher(raft.clone(), hold.clone(), runtime.handle());
            let reads = super::read_rounds::ReadRounds::new(raft.clone(), runtime.handle().clone());
            groups.insert(
                g,
                Group {
                    raft,
                    state,
                    applied,
                    leadership,
                    batcher,
                    hold,
                    failover,
                    election: super::prevote::GroupElection::new(&config.settings),
                    installs: Default::default(),
                    snapshots_sent,
                    reads,
                },
            );
        }
        let node = RaftNode {
            inner: Arc::new(NodeInner {
                id: config.id,
                addr: config.addr,
                shard_count: config.shard_count,
                settings: config.settings,
                store,
                transport,
                link_faults: config.link_faults,
                groups,
                runtime,
                stopped: AtomicBool::new(false),
                elections: AtomicBool::new(true),
            }),
        };
        node.spawn_failover_watch();
        node.spawn_election_watch();
        Ok(node)
    }
}

impl RaftNode {
    /// Serves this node's peer service ([`RaftNode::grpc_service`]) on
    /// `listener` until `shutdown` completes, on the node's Raft runtime
    /// (so also until [`RaftNode::shutdown`] stops that runtime). Errors
    /// of the server are logged.
    pub fn spawn_peer_server(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let service = self.grpc_service();
        let addr = listener.local_addr()?;
        // A listener belongs to the runtime it was registered with: hand it
        // over to the Raft runtime's.
        let listener = listener.into_std()?;
        Ok(self.raft_runtime().spawn(async move {
            let served = match TcpListener::from_std(listener) {
                Ok(l) => grpc::serve(service, l, shutdown)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = served {
                tracing::warn!(%addr, %error, "raft peer server stopped");
            }
        }))
    }
}

/// Starts group `group`'s openraft instance on the node's Raft runtime:
/// openraft spawns its core (and, from there, replication) on the runtime
/// it is created from.
async fn new_raft<Log>(
    runtime: &RaftRuntime,
    id: NodeId,
    group: GroupId,
    config: Arc<openraft::Config>,
    net: NetworkFactory,
    (log, sm): (Log, StateMachineStore),
) -> Result<Raft, NodeError>
where
    Log: RaftLogStorage<TypeConfig>,
{
    let fatal = |reason: String| NodeError::Fatal { group, reason };
    runtime
        .run(Raft::new(id, config, net, log, sm))
        .await
        .ok_or_else(|| fatal("the Raft runtime stopped while the group started".into()))?
        .map_err(|e| fatal(e.to_string()))
}

/// A node whose Raft runtime could not be started.
fn threads_error(e: std::io::Error) -> NodeError {
    NodeError::Fatal {
        group: crate::shard::META_GROUP,
        reason: format!("cannot start the Raft runtime: {e}"),
    }
}

/// Opens the node's database, waiting a little if a previous owner in this
/// process is still letting go of its lock. sled can spin forever on some
/// damaged files instead of failing, so opening runs on a thread of its own
/// and is abandoned (an error naming the database) after `open_timeout`.
async fn open_store(dir: &std::path::Path, config: &NodeConfig) -> Result<Store, NodeError> {
    let started = Instant::now();
    let limit = config.settings.open_timeout;
    loop {
        let (tx, rx) = oneshot::channel();
        let (path, id, shards) = (dir.to_path_buf(), config.id, config.shard_count);
        std::thread::Builder::new()
            .name("canon-raft-open".into())
            .spawn(move || {
                // The opener may have given up; nobody to tell then.
                let _ = tx.send(Store::open(&path, id, shards));
            })
            .map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        let left = limit.saturating_sub(started.elapsed());
        let opened = match tokio::time::timeout(left, rx).await {
            Ok(Ok(opened)) => opened,
            // The thread ended without an answer: it panicked inside sled.
            Ok(Err(_)) => Err(StoreError::Stuck {
                path: dir.to_path_buf(),
                detail: "sled panicked while opening it".into(),
            }),
            Err(_) => Err(StoreError::Stuck {
                path: dir.to_path_buf(),
                detail: format!("opening did not finish within {limit:?}"),
            }),
        };
        match opened {
            Err(StoreError::Open { source, .. })
                if is_lock_error(&source) && started.elapsed() < DB_LOCK_WAIT =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return Ok(other?),
        }
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock")
        }
        _ => false,
    }
}
