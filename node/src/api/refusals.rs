//! Refusals at the door leave an audit record: a command refused before
//! anything was proposed (a forged, stale or replayed envelope, an unknown
//! signer, a process command the policy refuses) is proposed to the meta
//! group as `AuditRefused`, so the refusal sits in the same replicated
//! chain as everything else. A flood of forgeries must not grow the log
//! without bound, so each node records at most [`BURST`] refusals at once
//! and [`PER_SECOND`] a second after that; the rest are counted
//! (`canon_audit_refusals_dropped_total`) and the next recorded refusal
//! says how many were dropped before it. Reads are refused and recorded
//! alike: a read token that is missing where one is needed, malformed or
//! does not verify, and a read the policy refuses (`process.status`,
//! `audit.read`, …), as is a refused RemoveMember. (Refusals decided in the
//! state machine, policy changes and escalations, are recorded there, with
//! the command.)

use std::sync::Mutex;
use std::time::Duration;

use canon_proto::canon::api::v1 as pb;
use canon_raft::{Command, DoorRefusal, Rejection, Request, META_GROUP};
use canon_trust::Action;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::authz::Asker;
use super::intake::Arrival;
use super::Api;

/// Refusals a node records back to back.
pub const BURST: f64 = 20.0;
/// Refusals a node records per second once its burst is spent.
pub const PER_SECOND: f64 = 5.0;
/// How long the answer to a refused command waits for its record.
const RECORD_TIMEOUT: Duration = Duration::from_secs(2);

/// The token bucket, and the refusals dropped since the last one recorded.
#[derive(Debug)]
pub struct RefusalGate {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
    dropped: u64,
}

impl Default for RefusalGate {
    fn default() -> Self {
        RefusalGate {
            state: Mutex::new(Bucket {
                tokens: BURST,
                at: None,
                dropped: 0,
            }),
        }
    }
}

impl RefusalGate {
    /// May one more refusal be recorded now? If so, the number dropped
    /// before it (and the count restarts); if not, it is counted.
    fn admit(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means a panic mid-update of two numbers.
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = b.at.map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        b.tokens = (b.tokens + elapsed * PER_SECOND).min(BURST);
        b.at = Some(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += 1;
            None
        }
    }

    /// A refusal that was admitted but could not be recorded counts as
    /// dropped.
    fn lost(&self, n: u64) {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        b.dropped += n;
    }
}

impl Api {
    /// Records `refusal` in the meta group's audit chain, unless the rate
    /// limit drops it. Waits for the commit (briefly), so a refused client
    /// hears back after its refusal is on record; a failure to record is
    /// logged and counted, never the client's problem.
    pub(super) async fn record_refusal(&self, mut refusal: DoorRefusal) {
        let Some(dropped) = self.refusals.admit(Instant::now()) else {
            self.metrics.refusal_dropped();
            return;
        };
        refusal.dropped = dropped;
        let req = Request::new(
            self.clock.now_ms(),
            Command::AuditRefused {
                refusal: Box::new(refusal),
            },
        );
        let proposed = tokio::time::timeout(RECORD_TIMEOUT, self.node.propose(META_GROUP, req));
        let failed = match proposed.await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        tracing::warn!(reason = %failed, "a refusal at the door could not be recorded");
        self.refusals.lost(dropped + 1);
        self.metrics.refusal_dropped();
    }
}

/// The refusal of `by`'s `action` on `target` (account, alias) by the
/// policy at `version`.
pub(super) fn policy_refusal(
    by: Asker<'_>,
    action: Action,
    target: (Option<&str>, Option<&str>),
    rejection: &Rejection,
    version: u64,
) -> DoorRefusal {
    let reason = match rejection {
        Rejection::Refused {
            user,
            action,
            target,
            reason,
        } => format!("user {user} may not {action} on {target}: {reason}"),
        other => other.to_string(),
    };
    door_refusal(by, action, target, reason, version)
}

/// The refusal of `by`'s `action` on `target` (account, alias) at the door
/// for `reason`, with the policy at `version` (a policy refusal, or a
/// change the policy allows that the door refuses: one that would strand
/// live processes).
pub(super) fn door_refusal(
    by: Asker<'_>,
    action: Action,
    target: (Option<&str>, Option<&str>),
    reason: String,
    version: u64,
) -> DoorRefusal {
    let p = by.principal;
    DoorRefusal {
        user: p.user.clone(),
        key_id: Some(p.key_id.clone()),
        root: p.root,
        channel: by.arrival.channel,
        action: action.to_string(),
        account: target.0.map(str::to_string),
        alias: target.1.map(str::to_string),
        reason,
        policy_version: Some(version),
        request_hash: Some(by.request_hash.to_string()),
        dropped: 0,
        cert_fingerprint: by.arrival.cert_fingerprint.clone(),
    }
}

/// The refusal of a read whose token did not pass the door (missing,
/// malformed, forged, stale, for another cluster): the user it names (none:
/// an unsigned read), the policy action of the read, why, and how it came.
pub(super) fn read_refusal(
    user: Option<&str>,
    action: &str,
    alias: Option<&str>,
    reason: String,
    request_hash: String,
    arrival: &Arrival,
) -> DoorRefusal {
    DoorRefusal {
        user: user.unwrap_or(UNSIGNED).to_string(),
        key_id: None,
        root: false,
        channel: arrival.channel,
        action: action.to_string(),
        account: None,
        alias: alias.map(str::to_string),
        reason,
        policy_version: None,
        request_hash: Some(request_hash),
        dropped: 0,
        cert_fingerprint: arrival.cert_fingerprint.clone(),
    }
}

/// The user a refused unsigned read is recorded as.
pub const UNSIGNED: &str = "(unsigned)";

impl Api {
    /// Records (rate-limited, like every refusal at the door) a message
    /// that holds no command at all: its body does not decode. `body` is
    /// hashed, not kept.
    pub async fn refuse_unreadable(&self, arrival: &Arrival, reason: String, body: &[u8]) {
        self.metrics.refused();
        let hash = hex::encode(Sha256::digest(body));
        let refusal = read_refusal(None, "unknown", None, reason, hash, arrival);
        self.record_refusal(DoorRefusal {
            user: String::new(),
            ..refusal
        })
        .await;
    }
}

/// The refusal of an envelope that did not pass the door: the user it
/// names, what it asked for (if it decodes), why, and how it came.
pub(super) fn envelope_refusal(
    env: &pb::SignedEnvelope,
    reason: String,
    arrival: &Arrival,
) -> DoorRefusal {
    use prost::Message;
    let asked = pb::Command::decode(env.command.as_slice())
        .ok()
        .and_then(|c| c.action)
        .map(|a| command_target(&a));
    let (action, alias) = asked.unwrap_or(("unknown", None));
    DoorRefusal {
        user: env.user.clone(),
        key_id: None,
        root: false,
        channel: arrival.channel,
        action: action.to_string(),
        account: None,
        alias,
        reason,
        policy_version: None,
        request_hash: Some(hex::encode(Sha256::digest(&env.command))),
        dropped: 0,
        cert_fingerprint: arrival.cert_fingerprint.clone(),
    }
}

/// The policy action a command asks for, and its alias if it names one.
fn command_target(action: &pb::command::Action) -> (&'static str, Option<String>) {
    use pb::command::Action as A;
    match action {
        A::Run(r) => ("process.run", Some(r.alias.clone())),
        A::Update(u) => ("process.update", Some(u.alias.clone())),
        A::Kill(k) => ("process.kill", Some(k.alias.clone())),
        A::Suspend(s) => ("process.suspend", Some(s.alias.clone())),
        A::Resume(r) => ("process.resume", Some(r.alias.clone())),
        A::Release(r) => ("process.release", Some(r.alias.clone())),
        A::SetProperty(p) => ("process.update", Some(p.alias.clone())),
        A::RotateFleet(r) => ("process.update", Some(r.alias.clone())),
        A::RemoveMember(_) => ("cluster.remove", None),
        A::CreateJoinToken(_) => ("cluster.join", None),
        A::PolicyPut(_) => ("policy.put", None),
        A::AccountAdd(_) => ("account.add", None),
        A::AccountUpdate(_) => ("account.update", None),
        A::AccountRemove(_) => ("account.remove", None),
        A::UserAdd(_) => ("user.add", None),
        A::UserRemove(_) => ("user.remove", None),
        A::UserKeys(_) => ("user.rotate-key", None),
        A::ValidationAdd(_) => ("validation.add", None),
        A::ValidationRemove(_) => ("validation.remove", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_rate_and_the_dropped_are_counted() {
        let gate = RefusalGate::default();
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| gate.admit(t0).is_some()).count();
        assert_eq!(admitted, BURST as usize);
        // One second later: PER_SECOND more, the first saying how many
        // were dropped before it.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(gate.admit(t1), Some(100 - BURST as u64));
        let more = (0..100).filter(|_| gate.admit(t1).is_some()).count();
        assert_eq!(more, PER_SECOND as usize - 1);
    }
}
