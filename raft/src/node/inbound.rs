//! What a peer's message does on this node: Raft's own messages go to the
//! group's openraft instance; forwarded proposals, read indexes and
//! membership changes run here, on the group's replica. Called by the
//! transport's server through [`MessageHandler`], and by [`super::routing`]
//! when this node leads.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{ChangeMembers, ServerState};
use tokio::sync::oneshot;

use super::wire::{AdminRequest, Done, Op, WireError};
use super::{Group, NodeError, NodeInner};
use crate::codec;
use crate::command::{Request, Response};
use crate::entry_codec;
use crate::ids::{GroupId, NodeId};
use crate::network::{HandleError, MessageHandler, RpcKind, SnapshotCall};
use crate::types::{Node, TypeConfig};

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
        if let Some(faults) = &self.link_faults {
            faults.inbound().await.map_err(|_| HandleError::Lost)?;
        }
        let g = self
            .groups
            .get(&group)
            .ok_or(HandleError::UnknownGroup(group))?;
        let bad = |e: codec::CodecError| HandleError::BadPayload(e.to_string());
        match kind {
            RpcKind::AppendEntries => {
                let req: AppendEntriesRequest<TypeConfig> =
                    entry_codec::decode_append_entries(payload).map_err(bad)?;
                g.failover.heard();
                codec::encode(&g.raft.append_entries(req).await).map_err(bad)
            }
            RpcKind::Vote => {
                let req: VoteRequest<NodeId> = codec::decode(payload).map_err(bad)?;
                if let Some(c) = req.vote.leader_id().voted_for() {
                    if g.failover.defers_vote_for(c) {
                        return Err(HandleError::Refused(format!(
                            "this node abandoned a gone leader's lease for another \
                             candidate; node {c}'s vote waits out that lease"
                        )));
                    }
                }
                codec::encode(&g.raft.vote(req).await).map_err(bad)
            }
            RpcKind::InstallSnapshot => {
                g.failover.heard();
                // A leader of this release sends its calls; one of an
                // earlier release, openraft's plain chunks.
                if let Ok(call) = codec::decode::<SnapshotCall>(payload) {
                    let wait = self.settings.snapshot_chunk_timeout / 2;
                    let answer = g.installs.answer(&g.raft, call, wait).await;
                    return codec::encode(&answer).map_err(bad);
                }
                let req: InstallSnapshotRequest<TypeConfig> =
                    codec::decode(payload).map_err(bad)?;
                codec::encode(&g.raft.install_snapshot(req).await).map_err(bad)
            }
            RpcKind::Propose => {
                let req: Request = entry_codec::decode_request(payload).map_err(bad)?;
                let answer = self.exec_local(group, &Op::Propose(Box::new(req))).await;
                codec::encode(&answer).map_err(bad)
            }
            RpcKind::ReadIndex => {
                let answer = self.exec_local(group, &Op::ReadIndex).await;
                codec::encode(&answer).map_err(bad)
            }
            RpcKind::Admin => {
                let req: AdminRequest = codec::decode(payload).map_err(bad)?;
                let answer = match req {
                    AdminRequest::Ping => Ok(Done::Admin),
                    AdminRequest::LeaderGone { leader, .. } => {
                        Ok(self.answer_leader_gone(g, group, leader).await)
                    }
                    AdminRequest::Abandon {
                        leader,
                        term,
                        candidate,
                    } => self.answer_abandon(g, group, leader, term, candidate).await,
                    AdminRequest::PreVote { last_log } => Ok(self.answer_pre_vote(g, last_log)),
                    req => self.exec_local(group, &Op::Admin(req)).await,
                };
                codec::encode(&answer).map_err(bad)
            }
        }
    }
}

/// Proposals this node does not lead the group for, given back.
pub(super) struct NotHere(pub(super) Vec<Request>);

/// A follower that knows the leader says so at once, instead of a round
/// through its batcher and raft core; a replica that cannot lead asks to
/// be sent elsewhere.
fn refuse_if_another_leads(g: &Group, me: NodeId) -> Result<(), WireError> {
    let m = g.raft.metrics();
    let m = m.borrow();
    if m.state == ServerState::Leader {
        return Ok(());
    }
    if let Some(l) = m.current_leader.filter(|l| *l != me) {
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
    // A replica removed from the group's voters cannot lead it and hears
    // from no leader: whatever its raft accepted would never be answered.
    // Ask elsewhere.
    if !super::batcher::is_voter(&m, me) {
        return Err(WireError::NotLeader { leader: None });
    }
    Ok(())
}

impl NodeInner {
    /// Carries out `op` on this node's replica of `group`.
    pub(super) async fn exec_local(&self, group: GroupId, op: &Op) -> Result<Done, WireError> {
        let g = self
            .groups
            .get(&group)
            .ok_or_else(|| WireError::Fatal(format!("no group {group}")))?;
        match op {
            Op::Propose(req) => {
                refuse_if_another_leads(g, self.id)?;
                let stopped = || WireError::Fatal("group stopped".to_string());
                let (tx, rx) = oneshot::channel();
                g.batcher
                    .send(((**req).clone(), tx))
                    .await
                    .map_err(|_| stopped())?;
                rx.await.map_err(|_| stopped())?.map(Done::Committed)
            }
            // One leadership confirmation for every read waiting
            // (`super::read_rounds`).
            Op::ReadIndex => g.reads.read_index().await.map(Done::ReadIndex),
            Op::Admin(req) => self.admin_local(g, req).await,
        }
    }

    /// [`RaftNode::propose_in_order`](super::RaftNode::propose_in_order)
    /// on this node, if it leads `group`: `reqs` enter the batcher back to
    /// back (slots for all reserved at once, so no other proposal comes
    /// between them), then each answer is awaited in order, within the
    /// node's `propose_timeout`. `NotHere` gives them back untouched.
    pub(super) async fn propose_here_in_order(
        &self,
        group: GroupId,
        reqs: Vec<Request>,
    ) -> Result<Result<Vec<Response>, NodeError>, NotHere> {
        let Some(g) = self.groups.get(&group) else {
            return Err(NotHere(reqs));
        };
        if g.raft.metrics().borrow().state != ServerState::Leader || reqs.is_empty() {
            return Err(NotHere(reqs));
        }
        let Ok(permits) = g.batcher.reserve_many(reqs.len()).await else {
            return Err(NotHere(reqs));
        };
        let mut answers = Vec::with_capacity(reqs.len());
        for (permit, req) in permits.zip(reqs) {
            let (tx, rx) = oneshot::channel();
            permit.send((req, tx));
            answers.push(rx);
        }
        let limit = self.settings.propose_timeout;
        let started = tokio::time::Instant::now();
        let mut out = Vec::with_capacity(answers.len());
        for rx in answers {
            let left = limit.saturating_sub(started.elapsed());
            let reason = match tokio::time::timeout(left, rx).await {
                Ok(Ok(Ok(committed))) => {
                    out.push(committed.response);
                    continue;
                }
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(_)) => "group stopped".to_string(),
                Err(_) => {
                    return Ok(Err(NodeError::NoLeader {
                        group,
                        after: limit,
                    }))
                }
            };
            return Ok(Err(NodeError::Raft { group, reason }));
        }
        Ok(Ok(out))
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
            // Between peers only, answered before the leader check (in
            // `handle`); a leader asked them here has nothing to add.
            AdminRequest::Ping
            | AdminRequest::LeaderGone { .. }
            | AdminRequest::Abandon { .. }
            | AdminRequest::PreVote { .. } => Ok(Done::Admin),
            AdminRequest::Elect => g
                .raft
                .trigger()
                .elect()
                .await
                .map(|()| Done::Admin)
                .map_err(|e| WireError::Fatal(e.to_string())),
        }
    }
}
