//! Timeouts and limits of a node's Raft groups, in one place so deployments
//! (and simulations) can tune them.
//!
//! openraft bounds every AppendEntries call by the heartbeat interval and
//! every vote by the minimum election timeout, so those two must suit the
//! real network; snapshot chunks get their own, longer bound.
//!
//! Failover time, when a leader's process dies (crash, kill -9, its node
//! stopped): its port refuses connections at once, so its followers notice
//! when its heartbeats stop (after `1.5 × heartbeat` of silence, checked
//! every `heartbeat / 2`), confirm with a quorum that it is gone and elect a
//! new leader without waiting out its lease (`crate::node::failover`).
//! Writes go through again about `2 × heartbeat` after the death: with
//! [`RaftSettings::loopback`], p50 106–110 ms and p99 150–164 ms in the raft
//! bench's `failover` phase (against 725–757 ms and 840–865 ms before).
//! The new leader's *actors* start later: its leadership watch waits
//! `election_max + heartbeat` from the election, as long as a leader that
//! only looked dead could still have counted itself leader.
//!
//! When nothing answers at all (a partition, a host that vanished without
//! closing its sockets) there is no such evidence, and openraft's timers
//! apply: followers honour the silent leader's lease for `election_max`
//! after its last heartbeat, and the first election that can succeed
//! starts a random `[election_min, election_max)` later, so the leader is
//! replaced after roughly `election_max + (election_min + election_max) /
//! 2` (about 0.7 s with [`RaftSettings::loopback`], 1.4 s with the
//! defaults). openraft 0.9 ties the lease to `election_max`; it cannot be
//! set apart.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Raft tuning shared by every group of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftSettings {
    /// Leader heartbeat period; also the bound on one AppendEntries call.
    pub heartbeat: Duration,
    /// Election timeouts are drawn from `[election_min, election_max)`.
    pub election_min: Duration,
    pub election_max: Duration,
    /// Bound on sending (and installing) one snapshot chunk.
    pub snapshot_chunk_timeout: Duration,
    /// Snapshot chunk size in bytes.
    pub snapshot_chunk_bytes: u64,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot (for followers slightly behind).
    pub keep_behind_snapshot: u64,
    /// A follower further behind than this gets a snapshot instead of logs.
    pub replication_lag_threshold: u64,
    /// Most entries in one AppendEntries.
    pub max_payload_entries: u64,
    /// Bound on a forwarded proposal or read-index call.
    pub forward_timeout: Duration,
    /// How long `propose` keeps retrying (leader changes) before giving up.
    pub propose_timeout: Duration,
    /// Bound on a membership change (includes a new member's catch-up).
    pub membership_timeout: Duration,
    /// How long openraft waits before retrying an unreachable peer.
    pub unreachable_backoff: Duration,
    /// Bound on establishing a connection to a peer.
    pub connect_timeout: Duration,
    /// Bound on opening the node's database at start (sled may spin on a
    /// damaged file instead of failing).
    #[serde(default = "default_open_timeout")]
    pub open_timeout: Duration,
}

fn default_open_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for RaftSettings {
    /// For real networks (LAN / one region).
    fn default() -> Self {
        RaftSettings {
            heartbeat: Duration::from_millis(100),
            election_min: Duration::from_millis(400),
            election_max: Duration::from_millis(800),
            snapshot_chunk_timeout: Duration::from_secs(5),
            snapshot_chunk_bytes: 1024 * 1024,
            snapshot_every: 5000,
            keep_behind_snapshot: 1000,
            replication_lag_threshold: 5000,
            max_payload_entries: 300,
            forward_timeout: Duration::from_secs(2),
            propose_timeout: Duration::from_secs(5),
            membership_timeout: Duration::from_secs(30),
            unreachable_backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_millis(500),
            open_timeout: default_open_timeout(),
        }
    }
}

impl RaftSettings {
    /// Quick settings for tests and single-machine clusters.
    pub fn loopback() -> Self {
        RaftSettings {
            heartbeat: Duration::from_millis(50),
            election_min: Duration::from_millis(200),
            election_max: Duration::from_millis(400),
            snapshot_chunk_timeout: Duration::from_secs(2),
            forward_timeout: Duration::from_secs(1),
            unreachable_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(200),
            ..RaftSettings::default()
        }
    }

    /// The openraft configuration of group `group`.
    pub fn openraft_config(&self, group: u64) -> Result<openraft::Config, openraft::ConfigError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: format!("canon-g{group}"),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_min),
            election_timeout_max: ms(self.election_max),
            install_snapshot_timeout: ms(self.snapshot_chunk_timeout),
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            replication_lag_threshold: self.replication_lag_threshold,
            max_payload_entries: self.max_payload_entries,
            // Elections are called by the node after a pre-vote
            // (`node::prevote`), not by openraft's timer.
            enable_elect: false,
            ..Default::default()
        }
        .validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_make_valid_openraft_configs() {
        for s in [RaftSettings::default(), RaftSettings::loopback()] {
            let c = s.openraft_config(3).unwrap();
            assert_eq!(
                c.heartbeat_interval,
                u64::try_from(s.heartbeat.as_millis()).unwrap()
            );
            assert!(c.election_timeout_min > c.heartbeat_interval);
        }
        let bad = RaftSettings {
            election_min: Duration::from_millis(10),
            ..RaftSettings::default()
        };
        assert!(bad.openraft_config(0).is_err());
    }
}
