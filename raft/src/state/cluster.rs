//! The rules of the meta group's cluster record: the shard count (fixed
//! once), the members, and each shard's replicas (recorded members only).
//! Called by [`CanonState::apply`](super::CanonState::apply) for the
//! meta group's commands.

use canon_model::UnixMillis;

use super::{CanonState, Member};
use crate::command::Rejection;
use crate::ids::NodeId;

impl CanonState {
    /// `ClusterCreated`: fixes the shard count, once.
    pub(super) fn create_cluster(&mut self, shard_count: u32) -> Result<(), Rejection> {
        if let Some(n) = self.meta.shard_count {
            return Err(Rejection::ShardCountFixed(n));
        }
        if shard_count == 0 {
            return Err(Rejection::NoShards);
        }
        self.meta.shard_count = Some(shard_count);
        Ok(())
    }

    /// `MemberSet`: a member joins or changes address (keeping when it
    /// first joined).
    pub(super) fn set_member(
        &mut self,
        at: UnixMillis,
        node: NodeId,
        addr: &str,
    ) -> Result<(), Rejection> {
        let since = self.meta.members.get(&node).map_or(at, |m| m.since);
        self.meta.members.insert(
            node,
            Member {
                node,
                addr: addr.to_string(),
                since,
            },
        );
        Ok(())
    }

    /// `MemberRemoved`: a recorded member leaves.
    pub(super) fn remove_member(&mut self, node: NodeId) -> Result<(), Rejection> {
        self.meta
            .members
            .remove(&node)
            .map(|_| ())
            .ok_or(Rejection::UnknownMember(node))
    }

    /// `ShardPlaced`: the replicas of an existing shard, all recorded
    /// members.
    pub(super) fn place_shard(&mut self, shard: u32, replicas: &[NodeId]) -> Result<(), Rejection> {
        let count = self.meta.shard_count.unwrap_or(self.shard_count);
        if shard >= count {
            return Err(Rejection::NoSuchShard { shard, count });
        }
        if let Some(n) = replicas.iter().find(|n| !self.meta.members.contains_key(n)) {
            return Err(Rejection::UnknownMember(*n));
        }
        self.meta.placement.insert(shard, replicas.to_vec());
        Ok(())
    }
}
