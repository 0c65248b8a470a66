//! A conductor node's Raft side: many openraft groups (the meta group and
//! every shard) over one sled database and one transport.
//!
//! Callers propose commands to a group and get the applied answer back
//! (forwarded to the leader when this node is not it, retried across leader
//! changes — safe because commands are deduplicated by id), read state
//! linearizably (read index through the leader) or stale (local replica),
//! and watch each group's leadership to start and stop their work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::balance::{plan_transfer, GroupView};
use crate::coalesce::Coalescer;
use crate::codec;
use crate::command::{Batch, Request, Response};
use crate::config::RaftSettings;
use crate::grpc::{GrpcService, GrpcTransport};
use crate::ids::{GroupId, NodeId};
use crate::network::{HandleError, MessageHandler, NetworkFactory, RpcKind, Transport};
use crate::shard::all_groups;
use crate::state::CanonState;
use crate::store::sm::{Applied, SharedState};
use crate::store::{MemDisk, Store, StoreError};
use crate::types::{LogId, Node, Raft, RaftMetrics, TypeConfig};

/// How often `propose` and linearizable reads retry while no leader is known.
const RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// How long start-up waits for a previous owner of the database (e.g. the
/// process being replaced) to let go of it.
const DB_LOCK_WAIT: Duration = Duration::from_secs(5);

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

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started.
    Linearizable,
    /// Whatever this replica has applied; may lag.
    Stale,
}

/// Errors of the node API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad raft settings: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("no group {0} on this node")]
    UnknownGroup(GroupId),
    #[error("group {group}: no leader answered within {after:?}")]
    NoLeader { group: GroupId, after: Duration },
    #[error("group {group}: raft stopped: {reason}")]
    Fatal { group: GroupId, reason: String },
    #[error("group {group}: {reason}")]
    Raft { group: GroupId, reason: String },
    #[error("cannot encode or decode: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("node stopped")]
    Stopped,
}

/// Errors sent back over the wire for forwarded calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
enum WireError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// Worth retrying (e.g. another membership change is in progress).
    #[error("busy: {0}")]
    Busy(String),
    #[error("{0}")]
    Fatal(String),
}

impl WireError {
    fn of_write(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => WireError::NotLeader {
                leader: f
                    .leader_id
                    .map(|id| (id, f.leader_node.map(|n| n.addr).unwrap_or_default())),
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                openraft::error::ChangeMembershipError::InProgress(p),
            )) => WireError::Busy(p.to_string()),
            RaftError::APIError(e) => WireError::Fatal(e.to_string()),
            RaftError::Fatal(e) => WireError::Fatal(e.to_string()),
        }
    }
}

/// Membership changes and elections, run on (or forwarded to) a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum AdminRequest {
    /// Add a voter: as learner first (waits for it to catch up), then voter.
    AddVoter { node: NodeId, addr: String },
    /// Add a learner (a non-voting replica), waiting until it caught up.
    AddLearner { node: NodeId, addr: String },
    /// Remove a voter (it leaves the group entirely).
    RemoveVoter { node: NodeId },
    /// Start an election on the receiving node (leader balancing).
    Elect,
    /// The group's voters, as its leader knows them.
    Voters,
}

/// Something to run on a group's leader (or, for `Elect`, a given node).
#[derive(Debug, Clone)]
enum Op {
    Propose(Request),
    ReadIndex,
    Admin(AdminRequest),
}

/// The answer to an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Done {
    Propose(Response),
    ReadIndex(Option<LogId>),
    Admin,
    Voters(BTreeSet<NodeId>),
}

fn unexpected(group: GroupId, got: &Done) -> NodeError {
    NodeError::Raft {
        group,
        reason: format!("unexpected answer {got:?}"),
    }
}

struct Group {
    raft: Raft,
    state: SharedState,
    applied: broadcast::Sender<Applied>,
    leadership: watch::Receiver<Leadership>,
    batcher: mpsc::Sender<Pending>,
    /// Holds the batcher's new batches while leadership is handed over.
    hold: Arc<Hold>,
}

/// A switch that holds a group's new batches (proposals queue meanwhile).
#[derive(Debug, Default)]
struct Hold {
    on: AtomicBool,
    released: tokio::sync::Notify,
}

impl Hold {
    fn set(&self, on: bool) {
        self.on.store(on, Ordering::Release);
        if !on {
            self.released.notify_waiters();
        }
    }

    async fn wait_released(&self) {
        loop {
            let released = self.released.notified();
            if !self.on.load(Ordering::Acquire) {
                return;
            }
            released.await;
        }
    }
}

/// Most requests in one log entry.
const MAX_BATCH: usize = 512;
/// Rough bound on the size of one log entry.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Batches of one group in flight at once.
const MAX_INFLIGHT_BATCHES: usize = 4;
/// Proposals that must be waiting before a batch is started while another
/// is still in flight (fewer wait for it, to share the next entry).
const PIPELINE_MIN: usize = 8;
/// Proposals waiting for a batch, per group, before proposers wait.
const BATCH_QUEUE: usize = 10_000;

/// A proposal waiting for its batch to be applied.
type Pending = (Request, oneshot::Sender<Result<Response, WireError>>);

/// Starts a group's batcher: proposals that arrive while earlier batches
/// are in flight are written as one log entry.
///
/// Every entry costs a replication round and a flush on each replica, so
/// the batcher aims for few, full entries: a batch starts at once when
/// none is in flight (a lone writer never waits), but while one is, a new
/// one starts only when [`PIPELINE_MIN`] proposals are waiting; fewer wait
/// for the batch in flight to finish and then go together. When the last
/// batch held several proposals (concurrent writers), the batcher yields
/// once before collecting, so writers answered together propose together.
fn spawn_batcher(raft: Raft, hold: Arc<Hold>) -> mpsc::Sender<Pending> {
    let (tx, mut rx) = mpsc::channel::<Pending>(BATCH_QUEUE);
    tokio::spawn(async move {
        let inflight = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(tokio::sync::Notify::new());
        let mut carry: Option<Pending> = None;
        let mut last_len = 0usize;
        loop {
            let first = match carry.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            hold.wait_released().await;
            loop {
                let n = inflight.load(Ordering::Acquire);
                if n == 0 || (n < MAX_INFLIGHT_BATCHES && rx.len() + 1 >= PIPELINE_MIN) {
                    break;
                }
                finished.notified().await;
            }
            if last_len > 1 {
                tokio::task::yield_now().await;
            }
            let mut size = first.0.approx_size();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                let Ok(p) = rx.try_recv() else { break };
                let s = p.0.approx_size();
                if size + s > MAX_BATCH_BYTES {
                    carry = Some(p);
                    break;
                }
                size += s;
                batch.push(p);
            }
            last_len = batch.len();
            inflight.fetch_add(1, Ordering::AcqRel);
            let raft = raft.clone();
            let inflight = inflight.clone();
            let finished = finished.clone();
            tokio::spawn(async move {
                let (reqs, waiters): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
                let n = reqs.len();
                let answers = match raft.client_write(Batch(reqs)).await {
                    Ok(resp) if resp.data.len() == n => resp.data.into_iter().map(Ok).collect(),
                    Ok(resp) => {
                        let e = WireError::Fatal(format!(
                            "{} answers for {n} requests",
                            resp.data.len()
                        ));
                        vec![Err(e); n]
                    }
                    Err(e) => vec![Err(WireError::of_write(e)); n],
                };
                inflight.fetch_sub(1, Ordering::AcqRel);
                finished.notify_one();
                for (w, a) in waiters.into_iter().zip(answers) {
                    // The proposer may have given up; nothing to tell then.
                    let _ = w.send(a);
                }
            });
        }
    });
    tx
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
    groups: BTreeMap<GroupId, Group>,
    stopped: AtomicBool,
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

impl RaftNode {
    /// Starts a node with the gRPC transport.
    pub async fn start_grpc(config: NodeConfig) -> Result<RaftNode, NodeError> {
        let transport = Arc::new(GrpcTransport::new(config.settings.connect_timeout));
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
            let fatal = |e: openraft::error::Fatal<NodeId>| NodeError::Fatal {
                group: g,
                reason: e.to_string(),
            };
            let (raft, (state, applied)) = match (&store, &config.storage) {
                (Some(store), _) => {
                    let (log, sm) = store.open_group(g, config.shard_count)?;
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
            let leadership = watch_leadership(
                config.id,
                raft.metrics(),
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
                },
            );
        }
        Ok(RaftNode {
            inner: Arc::new(NodeInner {
                id: config.id,
                addr: config.addr,
                shard_count: config.shard_count,
                settings: config.settings,
                store,
                transport,
                groups,
                stopped: AtomicBool::new(false),
            }),
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
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

    /// The openraft instance of a group (membership changes, metrics,
    /// triggers).
    pub fn raft(&self, group: GroupId) -> Result<&Raft, NodeError> {
        Ok(&self.group(group)?.raft)
    }

    /// Raft metrics of a group.
    pub fn metrics(&self, group: GroupId) -> Result<watch::Receiver<RaftMetrics>, NodeError> {
        Ok(self.group(group)?.raft.metrics())
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

    /// Creates a new cluster: every group gets `members` (id → address) as
    /// its voters. Call on one node once all members run; calling it again
    /// (or on a node of an existing cluster) changes nothing.
    pub async fn initialize(&self, members: &BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let nodes: BTreeMap<NodeId, Node> = members
            .iter()
            .map(|(id, addr)| (*id, Node { addr: addr.clone() }))
            .collect();
        for (g, group) in &self.inner.groups {
            match group.raft.initialize(nodes.clone()).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    return Err(NodeError::Raft {
                        group: *g,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Proposes `req` to `group` and returns its answer once applied. Sent
    /// to the leader wherever it is (found through this node's view of the
    /// group, or through the group's replicas when this node holds none);
    /// retried (same command id, so applied at most once) across leader
    /// changes until `propose_timeout`.
    pub async fn propose(&self, group: GroupId, req: Request) -> Result<Response, NodeError> {
        self.group(group)?;
        let limit = self.inner.settings.propose_timeout;
        match self.inner.route(group, &Op::Propose(req), limit).await? {
            Done::Propose(r) => Ok(r),
            other => Err(unexpected(group, &other)),
        }
    }

    /// Reads `group`'s state. A linearizable read reflects every write
    /// acknowledged before it started (it asks the leader for a read index
    /// and waits until this replica has applied it); a stale read returns
    /// this replica's state at once.
    pub async fn read<T>(
        &self,
        group: GroupId,
        consistency: Consistency,
        f: impl FnOnce(&CanonState) -> T,
    ) -> Result<T, NodeError> {
        let g = self.group(group)?;
        if consistency == Consistency::Linearizable {
            let limit = self.inner.settings.propose_timeout;
            let read_at = match self.inner.route(group, &Op::ReadIndex, limit).await? {
                Done::ReadIndex(at) => at,
                other => return Err(unexpected(group, &other)),
            };
            if let Some(at) = read_at {
                g.raft
                    .wait(Some(self.inner.settings.forward_timeout))
                    .applied_index_at_least(Some(at.index), "linearizable read")
                    .await
                    .map_err(|e| NodeError::Raft {
                        group,
                        reason: e.to_string(),
                    })?;
            }
        }
        let data = g.state.read();
        Ok(f(&data.state))
    }

    /// Makes `node` (at `addr`) a voter of `group`: it joins as a learner,
    /// catches up, then becomes a voter (joint consensus). Runs on the
    /// group's leader wherever it is; a no-op if it is already a voter.
    pub async fn add_voter(
        &self,
        group: GroupId,
        node: NodeId,
        addr: &str,
    ) -> Result<(), NodeError> {
        let op = Op::Admin(AdminRequest::AddVoter {
            node,
            addr: addr.to_string(),
        });
        self.admin(group, &op).await
    }

    /// Makes `node` (at `addr`) a learner of `group`: it replicates the
    /// group without voting (e.g. every node learns the meta group, so it can
    /// find any shard's replicas). A no-op if it is already a member.
    pub async fn add_learner(
        &self,
        group: GroupId,
        node: NodeId,
        addr: &str,
    ) -> Result<(), NodeError> {
        let op = Op::Admin(AdminRequest::AddLearner {
            node,
            addr: addr.to_string(),
        });
        self.admin(group, &op).await
    }

    /// Removes `node` from `group` (a no-op if it is not a voter). Removing
    /// the leader makes it step down once the change is committed.
    pub async fn remove_voter(&self, group: GroupId, node: NodeId) -> Result<(), NodeError> {
        self.admin(group, &Op::Admin(AdminRequest::RemoveVoter { node }))
            .await
    }

    async fn admin(&self, group: GroupId, op: &Op) -> Result<(), NodeError> {
        self.group(group)?;
        let limit = self.inner.settings.membership_timeout;
        match self.inner.route(group, op, limit).await? {
            Done::Admin => Ok(()),
            other => Err(unexpected(group, &other)),
        }
    }

    /// Asks node `target` (at `addr`) to start an election in `group`. It
    /// wins only if its log is up to date and the current leader's lease has
    /// lapsed; see [`crate::balance`].
    pub async fn ask_to_elect(
        &self,
        target: NodeId,
        addr: &str,
        group: GroupId,
    ) -> Result<(), NodeError> {
        let op = Op::Admin(AdminRequest::Elect);
        let result = if target == self.inner.id {
            self.inner.exec_local(group, &op).await
        } else {
            self.inner.forward(target, addr, group, &op).await?
        };
        result.map(|_| ()).map_err(|e| NodeError::Raft {
            group,
            reason: e.to_string(),
        })
    }

    /// Makes every shard's voters match `placement` (shard → nodes), using
    /// `addrs` for new members' addresses. Adds before removing, so a shard
    /// never has fewer replicas than it should. The meta group is untouched.
    pub async fn apply_placement(
        &self,
        placement: &BTreeMap<u32, Vec<NodeId>>,
        addrs: &BTreeMap<NodeId, String>,
    ) -> Result<(), NodeError> {
        for (shard, want) in placement {
            let group = crate::shard::group_of_shard(*shard);
            for n in want {
                let addr = addrs.get(n).ok_or_else(|| NodeError::Raft {
                    group,
                    reason: format!("no address for node {n}"),
                })?;
                self.add_voter(group, *n, addr).await?;
            }
            let current = self.voters_via_leader(group).await?;
            for n in current.iter().filter(|n| !want.contains(n)) {
                self.remove_voter(group, *n).await?;
            }
        }
        Ok(())
    }

    /// The voters of `group` as its leader knows them.
    async fn voters_via_leader(&self, group: GroupId) -> Result<BTreeSet<NodeId>, NodeError> {
        let limit = self.inner.settings.membership_timeout;
        match self
            .inner
            .route(group, &Op::Admin(AdminRequest::Voters), limit)
            .await?
        {
            Done::Voters(v) => Ok(v),
            other => Err(unexpected(group, &other)),
        }
    }

    /// The voters of `group` as this node knows them (both halves of a
    /// joint configuration).
    pub fn voters(&self, group: GroupId) -> Result<BTreeSet<NodeId>, NodeError> {
        let m = self.metrics(group)?;
        let m = m.borrow();
        Ok(m.membership_config.membership().voter_ids().collect())
    }

    /// What this node sees of every group, for leader balancing.
    pub fn group_views(&self) -> Vec<GroupView> {
        self.inner
            .groups
            .iter()
            .map(|(g, group)| {
                let m = group.raft.metrics();
                let m = m.borrow();
                let voters: BTreeSet<NodeId> =
                    m.membership_config.membership().voter_ids().collect();
                let up_to_date = match (&m.replication, m.current_leader == Some(self.inner.id)) {
                    (Some(rep), true) => rep
                        .iter()
                        .filter(|(_, matched)| matched.map(|l| l.index) == m.last_log_index)
                        .map(|(n, _)| *n)
                        .collect(),
                    _ => BTreeSet::new(),
                };
                let lease = self.inner.settings.election_max;
                let settled = group
                    .leadership
                    .borrow()
                    .since
                    .is_some_and(|at| at.elapsed() > lease + self.inner.settings.heartbeat);
                GroupView {
                    group: *g,
                    leader: m.current_leader.filter(|l| voters.contains(l)),
                    voters,
                    up_to_date,
                    settled,
                }
            })
            .collect()
    }

    /// One round of leader balancing: hands over at most one group this
    /// node leads beyond its share. Returns the group and the new leader
    /// asked to take it.
    pub async fn balance_leaders_once(&self) -> Result<Option<(GroupId, NodeId)>, NodeError> {
        let Some((group, target)) = plan_transfer(self.inner.id, &self.group_views()) else {
            return Ok(None);
        };
        let addr = {
            let m = self.metrics(group)?;
            let m = m.borrow();
            m.membership_config
                .membership()
                .get_node(&target)
                .map(|n| n.addr.clone())
        };
        let Some(addr) = addr else {
            return Ok(None);
        };
        tracing::info!(
            group,
            from = self.inner.id,
            to = target,
            "handing over leadership"
        );
        if self.voters(group)?.len() <= 3 {
            self.ask_to_elect(target, &addr, group).await?;
        } else {
            self.hand_over_quietly(group, target, &addr).await?;
        }
        Ok(Some((group, target)))
    }

    /// Hands `group` to `target` where the election trick alone cannot
    /// win (more than three voters: the target and this leader are no
    /// majority while the other voters honour this leader's lease). This
    /// leader holds new batches and stops heartbeats until the voters'
    /// leases lapse, then the target (up to date by then) asks for votes
    /// before any follower's own election timer fires. Writes to the group
    /// wait about `election_max` meanwhile, and are then forwarded to the
    /// new leader.
    async fn hand_over_quietly(
        &self,
        group: GroupId,
        target: NodeId,
        addr: &str,
    ) -> Result<(), NodeError> {
        let g = self.group(group)?;
        let settings = &self.inner.settings;
        g.hold.set(true);
        g.raft.runtime_config().heartbeat(false);
        let result = async {
            // Quiet for a lease: no entries, no heartbeats.
            tokio::time::sleep(settings.election_max + settings.heartbeat).await;
            let m = g.raft.metrics().borrow().clone();
            let up_to_date = m.replication.as_ref().is_some_and(|r| {
                r.get(&target)
                    .is_some_and(|matched| matched.map(|l| l.index) == m.last_log_index)
            });
            if m.current_leader != Some(self.inner.id) || !up_to_date {
                return Ok(());
            }
            self.ask_to_elect(target, addr, group).await?;
            // Resume once the target won (or after an election's worth).
            let _ = g
                .raft
                .wait(Some(settings.election_max))
                .metrics(|m| m.current_leader != Some(self.inner.id), "handed over")
                .await;
            Ok(())
        }
        .await;
        g.raft.runtime_config().heartbeat(true);
        g.hold.set(false);
        result
    }

    /// Runs [`RaftNode::balance_leaders_once`] every `interval` until the
    /// node stops.
    pub fn spawn_balancer(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.stopped.load(Ordering::Acquire) {
                    return;
                }
                let node = RaftNode { inner };
                if let Err(e) = node.balance_leaders_once().await {
                    tracing::debug!(error = %e, "leader balancing round failed");
                }
            }
        })
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

    /// Stops every group. The database closes when the last clone of this
    /// node is dropped.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        for (g, group) in &self.inner.groups {
            if let Err(e) = group.raft.shutdown().await {
                tracing::warn!(group = g, error = %e, "raft shutdown failed");
            }
        }
    }
}

impl MessageHandler for NodeInner {
    /// Handles one message from a peer.
    async fn handle(
        &self,
        kind: RpcKind,
        group: GroupId,
        payload: &[u8],
    ) -> Result<Vec<u8>, HandleError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(HandleError::Stopped);
        }
        let g = self
            .groups
            .get(&group)
            .ok_or(HandleError::UnknownGroup(group))?;
        let bad = |e: codec::CodecError| HandleError::BadPayload(e.to_string());
        match kind {
            RpcKind::AppendEntries => {
                let req: AppendEntriesRequest<TypeConfig> = codec::decode(payload).map_err(bad)?;
                codec::encode(&g.raft.append_entries(req).await).map_err(bad)
            }
            RpcKind::Vote => {
                let req: VoteRequest<NodeId> = codec::decode(payload).map_err(bad)?;
                codec::encode(&g.raft.vote(req).await).map_err(bad)
            }
            RpcKind::InstallSnapshot => {
                let req: InstallSnapshotRequest<TypeConfig> =
                    codec::decode(payload).map_err(bad)?;
                codec::encode(&g.raft.install_snapshot(req).await).map_err(bad)
            }
            RpcKind::Propose => {
                let req: Request = codec::decode(payload).map_err(bad)?;
                let answer = self.exec_local(group, &Op::Propose(req)).await;
                codec::encode(&answer).map_err(bad)
            }
            RpcKind::ReadIndex => {
                let answer = self.exec_local(group, &Op::ReadIndex).await;
                codec::encode(&answer).map_err(bad)
            }
            RpcKind::Admin => {
                let req: AdminRequest = codec::decode(payload).map_err(bad)?;
                let answer = self.exec_local(group, &Op::Admin(req)).await;
                codec::encode(&answer).map_err(bad)
            }
        }
    }
}

impl NodeInner {
    /// Carries out `op` on this node's replica of `group`.
    async fn exec_local(&self, group: GroupId, op: &Op) -> Result<Done, WireError> {
        let g = self
            .groups
            .get(&group)
            .ok_or_else(|| WireError::Fatal(format!("no group {group}")))?;
        match op {
            Op::Propose(req) => {
                // A follower that knows the leader says so at once, instead
                // of a round through its batcher and raft core.
                {
                    let m = g.raft.metrics();
                    let m = m.borrow();
                    if m.state != ServerState::Leader {
                        if let Some(l) = m.current_leader.filter(|l| *l != self.id) {
                            let addr = m
                                .membership_config
                                .membership()
                                .get_node(&l)
                                .map(|n| n.addr.clone());
                            if let Some(addr) = addr {
                                return Err(WireError::NotLeader {
                                    leader: Some((l, addr)),
                                });
                            }
                        }
                    }
                }
                let stopped = || WireError::Fatal("group stopped".to_string());
                let (tx, rx) = oneshot::channel();
                g.batcher
                    .send((req.clone(), tx))
                    .await
                    .map_err(|_| stopped())?;
                rx.await.map_err(|_| stopped())?.map(Done::Propose)
            }
            Op::ReadIndex => match g.raft.get_read_log_id().await {
                Ok((read_at, _applied)) => Ok(Done::ReadIndex(read_at)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Err(WireError::NotLeader {
                        leader: f
                            .leader_id
                            .map(|id| (id, f.leader_node.map(|n| n.addr).unwrap_or_default())),
                    })
                }
                // No quorum confirmed the leadership: retry (maybe elsewhere).
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                    Err(WireError::Busy(e.to_string()))
                }
                Err(RaftError::Fatal(e)) => Err(WireError::Fatal(e.to_string())),
            },
            Op::Admin(req) => self.admin_local(g, req).await,
        }
    }

    async fn admin_local(&self, g: &Group, req: &AdminRequest) -> Result<Done, WireError> {
        let m = g.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        // Voters of a settled (non-joint) membership; `None` while joint.
        let settled = (membership.get_joint_config().len() == 1).then_some(&voters);
        // A hint names another node only: a leader that has just removed
        // itself still names itself until it steps down.
        let leader_err = || WireError::NotLeader {
            leader: m.current_leader.filter(|id| *id != self.id).map(|id| {
                let addr = membership.get_node(&id).map(|n| n.addr.clone());
                (id, addr.unwrap_or_default())
            }),
        };
        // Membership changes and the voter list come from a leader that is
        // still a member. openraft keeps a leader that removed itself leading
        // until its next heartbeat after the change is applied; a change
        // proposed in that window would be appended by a non-member (openraft
        // asserts against it), so such a leader refuses and the caller asks
        // the remaining voters.
        let leads = m.state == ServerState::Leader
            && m.current_leader == Some(self.id)
            && voters.contains(&self.id);
        if !leads && !matches!(req, AdminRequest::Elect) {
            return Err(leader_err());
        }
        match req {
            AdminRequest::AddVoter { node, addr } => {
                if settled.is_some_and(|v| v.contains(node)) {
                    return Ok(Done::Admin);
                }
                g.raft
                    .add_learner(*node, Node { addr: addr.clone() }, true)
                    .await
                    .map_err(WireError::of_write)?;
                g.raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([*node])), false)
                    .await
                    .map_err(WireError::of_write)?;
                Ok(Done::Admin)
            }
            AdminRequest::AddLearner { node, addr } => {
                if membership.get_node(node).is_some() {
                    return Ok(Done::Admin);
                }
                g.raft
                    .add_learner(*node, Node { addr: addr.clone() }, true)
                    .await
                    .map_err(WireError::of_write)?;
                Ok(Done::Admin)
            }
            AdminRequest::RemoveVoter { node } => {
                if settled.is_some_and(|v| !v.contains(node)) {
                    return Ok(Done::Admin);
                }
                g.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([*node])), false)
                    .await
                    .map_err(WireError::of_write)?;
                Ok(Done::Admin)
            }
            AdminRequest::Voters => Ok(Done::Voters(voters.clone())),
            AdminRequest::Elect => g
                .raft
                .trigger()
                .elect()
                .await
                .map(|()| Done::Admin)
                .map_err(|e| WireError::Fatal(e.to_string())),
        }
    }

    /// Sends `op` to node `target` and returns its answer.
    async fn forward(
        &self,
        target: NodeId,
        addr: &str,
        group: GroupId,
        op: &Op,
    ) -> Result<Result<Done, WireError>, NodeError> {
        let (kind, payload, timeout) = match op {
            Op::Propose(req) => (
                RpcKind::Propose,
                codec::encode(req)?,
                self.settings.forward_timeout,
            ),
            Op::ReadIndex => (
                RpcKind::ReadIndex,
                codec::encode(&())?,
                self.settings.forward_timeout,
            ),
            Op::Admin(req) => (
                RpcKind::Admin,
                codec::encode(req)?,
                self.settings.membership_timeout,
            ),
        };
        let answer = self
            .transport
            .call(target, addr, kind, group, payload, timeout)
            .await
            .map_err(|e| NodeError::Raft {
                group,
                reason: e.to_string(),
            })?;
        Ok(codec::decode(&answer)?)
    }

    /// Nodes that may know `group`'s leader, for a node that does not: the
    /// group's members as this node knows them, else the shard's placement
    /// and the members recorded in the meta group.
    fn candidates(&self, group: GroupId) -> Vec<(NodeId, String)> {
        let mut out: Vec<(NodeId, String)> = Vec::new();
        if let Some(g) = self.groups.get(&group) {
            let m = g.raft.metrics();
            let m = m.borrow();
            for (id, node) in m.membership_config.membership().nodes() {
                out.push((*id, node.addr.clone()));
            }
        }
        if let Some(meta) = self.groups.get(&crate::shard::META_GROUP) {
            let d = meta.state.read();
            let cluster = &d.state.meta;
            let placed =
                crate::shard::shard_of_group(group).and_then(|s| cluster.placement.get(&s));
            for m in cluster.members.values() {
                if placed.is_none_or(|p| p.contains(&m.node))
                    && !out.iter().any(|(id, _)| *id == m.node)
                {
                    out.push((m.node, m.addr.clone()));
                }
            }
        }
        out.retain(|(id, _)| *id != self.id);
        out
    }

    /// Runs `op` on `group`'s leader: here if this node leads, else at the
    /// leader this node knows of, else at a replica that may know it;
    /// retried until `limit` (leader changes, elections, busy groups).
    async fn route(&self, group: GroupId, op: &Op, limit: Duration) -> Result<Done, NodeError> {
        let started = Instant::now();
        let mut target: Option<(NodeId, String)> = None;
        let mut probe = 0usize;
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return Err(NodeError::Stopped);
            }
            let result = match &target {
                Some((id, addr)) if *id != self.id => {
                    match self.forward(*id, addr, group, op).await {
                        // A peer's fatal error (e.g. it is shutting down) is
                        // not ours: try elsewhere.
                        Ok(Err(WireError::Fatal(reason))) => Err(WireError::Busy(reason)),
                        Ok(r) => r,
                        Err(e) => Err(WireError::Busy(e.to_string())),
                    }
                }
                // A leader cut off from its quorum never answers (openraft
                // 0.9 leaders do not step down by themselves): bound the
                // wait by what is left of `limit`.
                _ => {
                    let left = limit.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, self.exec_local(group, op)).await {
                        Ok(r) => r,
                        Err(_) => Err(WireError::Busy(format!("no answer within {limit:?}"))),
                    }
                }
            };
            let mut wait = true;
            match result {
                Ok(done) => return Ok(done),
                Err(WireError::Fatal(reason)) => return Err(NodeError::Raft { group, reason }),
                Err(WireError::NotLeader { leader: Some(l) }) if Some(&l) != target.as_ref() => {
                    // Follow the hint at once.
                    target = Some(l);
                    wait = false;
                }
                Err(WireError::NotLeader { .. }) => {
                    // Nobody here knows a leader: ask around.
                    let candidates = self.candidates(group);
                    target = if candidates.is_empty() {
                        None
                    } else {
                        probe += 1;
                        Some(candidates[probe % candidates.len()].clone())
                    };
                }
                Err(WireError::Busy(reason)) => {
                    tracing::debug!(group, %reason, "retrying");
                    target = None;
                }
            }
            if started.elapsed() >= limit {
                return Err(NodeError::NoLeader {
                    group,
                    after: limit,
                });
            }
            if wait {
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
        }
    }
}

/// Proposes `req` to `group` from outside the cluster (a client, or a
/// process without a node): sends it to `nodes` in turn, following leader
/// hints, until it is applied or `limit` passes. Each call is bounded by
/// `call_timeout`. Retrying is safe: the command id makes it apply once.
pub async fn propose_via(
    transport: &dyn Transport,
    nodes: &[(NodeId, String)],
    group: GroupId,
    req: &Request,
    call_timeout: Duration,
    limit: Duration,
) -> Result<Response, NodeError> {
    let started = Instant::now();
    let payload = codec::encode(req)?;
    let mut target: Option<(NodeId, String)> = None;
    let mut next = 0usize;
    let mut last_fatal: Option<String> = None;
    loop {
        let (id, addr) = match target.take() {
            Some(t) => t,
            None => {
                let Some(t) = nodes.get(next % nodes.len().max(1)).cloned() else {
                    return Err(NodeError::NoLeader {
                        group,
                        after: limit,
                    });
                };
                next += 1;
                t
            }
        };
        let answer = transport
            .call(
                id,
                &addr,
                RpcKind::Propose,
                group,
                payload.clone(),
                call_timeout,
            )
            .await;
        let mut wait = true;
        match answer.map(|bytes| codec::decode::<Result<Done, WireError>>(&bytes)) {
            Ok(Ok(Ok(Done::Propose(r)))) => return Ok(r),
            Ok(Ok(Ok(other))) => return Err(unexpected(group, &other)),
            // A node's fatal error (e.g. it is shutting down) may not be the
            // cluster's: try the others, and report it if nothing works.
            Ok(Ok(Err(WireError::Fatal(reason)))) => last_fatal = Some(reason),
            Ok(Ok(Err(WireError::NotLeader { leader: Some(l) }))) if l.0 != id => {
                target = Some(l);
                wait = false;
            }
            Ok(Ok(Err(e))) => tracing::debug!(group, node = id, error = %e, "retrying elsewhere"),
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => tracing::debug!(group, node = id, error = %e, "retrying elsewhere"),
        }
        if started.elapsed() >= limit {
            return Err(match last_fatal {
                Some(reason) => NodeError::Raft { group, reason },
                None => NodeError::NoLeader {
                    group,
                    after: limit,
                },
            });
        }
        if wait {
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }
}

/// The leader of `group` as the cluster sees it, asked from outside: each
/// node in turn gets a read-index call; the leader answers it, a follower
/// names its leader. `None` if nobody knows one.
pub async fn find_leader(
    transport: &dyn Transport,
    nodes: &[(NodeId, String)],
    group: GroupId,
    call_timeout: Duration,
) -> Option<NodeId> {
    let payload = codec::encode(&()).ok()?;
    for (id, addr) in nodes {
        let Ok(bytes) = transport
            .call(
                *id,
                addr,
                RpcKind::ReadIndex,
                group,
                payload.clone(),
                call_timeout,
            )
            .await
        else {
            continue;
        };
        match codec::decode::<Result<Done, WireError>>(&bytes) {
            Ok(Ok(Done::ReadIndex(_))) => return Some(*id),
            Ok(Err(WireError::NotLeader {
                leader: Some((l, _)),
            })) => return Some(l),
            _ => {}
        }
    }
    None
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

/// Derives a leadership watch from openraft metrics; the task ends when the
/// group's raft stops.
///
/// `is_me` holds only while this node is leader *and* a quorum acknowledged
/// it within `lease`: a leader cut off from the others (or one restarted
/// into its old term, before it learns of a newer leader) stops counting
/// itself leader at about the time the others may elect a new one.
fn watch_leadership(
    me: NodeId,
    mut metrics: watch::Receiver<RaftMetrics>,
    lease: Duration,
    tick: Duration,
) -> watch::Receiver<Leadership> {
    let judge = |m: &RaftMetrics| (m.state, m.current_leader, m.current_term);
    let decide = move |(state, leader, term): (ServerState, Option<NodeId>, u64),
                       last_ack: Option<Instant>,
                       prev: Option<Leadership>| {
        let fresh = last_ack.is_some_and(|at| at.elapsed() < lease);
        let is_me = state == ServerState::Leader && leader == Some(me) && fresh;
        let since = match prev {
            Some(p) if is_me && p.is_me && p.term == term => p.since,
            _ if is_me => Some(Instant::now()),
            _ => None,
        };
        Leadership {
            leader,
            term,
            is_me,
            since,
        }
    };
    let mut seen = judge(&metrics.borrow_and_update());
    let mut ack = last_ack_of(&metrics.borrow());
    let (tx, rx) = watch::channel(decide(seen, ack, None));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick);
        loop {
            tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let m = metrics.borrow_and_update();
                    seen = judge(&m);
                    ack = last_ack_of(&m);
                }
                _ = ticker.tick() => {}
            }
            let now = decide(seen, ack, Some(*tx.borrow()));
            tx.send_if_modified(|cur| {
                let changed = *cur != now;
                *cur = now;
                changed
            });
        }
    });
    rx
}

/// When a quorum last acknowledged this node as leader, if it is one.
fn last_ack_of(m: &RaftMetrics) -> Option<Instant> {
    m.millis_since_quorum_ack
        .and_then(|ms| Instant::now().checked_sub(Duration::from_millis(ms)))
}
