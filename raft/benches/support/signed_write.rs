//! The write the raft benches make: a bare `Noop`, or one sent by a user
//! through the door (a principal and the door's context), which the state
//! machine records in the audit chain. One definition, so the cluster
//! bench and the per-request `audit_cost` bench measure the same request.

use canon_raft::{Command, DoorContext, Principal, Request};

/// A write at `at` (Unix ms): bare, or `signed`.
pub fn write(signed: bool, at: u64) -> Request {
    let req = Request::new(at, Command::Noop);
    if !signed {
        return req;
    }
    req.by(Principal {
        user: "bench".into(),
        key_id: "0123456789abcdef".into(),
        root: false,
    })
    .with_door(DoorContext {
        action: "process.run".into(),
        request_hash: Some("ab".repeat(32).into()),
        rule: Some("role bench rule 1 (allow process.* on accounts *)".into()),
        policy_version: Some(1),
        ..DoorContext::default()
    })
}
