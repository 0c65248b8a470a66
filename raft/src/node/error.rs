//! The errors of the node API, as every caller of [`super::RaftNode`] sees
//! them.

use std::time::Duration;

use crate::codec;
use crate::ids::GroupId;
use crate::store::StoreError;

/// Errors of the node API.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bad raft settings: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("no group {0} on this node")]
    UnknownGroup(GroupId),
    #[error("group {group}: no leader answered within {after:?}")]
    NoLeader { group: GroupId, after: Duration },
    #[error("group {group}: raft stopped: {reason}")]
    Fatal { group: GroupId, reason: String },
    #[error("group {group}: {reason}")]
    Raft { group: GroupId, reason: String },
    #[error("cannot encode or decode: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("node stopped")]
    Stopped,
}
