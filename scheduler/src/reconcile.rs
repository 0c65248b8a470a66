//! The reconcile decision: a pure function from what the log says about a
//! process and what the cloud shows to what to do next — the kube-rs
//! controller shape. No I/O here; the actor carries the decision out.
//!
//! Job bookkeeping follows the demo's `history`: a RUN, UPDATE or KILL job
//! runs until a pass finds nothing left to do; while none is in progress, a
//! Running process has one SYSTEM job that accumulates quiet ticks, and a
//! tick that heals drift closes that row (the next tick opens a new one).

use canon_model::{
    plan, Bindings, DesiredState, Fid, JobKind, JobStatus, LogicalId, ObservedState, Plan,
    ProcessState, UnixMillis,
};
use canon_raft::state::ProcessRecord;
use canon_raft::Command;

/// The job message of a job that ended well, as in the demo.
pub const SUCCEEDED_MESSAGE: &str = "JobSucceeded";

/// What the actor knows besides the log and the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickState {
    /// Quiet ticks not yet written to the log.
    pub unflushed_ticks: u64,
    /// When quiet ticks were last written.
    pub last_flush: UnixMillis,
    /// Write quiet ticks at most this often (milliseconds).
    pub flush_every: u64,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to do until the process changes (Suspended, Killed, or
    /// parked after a terminal failure). Commit `commit` first.
    Sleep { commit: Vec<Command>, why: String },
    /// The cloud matches the declaration: commit `commit` (bookkeeping)
    /// and tick again after the interval. `flushed` says the commit wrote
    /// the unflushed ticks.
    Steady { commit: Vec<Command>, flushed: bool },
    /// Changes are needed: commit `before` (the intent: job progress, drift
    /// opened, adoptions), execute `plan` as job `job`, then commit `after`.
    Act {
        before: Vec<Command>,
        plan: Plan,
        job: u64,
        after: Vec<Command>,
        /// Drift events this pass heals (opened in `before`).
        drift: Vec<u64>,
    },
}

/// Decides the next step for `process`.
///
/// `desired` is its decoded composition; for a Killing process the plan is
/// made against an empty declaration. `observed` is a recent observation of
/// its account and regions.
pub fn reconcile(
    process: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
    now: UnixMillis,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
    match process.state {
        ProcessState::Killed => {
            return Decision::Sleep {
                commit: vec![],
                why: "killed".into(),
            }
        }
        ProcessState::Suspended => {
            return Decision::Sleep {
                commit: flush_system(process, ticks, 0),
                why: "suspended".into(),
            }
        }
        ProcessState::Running | ProcessState::Killing => {}
    }
    if process.jobs.is_empty() {
        // Created, but its RUN job has not been recorded yet: nothing to
        // enforce until it is.
        return Decision::Sleep {
            commit: vec![],
            why: "waiting for the first job".into(),
        };
    }
    if let Some(why) = parked(process) {
        return Decision::Sleep {
            commit: flush_system(process, ticks, 0),
            why,
        };
    }

    let bindings = bindings_of(process);
    let empty = DesiredState::empty(fid);
    let target = if process.state == ProcessState::Killing {
        &empty
    } else {
        desired
    };
    let plan = plan(target, observed, &bindings);

    let mut ids = IdSource::new(process, now);
    let mut before: Vec<Command> = plan
        .adoptions
        .iter()
        .filter_map(|(l, c)| {
            let kind = target.resources.get(l)?.kind();
            Some(Command::BindingSet {
                resource: *l,
                kind,
                cloud_id: c.clone(),
            })
        })
        .collect();

    // A RUN, UPDATE or KILL job in progress; a Killing process without one
    // (e.g. its KILL job failed and was retried by a newer command) gets one.
    let busy = process.busy_job().or_else(|| {
        (process.state == ProcessState::Killing).then(|| {
            let job = ids.job();
            before.push(Command::JobStarted {
                fid,
                job,
                kind: JobKind::Kill,
                message: "killing".into(),
            });
            job
        })
    });

    if let Some(job) = busy {
        // A command job supersedes enforcement: close the SYSTEM row.
        before.extend(close_system(process, ticks, SUCCEEDED_MESSAGE));
        if plan.is_empty() {
            let mut commit = before;
            if process.state == ProcessState::Killing {
                // Whatever is still bound is gone from the cloud.
                commit.extend(
                    process
                        .bindings
                        .keys()
                        .map(|l| Command::BindingCleared { resource: *l }),
                );
                commit.push(Command::ProcessStateChanged {
                    fid,
                    state: ProcessState::Killed,
                });
            }
            commit.push(Command::JobFinished {
                fid,
                job,
                status: JobStatus::Succeeded,
                message: SUCCEEDED_MESSAGE.into(),
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
            message: Some(progress_message(&plan)),
        });
        return Decision::Act {
            before,
            plan,
            job,
            after: vec![],
            drift: vec![],
        };
    }

    // Running, no command job: enforcement.
    let system = system_job(process);
    if plan.is_empty() {
        let mut commit = before;
        let mut flushed = false;
        match system {
            None => {
                commit.push(Command::JobStarted {
                    fid,
                    job: ids.job(),
                    kind: JobKind::System,
                    message: String::new(),
                });
                flushed = true;
            }
            Some(job) => {
                let pending = ticks.unflushed_ticks + 1;
                if now.saturating_sub(ticks.last_flush) >= ticks.flush_every {
                    commit.push(Command::JobProgressed {
                        fid,
                        job,
                        ticks: pending,
                        message: None,
                    });
                    flushed = true;
                }
            }
        }
        return Decision::Steady { commit, flushed };
    }

    // Drift: open an event per difference, heal, close the SYSTEM row.
    let job = match system {
        Some(job) => job,
        None => {
            let job = ids.job();
            before.push(Command::JobStarted {
                fid,
                job,
                kind: JobKind::System,
                message: String::new(),
            });
            job
        }
    };
    let mut drift = Vec::new();
    for d in &plan.differences {
        let id = ids.drift();
        drift.push(id);
        before.push(Command::DriftOpened {
            fid,
            drift: id,
            resource: d.resource,
            kind: d.kind,
            cloud_id: d.cloud_id.clone(),
            property: d.property.clone(),
            declared: d.declared.clone(),
            observed: d.observed.clone(),
        });
    }
    before.push(Command::JobProgressed {
        fid,
        job,
        ticks: ticks.unflushed_ticks + 1,
        message: Some(format!(
            "healing {} difference(s): {}",
            plan.differences.len(),
            progress_message(&plan)
        )),
    });
    let mut after: Vec<Command> = drift
        .iter()
        .map(|d| Command::DriftHealed { fid, drift: *d })
        .collect();
    after.push(Command::JobFinished {
        fid,
        job,
        status: JobStatus::Succeeded,
        message: format!("JobSucceeded: healed {} drift(s)", drift.len()),
    });
    Decision::Act {
        before,
        plan,
        job,
        after,
        drift,
    }
}

/// The bindings recorded in the log, as the planner wants them.
pub fn bindings_of(process: &ProcessRecord) -> Bindings {
    process
        .bindings
        .iter()
        .map(|(l, b)| (*l, b.cloud_id.clone()))
        .collect()
}

/// Why the process waits for a new command after a terminal failure: its
/// newest job failed and nothing changed since.
fn parked(process: &ProcessRecord) -> Option<String> {
    let last = process.jobs.values().max_by_key(|j| (j.started, j.id))?;
    (last.status == JobStatus::Failed && process.updated_at <= last.updated).then(|| {
        format!(
            "{} job {} failed ({}); waiting for an update",
            last.kind, last.id, last.message
        )
    })
}

/// The SYSTEM job in progress, if any.
fn system_job(process: &ProcessRecord) -> Option<u64> {
    process
        .jobs
        .values()
        .find(|j| j.kind == JobKind::System && j.status == JobStatus::InProgress)
        .map(|j| j.id)
}

/// Writes unflushed ticks (plus `extra`) to the SYSTEM job, if any.
fn flush_system(process: &ProcessRecord, ticks: TickState, extra: u64) -> Vec<Command> {
    match system_job(process) {
        Some(job) if ticks.unflushed_ticks + extra > 0 => vec![Command::JobProgressed {
            fid: process.fid,
            job,
            ticks: ticks.unflushed_ticks + extra,
            message: None,
        }],
        _ => vec![],
    }
}

/// Ends the SYSTEM job in progress (flushing its ticks) with `message`.
fn close_system(process: &ProcessRecord, ticks: TickState, message: &str) -> Vec<Command> {
    let mut out = flush_system(process, ticks, 0);
    if let Some(job) = system_job(process) {
        out.push(Command::JobFinished {
            fid: process.fid,
            job,
            status: JobStatus::Succeeded,
            message: message.into(),
        });
    }
    out
}

fn progress_message(plan: &Plan) -> String {
    let n = plan.requests.len();
    let first = plan
        .requests
        .first()
        .map(|r| r.request_type())
        .unwrap_or_default();
    format!("{n} request(s), first {first}")
}

/// New job and drift ids: increasing, unique within the process, derived
/// from the time so that they read as row ids.
struct IdSource {
    next_job: u64,
    next_drift: u64,
}

impl IdSource {
    fn new(process: &ProcessRecord, now: UnixMillis) -> Self {
        let max_job = process.jobs.keys().max().copied().unwrap_or(0);
        let max_drift = process.drift.keys().max().copied().unwrap_or(0);
        IdSource {
            next_job: now.max(max_job + 1),
            next_drift: now.max(max_drift + 1),
        }
    }
    fn job(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job - 1
    }
    fn drift(&mut self) -> u64 {
        self.next_drift += 1;
        self.next_drift - 1
    }
}

/// The logical ids a plan's differences concern (for alerting).
pub fn drifted_resources(plan: &Plan) -> Vec<LogicalId> {
    let mut v: Vec<LogicalId> = plan.differences.iter().map(|d| d.resource).collect();
    v.dedup();
    v
}

/// Which process a command concerns, if any.
pub fn fid_of(command: &Command) -> Option<Fid> {
    match command {
        Command::ProcessCreated { fid, .. }
        | Command::ProcessUpdated { fid, .. }
        | Command::ProcessStateChanged { fid, .. }
        | Command::ProcessDeleted { fid }
        | Command::JobStarted { fid, .. }
        | Command::JobProgressed { fid, .. }
        | Command::JobFinished { fid, .. }
        | Command::DriftOpened { fid, .. }
        | Command::DriftHealed { fid, .. } => Some(*fid),
        Command::BindingSet { resource, .. } | Command::BindingCleared { resource } => {
            Some(resource.fid)
        }
        _ => None,
    }
}
