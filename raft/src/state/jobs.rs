//! The rules of a process's jobs: at most one RUN/UPDATE/KILL job in
//! progress per process (SYSTEM jobs beside it), progress and finish only
//! while in progress. Called by [`CanonState::apply`](super::CanonState::apply)
//! for the `Job*` commands.

use canon_model::{Fid, JobKind, JobRecord, JobStatus, UnixMillis};

use super::CanonState;
use crate::command::Rejection;

impl CanonState {
    /// `JobStarted`: a new job on a live process.
    pub(super) fn start_job(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        job: u64,
        kind: JobKind,
        message: &str,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&fid)?;
        if p.jobs.contains_key(&job) {
            return Err(Rejection::JobExists { fid, job });
        }
        if kind != JobKind::System {
            if let Some(busy) = p.busy_job() {
                return Err(Rejection::JobBusy { fid, busy });
            }
        }
        p.jobs.insert(
            job,
            JobRecord {
                id: job,
                fid,
                kind,
                status: JobStatus::InProgress,
                started: at,
                updated: at,
                ticks: 0,
                message: message.to_string(),
            },
        );
        Ok(())
    }

    /// `JobProgressed`: an in-progress job ran `ticks` more passes (and,
    /// with `opens_pass`, the process opened one more pass that may call the
    /// cloud).
    pub(super) fn progress_job(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        job: u64,
        ticks: u64,
        message: Option<&str>,
        opens_pass: bool,
    ) -> Result<(), Rejection> {
        let j = self.open_job(&fid, job)?;
        j.ticks = j.ticks.saturating_add(ticks);
        if let Some(m) = message {
            j.message = m.to_string();
        }
        j.updated = at;
        self.get_mut(&fid)?.count_pass(ticks, message, opens_pass);
        Ok(())
    }

    /// `JobFinished`: an in-progress job ends with a final status.
    pub(super) fn finish_job(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        job: u64,
        status: JobStatus,
        message: &str,
    ) -> Result<(), Rejection> {
        if !status.is_finished() {
            return Err(Rejection::NotAFinalStatus);
        }
        let j = self.open_job(&fid, job)?;
        j.status = status;
        j.message = message.to_string();
        j.updated = at;
        self.end_passes_of(fid, job);
        Ok(())
    }

    /// A job of `fid` that is still in progress.
    fn open_job(&mut self, fid: &Fid, job: u64) -> Result<&mut JobRecord, Rejection> {
        let p = self.get_mut(fid)?;
        let j = p
            .jobs
            .get_mut(&job)
            .ok_or(Rejection::UnknownJob { fid: *fid, job })?;
        if j.status.is_finished() {
            return Err(Rejection::JobFinished { fid: *fid, job });
        }
        Ok(j)
    }
}
