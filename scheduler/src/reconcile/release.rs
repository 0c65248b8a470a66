//! The decision for a Releasing process (`canon release`): its RELEASE job
//! deletes the ownership tag of every resource the cloud still shows
//! tagged as the process's ([`canon_model::release_plan`]); the pass that
//! finds none left forgets the bindings, marks the process Released and
//! ends the job. Nothing is deleted, and each pass plans from what the
//! cloud shows, so a new leader picks up a release where it stopped.

use canon_model::{release_plan, JobKind, JobStatus, ObservedState, ProcessState};
use canon_raft::state::ProcessRecord;
use canon_raft::Command;

use super::{close_system, planned_calls, Decision, IdSource, TickState, SUCCEEDED_MESSAGE};

/// The next step of releasing `process`, given what the cloud shows.
pub(super) fn release(
    process: &ProcessRecord,
    observed: &ObservedState,
    ids: &mut IdSource,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
    // Enforcement is over: close the SYSTEM row.
    let mut before = close_system(process, ticks, SUCCEEDED_MESSAGE);
    let job = process.busy_job().unwrap_or_else(|| {
        let job = ids.job();
        before.push(Command::JobStarted {
            fid,
            job,
            kind: JobKind::Release,
            message: "releasing".into(),
        });
        job
    });
    let plan = release_plan(fid, observed);
    if plan.requests.is_empty() {
        let forgotten = process.bindings.len();
        let mut commit = before;
        commit.extend(
            process
                .bindings
                .keys()
                .map(|l| Command::BindingCleared { resource: *l }),
        );
        commit.push(Command::ProcessStateChanged {
            fid,
            state: ProcessState::Released,
        });
        commit.push(Command::JobFinished {
            fid,
            job,
            status: JobStatus::Succeeded,
            message: format!(
                "{SUCCEEDED_MESSAGE}: released; {forgotten} binding(s) forgotten, nothing deleted"
            ),
        });
        return Decision::Steady {
            commit,
            flushed: true,
        };
    }
    before.push(Command::JobProgressed {
        fid,
        job,
        ticks: 1,
        message: Some(format!(
            "removing the ownership tag from {} resource(s)",
            plan.requests.len()
        )),
        opens_pass: true,
        planned: planned_calls(&plan.requests),
    });
    Decision::Act {
        before,
        plan: Box::new(plan),
        job,
        after: vec![],
        drift: vec![],
    }
}

#[cfg(test)]
mod tests {
    use canon_model::*;
    use canon_raft::Command;

    use super::super::tests::{applied, fid, group, job, record, ticks};
    use super::super::{reconcile, Decision};

    #[test]
    fn a_release_untags_what_is_owned_then_forgets_it_and_deletes_nothing() {
        let mut d = DesiredState::empty(fid());
        let sg = group(&mut d);
        let mut p = record(
            ProcessState::Releasing,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        let o = applied(&d, &mut p);
        let cid = p.bindings[&sg].cloud_id.clone();
        let job = match reconcile(&p, &d, &o, &Default::default(), 50_000, ticks(2, 0)) {
            Decision::Act {
                before, plan, job, ..
            } => {
                assert_eq!(plan.requests.len(), 1);
                assert_eq!(
                    plan.requests[0].action,
                    Action::DeleteTags {
                        resource: CloudRef::Id(cid.clone()),
                        keys: [OWNERSHIP_TAG.to_string()].into_iter().collect(),
                    }
                );
                assert!(plan.requests.iter().all(|r| !r.action.is_delete()));
                // The SYSTEM row ends; a RELEASE job starts.
                assert!(before
                    .iter()
                    .any(|c| matches!(c, Command::JobFinished { job: 10, .. })));
                assert!(before.iter().any(|c| matches!(
                    c,
                    Command::JobStarted { job, kind: JobKind::Release, .. } if *job != 10
                )));
                job
            }
            other => panic!("{other:?}"),
        };
        // Once the cloud shows nothing tagged: bindings forgotten, Released.
        p.jobs.insert(
            job,
            super::super::tests::job(job, JobKind::Release, JobStatus::InProgress),
        );
        p.jobs.remove(&10);
        match reconcile(
            &p,
            &d,
            &ObservedState::new(),
            &Default::default(),
            51_000,
            ticks(0, 0),
        ) {
            Decision::Steady { commit, .. } => {
                assert!(commit.contains(&Command::BindingCleared { resource: sg }));
                assert!(commit.contains(&Command::ProcessStateChanged {
                    fid: fid(),
                    state: ProcessState::Released
                }));
                assert!(matches!(
                    commit.last(),
                    Some(Command::JobFinished { job: j, status: JobStatus::Succeeded, .. })
                        if *j == job
                ));
            }
            other => panic!("{other:?}"),
        }
        // Released: asleep for good.
        p.state = ProcessState::Released;
        assert!(matches!(
            reconcile(&p, &d, &o, &Default::default(), 52_000, ticks(0, 0)),
            Decision::Sleep { .. }
        ));
    }
}
