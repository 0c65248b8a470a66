//! A conductor node's Raft side: many openraft groups (the meta group and
//! every shard) over one sled database and one transport.
//!
//! Callers propose commands to a group and get the applied answer back
//! (forwarded to the leader when this node is not it, retried across leader
//! changes — safe because commands are deduplicated by id), read state
//! linearizably (read index through the leader) or stale (local replica),
//! and watch each group's leadership to start and stop their work.
//!
//! This file holds the node's shape and its accessors; the rest is split by
//! who calls it:
//! - [`open`]: starting a node (`canond`, `canon dev`, simulations, tests).
//! - [`requests`]: proposals and reads (the scheduler, the client API).
//! - [`admin`]: cluster creation and membership changes (cluster admin,
//!   joins and removals in `canon-node`).
//! - [`balancing`]: spreading leadership over the nodes (the node's own
//!   balancer task, and a node handing off before it leaves).
//! - [`outside`]: proposing and finding leaders from outside any node.
//! - [`inbound`]: what a peer's message does here (the transport's server,
//!   through [`crate::network::MessageHandler`]); [`routing`]: taking a
//!   call to the group's leader; [`wire`]: what forwarded calls carry.
//! - [`batcher`]: one log entry for many concurrent proposals; [`lease`]:
//!   the leadership watch; [`failover`]: electing at once when a quorum
//!   sees the leader gone; [`error`]: the node API's errors.

mod admin;
mod balancing;
mod batcher;
mod error;
mod failover;
mod inbound;
mod lease;
mod open;
mod outside;
mod prevote;
mod read_rounds;
mod requests;
mod routing;
mod wire;

pub use error::NodeError;
pub use outside::{find_leader, propose_via};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::config::RaftSettings;
use crate::grpc::GrpcService;
use crate::ids::{GroupId, NodeId};
use crate::network::Transport;
use crate::store::sm::{Applied, SharedState};
use crate::store::{MemDisk, Store};
use crate::threads::{RaftRuntime, RaftThreads};
use crate::types::{Raft, RaftMetrics};

use batcher::{Hold, Pending};

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The address peers reach this node's Raft service at (`host:port`).
    pub addr: String,
    /// Where the node keeps its logs and snapshots.
    pub storage: Storage,
    /// Fixed when the cluster is created.
    pub shard_count: u32,
    pub settings: RaftSettings,
    /// A drill's switch over this node's Raft links (canond
    /// `--drill-faults`); `None`: no hook in the message path at all.
    pub link_faults: Option<crate::link_fault::LinkFaults>,
    /// Which threads run the node's Raft work ([`crate::threads`]).
    pub threads: RaftThreads,
}

/// Where a node keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A sled database in this directory (real nodes).
    Sled(PathBuf),
    /// Memory that outlives the node (simulations).
    Memory(MemDisk),
}

/// Who leads a group, as seen by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub leader: Option<NodeId>,
    pub term: u64,
    /// True while this node is the group's leader (in `term`) and a quorum
    /// acknowledged it within the lease (`election_max`).
    pub is_me: bool,
    /// While `is_me`: when this node became leader in `term`.
    pub since: Option<Instant>,
}

/// A group's membership as one node knows it (its applied or latest
/// appended configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Voters, of both halves while `joint`.
    pub voters: BTreeSet<NodeId>,
    /// Members that replicate without voting.
    pub learners: BTreeSet<NodeId>,
    /// The address of every member, voter or learner.
    pub addrs: BTreeMap<NodeId, String>,
    /// A membership change is in progress (joint consensus).
    pub joint: bool,
    /// This node is the group's leader, as its own Raft state says (not
    /// lease-checked: see [`Leadership::is_me`] for that).
    pub leads: bool,
    /// The index of the last entry this node applied (0 before any).
    pub applied: u64,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started.
    Linearizable,
    /// Whatever this replica has applied; may lag.
    Stale,
}

/// One group on this node: its openraft instance, its state machine's
/// state, and what the node built around it.
struct Group {
    raft: Raft,
    state: SharedState,
    applied: broadcast::Sender<Applied>,
    leadership: watch::Receiver<Leadership>,
    batcher: mpsc::Sender<Pending>,
    /// Holds the batcher's new batches while leadership is handed over.
    hold: Arc<Hold>,
    /// What quick failover keeps for the group.
    failover: failover::GroupFailover,
    /// When this node asks for pre-votes and calls elections.
    election: prevote::GroupElection,
    /// This follower's snapshot installs run in the background
    /// ([`crate::network::SnapshotCall`]).
    installs: crate::network::BackgroundInstalls,
    /// Snapshot transfers this node began as the group's leader.
    snapshots_sent: Arc<crate::network::SnapshotsSent>,
    /// Linearizable reads' shared leadership confirmations.
    reads: read_rounds::ReadRounds,
}

/// The gRPC service of a node's Raft transport.
pub type RaftGrpcService = GrpcService<NodeInner>;

/// The node's shared internals (the gRPC service holds them weakly).
pub struct NodeInner {
    id: NodeId,
    addr: String,
    shard_count: u32,
    settings: RaftSettings,
    /// The sled database; `None` with memory storage.
    store: Option<Store>,
    transport: Arc<dyn Transport>,
    /// Delays or drops the messages this node receives (see
    /// [`crate::link_fault`]); those it sends, through `transport`.
    link_faults: Option<crate::link_fault::LinkFaults>,
    groups: BTreeMap<GroupId, Group>,
    /// Where every task of the node's Raft side runs.
    runtime: RaftRuntime,
    stopped: AtomicBool,
    /// Whether this node calls elections when it hears no leader
    /// ([`prevote`]; tests switch it off).
    elections: AtomicBool,
}

impl std::fmt::Debug for NodeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeInner")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("groups", &self.groups.len())
            .finish()
    }
}

/// A running node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RaftNode {
    inner: Arc<NodeInner>,
}

/// A handle on a node that does not keep it running: for tasks that live
/// as long as the node, which must not hold its database open after the
/// last [`RaftNode`] is gone.
#[derive(Debug, Clone)]
pub struct WeakRaftNode {
    inner: std::sync::Weak<NodeInner>,
}

impl WeakRaftNode {
    /// The node, while any [`RaftNode`] of it is still held.
    pub fn upgrade(&self) -> Option<RaftNode> {
        self.inner.upgrade().map(|inner| RaftNode { inner })
    }
}

impl RaftNode {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// A handle that does not keep the node running.
    /// Runs `tick` every half heartbeat until the node stops (or is
    /// dropped): the watches that look over every group (quick failover,
    /// elections), on the node's Raft runtime. A slow tick delays the next
    /// rather than piling up.
    fn spawn_group_watch<F, Fut>(&self, tick: F)
    where
        F: Fn(RaftNode) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let node = self.downgrade();
        let every = (self.inner.settings.heartbeat / 2).max(std::time::Duration::from_millis(1));
        self.inner.runtime.spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(node) = node.upgrade() else { break };
                if node.inner.stopped.load(Ordering::Acquire) {
                    break;
                }
                tick(node).await;
            }
        });
    }

    pub fn downgrade(&self) -> WeakRaftNode {
        WeakRaftNode {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// This node's advertised address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The cluster's shard count.
    pub fn shard_count(&self) -> u32 {
        self.inner.shard_count
    }

    /// The groups this node runs.
    pub fn groups(&self) -> Vec<GroupId> {
        self.inner.groups.keys().copied().collect()
    }

    /// The gRPC service to serve (alone via [`crate::grpc::serve`] or beside
    /// the node's other services).
    pub fn grpc_service(&self) -> RaftGrpcService {
        GrpcService::new(Arc::downgrade(&self.inner))
    }

    fn group(&self, group: GroupId) -> Result<&Group, NodeError> {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(NodeError::Stopped);
        }
        self.inner
            .groups
            .get(&group)
            .ok_or(NodeError::UnknownGroup(group))
    }

    /// The openraft instance of a group, for this crate's tests and bench
    /// (triggers, waits). Other crates use the methods of [`RaftNode`].
    #[doc(hidden)]
    pub fn raft(&self, group: GroupId) -> Result<&Raft, NodeError> {
        Ok(&self.group(group)?.raft)
    }

    /// Raft metrics of a group.
    pub fn metrics(&self, group: GroupId) -> Result<watch::Receiver<RaftMetrics>, NodeError> {
        Ok(self.group(group)?.raft.metrics())
    }

    /// How many snapshot transfers of `group` this node began as leader
    /// to node `to` (those whose first chunk `to` took) since it started.
    pub fn snapshots_sent(&self, group: GroupId, to: NodeId) -> Result<u64, NodeError> {
        Ok(self.group(group)?.snapshots_sent.to(to))
    }

    /// Leadership of a group; changes whenever leader or term change.
    pub fn leadership(&self, group: GroupId) -> Result<watch::Receiver<Leadership>, NodeError> {
        Ok(self.group(group)?.leadership.clone())
    }

    /// Notices of what applying `group`'s log changes from now on (which
    /// processes, cluster data, or everything after a snapshot install).
    /// Subscribe, then read the state: nothing is missed in between.
    pub fn subscribe_applied(
        &self,
        group: GroupId,
    ) -> Result<broadcast::Receiver<Applied>, NodeError> {
        Ok(self.group(group)?.applied.subscribe())
    }

    /// Waits until everything this node has written is durable.
    pub async fn sync(&self) -> Result<(), NodeError> {
        match &self.inner.store {
            Some(store) => store.sync().await.map_err(|reason| NodeError::Fatal {
                group: crate::shard::META_GROUP,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Stops every group and, when the node has a runtime of its own
    /// ([`RaftThreads::Own`]), that runtime and everything spawned on it
    /// (the peer server too, if it was spawned there); once this returns
    /// no task of the node runs any more. The database closes when the
    /// last clone of this node is dropped ([`RaftNode::closed`]). Not to
    /// be awaited from a task on the node's own Raft runtime.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        for (g, group) in &self.inner.groups {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = g, error = %e, "raft shutdown failed");
            }
        }
        self.inner.runtime.stop().await;
    }

    /// Resolves once this node's database is closed and nothing of it
    /// writes any more: after [`RaftNode::shutdown`] and once the last
    /// handle on the node (this one included) is dropped. At once with
    /// memory storage.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.inner.store.as_ref().map(Store::closed);
        async move {
            if let Some(closed) = store {
                closed.await;
            }
        }
    }

    /// The runtime this node's Raft work runs on ([`crate::threads`]): the
    /// place for the peer server (see [`RaftNode::grpc_service`]) and
    /// anything else that must keep Raft's pace when the application is
    /// busy.
    pub fn raft_runtime(&self) -> &tokio::runtime::Handle {
        self.inner.runtime.handle()
    }
}
