//! Starting a node: opening its database (or memory disk) and every group
//! over it. Called by `canond`, `canon dev`'s cluster, simulations and
//! tests.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::batcher::{spawn_batcher, Hold};
use super::failover::GroupFailover;
use super::lease::watch_leadership;
use super::{Group, NodeConfig, NodeError, NodeInner, RaftNode, Storage};
use crate::coalesce::Coalescer;
use crate::grpc::GrpcTransport;
use crate::ids::NodeId;
use crate::link_fault::FaultyTransport;
use crate::network::{NetworkFactory, Transport};
use crate::shard::all_groups;
use crate::store::{Store, StoreError};
use crate::types::Raft;

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
        let timeout = config.settings.connect_timeout;
        let transport = match tls {
            Some(tls) => GrpcTransport::with_tls(timeout, tls),
            None => GrpcTransport::new(timeout),
        };
        // A channel silent for an election timeout is one a follower would
        // already campaign over: dial afresh rather than wait out TCP's
        // retransmission backoff (see `Dial::redial_silence`).
        let transport = Arc::new(transport.redialing_after(config.settings.election_min));
        RaftNode::start(config, transport).await
    }

    /// Opens the database and starts every group (meta + shards). A group
    /// of a new cluster waits, uninitialised, for [`RaftNode::initialize`]
    /// on some node.
    pub async fn start(
        config: NodeConfig,
        transport: Arc<dyn Transport>,
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
            let fatal = |e: openraft::error::Fatal<NodeId>| NodeError::Fatal {
                group: g,
                reason: e.to_string(),
            };
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
                    let raft = Raft::new(config.id, cfg, net, log, sm)
                        .await
                        .map_err(fatal)?;
                    (raft, shared)
                }
                (None, Storage::Memory(disk)) => {
                    let (log, sm) = disk.open_group(g, config.shard_count)?;
                    let shared = (sm.shared(), sm.applied_sender());
                    let raft = Raft::new(config.id, cfg, net, log, sm)
                        .await
                        .map_err(fatal)?;
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
            );
            let hold = Arc::new(Hold::default());
            let batcher = spawn_batcher(raft.clone(), hold.clone());
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
                stopped: AtomicBool::new(false),
                elections: AtomicBool::new(true),
            }),
        };
        node.spawn_failover_watch();
        node.spawn_election_watch();
        Ok(node)
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
