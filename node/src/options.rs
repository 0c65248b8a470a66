//! What one node needs to start ([`NodeOptions`]), and the relations
//! between those settings that must hold before anything starts. `canond`
//! fills them from its configuration and `canon dev` from its own; both are
//! checked here, once, by [`crate::server::Conductor::start`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use canon_raft::{NodeId, RaftSettings};
use ed25519_dalek::VerifyingKey;

/// What one node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub id: NodeId,
    /// The address peers and clients reach this node at (`host:port`).
    pub advertise: String,
    pub data_dir: PathBuf,
    pub shards: u32,
    pub raft: RaftSettings,
    /// How long after a fenced write an actor may keep mutating the cloud
    /// (the scheduler's `fence_lease`); must be under `raft.election_min`.
    pub fence_lease: Duration,
    pub tick: Duration,
    /// The account of processes whose command names none.
    pub account: String,
    /// Users and their public keys.
    pub users: BTreeMap<String, VerifyingKey>,
    /// How far a signer's clock may be from this node's (capped at
    /// `canon_raft::state::ENVELOPE_SKEW_MAX_MS`).
    pub freshness: Duration,
    /// This cluster's id: the audience every signed command and read must
    /// name (so a command for another cluster is never accepted).
    pub cluster_id: String,
    /// Drift alerts are POSTed here as JSON.
    pub webhook: Option<String>,
    /// Where to serve the admin HTTP port (`/metrics`, `/healthz`;
    /// host:port), if anywhere.
    pub metrics_listen: Option<String>,
    /// Serve the web console on the admin port (then at
    /// [`CONSOLE_LISTEN_DEFAULT`] if `metrics_listen` names none).
    pub console: bool,
    /// With the console on and `tls` given: serve the admin port over
    /// HTTPS with this node's certificate, where a browser may log in with
    /// a client certificate of the client CA (plain HTTP then reaches
    /// `/metrics` and `/healthz` only). Off: plain HTTP, as without TLS.
    pub console_tls: bool,
    /// Refuse unsigned reads (Status, History, Events); on by default.
    pub signed_reads: bool,
    /// Serve and dial peers with mutual TLS from these files; `None`:
    /// plaintext.
    pub tls: Option<canon_tls::NodeTlsFiles>,
    /// What each group keeps: audit records, process history, killed
    /// processes.
    pub retention: crate::retention::Retention,
    /// Without TLS: let any node join without a join token (insecure; for
    /// closed networks and dev clusters). Ignored with TLS, where a node
    /// joins with its own certificate.
    pub open_join: bool,
    /// Take commands from this SQS queue too (polled while this node
    /// leads the meta group).
    pub intake: Option<crate::sqs::IntakeQueue>,
    /// Heal drift the cloud's events report, before the tick (read while
    /// this node leads the meta group).
    pub events: Option<crate::cloud_events::EventsFrom>,
    /// Read the events queues the trust policy's accounts name (`canon
    /// account add … --events-queue`), with these ARNs as the conductor's
    /// own; None on a simulated cloud, which has no queues.
    pub account_events: Option<Vec<String>>,
    /// What is too large for an SQS message goes through this S3 bucket.
    pub overflow: Option<crate::overflow::OverflowBucket>,
    /// Let drills delay and drop this node's Raft messages
    /// ([`crate::drill_link_fault`]).
    pub drill_faults: bool,
}

/// The fence lease is not under the election timeout. An actor mutates the
/// cloud on the strength of a fenced write for up to the lease; no other
/// leader can be elected sooner than the minimum election timeout after
/// that write committed, so only a lease shorter than that timeout keeps
/// two leaders' actors from mutating at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the fence lease ({fence_lease:?}) must be shorter than the Raft election timeout \
     ({election_min:?}, its minimum): a deposed leader's actors could keep changing the \
     cloud after a new leader is elected; shorten the fence lease or lengthen the election timeout"
)]
pub struct FenceLeaseTooLong {
    pub fence_lease: Duration,
    pub election_min: Duration,
}

/// Checks that `fence_lease` is under `raft`'s minimum election timeout.
pub fn check_fence_lease(
    fence_lease: Duration,
    raft: &RaftSettings,
) -> Result<(), FenceLeaseTooLong> {
    if fence_lease < raft.election_min {
        Ok(())
    } else {
        Err(FenceLeaseTooLong {
            fence_lease,
            election_min: raft.election_min,
        })
    }
}

impl NodeOptions {
    /// Checks the relations between the settings (see
    /// [`FenceLeaseTooLong`]).
    pub fn check(&self) -> Result<(), FenceLeaseTooLong> {
        check_fence_lease(self.fence_lease, &self.raft)
    }
}

/// Where the admin port (and so the console) listens when the console is
/// on and no address is given: this host only.
pub const CONSOLE_LISTEN_DEFAULT: &str = "127.0.0.1:9480";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_lease_at_or_over_the_election_timeout_is_refused_naming_both() {
        let raft = RaftSettings::default();
        let at = check_fence_lease(raft.election_min, &raft).unwrap_err();
        let message = at.to_string();
        assert!(message.contains("fence lease (400ms)"), "{message}");
        assert!(message.contains("election timeout (400ms"), "{message}");
        assert!(check_fence_lease(raft.election_min * 2, &raft).is_err());
        assert!(check_fence_lease(raft.election_min / 2, &raft).is_ok());
    }

    #[test]
    fn the_shipped_settings_keep_the_lease_under_the_timeout() {
        let canond = canon_scheduler::SchedulerConfig::default().fence_lease;
        assert_eq!(check_fence_lease(canond, &RaftSettings::default()), Ok(()));
        assert_eq!(
            check_fence_lease(crate::dev::DEV_FENCE_LEASE, &RaftSettings::loopback()),
            Ok(())
        );
        // A dev cluster on either timing (a benchmark may take canond's).
        for raft in [RaftSettings::loopback(), RaftSettings::default()] {
            let lease = crate::dev::fence_lease_under(&raft);
            assert_eq!(check_fence_lease(lease, &raft), Ok(()));
        }
        assert_eq!(
            crate::dev::fence_lease_under(&RaftSettings::loopback()),
            crate::dev::DEV_FENCE_LEASE
        );
    }
}
