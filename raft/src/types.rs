//! The openraft type configuration shared by every Raft group of a node.

use crate::command::{Batch, Committed};
pub use crate::ids::{GroupId, NodeId};

/// A node's address as recorded in Raft membership (`host:port` of its gRPC
/// service).
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// Canon's Raft types: a log entry carries a [`Batch`] of requests,
    /// applying it yields one [`Committed`] answer per request, snapshots are
    /// streamed record by record from and to files (in memory in simulations).
    pub TypeConfig:
        D = Batch,
        R = Vec<Committed>,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot_data::SnapshotData,
        AsyncRuntime = crate::runtime::CanonRuntime,
);

/// An openraft instance of one group.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership as stored with the log and snapshots.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// A snapshot.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// openraft's storage error.
pub type StorageError = openraft::StorageError<NodeId>;
/// Raft metrics of one group.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;
