//! Proposals and reads: what the scheduler and the client API ask of a
//! node, answered wherever the group's leader is.

use super::inbound::NotHere;
use super::wire::{unexpected, Done, Op};
use super::{Consistency, NodeError, RaftNode};
use crate::command::{Committed, Request, Response};
use crate::ids::GroupId;
use crate::state::CanonState;

impl RaftNode {
    /// Proposes `req` to `group` and returns its answer once applied. Sent
    /// to the leader wherever it is (found through this node's view of the
    /// group, or through the group's replicas when this node holds none);
    /// retried (same command id, so applied at most once) across leader
    /// changes until `propose_timeout`.
    pub async fn propose(&self, group: GroupId, req: Request) -> Result<Response, NodeError> {
        Ok(self.propose_committed(group, req).await?.response)
    }

    /// [`RaftNode::propose`], answered with the log index the command was
    /// applied at (a command id applied before: the first index).
    pub async fn propose_committed(
        &self,
        group: GroupId,
        req: Request,
    ) -> Result<Committed, NodeError> {
        self.group(group)?;
        let limit = self.inner.settings.propose_timeout;
        let done = self
            .inner
            .route(group, &Op::Propose(Box::new(req)), limit)
            .await?;
        done.committed().map_err(|other| unexpected(group, &other))
    }

    /// Proposes `reqs` to `group` in order and answers each, in order.
    ///
    /// When this node leads the group they enter its batcher back to back
    /// (usually one log entry: one write, one flush, one round of
    /// replication for all); the log is ordered, so none is applied unless
    /// every one before it was. Anywhere else they go one after another,
    /// as [`RaftNode::propose`] sends them. Either way an error answers for
    /// the rest, whose fate is then unknown, as a failed `propose`'s is.
    pub async fn propose_in_order(
        &self,
        group: GroupId,
        reqs: Vec<Request>,
    ) -> Result<Vec<Response>, NodeError> {
        self.group(group)?;
        let reqs = match self.inner.propose_here_in_order(group, reqs).await {
            Ok(answers) => return answers,
            Err(NotHere(reqs)) => reqs,
        };
        let mut answers = Vec::with_capacity(reqs.len());
        for req in reqs {
            answers.push(self.propose(group, req).await?);
        }
        Ok(answers)
    }

    /// This replica's state of `group` now, with the index of the last
    /// entry it applied (0 before any): a stale read that says how far it
    /// reaches, for watchers that number what they derive from it.
    pub fn read_applied<T>(
        &self,
        group: GroupId,
        f: impl FnOnce(&CanonState) -> T,
    ) -> Result<(u64, T), NodeError> {
        let g = self.group(group)?;
        let data = g.state.read();
        let index = data.last_applied.map_or(0, |l| l.index);
        Ok((index, f(&data.state)))
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
}
