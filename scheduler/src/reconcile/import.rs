//! The first step of an imported process's RUN job (`canon run --import`):
//! before anything is planned, each adopted resource gets the process's
//! ownership tag. The next pass observes them as the process's, and the
//! planner adopts (binds) them instead of creating anything; a leader that
//! dies between tagging and binding leaves tags the next observation finds.

use canon_model::import::adoption_requests;
use canon_model::{Bindings, DesiredState, JobKind, ObservedState, Plan, ProcessState};
use canon_raft::state::ProcessRecord;

/// The tags still to write while `process`'s RUN job is in progress, as a
/// plan; `None` once there are none (or the process imported nothing).
pub(super) fn adoption(
    process: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
    bindings: &Bindings,
) -> Option<Plan> {
    if process.imports.is_empty() || process.state != ProcessState::Running {
        return None;
    }
    let job = process.busy_job()?;
    if process.jobs.get(&job)?.kind != JobKind::Run {
        return None;
    }
    let requests = adoption_requests(desired, &process.imports, observed, bindings);
    (!requests.is_empty()).then(|| Plan {
        requests,
        ..Plan::default()
    })
}
