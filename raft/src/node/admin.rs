//! Cluster creation and membership changes: what cluster creation, joins,
//! removals and placement in `canon-node` call. Each change runs on the
//! group's leader, wherever it is ([`super::routing`]).

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};

use super::wire::{unexpected, AdminRequest, Done, Op};
use super::{Membership, NodeError, RaftNode};
use crate::ids::{GroupId, NodeId};
use crate::types::Node;

impl RaftNode {
    /// Creates a new cluster: every group gets `members` (id → address) as
    /// its voters. Call on one node once all members run; calling it again
    /// (or on a node of an existing cluster) changes nothing.
    pub async fn initialize(&self, members: &BTreeMap<NodeId, String>) -> Result<(), NodeError> {
        let nodes: BTreeMap<NodeId, Node> = members
            .iter()
            .map(|(id, addr)| (*id, Node { addr: addr.clone() }))
            .collect();
        for (g, group) in &self.inner.groups {
            // openraft logs an ERROR when asked to initialize a group that
            // already is (a restart, or a second call): ask first. A group
            // that becomes initialized in between is still refused quietly
            // below, with that one log line.
            let initialized = group
                .raft
                .is_initialized()
                .await
                .map_err(|e| NodeError::Fatal {
                    group: *g,
                    reason: e.to_string(),
                })?;
            if initialized {
                continue;
            }
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

    /// Removes the learners `nodes` from `group`, here: this node must lead
    /// the group (see [`RaftNode::membership`]). One attempt; another
    /// leader or a membership change in progress come back as errors.
    pub async fn remove_learners(
        &self,
        group: GroupId,
        nodes: BTreeSet<NodeId>,
    ) -> Result<(), NodeError> {
        self.group(group)?
            .raft
            .change_membership(ChangeMembers::RemoveNodes(nodes), false)
            .await
            .map(|_| ())
            .map_err(|e| NodeError::Raft {
                group,
                reason: e.to_string(),
            })
    }

    async fn admin(&self, group: GroupId, op: &Op) -> Result<(), NodeError> {
        self.group(group)?;
        let limit = self.inner.settings.membership_timeout;
        match self.inner.route(group, op, limit).await? {
            Done::Admin => Ok(()),
            other => Err(unexpected(group, &other)),
        }
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

    /// `group`'s membership as this node knows it.
    pub fn membership(&self, group: GroupId) -> Result<Membership, NodeError> {
        let m = self.metrics(group)?;
        let m = m.borrow();
        let config = m.membership_config.membership();
        Ok(Membership {
            voters: config.voter_ids().collect(),
            learners: config.learner_ids().collect(),
            addrs: config
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
            joint: config.get_joint_config().len() > 1,
            leads: m.state == ServerState::Leader && m.current_leader == Some(self.inner.id),
            applied: m.last_applied.map_or(0, |l| l.index),
        })
    }
}
