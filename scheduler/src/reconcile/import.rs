//! The first step of an imported process's RUN job (`canon run --import`):
//! before anything is planned, each adopted resource gets the process's
//! ownership tag. The next pass observes them as the process's, and the
//! planner adopts (binds) them instead of creating anything; a leader that
//! dies between tagging and binding leaves tags the next observation finds.
//!
//! The door checked ownership when it accepted the import; a resource
//! another process tagged since (two imports of it racing) is not tagged
//! over: the RUN job fails naming it and its owner. The actor observes
//! afresh before tagging (`adopting`), so what it checks is not a tick old.

use canon_model::import::{adoption_requests, taken_since, ImportError};
use canon_model::{Bindings, DesiredState, JobKind, ObservedState, Plan, ProcessState};
use canon_raft::state::ProcessRecord;

/// What an imported process's RUN job does before planning.
#[derive(Debug)]
pub(super) enum Adoption {
    /// Write these ownership tags.
    Tag(Plan),
    /// Stop: another process owns some of what this import adopts.
    Taken(Vec<ImportError>),
}

/// Whether `process` is still adopting what it imports: its RUN job is in
/// progress and some import is not bound yet.
pub fn adopting(process: &ProcessRecord) -> bool {
    !process.imports.is_empty()
        && process.state == ProcessState::Running
        && process
            .busy_job()
            .and_then(|job| process.jobs.get(&job))
            .is_some_and(|j| j.kind == JobKind::Run)
        && process
            .imports
            .keys()
            .any(|l| !process.bindings.contains_key(l))
}

/// The tags still to write while `process`'s RUN job is in progress, or the
/// imports another process took; `None` once there is nothing to tag (or
/// the process imported nothing).
pub(super) fn adoption(
    process: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
    bindings: &Bindings,
) -> Option<Adoption> {
    if !adopting(process) {
        return None;
    }
    let taken = taken_since(desired, &process.imports, observed, bindings);
    if !taken.is_empty() {
        return Some(Adoption::Taken(taken));
    }
    let requests = adoption_requests(desired, &process.imports, observed, bindings);
    (!requests.is_empty()).then(|| {
        Adoption::Tag(Plan {
            requests,
            ..Plan::default()
        })
    })
}

/// The message a RUN job fails with when imports were taken.
pub(super) fn taken_message(taken: &[ImportError]) -> String {
    let said: Vec<String> = taken.iter().map(ToString::to_string).collect();
    format!(
        "import: adopted by another process after this import was accepted, not tagged over: {}; \
         update to create them instead, or kill",
        said.join("; ")
    )
}
