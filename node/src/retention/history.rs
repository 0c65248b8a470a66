//! History retention: the finished jobs each process keeps
//! (`history_keep_jobs`, newest first), how long healed drift events stay
//! as rows (`history_keep_drift_days`), and how long a killed process's
//! record stays before it is removed (`killed_keep_days`). Folded rows
//! become counts in the process record (`canon history` shows them as
//! totals); a removed killed process is gone from status and history (its
//! audit records stay, under the audit's own retention). By count, a
//! process is folded back to its limit once it holds a tenth more, so a
//! busy process is not trimmed one job per sweep.

use std::time::Duration;

use canon_model::Fid;
use canon_raft::state::CanonState;
use canon_raft::HistoryLimits;

/// Finished jobs each process keeps unless configured otherwise: a process
/// of 11 resources with 50 jobs and 10 healed drift events takes about
/// 16.8 KB of a replica's memory (node/benches/state_memory.rs), so
/// 100,000 full histories come to about 1.7 GB a node.
pub const DEFAULT_KEEP_JOBS: u64 = 50;
/// Days healed drift events stay as rows unless configured otherwise.
pub const DEFAULT_KEEP_DRIFT_DAYS: u64 = 30;
/// Days a killed process's record stays unless configured otherwise.
pub const DEFAULT_KEEP_KILLED_DAYS: u64 = 7;

/// What each process's history keeps, and how long killed processes stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRetention {
    /// Finished jobs kept per process (none: all).
    pub keep_jobs: Option<u64>,
    /// Healed drift events younger than this stay rows (none: all).
    pub keep_drift_for: Option<Duration>,
    /// Killed processes stay this long after their kill (none: forever).
    pub keep_killed_for: Option<Duration>,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention {
            keep_jobs: Some(DEFAULT_KEEP_JOBS),
            keep_drift_for: Some(super::days(DEFAULT_KEEP_DRIFT_DAYS)),
            keep_killed_for: Some(super::days(DEFAULT_KEEP_KILLED_DAYS)),
        }
    }
}

impl HistoryRetention {
    /// From canond's settings: a count and numbers of days, 0 meaning no
    /// limit; absent, the defaults.
    pub fn from_settings(
        keep_jobs: Option<u64>,
        keep_drift_days: Option<u64>,
        keep_killed_days: Option<u64>,
    ) -> Self {
        let default = HistoryRetention::default();
        HistoryRetention {
            keep_jobs: super::count_setting(keep_jobs, default.keep_jobs),
            keep_drift_for: super::days_setting(keep_drift_days, default.keep_drift_for),
            keep_killed_for: super::days_setting(keep_killed_days, default.keep_killed_for),
        }
    }

    /// The limits a fold at `now_ms` applies.
    fn limits(&self, now_ms: u64) -> HistoryLimits {
        HistoryLimits {
            keep_jobs: self.keep_jobs,
            drift_healed_before: self.keep_drift_for.map(|age| super::cutoff_ms(now_ms, age)),
        }
    }
}

/// The limits to fold `state`'s processes to at `now_ms`, if any process
/// is past them: by count, a tenth (at least one) past the limit; by age,
/// any healed drift event older than the cutoff.
pub fn limits_due(state: &CanonState, r: &HistoryRetention, now_ms: u64) -> Option<HistoryLimits> {
    let limits = r.limits(now_ms);
    let slack = r.keep_jobs.map_or(0, super::slack);
    let due = state.processes.values().any(|p| {
        u64::try_from(limits.jobs_over(p)).unwrap_or(u64::MAX) > slack || limits.drift_over(p) > 0
    });
    due.then_some(limits)
}

/// Killed (or released) processes of `state` past their keep at `now_ms`,
/// at most `max`.
pub fn killed_due(state: &CanonState, r: &HistoryRetention, now_ms: u64, max: usize) -> Vec<Fid> {
    let Some(keep) = r.keep_killed_for else {
        return Vec::new();
    };
    let cutoff = super::cutoff_ms(now_ms, keep);
    state
        .processes
        .values()
        .filter(|p| !p.state.is_live() && p.updated_at < cutoff)
        .take(max)
        .map(|p| p.fid)
        .collect()
}

#[cfg(test)]
mod tests {
    use canon_model::{JobKind, JobStatus, ProcessState, UnixMillis};
    use canon_raft::{group_of_alias, Command, Composition, Request};

    use super::*;

    /// A group with process `alias` that ran `jobs` finished jobs, the
    /// commands a second apart from 1 s.
    fn state_with(alias: &str, jobs: u64) -> (CanonState, Fid, u64) {
        let mut s = CanonState::new(group_of_alias(alias, 1), 1);
        let fid = Fid::random();
        let mut at = 0;
        let mut apply = |s: &mut CanonState, command| {
            at += 1_000;
            s.apply(&Request::new(at, command));
        };
        let composition = Composition {
            bytes: vec![],
            source_hash: String::new(),
        };
        let (alias, account) = (alias.to_string(), "1".to_string());
        apply(
            &mut s,
            Command::ProcessCreated {
                imports: Default::default(),
                fid,
                alias,
                account,
                composition,
                tick_interval_ms: None,
            },
        );
        for job in 1..=jobs {
            let (kind, status, message) = (JobKind::System, JobStatus::Succeeded, String::new());
            apply(
                &mut s,
                Command::JobStarted {
                    fid,
                    job,
                    kind,
                    message,
                },
            );
            let message = String::new();
            apply(
                &mut s,
                Command::JobFinished {
                    fid,
                    job,
                    status,
                    message,
                },
            );
        }
        (s, fid, at)
    }

    #[test]
    fn jobs_fold_once_a_tenth_past_the_limit() {
        let r = HistoryRetention::from_settings(Some(20), Some(0), Some(0));
        // 22 finished: within the slack of 2.
        let (s, _, now) = state_with("a", 22);
        assert_eq!(limits_due(&s, &r, now), None);
        let (s, _, now) = state_with("a", 23);
        let limits = limits_due(&s, &r, now).expect("due");
        assert_eq!(limits.keep_jobs, Some(20));
        assert_eq!(limits.drift_healed_before, None);
        let unlimited = HistoryRetention::from_settings(Some(0), Some(0), Some(0));
        assert_eq!(limits_due(&s, &unlimited, now), None);
    }

    #[test]
    fn killed_processes_leave_once_their_keep_is_past() {
        let r = HistoryRetention::from_settings(Some(0), Some(0), Some(1));
        let (mut s, fid, mut now) = state_with("a", 0);
        assert!(
            killed_due(&s, &r, now + 2 * 86_400_000, 10).is_empty(),
            "live"
        );
        for state in [ProcessState::Killing, ProcessState::Killed] {
            now += 1_000;
            s.apply(&Request::new(
                now,
                Command::ProcessStateChanged { fid, state },
            ));
        }
        assert!(killed_due(&s, &r, now + 86_400_000, 10).is_empty());
        assert_eq!(killed_due(&s, &r, now + 86_400_001, 10), vec![fid]);
        assert!(killed_due(&s, &r, now + 86_400_001, 0).is_empty(), "capped");
        let forever = HistoryRetention::from_settings(None, None, Some(0));
        assert!(killed_due(&s, &forever, UnixMillis::MAX, 10).is_empty());
    }

    #[test]
    fn defaults_keep_fifty_jobs_a_month_of_drift_a_week_of_killed() {
        let r = HistoryRetention::default();
        assert_eq!(r.keep_jobs, Some(DEFAULT_KEEP_JOBS));
        assert_eq!(r.keep_drift_for, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(r.keep_killed_for, Some(Duration::from_secs(7 * 86_400)));
    }
}
