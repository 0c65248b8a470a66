//! Taking a call to a group's leader: here if this node leads, else at the
//! leader it knows of, else at a replica that may know it, retried across
//! elections and leader changes. Used by every call of the node API that
//! must run on the leader.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::wire::{Done, Op, WireError};
use super::{NodeError, NodeInner};
use crate::codec;
use crate::ids::{GroupId, NodeId};
use crate::network::RpcKind;

/// How often `propose` and linearizable reads retry while no leader is known.
pub(super) const RETRY_INTERVAL: Duration = Duration::from_millis(20);

impl NodeInner {
    /// Sends `op` to node `target` and returns its answer.
    pub(super) async fn forward(
        &self,
        target: NodeId,
        addr: &str,
        group: GroupId,
        op: &Op,
    ) -> Result<Result<Done, WireError>, NodeError> {
        let (kind, payload, timeout) = match op {
            Op::Propose(req) => (
                RpcKind::Propose,
                crate::entry_codec::encode_request(req)?,
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
    pub(super) async fn route(
        &self,
        group: GroupId,
        op: &Op,
        limit: Duration,
    ) -> Result<Done, NodeError> {
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
