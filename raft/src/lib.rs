//! Replicated state: openraft 0.9 over a write-ahead log of our own and
//! sled, many Raft groups per node, and the gRPC transport that carries
//! every group's messages.
//!
//! # What this crate owns
//! - The replicated log's vocabulary ([`command`]) and the rules that apply
//!   it ([`state`]): processes and their aliases, jobs, bindings, drift, and
//!   in the meta group members and shard placement. Deterministic; commands
//!   carry their own time and id (a repeated id is answered, not re-applied)
//!   and may be fenced to a leadership term.
//! - Storage ([`store`]): one write-ahead log per node for every group's
//!   entries (`wal/`), one sled database for votes and purge points
//!   (`g<N>.vote`); group-committed fsync before a write is acknowledged;
//!   corruption and silent rollback detected at open
//!   and reported with the file and tree. A memory disk for simulations.
//! - The node ([`node::RaftNode`]): every group (meta = 0, shards = 1..) over
//!   one database and one transport. Callers [`RaftNode::propose`] (routed to
//!   the leader, batched, retried safely), [`RaftNode::read`] (linearizable
//!   via read index, or stale), watch [`RaftNode::leadership`] (lease-based:
//!   what the scheduler starts and stops actors on), and change membership
//!   ([`RaftNode::add_voter`], [`RaftNode::remove_voter`],
//!   [`RaftNode::apply_placement`]). Clients outside a node use
//!   [`propose_via`] and [`find_leader`].
//! - The network ([`network::Transport`]; [`grpc`] implements it with one
//!   lazily connected channel per peer; every call has a timeout).
//! - Cluster shape: [`shard`] (alias → shard, FNV-1a), [`placement`]
//!   (replicas per shard), [`balance`] (leaders per node).
//!
//! # Map
//! - [`command`], [`state`]: the log's contents and the rules applying them.
//! - [`policy`]: the trust policy in the log: who sent a command, the
//!   changes the meta group accepts, and the one authorisation check;
//!   [`policy_command`]: what such a command carries (principal, change).
//! - [`audit`]: each group's hash chain of audit records, and what a
//!   user's command carries into the log for its record.
//! - [`shard`]: which group owns a process.
//! - [`store`]: the WAL of log entries, votes in sled, a snapshot file per group (streamed,
//!   record by record); in-memory state machine; [`store::MemDisk`] for
//!   simulations. [`snapshot_data`]: what a snapshot is sent and received
//!   as (a file, or memory in simulations).
//! - [`codec`]: the byte format of everything replicated or stored;
//!   [`entry_codec`]: the compact format of log entries and AppendEntries
//!   (each entry encoded once, its bytes reused for every replica).
//! - [`ids`]: node and group ids (a leaf every module may import).
//! - [`types`]: the openraft type configuration.
//! - [`node`]: a node running every group; propose, read, leadership.
//! - [`network`]: the transport trait and its openraft adapter;
//!   [`grpc`]: the tonic implementation and server; [`coalesce`]: one
//!   batched call per peer for what many groups replicate at once.
//! - [`config`]: timeouts and limits (and what they mean for failover).
//! - [`placement`]: which nodes replicate each shard.
//! - [`balance`]: spreading group leadership over the nodes.
//! - [`runtime`]: Tokio with a seedable election-timeout source.
//! - [`threads`]: the runtime of a node's own that its Raft work runs on,
//!   so a busy application does not make heartbeats late.
//! - [`local`]: a whole cluster in one process (dev mode, tests, `bench`).
//!
//! # Limits worth knowing
//! - Every log entry costs a replication round and a flush on each replica,
//!   so [`RaftNode::propose`] batches concurrent proposals of a group into
//!   one entry (and holds small batches back while one is in flight); the
//!   flush itself is shared by every group of the node.
//! - openraft 0.9 has no leader transfer; [`balance`] explains the election
//!   trick used instead (with more than 3 replicas it needs a quiet lease,
//!   during which the group's writes wait).
//! - A snapshot is written from a frozen view of the state taken under its
//!   read lock in O(1) (persistent collections: 120 µs at 100k
//!   processes, against 9 s of copying before); the first change to each
//!   process record while the view is held copies that record (README,
//!   "Sizing: snapshots"). A follower installs a snapshot in the
//!   background and the leader polls it, so no call waits for an install.
//!   Building and installing a large snapshot still costs CPU beside the
//!   runtime: at 100k processes on 2 busy cores, writes waited up to 0.3 s
//!   while the leader built one and 0.6 s while a follower installed one.
//! - A follower whose leader's node refuses connections asks the other
//!   voters and, with a majority, elects at once ([`node`]'s `failover`);
//!   a leader that vanishes without closing its sockets is replaced only
//!   after openraft's lease and election timeout.

// openraft's error types (StorageError, RaftError) are large and fixed by
// its traits; boxing them at every storage call would only add allocations.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod balance;
pub mod coalesce;
pub mod codec;
pub mod command;
mod compact;
pub mod config;
pub mod entry_codec;
pub mod fleet_state;
pub mod grpc;
pub mod ids;
pub mod link_fault;
pub mod local;
pub mod network;
pub mod node;
pub mod placement;
pub mod policy;
pub mod policy_command;
pub mod runtime;
pub mod shard;
mod snap_io;
mod snap_retire;
pub mod snapshot_data;
pub mod state;
pub mod store;
pub mod threads;
pub mod turmoil_net;
pub mod types;

pub use audit::{AuditChain, DoorContext};
pub use command::{
    Command, CommandId, Committed, Composition, DoorRefusal, EntryAt, HistoryLimits, PlannedCall,
    Rejection, Request, Response,
};
pub use config::RaftSettings;
pub use ids::{GroupId, NodeId};
pub use node::{
    find_leader, propose_via, Consistency, Leadership, Membership, NodeConfig, NodeError,
    RaftGrpcService, RaftNode, Storage, WeakRaftNode,
};
pub use policy::{authorise, PolicyChange, Principal, VersionedPolicy};
pub use shard::{group_of_alias, shard_of, DEFAULT_SHARD_COUNT, META_GROUP};
pub use state::CanonState;
pub use store::sm::Applied;
pub use store::{MemDisk, Store, StoreError};
pub use threads::RaftThreads;
pub use types::TypeConfig;
