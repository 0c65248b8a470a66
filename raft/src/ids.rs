//! The ids every other module names: a node, a Raft group. A leaf (it
//! imports nothing of this crate), so the log's vocabulary
//! ([`crate::command`]) and openraft's type configuration
//! ([`crate::types`]), which both need them, do not import each other.

/// A conductor node's id in every Raft group.
pub type NodeId = u64;

/// A Raft group: 0 is the meta group, 1.. are shards.
pub type GroupId = u64;
