//! Taking a node out of the cluster (`canon cluster remove`), and what the
//! rest of the cluster and the removed node do about it.
//!
//! [`remove_member`] carries a removal out from any member (the leaving
//! node too): a new placement over the members that stay, recorded in the
//! meta group and applied through membership changes (adds before removes,
//! so no shard ever has fewer voters than its replica count); the members
//! that stay learn every shard they do not vote in; then the meta group
//! records the removal (while the leaving node still replicates it, so it
//! learns it was removed) and the node leaves the meta group.
//!
//! A removed node can still be a learner of shards (the raft crate's
//! admin path removes voters only). [`spawn_learner_sweeper`] runs on every
//! node and drops, from each shard group it leads, learners the meta group
//! no longer records as members: so the cleanup needs no extra round trip
//! and finishes even if the node that ran the removal stopped half-way.
//!
//! [`spawn_removal_watch`] is how a node notices that it was removed: the
//! meta group's record of it disappears, or the meta group's membership no
//! longer lists it, or (for a node removed while it was down, which nothing
//! replicates the news to) a peer that is ahead of it says so. It says so in its log and raises a flag that makes the
//! client API refuse calls (instead of answering from replicas that no
//! longer follow the cluster) and `canond` exit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use canon_proto::canon::api::v1 as pb;
use canon_raft::{Command, CommandId, Consistency, NodeId, RaftNode, Rejection, META_GROUP};
use tokio::sync::watch;
use tonic::Status;

use crate::cluster::{
    carry_out, current_placement, known_members, placement_view, propose_meta, propose_meta_as,
    record_placement, unavailable, PeerDialer,
};

/// How long a removal waits for the leaders of the shards to drop the
/// removed node's learner entries before answering anyway.
const LEARNERS_GONE_WITHIN: Duration = Duration::from_secs(10);
/// How often a node looks for learners to drop, and for its own removal.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Takes node `target` out of the cluster. `id` identifies the request:
/// a retry with the same id (e.g. after the leaving node answered and
/// stopped before the answer arrived) finishes the removal and answers as
/// the first try did, instead of "unknown node". A dry run computes the
/// placement and changes nothing.
pub async fn remove_member(
    node: &RaftNode,
    target: NodeId,
    replicas: usize,
    id: CommandId,
    dry_run: bool,
) -> Result<pb::RemoveMemberReply, Status> {
    let _one_at_a_time = if dry_run {
        None
    } else {
        Some(crate::cluster::MEMBERSHIP_CHANGE.lock().await)
    };
    let (recorded, recorded_placement) = recorded_members(node).await?;
    let members = known_members(node).await?;
    if !members.contains_key(&target) {
        if !dry_run {
            // Our own earlier try may have recorded the removal already:
            // then the meta group answers this id as it did then.
            let again = propose_meta_as(node, id, Command::MemberRemoved { node: target }).await?;
            if again.is_ok() {
                let (members, placement) = recorded_members(node).await?;
                let message = finish(node, target).await?;
                return Ok(reply(
                    message,
                    &placement,
                    &members.keys().copied().collect(),
                ));
            }
        }
        return Err(Status::not_found(format!(
            "no member {target}; members are {}",
            list(members.keys())
        )));
    }
    let stay: BTreeMap<NodeId, String> = members
        .iter()
        .filter(|(n, _)| **n != target)
        .map(|(n, a)| (*n, a.clone()))
        .collect();
    if stay.len() < replicas {
        return Err(Status::failed_precondition(format!(
            "cannot remove node {target}: {} members would remain, fewer than the {replicas} \
             replicas each shard keeps; add a node first (canond --join)",
            stay.len()
        )));
    }
    let current = current_placement(node).await?;
    let nodes: BTreeSet<NodeId> = stay.keys().copied().collect();
    let want = canon_raft::placement::place(&nodes, node.shard_count(), replicas, &current);
    if dry_run {
        return Ok(reply(format!("would remove node {target}"), &want, &nodes));
    }
    tracing::info!(node = target, placement = ?want, "removing member");
    // Members the meta group does not record yet (a cluster created before
    // members were recorded) are recorded first: a placement may name only
    // recorded members.
    for (n, addr) in stay.iter().filter(|(n, _)| !recorded.contains_key(n)) {
        propose_meta(
            node,
            Command::MemberSet {
                node: *n,
                addr: addr.clone(),
            },
        )
        .await?;
    }
    record_placement(node, &want, &recorded_placement).await?;
    // Adds before removes, shard by shard; the members that stay learn
    // every shard they do not vote in.
    carry_out(node, &want, &stay).await?;
    match propose_meta_as(node, id, Command::MemberRemoved { node: target }).await? {
        // Removed by a concurrent request: just as good.
        Ok(()) | Err(Rejection::UnknownMember(_)) => {}
        Err(r) => return Err(Status::failed_precondition(r.to_string())),
    }
    let message = finish(node, target).await?;
    Ok(reply(message, &want, &nodes))
}

/// The steps after the meta group recorded the removal: the node leaves
/// the meta group, and (when another node runs the removal) the shards'
/// leaders drop its learner entries. Reads nothing linearizably: a node
/// that removed itself no longer follows the meta group. Returns the
/// answer's message.
async fn finish(node: &RaftNode, target: NodeId) -> Result<String, Status> {
    node.remove_voter(META_GROUP, target)
        .await
        .map_err(unavailable)?;
    let me = node.id();
    let mut message = format!("node {target} removed");
    if target != me {
        let started = tokio::time::Instant::now();
        while in_any_group(node, target) {
            if started.elapsed() > LEARNERS_GONE_WITHIN {
                message.push_str(
                    "; some shards still list it as a learner (their leaders drop it shortly)",
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tracing::info!(node = target, "member removed");
    Ok(message)
}

fn reply(
    message: String,
    placement: &BTreeMap<u32, Vec<NodeId>>,
    members: &BTreeSet<NodeId>,
) -> pb::RemoveMemberReply {
    pb::RemoveMemberReply {
        message,
        placement: placement_view(placement),
        members: members.iter().copied().collect(),
    }
}

fn list<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    ids.map(NodeId::to_string).collect::<Vec<_>>().join(", ")
}

/// The members (id → address) and placement the meta group records, read
/// linearizably.
async fn recorded_members(
    node: &RaftNode,
) -> Result<(BTreeMap<NodeId, String>, BTreeMap<u32, Vec<NodeId>>), Status> {
    node.read(META_GROUP, Consistency::Linearizable, |s| {
        (
            s.meta
                .members
                .values()
                .map(|m| (m.node, m.addr.clone()))
                .collect(),
            s.meta.placement.clone(),
        )
    })
    .await
    .map_err(unavailable)
}

/// True while this node's view of any group lists `target` as a voter or
/// learner.
fn in_any_group(node: &RaftNode, target: NodeId) -> bool {
    node.groups().into_iter().any(|g| {
        node.membership(g)
            .is_ok_and(|m| m.addrs.contains_key(&target))
    })
}

/// Drops, from every shard group this node leads, learners that the meta
/// group no longer records as members. Ends when the node stops.
pub fn spawn_learner_sweeper(node: RaftNode) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = sweep_learners(&node).await {
                if matches!(e, canon_raft::NodeError::Stopped) {
                    return;
                }
                tracing::debug!(error = %e, "learner sweep");
            }
        }
    })
}

/// Learners of shard groups this node leads (and votes in, with a settled
/// membership) that `members` does not hold.
fn stray_learners(
    node: &RaftNode,
    members: &BTreeSet<NodeId>,
) -> BTreeMap<canon_raft::GroupId, BTreeSet<NodeId>> {
    let me = node.id();
    let mut out = BTreeMap::new();
    for g in node.groups().into_iter().filter(|g| *g != META_GROUP) {
        let Ok(m) = node.membership(g) else { continue };
        if !(m.leads && m.voters.contains(&me) && !m.joint) {
            continue;
        }
        let stray: BTreeSet<NodeId> = m
            .learners
            .into_iter()
            .filter(|l| !members.contains(l))
            .collect();
        if !stray.is_empty() {
            out.insert(g, stray);
        }
    }
    out
}

async fn sweep_learners(node: &RaftNode) -> Result<(), canon_raft::NodeError> {
    let members = |s: &canon_raft::CanonState| -> BTreeSet<NodeId> {
        s.meta.members.keys().copied().collect()
    };
    // Nothing recorded (a cluster created before members were): nothing to
    // judge by.
    let stale = node.read(META_GROUP, Consistency::Stale, members).await?;
    if stale.is_empty() || stray_learners(node, &stale).is_empty() {
        return Ok(());
    }
    // A node joining is recorded before it learns any shard; a stale
    // replica may not have that record yet, so confirm with a fresh read.
    let fresh = node
        .read(META_GROUP, Consistency::Linearizable, members)
        .await?;
    for (g, stray) in stray_learners(node, &fresh) {
        match node.remove_learners(g, stray.clone()).await {
            Ok(_) => {
                tracing::info!(group = g, nodes = ?stray, "dropped learners that are no longer members")
            }
            Err(e) => tracing::debug!(group = g, error = %e, "dropping learners"),
        }
    }
    Ok(())
}

/// How often a node that was a member asks a peer whether it still is (it
/// may have been removed while it was down, and then nothing replicates the
/// news to it).
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Raises the returned flag once this node finds it was removed from the
/// cluster (and logs it). Ends then, or when the node stops.
pub fn spawn_removal_watch(node: RaftNode, dial: PeerDialer) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let me = node.id();
        let mut seen_recorded = false;
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probed = tokio::time::Instant::now();
        loop {
            every.tick().await;
            let Ok((any, mine)) = node
                .read(META_GROUP, Consistency::Stale, |s| {
                    (!s.meta.members.is_empty(), s.meta.members.contains_key(&me))
                })
                .await
            else {
                return;
            };
            seen_recorded |= mine;
            let dropped_record = seen_recorded && any && !mine;
            let meta = node.membership(META_GROUP).ok();
            let left_meta = meta
                .as_ref()
                .is_some_and(|m| !m.voters.is_empty() && !m.addrs.contains_key(&me));
            // A member: recorded as one, or a voter in the meta group's
            // membership (from the log, which is durable at once; a node
            // restarted on its own data applies only up to the committed
            // id it had saved, which may lag, so its record may not be
            // applied yet, and no one sends a removed node the rest).
            let was_member = seen_recorded || meta.is_some_and(|m| m.voters.contains(&me));
            let mut why = if dropped_record || left_meta {
                Some("the meta group no longer lists it".to_string())
            } else {
                None
            };
            if why.is_none() && was_member && probed.elapsed() >= PROBE_EVERY {
                probed = tokio::time::Instant::now();
                why = told_removed(&node, &dial).await;
            }
            if let Some(why) = why {
                tracing::warn!(
                    node = me,
                    %why,
                    "this node was removed from the cluster: it no longer serves clients; \
                     to bring it back, wipe its data dir and start it with --join"
                );
                let _ = tx.send(true);
                return;
            }
        }
    });
    rx
}

/// Asks the peers this node knows (in turn, until one answers) for their
/// own view, and believes the first that [`peer_says_removed`] trusts.
async fn told_removed(node: &RaftNode, dial: &PeerDialer) -> Option<String> {
    let me = node.id();
    let (peers, applied) = {
        let m = node.membership(META_GROUP).ok()?;
        let peers: Vec<(NodeId, String)> =
            m.addrs.into_iter().filter(|(id, _)| *id != me).collect();
        (peers, m.applied)
    };
    for (id, addr) in peers {
        let Ok(channel) = dial(&addr) else { continue };
        let mut api = pb::canon_client::CanonClient::new(channel);
        let call = api.cluster_status(pb::ClusterStatusRequest { local: true });
        let Ok(Ok(view)) = tokio::time::timeout(crate::cluster::PEER_CALL, call).await else {
            continue;
        };
        if let Some(removed) = peer_says_removed(&view.into_inner(), id, me, applied) {
            return removed.then(|| format!("member {id} no longer lists it"));
        }
    }
    None
}

/// What peer `peer`'s own view says about node `me`, which has applied the
/// meta group up to `applied`: `None` if it is not to be believed (it is
/// behind `me`, and may not know of a join yet; or it does not list itself),
/// else whether `me` was removed: neither among the members it records nor
/// a voter of its meta group (a node joining is a voter before it is
/// recorded).
fn peer_says_removed(
    view: &pb::ClusterStatusReply,
    peer: NodeId,
    me: NodeId,
    applied: u64,
) -> Option<bool> {
    let meta = view
        .groups
        .iter()
        .find(|g| g.group == META_GROUP && g.applied_index >= applied)?;
    let lists = |n: NodeId| view.members.iter().any(|m| m.node == n);
    if !lists(peer) {
        return None;
    }
    Some(!lists(me) && !meta.voters.contains(&me))
}

/// Whether this node's view of the meta group still lists it as a voter.
pub fn meta_voter(node: &RaftNode) -> bool {
    node.voters(META_GROUP)
        .is_ok_and(|v| v.contains(&node.id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peer 1's view: the members it records, and its meta group's voters
    /// and applied index.
    fn view(members: &[NodeId], voters: &[NodeId], applied: u64) -> pb::ClusterStatusReply {
        pb::ClusterStatusReply {
            node: 1,
            members: members
                .iter()
                .map(|&node| pb::Member {
                    node,
                    ..Default::default()
                })
                .collect(),
            groups: vec![pb::GroupView {
                group: META_GROUP,
                applied_index: applied,
                voters: voters.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_peer_ahead_that_neither_records_nor_counts_a_node_says_it_was_removed() {
        assert_eq!(
            peer_says_removed(&view(&[1, 2], &[1, 2], 40), 1, 5, 22),
            Some(true)
        );
        // Still recorded, or still a voter (joining: a voter before it is
        // recorded; leaving: recorded gone before the vote): not removed.
        assert_eq!(
            peer_says_removed(&view(&[1, 2, 5], &[1, 2], 40), 1, 5, 22),
            Some(false)
        );
        assert_eq!(
            peer_says_removed(&view(&[1, 2], &[1, 2, 5], 40), 1, 5, 22),
            Some(false)
        );
    }

    #[test]
    fn a_peer_behind_or_not_listing_itself_is_not_believed() {
        assert_eq!(
            peer_says_removed(&view(&[1, 2], &[1, 2], 21), 1, 5, 22),
            None
        );
        assert_eq!(
            peer_says_removed(&view(&[2, 3], &[2, 3], 40), 1, 5, 22),
            None
        );
        let mut no_meta = view(&[1, 2], &[1, 2], 40);
        no_meta.groups.clear();
        assert_eq!(peer_says_removed(&no_meta, 1, 5, 22), None);
    }
}
