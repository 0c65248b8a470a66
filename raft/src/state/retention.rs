//! Retention of a process's history: finished jobs past the newest
//! `keep_jobs` (and the instance replacements they made, which are
//! dropped with them), and drift events healed before a cutoff, fold into
//! the process's [`FoldedHistory`] counters, so state stays bounded while
//! `canon history` still shows the totals. Open drift and jobs in progress
//! are never folded: they are still being acted on. Called by
//! [`CanonState::apply`](super::CanonState::apply) for `HistoryTrimmed`,
//! which the groups' leaders propose (canond's `history_keep_*`); the
//! limits ride in the command, so every replica folds alike.

use canon_model::{Fid, JobStatus, UnixMillis};
use serde::{Deserialize, Serialize};

use super::{CanonState, ProcessRecord};
use crate::command::HistoryLimits;

/// What a process's retention has folded away: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldedHistory {
    /// Finished jobs folded.
    pub jobs: u64,
    /// Of those, the ones that failed.
    pub jobs_failed: u64,
    /// Healed drift events folded.
    pub drift: u64,
    /// The latest time a folded row covers (a job's last update, a drift
    /// event's heal); 0: nothing folded.
    pub through_ms: UnixMillis,
}

impl HistoryLimits {
    /// The finished jobs of `p` past the limit, oldest first.
    pub fn jobs_over(&self, p: &ProcessRecord) -> usize {
        let Some(keep) = self.keep_jobs else { return 0 };
        let finished = p.jobs.values().filter(|j| j.status.is_finished()).count();
        finished.saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX))
    }

    /// The healed drift events of `p` past the cutoff.
    pub fn drift_over(&self, p: &ProcessRecord) -> usize {
        let Some(before) = self.drift_healed_before else {
            return 0;
        };
        p.drift
            .values()
            .filter(|d| d.healed_at.is_some_and(|h| h < before))
            .count()
    }
}

impl CanonState {
    /// `HistoryTrimmed`: folds every process's history past `limits`.
    /// Never rejected: a group with nothing to fold changes nothing.
    pub(super) fn trim_history(&mut self, limits: &HistoryLimits) {
        // Only a record with something to fold is copied away from a
        // snapshot's frozen view (and only the map nodes leading to it).
        let due: Vec<Fid> = self
            .processes
            .values()
            .filter(|p| limits.jobs_over(p) > 0 || has_drift_to_fold(p, limits))
            .map(|p| p.fid)
            .collect();
        for fid in due {
            if let Some(p) = self.processes.get_mut(&fid) {
                let p = std::sync::Arc::make_mut(p);
                fold_jobs(p, limits);
                fold_drift(p, limits);
            }
        }
    }
}

/// Folds the oldest finished jobs of `p` (by id, which is their start
/// time) past the limit.
fn fold_jobs(p: &mut ProcessRecord, limits: &HistoryLimits) {
    let over = limits.jobs_over(p);
    if over == 0 {
        return;
    }
    let gone: Vec<u64> = p
        .jobs
        .values()
        .filter(|j| j.status.is_finished())
        .take(over)
        .map(|j| j.id)
        .collect();
    for id in gone {
        if let Some(j) = p.jobs.remove(&id) {
            p.folded.jobs += 1;
            p.folded.jobs_failed += u64::from(j.status == JobStatus::Failed);
            p.folded.through_ms = p.folded.through_ms.max(j.updated);
        }
    }
    // A job's replacements go with it.
    let jobs = &p.jobs;
    p.replacements.retain(|_, r| jobs.contains_key(&r.job));
}

/// Whether `p` has drift events healed before the cutoff.
fn has_drift_to_fold(p: &ProcessRecord, limits: &HistoryLimits) -> bool {
    limits.drift_healed_before.is_some_and(|before| {
        p.drift
            .values()
            .any(|d| d.healed_at.is_some_and(|h| h < before))
    })
}

/// Folds the drift events of `p` healed before the cutoff.
fn fold_drift(p: &mut ProcessRecord, limits: &HistoryLimits) {
    let Some(before) = limits.drift_healed_before else {
        return;
    };
    let folded = &mut p.folded;
    p.drift.retain(|_, d| match d.healed_at {
        Some(healed) if healed < before => {
            folded.drift += 1;
            folded.through_ms = folded.through_ms.max(healed);
            false
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use canon_model::{Fid, JobKind};

    use super::*;
    use crate::command::{Command, Request, Response};
    use crate::state::tests::{create, finished, opened, shard_state_for, started};

    struct Clock(UnixMillis);

    impl Clock {
        fn apply(&mut self, s: &mut CanonState, command: Command) {
            self.0 += 1_000;
            let r = s.apply(&Request::new(self.0, command));
            assert_eq!(r, Response::Applied, "{r:?}");
        }
    }

    /// A process with `jobs` finished jobs (every third failed), one job
    /// in progress, `healed` healed drift events and one open.
    fn process_with_history(jobs: u64, healed: u64) -> (CanonState, Fid, Clock) {
        let mut s = shard_state_for("web");
        let fid = Fid::random();
        let mut c = Clock(0);
        c.apply(&mut s, create(fid, "web"));
        for job in 1..=jobs {
            c.apply(&mut s, started(fid, job, JobKind::System));
            let status = if job % 3 == 0 {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            };
            c.apply(&mut s, finished(fid, job, status));
        }
        c.apply(&mut s, started(fid, jobs + 1, JobKind::Run));
        for drift in 1..=healed + 1 {
            c.apply(&mut s, opened(fid, drift));
            if drift <= healed {
                c.apply(&mut s, Command::DriftHealed { fid, drift });
            }
        }
        (s, fid, c)
    }

    #[test]
    fn jobs_past_the_limit_fold_into_counts_oldest_first() {
        let (mut s, fid, mut c) = process_with_history(9, 0);
        let limits = HistoryLimits {
            keep_jobs: Some(4),
            drift_healed_before: None,
        };
        c.apply(&mut s, Command::HistoryTrimmed { limits });
        let p = &s.processes[&fid];
        // Jobs 1..=5 folded (3 failed), 6..=9 and the one in progress kept.
        assert_eq!(p.jobs.keys().copied().collect::<Vec<_>>(), [6, 7, 8, 9, 10]);
        assert_eq!((p.folded.jobs, p.folded.jobs_failed), (5, 1));
        assert!(p.folded.through_ms > 0);
        // Again: nothing more to fold.
        c.apply(&mut s, Command::HistoryTrimmed { limits });
        assert_eq!(s.processes[&fid].folded.jobs, 5);
    }

    #[test]
    fn only_healed_drift_older_than_the_cutoff_folds() {
        let (mut s, fid, mut c) = process_with_history(0, 4);
        // Healed at 3 s, 5 s, 7 s and 9 s; the fifth is open.
        let healed: Vec<_> = s.processes[&fid]
            .drift
            .values()
            .filter_map(|d| d.healed_at)
            .collect();
        let limits = HistoryLimits {
            keep_jobs: None,
            drift_healed_before: Some(healed[2]),
        };
        c.apply(&mut s, Command::HistoryTrimmed { limits });
        let p = &s.processes[&fid];
        assert_eq!(p.drift.keys().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(p.folded.drift, 2);
        assert_eq!(p.folded.through_ms, healed[1]);
        // Even with every heal past the cutoff the open one stays.
        let limits = HistoryLimits {
            keep_jobs: Some(0),
            drift_healed_before: Some(UnixMillis::MAX),
        };
        c.apply(&mut s, Command::HistoryTrimmed { limits });
        let p = &s.processes[&fid];
        assert_eq!(p.drift.keys().copied().collect::<Vec<_>>(), [5]);
        assert_eq!(p.jobs.len(), 1, "the job in progress stays");
    }

    #[test]
    fn replicas_fold_alike_and_snapshots_without_counts_still_load() {
        let (mut a, fid, c) = process_with_history(6, 2);
        let mut b = a.clone();
        let limits = HistoryLimits {
            keep_jobs: Some(2),
            drift_healed_before: Some(UnixMillis::MAX),
        };
        let trim = Request::new(c.0 + 1, Command::HistoryTrimmed { limits });
        a.apply(&trim);
        b.apply(&trim);
        assert_eq!(a, b);
        // A record as written before retention existed: no `folded`.
        let mut json = serde_json::to_value(&a.processes[&fid]).unwrap();
        json.as_object_mut().unwrap().remove("folded");
        let old: ProcessRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.folded, FoldedHistory::default());
    }
}
