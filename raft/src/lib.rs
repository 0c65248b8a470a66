//! Replicated state: openraft over sled, many Raft groups (shards) per node,
//! and the gRPC transport that carries every group's messages.
//!
//! - [`command`] and [`state`]: what the log holds and the rules applying it.
//! - [`shard`]: which group owns a process.
//! - [`store`]: sled-backed log, vote and snapshots; in-memory state machine.
//! - [`codec`]: the byte format of everything replicated or stored.
//! - [`types`]: the openraft type configuration.
//! - [`node`]: a node running every group; propose, read, leadership.
//! - [`network`]: the transport trait and its openraft adapter;
//!   [`grpc`]: the tonic implementation.
//! - [`config`]: timeouts and limits.
//! - [`placement`]: which nodes replicate each shard.
//! - [`balance`]: spreading group leadership over the nodes.
//! - [`runtime`]: Tokio with a seedable election-timeout source.
//! - [`local`]: a whole cluster in one process (dev mode, tests, bench).

// openraft's error types (StorageError, RaftError) are large and fixed by
// its traits; boxing them at every storage call would only add allocations.
#![allow(clippy::result_large_err)]

pub mod balance;
pub mod codec;
pub mod command;
pub mod config;
pub mod grpc;
pub mod local;
pub mod network;
pub mod node;
pub mod placement;
pub mod runtime;
pub mod shard;
pub mod state;
pub mod store;
pub mod types;

pub use command::{Command, CommandId, Composition, Rejection, Request, Response};
pub use config::RaftSettings;
pub use node::{
    find_leader, propose_via, Consistency, Leadership, NodeConfig, NodeError, RaftNode, Storage,
};
pub use shard::{group_of_alias, shard_of, DEFAULT_SHARD_COUNT, META_GROUP};
pub use state::CanonState;
pub use store::{Store, StoreError};
pub use types::{GroupId, NodeId, TypeConfig};
