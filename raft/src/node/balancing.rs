//! Leader balancing: moving group leadership from a node that leads more
//! than its share to one that leads less (the node's balancer task, and a
//! node handing its groups off). [`crate::balance`] decides; this carries
//! it out.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::wire::{AdminRequest, Op};
use super::{NodeError, RaftNode};
use crate::balance::{plan_transfer, GroupView};
use crate::ids::{GroupId, NodeId};

impl RaftNode {
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
    /// node stops, on the node's Raft runtime.
    pub fn spawn_balancer(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.spawn(async move {
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
}
