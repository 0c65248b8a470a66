//! A fleet's failed replacements (issue #18 §2, failure): a new instance
//! that fails its checks (impaired, or not passing within `healthGrace`)
//! while the instance it replaces still serves is terminated and the old
//! one kept (it serves on, and is bound again); in a fleet without surge
//! (`maxSurge: 0`, the old one terminated first) a new instance not
//! passing within `healthGrace` is kept until the backoff is over, then
//! replaced. Either way the member's replacement
//! is retried after a backoff, and after [`PARK_AFTER`] failures in a row
//! the fleet's rollout is parked: none of its serving members is replaced
//! until the declaration changes or a rotation is requested, which clear
//! the failures.
//!
//! In a fleet without surge, the instance a replacement launched is on
//! trial by its `Tcp` check: the member's latest replacement (the
//! replacement history, [`Intent::replaced_at`]) launched it, and it is
//! within its trial ([`TCP_TRIAL_MS`]) after its grace. Established
//! instances are never judged by the conductor's connect.
//!
//! The failures are replicated in the process record (`RolloutFailed`,
//! `RolloutRecovered`), so the planner decides from them as from any other
//! intent, purely, and a new leader keeps the backoff and the parking.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Backoff, Jitter, LogicalId, RotationRequest, UnixMillis};

/// Failed replacements in a row after which a fleet's rollout is parked.
pub const PARK_AFTER: u32 = 3;

/// The pause before retrying a member's replacement after its `n`th
/// failure in a row: 30 s, doubling, at most 10 minutes (no jitter: every
/// replica and leader computes the same time).
pub const RETRY_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(30),
    cap: Duration::from_secs(600),
    jitter: Jitter::None,
};

/// How long after its grace the instance a surge-less replacement
/// launched stays on trial by its `Tcp` check: a minute. Unreached at any
/// pass then, it failed; after it, it is established.
pub const TCP_TRIAL_MS: u64 = 60_000;

/// A fleet member's failed replacements since its last good one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutFailure {
    /// Failures in a row.
    pub count: u32,
    /// When the last one was recorded.
    pub last_at: UnixMillis,
    /// The cloud instance that failed last (a pass that retries the same
    /// terminate counts it once).
    pub cloud_id: String,
    /// The member's path in the composition (`web.instances[0]`), for
    /// people.
    #[serde(default)]
    pub name: String,
}

impl RolloutFailure {
    /// Whether the member's fleet stops rolling.
    pub fn parked(&self) -> bool {
        self.count >= PARK_AFTER
    }

    /// What `canon status` says of a parked rollout.
    pub fn parked_message(&self) -> String {
        format!(
            "{}: {} replacements in a row failed their checks (last {}); its fleet's rollout is parked until `canon update` or `canon fleet rotate`",
            self.name, self.count, self.cloud_id
        )
    }

    /// When the member's replacement may be tried again.
    pub fn retry_at(&self) -> UnixMillis {
        let pause = RETRY_BACKOFF.ceiling(self.count.saturating_sub(1));
        let ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.last_at.saturating_add(ms)
    }
}

/// What the planner reads beside the observation: the replicated intent
/// (the rotations requested and the fleets' failed replacements) and the
/// outcome of the conductor's own probes.
#[derive(Debug, Clone, Copy)]
pub struct Intent<'a> {
    pub rotations: &'a [RotationRequest],
    pub failures: &'a BTreeMap<LogicalId, RolloutFailure>,
    /// The instances (cloud ids) the conductor reached on their fleet's
    /// `Tcp` health-check port just before planning; any other instance of
    /// a `Tcp` fleet is not ready. The caller probes (I/O), the planner
    /// decides from the outcome.
    pub reached: &'a BTreeSet<String>,
    /// When each member's latest replacement was recorded (the process's
    /// replacement history, [`latest_replacements`]): in a fleet without
    /// surge the instance launched for it is on trial by its `Tcp` check.
    pub replaced_at: &'a BTreeMap<LogicalId, UnixMillis>,
}

/// Each member's latest replacement time, from replacement history rows.
pub fn latest_replacements<'r>(
    rows: impl IntoIterator<Item = &'r crate::ReplacementRecord>,
) -> BTreeMap<LogicalId, UnixMillis> {
    let mut out: BTreeMap<LogicalId, UnixMillis> = BTreeMap::new();
    for r in rows {
        let at = out.entry(r.replaced.resource).or_insert(r.at);
        *at = (*at).max(r.at);
    }
    out
}

/// No failures: what a plan without them reads.
pub(crate) static NO_FAILURES: BTreeMap<LogicalId, RolloutFailure> = BTreeMap::new();

/// No instance reached: what a plan without probes reads.
pub(crate) static NO_REACHED: BTreeSet<String> = BTreeSet::new();

/// No replacement recorded: what a plan without history reads.
pub(crate) static NO_REPLACEMENTS: BTreeMap<LogicalId, UnixMillis> = BTreeMap::new();

impl Default for Intent<'_> {
    fn default() -> Self {
        Intent {
            rotations: &[],
            failures: &NO_FAILURES,
            reached: &NO_REACHED,
            replaced_at: &NO_REPLACEMENTS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_the_third_failure_parks() {
        let f = |count| RolloutFailure {
            count,
            last_at: 1_000,
            cloud_id: "i-1".into(),
            name: "web.instances[0]".into(),
        };
        assert_eq!(f(1).retry_at(), 31_000);
        assert_eq!(f(2).retry_at(), 61_000);
        assert!(!f(2).parked());
        assert!(f(3).parked());
        assert_eq!(f(20).retry_at(), 601_000);
    }
}
