//! What one node asks of another for a group (a proposal, a read index, a
//! membership change) and the answers: the payloads of the transport's
//! Propose, ReadIndex and Admin calls. Their encoding is a wire format
//! between releases: add variants, never rename or remove them.

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};

use super::NodeError;
use crate::command::{Committed, Request, Response};
use crate::ids::{GroupId, NodeId};
use crate::types::{LogId, Node};

/// Errors sent back over the wire for forwarded calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(super) enum WireError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// Worth retrying (e.g. another membership change is in progress).
    #[error("busy: {0}")]
    Busy(String),
    #[error("{0}")]
    Fatal(String),
}

impl WireError {
    pub(super) fn of_write(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => WireError::NotLeader {
                leader: f
                    .leader_id
                    .map(|id| (id, f.leader_node.map(|n| n.addr).unwrap_or_default())),
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(
                openraft::error::ChangeMembershipError::InProgress(p),
            )) => WireError::Busy(p.to_string()),
            RaftError::APIError(e) => WireError::Fatal(e.to_string()),
            RaftError::Fatal(e) => WireError::Fatal(e.to_string()),
        }
    }
}

/// Membership changes and elections, run on (or forwarded to) a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum AdminRequest {
    /// Add a voter: as learner first (waits for it to catch up), then voter.
    AddVoter { node: NodeId, addr: String },
    /// Add a learner (a non-voting replica), waiting until it caught up.
    AddLearner { node: NodeId, addr: String },
    /// Remove a voter (it leaves the group entirely).
    RemoveVoter { node: NodeId },
    /// Start an election on the receiving node (leader balancing).
    Elect,
    /// The group's voters, as its leader knows them.
    Voters,
    /// Are you there? Any answer says the node is up ([`super::failover`]).
    Ping,
    /// Do you, too, see node `leader`, the group's leader in `term`, gone
    /// (nothing from it for a while, and its port refuses)? Answered with
    /// [`Done::LeaderGone`] ([`super::failover`]).
    LeaderGone { leader: NodeId, term: u64 },
    /// A quorum saw `leader` (of `term`) gone: stop honouring its lease
    /// (start an election of your own) and, for a lease, grant votes to
    /// `candidate` only ([`super::failover`]).
    Abandon {
        leader: NodeId,
        term: u64,
        candidate: NodeId,
    },
    /// Would you vote for a candidate whose last log entry is `last_log`,
    /// were it to campaign now? Answered with [`Done::PreVote`]
    /// ([`super::prevote`]).
    PreVote { last_log: Option<LogId> },
}

/// Something to run on a group's leader (or, for `Elect`, a given node).
#[derive(Debug, Clone)]
pub(super) enum Op {
    // Boxed: a request is far larger than the other operations.
    Propose(Box<Request>),
    ReadIndex,
    Admin(AdminRequest),
}

/// The answer to an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Done {
    /// A proposal's answer, from a node of a release before
    /// [`Done::Committed`] (its index is not known).
    Propose(Response),
    ReadIndex(Option<LogId>),
    Admin,
    Voters(BTreeSet<NodeId>),
    /// A proposal's answer and the log index its command was applied at.
    Committed(Committed),
    /// The answer to [`AdminRequest::LeaderGone`]: whether the asked node
    /// sees the leader gone too, and the index of its last log entry.
    LeaderGone {
        gone: bool,
        last_log_index: u64,
    },
    /// The answer to [`AdminRequest::PreVote`].
    PreVote {
        granted: bool,
    },
}

impl Done {
    /// A proposal's answer, if this is one.
    pub(super) fn committed(self) -> Result<Committed, Done> {
        match self {
            Done::Committed(c) => Ok(c),
            Done::Propose(response) => Ok(Committed { response, index: 0 }),
            other => Err(other),
        }
    }
}

pub(super) fn unexpected(group: GroupId, got: &Done) -> NodeError {
    NodeError::Raft {
        group,
        reason: format!("unexpected answer {got:?}"),
    }
}
