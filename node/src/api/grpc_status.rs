//! What the API answers when something is refused or fails: each error of
//! the layers below (envelope checks, the Raft node, the state machine's
//! rejections) as the gRPC status a client can act on. Every part of the
//! API answers through these, so a client sees one code for one cause.

use canon_model::ProcessState;
use canon_raft::{NodeError, Rejection};
use tonic::Status;

use crate::envelope::EnvelopeError;

/// A refused envelope or read token: stale, replayed or malformed ones may
/// succeed when sent afresh; a bad signature or unknown user will not.
pub(super) fn envelope_status(e: EnvelopeError) -> Status {
    match e {
        EnvelopeError::Stale { .. }
        | EnvelopeError::Expired { .. }
        | EnvelopeError::TtlTooLong { .. }
        | EnvelopeError::Replayed
        | EnvelopeError::BadNonce => Status::failed_precondition(e.to_string()),
        _ => Status::unauthenticated(e.to_string()),
    }
}

/// The Raft node could not serve: mostly "ask again or elsewhere".
pub(super) fn node_status(e: NodeError) -> Status {
    match e {
        NodeError::NoLeader { .. } | NodeError::Stopped => Status::unavailable(e.to_string()),
        NodeError::UnknownGroup(_) => Status::internal(e.to_string()),
        other => Status::unavailable(other.to_string()),
    }
}

/// The state machine refused a command.
pub(super) fn rejection_status(r: Rejection) -> Status {
    match &r {
        Rejection::AliasTaken { .. } | Rejection::ProcessExists(_) => {
            Status::already_exists(r.to_string())
        }
        Rejection::UnknownProcess(_) => Status::not_found(r.to_string()),
        Rejection::Refused { .. } | Rejection::Escalation(_) | Rejection::JoinToken(_) => {
            Status::permission_denied(r.to_string())
        }
        Rejection::PolicyInvalid(_) => Status::invalid_argument(r.to_string()),
        // The process was killed between the look-up and the commit: it is
        // gone (its alias free) as it would have been had the command come
        // a moment later, so the answer is the same as then.
        Rejection::BadTransition {
            from: ProcessState::Killed,
            ..
        }
        | Rejection::NotLive {
            state: ProcessState::Killed,
            ..
        } => Status::not_found(format!("{r}: it was killed")),
        _ => Status::failed_precondition(r.to_string()),
    }
}

pub(super) fn not_found(alias: &str) -> Status {
    Status::not_found(format!("no process with alias {alias:?}"))
}

pub(super) fn bad(what: &str) -> Status {
    Status::invalid_argument(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command on a process that was killed after the API looked it up
    /// answers "not found", as it would a moment later; the simulation's
    /// linearizability checker found the race (a resume answered "refused"
    /// for a process already gone).
    #[test]
    fn a_process_killed_meanwhile_reads_as_not_found() {
        let fid = canon_model::Fid::random();
        let gone = [
            Rejection::BadTransition {
                fid,
                from: ProcessState::Killed,
                to: ProcessState::Running,
            },
            Rejection::NotLive {
                fid,
                state: ProcessState::Killed,
            },
        ];
        for r in gone {
            assert_eq!(rejection_status(r).code(), tonic::Code::NotFound);
        }
        let refused = Rejection::BadTransition {
            fid,
            from: ProcessState::Killing,
            to: ProcessState::Suspended,
        };
        assert_eq!(
            rejection_status(refused).code(),
            tonic::Code::FailedPrecondition
        );
    }
}
