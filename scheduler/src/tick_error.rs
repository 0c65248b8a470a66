//! Why a tick failed, as a type: every way a process actor's tick can end
//! short of its decision, so that one error policy
//! ([`crate::error_policy`]) decides what follows each, instead of each
//! failure site choosing for itself.

use canon_cloud::{CloudError, Scope};
use canon_model::Unresolved;
use canon_raft::{NodeError, Rejection};

/// A tick that did not carry out its decision.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// This node no longer leads the process's shard in the actor's term
    /// (seen at a leadership check).
    #[error("{0}")]
    NotLeader(&'static str),
    /// A write fenced to the actor's term was refused: a newer term exists.
    #[error("deposed: a fenced write was refused")]
    Deposed,
    /// The process could not be read from the log.
    #[error("reading the log: {0}")]
    ReadLog(#[source] NodeError),
    /// A write did not reach the log (no quorum, a timeout).
    #[error("writing to the log: {0}")]
    WriteLog(#[source] NodeError),
    /// The log refused a write for a reason other than its fence.
    #[error("the log refused a write: {0}")]
    WriteRefused(Rejection),
    /// The cloud could not be observed.
    #[error("observing {scope}: {source}")]
    Observe {
        scope: Scope,
        #[source]
        source: CloudError,
    },
    /// A planned request names a resource that has no cloud id (yet).
    #[error("plan out of date: {0}")]
    PlanOutOfDate(#[from] Unresolved),
    /// A cloud request failed in a way a later try may not.
    #[error("{request_type} failed: {source}")]
    Retryable {
        request_type: String,
        #[source]
        source: CloudError,
    },
    /// A cloud request failed in a way retrying cannot fix; the job was
    /// failed with `message`.
    #[error("{message}")]
    Terminal { message: String },
    /// The process's stored composition does not decode; its job (if any)
    /// was failed.
    #[error("cannot decode the process's composition: {0}")]
    Undecodable(String),
}
