//! The cluster as a whole, for `canon cluster status` and `canond --join`.
//!
//! Only a group's leader knows how far behind each follower is (openraft's
//! replication metrics), and leaders are spread over the nodes, so a node
//! answering for the whole cluster asks every member for its own view and
//! reports each group as its leader sees it. Joining adds a node to the
//! meta group, records it and a new shard placement in the meta group, and
//! carries the placement out through membership changes; a member that is
//! not a voter of a shard is its learner, so every node holds every shard
//! and answers any read from its own replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use canon_proto::canon::api::v1 as pb;
use canon_raft::shard::group_of_shard;
use canon_raft::{Command, CommandId, NodeId, RaftNode, Request, Response, META_GROUP};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

/// One membership change (join or removal) at a time through this process:
/// two planned at once would each plan over a view without the other and
/// undo each other's placement. (Changes asked through different nodes at
/// once can still interleave.)
pub(crate) static MEMBERSHIP_CHANGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bound on one peer's answer to a cluster status call.
pub const PEER_CALL: Duration = Duration::from_secs(2);

/// Opens a channel to another node's client API at `addr` (`host:port`;
/// every node serves the client API where its peers reach it). Simulations
/// supply their own.
pub type PeerDialer = Arc<dyn Fn(&str) -> Result<Channel, String> + Send + Sync>;

/// Dials peers over TCP (lazily: a channel connects on its first call).
pub fn tcp_dialer() -> PeerDialer {
    dialer(None)
}

/// Dials peers over TCP, with TLS if `tls` is given (this node's
/// certificate and the peer CA).
pub fn dialer(tls: Option<ClientTlsConfig>) -> PeerDialer {
    Arc::new(move |addr: &str| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut e = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad peer address {addr:?}: {e}"))?;
        if let Some(tls) = &tls {
            e = e
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS settings for {addr}: {e}"))?;
        }
        // Each call is bounded by its caller.
        Ok(e.connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy())
    })
}

/// This node's own view of every group it runs.
pub async fn local_view(node: &RaftNode) -> Result<pb::ClusterStatusReply, Status> {
    let me = node.id();
    let mut groups = Vec::new();
    let mut members: BTreeMap<NodeId, String> = BTreeMap::new();
    for g in node.groups() {
        let m = node.metrics(g).map_err(unavailable)?;
        let m = m.borrow();
        let membership = m.membership_config.membership();
        for (id, n) in membership.nodes() {
            members.entry(*id).or_insert_with(|| n.addr.clone());
        }
        let last = m.last_log_index.unwrap_or(0);
        let followers = match (&m.replication, m.current_leader == Some(me)) {
            (Some(rep), true) => rep
                .iter()
                .filter(|(n, _)| **n != me)
                .map(|(n, matched)| {
                    let at = matched.map(|l| l.index).unwrap_or(0);
                    pb::FollowerView {
                        node: *n,
                        matched_index: at,
                        matched_known: matched.is_some(),
                        lag: last.saturating_sub(at),
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        groups.push(pb::GroupView {
            group: g,
            leader: m.current_leader.unwrap_or(0),
            term: m.current_term,
            last_log_index: last,
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            voters: membership.voter_ids().collect(),
            reported_by: me,
            followers,
            learners: membership.learner_ids().collect(),
        });
    }
    // The members the meta group records, when it records any: a removed
    // node may linger as a learner of a shard for a moment after it left.
    let (recorded, placement) = node
        .read(META_GROUP, canon_raft::Consistency::Stale, |s| {
            let members: BTreeMap<NodeId, String> = s
                .meta
                .members
                .values()
                .map(|m| (m.node, m.addr.clone()))
                .collect();
            (members, placement_view(&s.meta.placement))
        })
        .await
        .map_err(unavailable)?;
    if !recorded.is_empty() {
        members = recorded;
    }
    Ok(pb::ClusterStatusReply {
        node: me,
        placement,
        members: members
            .into_iter()
            .map(|(node, addr)| pb::Member {
                reachable: node == me,
                node,
                addr,
                error: String::new(),
            })
            .collect(),
        groups,
        shard_count: node.shard_count(),
        // The API fills in the cluster id.
        cluster_id: String::new(),
    })
}

/// Asks one peer for its own view.
async fn peer_view(dial: &PeerDialer, addr: &str) -> Result<pb::ClusterStatusReply, String> {
    let channel = dial(addr)?;
    let mut api = pb::canon_client::CanonClient::new(channel);
    let call = api.cluster_status(pb::ClusterStatusRequest { local: true });
    match tokio::time::timeout(PEER_CALL, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(s.message().to_string()),
        Err(_) => Err(format!("no answer within {PEER_CALL:?}")),
    }
}

/// The whole cluster: every member asked (concurrently) for its view; each
/// group as reported by its leader if the leader answered, else by the
/// answering member that knows the newest term.
pub async fn whole_view(
    node: &RaftNode,
    dial: &PeerDialer,
) -> Result<pb::ClusterStatusReply, Status> {
    let own = local_view(node).await?;
    let me = node.id();
    let mut asks = tokio::task::JoinSet::new();
    for m in own.members.iter().filter(|m| m.node != me) {
        let (id, addr, dial) = (m.node, m.addr.clone(), dial.clone());
        asks.spawn(async move { (id, peer_view(&dial, &addr).await) });
    }
    let mut views = vec![own.clone()];
    let mut errors: BTreeMap<NodeId, String> = BTreeMap::new();
    while let Some(answer) = asks.join_next().await {
        match answer {
            Ok((_, Ok(v))) => views.push(v),
            Ok((id, Err(e))) => {
                errors.insert(id, e);
            }
            // A panicked or cancelled ask: that member counts as unreachable.
            Err(e) => tracing::warn!(error = %e, "cluster status ask failed"),
        }
    }
    // Members: everyone any answering node knows of.
    let mut members: BTreeMap<NodeId, pb::Member> = BTreeMap::new();
    for v in &views {
        for m in &v.members {
            members.entry(m.node).or_insert_with(|| pb::Member {
                node: m.node,
                addr: m.addr.clone(),
                reachable: false,
                error: String::new(),
            });
        }
    }
    for (id, m) in members.iter_mut() {
        m.reachable = views.iter().any(|v| v.node == *id);
        if !m.reachable {
            m.error = errors
                .get(id)
                .cloned()
                .unwrap_or_else(|| "not asked: learned of it from another member".into());
        }
    }
    let mut best: BTreeMap<u64, pb::GroupView> = BTreeMap::new();
    for v in &views {
        for g in &v.groups {
            let rank = |g: &pb::GroupView| {
                (
                    g.leader != 0 && g.reported_by == g.leader,
                    g.term,
                    g.applied_index,
                )
            };
            match best.get(&g.group) {
                Some(b) if rank(b) >= rank(g) => {}
                _ => {
                    best.insert(g.group, g.clone());
                }
            }
        }
    }
    // The recorded placement as the newest view knows it.
    let placement = views
        .iter()
        .filter(|v| !v.placement.is_empty())
        .max_by_key(|v| {
            v.groups
                .iter()
                .find(|g| g.group == META_GROUP)
                .map(|g| g.applied_index)
        })
        .map(|v| v.placement.clone())
        .unwrap_or_default();
    Ok(pb::ClusterStatusReply {
        node: me,
        members: members.into_values().collect(),
        groups: best.into_values().collect(),
        shard_count: own.shard_count,
        placement,
        // The API fills in the cluster id.
        cluster_id: String::new(),
    })
}

/// A placement as the API shows it.
pub fn placement_view(p: &BTreeMap<u32, Vec<NodeId>>) -> Vec<pb::ShardPlacement> {
    p.iter()
        .map(|(shard, replicas)| pb::ShardPlacement {
            shard: *shard,
            replicas: replicas.clone(),
            group: group_of_shard(*shard),
        })
        .collect()
}

pub(crate) fn unavailable(e: canon_raft::NodeError) -> Status {
    Status::unavailable(e.to_string())
}

/// Proposes a meta-group command under a fresh id.
pub(crate) async fn propose_meta(node: &RaftNode, command: Command) -> Result<(), Status> {
    propose_meta_as(node, CommandId(uuid::Uuid::new_v4()), command)
        .await?
        .map_err(|r| Status::failed_precondition(r.to_string()))
}

/// Proposes a meta-group command under `id` (a retry with the same id is
/// answered as the first time); the state machine's verdict is the inner
/// result.
pub(crate) async fn propose_meta_as(
    node: &RaftNode,
    id: CommandId,
    command: Command,
) -> Result<Result<(), canon_raft::Rejection>, Status> {
    let req = Request {
        id,
        at: crate::now_ms(),
        command,
        fence: None,
        principal: None,
        door: None,
    };
    match node.propose(META_GROUP, req).await.map_err(unavailable)? {
        Response::Applied => Ok(Ok(())),
        Response::Rejected(r) => Ok(Err(r)),
    }
}

/// Every member: those the meta group records and the meta group's own
/// members (a node is a member of the meta group before it is recorded,
/// and clusters created before members were recorded record none). Read
/// linearizably, so a join or removal plans over every member there is.
pub(crate) async fn known_members(node: &RaftNode) -> Result<BTreeMap<NodeId, String>, Status> {
    let mut members: BTreeMap<NodeId, String> = node
        .read(META_GROUP, canon_raft::Consistency::Linearizable, |s| {
            s.meta
                .members
                .values()
                .map(|m| (m.node, m.addr.clone()))
                .collect()
        })
        .await
        .map_err(unavailable)?;
    // Applied at least up to the read: the membership is as new.
    let m = node.metrics(META_GROUP).map_err(unavailable)?;
    for (id, n) in m.borrow().membership_config.membership().nodes() {
        members.entry(*id).or_insert_with(|| n.addr.clone());
    }
    Ok(members)
}

/// The placement the meta group records, completed with each unrecorded
/// shard's current voters.
pub(crate) async fn current_placement(
    node: &RaftNode,
) -> Result<BTreeMap<u32, Vec<NodeId>>, Status> {
    let mut current = node
        .read(META_GROUP, canon_raft::Consistency::Linearizable, |s| {
            s.meta.placement.clone()
        })
        .await
        .map_err(unavailable)?;
    for shard in 0..node.shard_count() {
        if let std::collections::btree_map::Entry::Vacant(e) = current.entry(shard) {
            let voters = node.voters(group_of_shard(shard)).map_err(unavailable)?;
            e.insert(voters.into_iter().collect());
        }
    }
    Ok(current)
}

/// Creates the cluster on one node: every group gets `members` (id →
/// address) as voters, and the meta group records the shard count, the
/// members and each shard's replicas, so that `canon cluster status` and
/// later joins and removals start from the placement the cluster really
/// has. Safe to repeat: a cluster that already records members is left as
/// it is (its placement may have changed since).
pub async fn create(node: &RaftNode, members: &BTreeMap<NodeId, String>) -> Result<(), Status> {
    node.initialize(members).await.map_err(unavailable)?;
    let recorded = node
        .read(META_GROUP, canon_raft::Consistency::Linearizable, |s| {
            !s.meta.members.is_empty()
        })
        .await
        .map_err(unavailable)?;
    if recorded {
        return Ok(());
    }
    match propose_meta_as(
        node,
        CommandId::random(),
        Command::ClusterCreated {
            shard_count: node.shard_count(),
        },
    )
    .await?
    {
        Ok(()) | Err(canon_raft::Rejection::ShardCountFixed(_)) => {}
        Err(r) => return Err(Status::failed_precondition(r.to_string())),
    }
    for (id, addr) in members {
        propose_meta(
            node,
            Command::MemberSet {
                node: *id,
                addr: addr.clone(),
            },
        )
        .await?;
    }
    let placement = current_placement(node).await?;
    record_placement(node, &placement, &BTreeMap::new()).await?;
    tracing::info!(members = ?members.keys().collect::<Vec<_>>(), "cluster created; members and placement recorded");
    Ok(())
}

/// Refuses a join that makes no sense (node id 0, an address that is not
/// host:port) before anything is spent or changed.
pub fn check_join_request(new: NodeId, addr: &str) -> Result<(), Status> {
    if new == 0 {
        return Err(Status::invalid_argument("node id 0 is reserved"));
    }
    if addr.is_empty() || !addr.contains(':') {
        return Err(Status::invalid_argument(format!(
            "bad address {addr:?}: want host:port"
        )));
    }
    Ok(())
}

/// Adds node `new` (at `addr`) to the cluster: a voter of the meta group,
/// recorded with every other member in the meta group's data, then a voter
/// of the shards a new placement (`replicas` per shard, keeping as much of
/// the current one as balance allows) gives it; other nodes may lose
/// votes to it, and become learners of those shards. Safe to repeat: a member joining again changes nothing.
/// Returns the shards the new node holds.
pub async fn join(
    node: &RaftNode,
    new: NodeId,
    addr: &str,
    replicas: usize,
) -> Result<Vec<u32>, Status> {
    check_join_request(new, addr)?;
    let _one_at_a_time = MEMBERSHIP_CHANGE.lock().await;
    // Joins wait for the cluster's creation to record its members and
    // placement: a placement planned over a view without the members would
    // take their shards away, and one recorded beside the creation's would
    // be overwritten by it.
    let recorded = node
        .read(META_GROUP, canon_raft::Consistency::Linearizable, |s| {
            !s.meta.members.is_empty()
        })
        .await
        .map_err(unavailable)?;
    if !recorded {
        return Err(Status::unavailable(
            "the cluster records no members yet: it is still being created (a cluster made by \
             an older canond records them when its --bootstrap node restarts); retry",
        ));
    }
    let known = known_members(node).await?;
    if let Some(at) = known.get(&new).filter(|a| *a != addr) {
        return Err(Status::already_exists(format!(
            "node {new} is already a member at {at}; pick another id"
        )));
    }
    node.add_voter(META_GROUP, new, addr)
        .await
        .map_err(unavailable)?;
    // Read again: another join may have finished meanwhile.
    let mut addrs = known_members(node).await?;
    addrs.insert(new, addr.to_string());
    for (id, a) in &addrs {
        propose_meta(
            node,
            Command::MemberSet {
                node: *id,
                addr: a.clone(),
            },
        )
        .await?;
    }
    let shards = node.shard_count();
    let current = current_placement(node).await?;
    let nodes: BTreeSet<NodeId> = addrs.keys().copied().collect();
    let want = canon_raft::placement::place(&nodes, shards, replicas, &current);
    record_placement(node, &want, &BTreeMap::new()).await?;
    carry_out(node, &want, &addrs).await?;
    tracing::info!(node = new, %addr, placement = ?want, "node joined");
    Ok(want
        .iter()
        .filter(|(_, set)| set.contains(&new))
        .map(|(shard, _)| *shard)
        .collect())
}

/// Records `want` in the meta group: each shard whose record in
/// `recorded` differs (every shard, given an empty map).
pub(crate) async fn record_placement(
    node: &RaftNode,
    want: &BTreeMap<u32, Vec<NodeId>>,
    recorded: &BTreeMap<u32, Vec<NodeId>>,
) -> Result<(), Status> {
    for (shard, set) in want.iter().filter(|(s, set)| recorded.get(s) != Some(*set)) {
        propose_meta(
            node,
            Command::ShardPlaced {
                shard: *shard,
                replicas: set.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Makes each shard's voters match `want`, one shard at a time, and makes
/// every other member of `addrs` a learner of that shard right after, so
/// that any node answers linearizable reads of any shard from its own
/// replica. (A voter that loses its vote leaves the group entirely —
/// canon-raft's removal does not keep it as a learner — so until its
/// learner step it cannot serve that shard's reads; one shard at a time
/// keeps that window to one membership change.)
pub(crate) async fn carry_out(
    node: &RaftNode,
    want: &BTreeMap<u32, Vec<NodeId>>,
    addrs: &BTreeMap<NodeId, String>,
) -> Result<(), Status> {
    for (shard, set) in want {
        let one = BTreeMap::from([(*shard, set.clone())]);
        node.apply_placement(&one, addrs)
            .await
            .map_err(unavailable)?;
        for (id, a) in addrs.iter().filter(|(id, _)| !set.contains(id)) {
            node.add_learner(group_of_shard(*shard), *id, a)
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Asks the cluster member at `target` (`host:port`) to add this node,
/// retrying until `within` passes (the member may still be starting, or
/// busy with another membership change).
pub async fn ask_to_join(
    dial: &PeerDialer,
    target: &str,
    id: NodeId,
    addr: &str,
    token: Option<&str>,
    within: Duration,
) -> Result<pb::JoinReply, String> {
    let started = tokio::time::Instant::now();
    loop {
        let channel = dial(target)?;
        let mut api = pb::canon_client::CanonClient::new(channel);
        let call = api.join(pb::JoinRequest {
            node: id,
            addr: addr.to_string(),
            token: token.unwrap_or_default().to_string(),
        });
        let last = match tokio::time::timeout(JOIN_CALL, call).await {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(s))
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::AlreadyExists
                        | tonic::Code::PermissionDenied
                ) =>
            {
                return Err(format!("{target} refused the join: {}", s.message()))
            }
            Ok(Err(s)) => s.message().to_string(),
            Err(_) => format!("no answer within {JOIN_CALL:?}"),
        };
        if started.elapsed() > within {
            return Err(format!("could not join through {target}: {last}"));
        }
        tracing::info!(%target, reason = %last, "join not done yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Bound on one join call (it waits for the new node to catch up on every
/// group it joins).
const JOIN_CALL: Duration = Duration::from_secs(60);
