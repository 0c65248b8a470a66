//! The reconcile decision: a pure function from what the log says about a
//! process and what the cloud shows to what to do next — the kube-rs
//! controller shape. No I/O here; the actor carries the decision out.
//!
//! Job bookkeeping follows the demo's `history`: a RUN, UPDATE or KILL job
//! runs until a pass finds nothing left to do; while none is in progress, a
//! Running process has one SYSTEM job that accumulates quiet ticks, and a
//! tick that heals drift closes that row (the next tick opens a new one).

use std::collections::BTreeSet;

use canon_model::rollout_failure::latest_replacements;
use canon_model::{
    plan_with, Bindings, DesiredState, Intent, JobKind, JobStatus, ObservedState, Plan,
    ProcessState, UnixMillis,
};
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, PlannedCall};

mod drift;
mod import;
mod release;

pub use import::adopting;

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
    /// Nothing can be done until a resource becomes ready (a NAT gateway
    /// still `pending`): commit `commit` and look again after the
    /// interval. The job in progress, if any, goes on.
    Wait { commit: Vec<Command>, why: String },
    /// Changes are needed: commit `before` (the intent: job progress, drift
    /// opened, adoptions), execute `plan` as job `job`, then commit `after`.
    Act {
        before: Vec<Command>,
        /// Boxed: a plan is large beside the other decisions.
        plan: Box<Plan>,
        job: u64,
        after: Vec<Command>,
        /// Drift events this pass heals (opened in `before`, or found open
        /// in the record: drift an earlier pass only detected).
        drift: Vec<u64>,
    },
    /// Enforcement is off and the cloud differs from the declaration:
    /// commit `commit` (the drift not recorded yet, bookkeeping), alert the
    /// drift it opens, heal nothing, tick again after the interval.
    /// `flushed` as for `Steady`.
    Detected { commit: Vec<Command>, flushed: bool },
}

/// The calls `requests` make, as the intent of the pass that makes them
/// names them (audited before the first is sent: issue #13's crash gap).
fn planned_calls(requests: &[canon_model::Request]) -> Vec<PlannedCall> {
    requests
        .iter()
        .map(|r| PlannedCall {
            request: r.request_type().to_string(),
            resource: r.target,
            region: r.region.to_string(),
        })
        .collect()
}

/// Decides the next step for `process`.
///
/// `desired` is its decoded composition; for a Killing process the plan is
/// made against an empty declaration (`DesiredState::emptied`). `observed` is a recent observation of
/// its account and regions; `reached`, the instances the conductor just
/// reached for their fleet's `Tcp` health check (`crate::probe`).
pub fn reconcile(
    process: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
    reached: &BTreeSet<String>,
    now: UnixMillis,
    ticks: TickState,
) -> Decision {
    if let Some(sleep) = asleep(process, ticks) {
        return sleep;
    }
    let fid = process.fid;
    let mut ids = IdSource::new(process, now);
    if process.state == ProcessState::Releasing {
        return release::release(process, observed, &mut ids, ticks);
    }
    let bindings = bindings_of(process);
    // A kill keeps the process's external resources external.
    let empty = desired.emptied();
    let target = if process.state == ProcessState::Killing {
        &empty
    } else {
        desired
    };
    let replaced_at = latest_replacements(process.replacements.values());
    let intent = Intent {
        rotations: &process.rotations,
        failures: &process.rollout_failures,
        reached,
        replaced_at: &replaced_at,
    };
    // An import tags what it adopts before anything is planned.
    let plan = match import::adoption(process, desired, observed, &bindings) {
        Some(import::Adoption::Tag(plan)) => plan,
        Some(import::Adoption::Taken(taken)) => return import_taken(process, &taken),
        None => plan_with(target, observed, &bindings, now, intent),
    };

    let mut before: Vec<Command> = plan
        .adoptions
        .iter()
        .filter_map(|(l, c)| {
            let declared = target.resources.get(l)?;
            Some(Command::BindingSet {
                resource: *l,
                kind: declared.kind(),
                cloud_id: c.clone(),
                region: Some(declared.region.clone()),
                adopted: true,
            })
        })
        .collect();
    before.extend(rotations_done(process, &plan));
    before.extend(rollout_outcomes(process, target, &plan));

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
    match busy {
        Some(job) if plan.only_waits() => wait(process, target, &plan, before, Some(job)),
        Some(job) => command_job(process, plan, job, before, ticks),
        None if plan.is_empty() => {
            before.extend(drift::close_gone(process));
            quiet_tick(process, before, &mut ids, now, ticks)
        }
        None if plan.only_waits() => wait(process, target, &plan, before, None),
        None if !process.properties.enforcement => {
            drift::detect(process, &plan, before, &mut ids, now, ticks)
        }
        None => heal(process, plan, before, &mut ids, ticks),
    }
}

/// An imported process's RUN job fails: another process owns some of what
/// it adopts. It waits for an update (or a kill), as after any failed job.
fn import_taken(process: &ProcessRecord, taken: &[canon_model::import::ImportError]) -> Decision {
    let message = import::taken_message(taken);
    let commit = process
        .busy_job()
        .map(|job| Command::JobFinished {
            fid: process.fid,
            job,
            status: JobStatus::Failed,
            message: message.clone(),
        })
        .into_iter()
        .collect();
    Decision::Sleep {
        commit,
        why: message,
    }
}

/// The rotation requests this pass finds done: none of the instances they
/// cover is bound any more (their replacements are; old copies still
/// serving are retired by the plan as usual).
fn rotations_done(process: &ProcessRecord, plan: &Plan) -> Option<Command> {
    let through = process.rotations.iter().map(|r| r.before).max()?;
    plan.rotating.is_empty().then_some(Command::RotationDone {
        fid: process.fid,
        through,
    })
}

/// The failed replacements `plan` falls back from, and the members whose
/// replacement worked again, as commands for the record.
fn rollout_outcomes(process: &ProcessRecord, desired: &DesiredState, plan: &Plan) -> Vec<Command> {
    let fid = process.fid;
    let name = |l: &canon_model::LogicalId| {
        desired
            .resources
            .get(l)
            .map_or_else(|| l.to_string(), |r| r.name.clone())
    };
    let failed = plan
        .failed
        .iter()
        .map(|(l, cloud_id)| Command::RolloutFailed {
            fid,
            resource: *l,
            cloud_id: cloud_id.clone(),
            name: name(l),
        });
    let recovered = plan
        .recovered
        .iter()
        .map(|l| Command::RolloutRecovered { fid, resource: *l });
    failed.chain(recovered).collect()
}

/// A pass that can only wait for resources to become ready: say so on the
/// job in progress (once), commit the bookkeeping, look again later.
/// Enforcement opens no drift for what waits: it is recorded, and healed,
/// once it can be acted on.
fn wait(
    process: &ProcessRecord,
    desired: &DesiredState,
    plan: &Plan,
    mut commit: Vec<Command>,
    job: Option<u64>,
) -> Decision {
    let name = |l: &canon_model::LogicalId| {
        desired
            .resources
            .get(l)
            .map_or_else(|| l.to_string(), |r| r.name.clone())
    };
    let mut on: Vec<String> = plan.waiting.iter().map(|w| name(&w.on)).collect();
    on.sort();
    on.dedup();
    let why = format!(
        "waiting for {} to become available ({} change(s))",
        on.join(", "),
        plan.waiting.len()
    );
    if let Some(job) = job {
        if process.jobs.get(&job).is_none_or(|j| j.message != why) {
            commit.push(Command::JobProgressed {
                fid: process.fid,
                job,
                ticks: 0,
                message: Some(why.clone()),
                opens_pass: false,
                planned: Vec::new(),
            });
        }
    }
    Decision::Wait { commit, why }
}

/// The Sleep decision of a process with nothing to enforce: Killed,
/// Released, Suspended, waiting for its first job, or parked after a
/// failure.
fn asleep(process: &ProcessRecord, ticks: TickState) -> Option<Decision> {
    let (commit, why) = match process.state {
        ProcessState::Killed => (vec![], "killed".to_string()),
        ProcessState::Released => (vec![], "released".to_string()),
        ProcessState::Suspended => (flush_system(process, ticks, 0), "suspended".to_string()),
        // Created, but its RUN job has not been recorded yet: nothing to
        // enforce until it is.
        ProcessState::Running | ProcessState::Killing if process.jobs.is_empty() => {
            (vec![], "waiting for the first job".to_string())
        }
        ProcessState::Running | ProcessState::Killing | ProcessState::Releasing => {
            let why = parked(process)?;
            (flush_system(process, ticks, 0), why)
        }
    };
    Some(Decision::Sleep { commit, why })
}

/// A RUN, UPDATE or KILL job in progress (`job`): it supersedes
/// enforcement, and ends when a pass finds nothing left to do (a kill then
/// marks the process Killed).
fn command_job(
    process: &ProcessRecord,
    plan: Plan,
    job: u64,
    mut before: Vec<Command>,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
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
    before.extend(replaced(fid, job, &plan));
    before.push(Command::JobProgressed {
        fid,
        job,
        ticks: 1,
        message: Some(progress_message(&plan)),
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

/// Enforcement of a Running process that matches its declaration: count
/// the quiet tick on the SYSTEM job (opening one if none is in progress),
/// writing the count at most every `flush_every`.
fn quiet_tick(
    process: &ProcessRecord,
    mut commit: Vec<Command>,
    ids: &mut IdSource,
    now: UnixMillis,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
    let mut flushed = false;
    match system_job(process) {
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
                    opens_pass: false,
                    planned: Vec::new(),
                });
                flushed = true;
            }
        }
    }
    Decision::Steady { commit, flushed }
}

/// Enforcement of a Running process that drifted: open a drift event per
/// difference, heal them under the SYSTEM job, then close that row.
fn heal(
    process: &ProcessRecord,
    plan: Plan,
    mut before: Vec<Command>,
    ids: &mut IdSource,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
    let job = match system_job(process) {
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
    let recorded = drift::record(process, &plan.differences, ids);
    let drift = recorded.ids;
    before.extend(recorded.opened);
    before.extend(replaced(fid, job, &plan));
    before.push(Command::JobProgressed {
        fid,
        job,
        ticks: ticks.unflushed_ticks + 1,
        message: Some(format!(
            "healing {} difference(s): {}",
            plan.differences.len(),
            progress_message(&plan)
        )),
        opens_pass: true,
        planned: planned_calls(&plan.requests),
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
        plan: Box::new(plan),
        job,
        after,
        drift,
    }
}

/// The replacement history's rows of the instances `plan` replaces under
/// job `job`.
fn replaced(fid: canon_model::Fid, job: u64, plan: &Plan) -> impl Iterator<Item = Command> + '_ {
    plan.replacements
        .iter()
        .map(move |r| Command::InstanceReplaced {
            fid,
            job,
            replaced: r.clone(),
        })
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
            opens_pass: false,
            planned: Vec::new(),
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

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use canon_model::*;
    use canon_raft::state::{Binding, ProcessRecord};
    use canon_raft::{Command, Composition};

    use super::*;

    pub(crate) fn fid() -> Fid {
        "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
    }

    pub(super) fn group(d: &mut DesiredState) -> LogicalId {
        let id = LogicalId::new(d.fid, "sg");
        d.insert(Resource {
            id,
            name: "sg".into(),
            region: Region::new("us-west-2"),
            spec: Spec::SecurityGroup(demo::web_group(Ref::External("vpc-1".into()), "web", &[])),
        })
        .unwrap();
        id
    }

    pub(crate) fn job(id: u64, kind: JobKind, status: JobStatus) -> JobRecord {
        JobRecord {
            id,
            fid: fid(),
            kind,
            status,
            started: id,
            updated: id,
            ticks: 0,
            message: String::new(),
        }
    }

    pub(crate) fn record(state: ProcessState, jobs: Vec<JobRecord>) -> ProcessRecord {
        ProcessRecord {
            imports: Default::default(),
            fid: fid(),
            alias: "a".into(),
            account: "1".into(),
            state,
            composition: Composition {
                bytes: vec![],
                source_hash: String::new(),
            },
            generation: 1,
            created_at: 1,
            updated_at: 1,
            jobs: jobs.into_iter().map(|j| (j.id, j)).collect(),
            bindings: BTreeMap::new(),
            drift: BTreeMap::new(),
            tick_interval_ms: None,
            folded: Default::default(),
            properties: Default::default(),
            suspected: None,
            suspected_by: None,
            rotations: Vec::new(),
            replacements: BTreeMap::new(),
            rollout_failures: BTreeMap::new(),
            passes: Some(0),
            open_pass: None,
        }
    }

    /// The cloud as it is once `d` has been applied, with its bindings.
    pub(super) fn applied(d: &DesiredState, p: &mut ProcessRecord) -> ObservedState {
        let mut o = ObservedState::new();
        for r in d.resources.values() {
            let mut spec = r.spec.map_refs(|x| match x {
                Ref::External(c) => c.clone(),
                Ref::Managed(_) => unreachable!(),
            });
            spec.tags_mut()
                .insert(OWNERSHIP_TAG.into(), r.id.to_string());
            let cloud_id = format!("sg-{}", r.id.path.simple());
            p.bindings.insert(
                r.id,
                Binding {
                    resource: r.id,
                    kind: r.kind(),
                    cloud_id: cloud_id.clone(),
                    since: 1,
                    region: Some(r.region.clone()),
                },
            );
            o.insert(ObservedResource {
                cloud_id,
                region: r.region.clone(),
                spec,
                association_ids: Default::default(),
                pending: false,
                life: None,
            });
        }
        o
    }

    pub(super) fn ticks(unflushed: u64, last_flush: u64) -> TickState {
        TickState {
            unflushed_ticks: unflushed,
            last_flush,
            flush_every: 30_000,
        }
    }

    #[test]
    fn quiet_ticks_are_flushed_at_most_every_30_seconds() {
        let mut d = DesiredState::empty(fid());
        group(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        let o = applied(&d, &mut p);
        // 10 s after the last flush: nothing written.
        match reconcile(&p, &d, &o, &BTreeSet::new(), 10_000, ticks(4, 0)) {
            Decision::Steady { commit, flushed } => {
                assert!(commit.is_empty() && !flushed);
            }
            other => panic!("{other:?}"),
        }
        // 30 s after: the accumulated ticks, and this one, in one write.
        match reconcile(&p, &d, &o, &BTreeSet::new(), 30_000, ticks(4, 0)) {
            Decision::Steady { commit, flushed } => {
                assert!(flushed);
                assert_eq!(
                    commit,
                    vec![Command::JobProgressed {
                        fid: fid(),
                        job: 10,
                        ticks: 5,
                        message: None,
                        opens_pass: false,
                        planned: Vec::new(),
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn drift_opens_events_and_closes_the_system_row_after_healing() {
        let mut d = DesiredState::empty(fid());
        let sg = group(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        let mut o = applied(&d, &mut p);
        let cid = p.bindings[&sg].cloud_id.clone();
        let mut r = o.get(&cid).unwrap().clone();
        if let Spec::SecurityGroup(g) = &mut r.spec {
            g.ingress
                .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
        }
        o.insert(r);
        match reconcile(&p, &d, &o, &BTreeSet::new(), 50_000, ticks(3, 40_000)) {
            Decision::Act {
                before,
                plan,
                job,
                after,
                drift,
            } => {
                assert_eq!(job, 10);
                assert_eq!(drift.len(), 1);
                assert_eq!(plan.requests.len(), 1);
                assert!(before.iter().any(|c| matches!(c,
                    Command::DriftOpened { property, observed, .. }
                        if property == "ingress" && observed.as_deref() == Some("all traffic 0.0.0.0/0"))));
                assert!(before
                    .iter()
                    .any(|c| matches!(c, Command::JobProgressed { ticks: 4, .. })));
                assert!(matches!(after[0], Command::DriftHealed { .. }));
                assert!(matches!(
                    after.last(),
                    Some(Command::JobFinished {
                        job: 10,
                        status: JobStatus::Succeeded,
                        ..
                    })
                ));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A fleet of two on image `image` (surge 1, EC2's checks) and the
    /// logical ids of its members.
    fn fleet_of_two(image: &str) -> (DesiredState, [LogicalId; 2]) {
        fleet_of_two_surging(image, 1)
    }

    /// [`fleet_of_two`] with `max_surge` (and, without surge, one
    /// unavailable).
    fn fleet_of_two_surging(image: &str, max_surge: u32) -> (DesiredState, [LogicalId; 2]) {
        let mut d = DesiredState::empty(fid());
        let ids = [0u32, 1].map(|index| {
            let name = format!("web.instances[{index}]");
            let id = LogicalId::new(fid(), &name);
            d.insert(Resource {
                id,
                name,
                region: Region::new("us-west-2"),
                spec: Spec::Instance(InstanceSpec {
                    image_id: image.into(),
                    instance_type: "t3.micro".into(),
                    subnet: Ref::External("subnet-1".into()),
                    key_name: None,
                    user_data: None,
                    security_groups: [Ref::External("sg-1".into())].into(),
                    tags: Tags::new(),
                    max_age_secs: None,
                    fleet: Some(FleetMember {
                        fleet: "web".into(),
                        index,
                        count: 2,
                        max_surge,
                        max_unavailable: u32::from(max_surge == 0),
                        health_check: HealthCheck::Ec2Status,
                        health_grace_secs: 300,
                    }),
                    source_dest_check: true,
                }),
            })
            .unwrap();
            id
        });
        (d, ids)
    }

    /// Instance `cloud_id` of `image` serving `serves`, launched at
    /// `launched_at`, with `health`.
    fn machine(
        cloud_id: &str,
        image: &str,
        serves: LogicalId,
        launched_at: u64,
        health: Health,
    ) -> ObservedResource {
        ObservedResource {
            cloud_id: cloud_id.into(),
            region: Region::new("us-west-2"),
            spec: Spec::Instance(InstanceSpec {
                image_id: image.into(),
                instance_type: "t3.micro".into(),
                subnet: "subnet-1".into(),
                key_name: None,
                user_data: None,
                security_groups: ["sg-1".to_string()].into(),
                tags: [(OWNERSHIP_TAG.to_string(), serves.to_string())].into(),
                max_age_secs: None,
                fleet: None,
                source_dest_check: true,
            }),
            association_ids: Default::default(),
            pending: false,
            life: Some(InstanceLife {
                launched_at,
                state: InstanceState::Running,
                health,
                address: None,
            }),
        }
    }

    fn bind(p: &mut ProcessRecord, l: LogicalId, cloud_id: &str) {
        p.bindings.insert(
            l,
            Binding {
                resource: l,
                kind: ResourceKind::Instance,
                cloud_id: cloud_id.into(),
                since: 1,
                region: None,
            },
        );
    }

    #[test]
    fn a_failed_replacement_is_recorded_and_terminated_and_a_parked_fleet_launches_nothing() {
        let (d, [m0, m1]) = fleet_of_two("ami-2");
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        bind(&mut p, m0, "i-new");
        bind(&mut p, m1, "i-b");
        let o: ObservedState = [
            machine("i-old", "ami-1", m0, 0, Health::Ok),
            machine("i-new", "ami-2", m0, 1_000, Health::Impaired),
            machine("i-b", "ami-2", m1, 1_000, Health::Ok),
        ]
        .into_iter()
        .collect();
        match reconcile(&p, &d, &o, &BTreeSet::new(), 100_000, ticks(0, 0)) {
            Decision::Act { before, plan, .. } => {
                assert!(
                    before.contains(&Command::RolloutFailed {
                        fid: fid(),
                        resource: m0,
                        cloud_id: "i-new".into(),
                        name: "web.instances[0]".into(),
                    }),
                    "{before:?}"
                );
                let types: Vec<&str> = plan.requests.iter().map(|r| r.request_type()).collect();
                assert_eq!(types, ["aws.ec2.terminate_instances"]);
            }
            other => panic!("{other:?}"),
        }

        // Parked: member 0 is back on its old instance (ami-1), and no
        // replacement of the fleet starts.
        bind(&mut p, m0, "i-old");
        p.rollout_failures.insert(
            m0,
            RolloutFailure {
                count: rollout_failure::PARK_AFTER,
                last_at: 90_000,
                cloud_id: "i-new3".into(),
                name: "web.instances[0]".into(),
            },
        );
        let o: ObservedState = [
            machine("i-old", "ami-1", m0, 0, Health::Ok),
            machine("i-b", "ami-2", m1, 1_000, Health::Ok),
        ]
        .into_iter()
        .collect();
        let later = 100_000 + 3_600_000;
        match reconcile(&p, &d, &o, &BTreeSet::new(), later, ticks(0, 0)) {
            Decision::Steady { .. } => {}
            other => panic!("a parked fleet rolled: {other:?}"),
        }
        // Without the failures (an update or a rotation request cleared
        // them), the image change goes ahead.
        p.rollout_failures.clear();
        match reconcile(&p, &d, &o, &BTreeSet::new(), later, ticks(0, 0)) {
            Decision::Act { plan, .. } => {
                assert_eq!(plan.requests[0].request_type(), "aws.ec2.run_instances");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_surge_a_failed_replacement_is_recorded_on_a_quiet_pass_and_waits() {
        // Member 0's new instance never passed its checks (its grace of
        // 300 s is over); there is no old one. The failure (its third: the
        // one that parks) is recorded by a pass that changes nothing: the
        // actor alerts from any commit.
        let (d, [m0, m1]) = fleet_of_two_surging("ami-2", 0);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        bind(&mut p, m0, "i-new");
        bind(&mut p, m1, "i-b");
        p.rollout_failures.insert(
            m0,
            RolloutFailure {
                count: rollout_failure::PARK_AFTER - 1,
                last_at: 1_000,
                cloud_id: "i-before".into(),
                name: "web.instances[0]".into(),
            },
        );
        let o: ObservedState = [
            machine("i-new", "ami-2", m0, 2_000, Health::Initializing),
            machine("i-b", "ami-2", m1, 1_000, Health::Ok),
        ]
        .into_iter()
        .collect();
        let failed = Command::RolloutFailed {
            fid: fid(),
            resource: m0,
            cloud_id: "i-new".into(),
            name: "web.instances[0]".into(),
        };
        let now = 2_000 + 301_000;
        match reconcile(&p, &d, &o, &BTreeSet::new(), now, ticks(0, 0)) {
            Decision::Steady { commit, .. } => assert!(commit.contains(&failed), "{commit:?}"),
            other => panic!("{other:?}"),
        }
        // Recorded (and so parked): the instance stays, nothing launches.
        if let Some(f) = p.rollout_failures.get_mut(&m0) {
            f.count += 1;
            f.last_at = now;
            f.cloud_id = "i-new".into();
        }
        match reconcile(&p, &d, &o, &BTreeSet::new(), now + 3_600_000, ticks(0, 0)) {
            Decision::Steady { commit, .. } => assert!(!commit.contains(&failed)),
            other => panic!("a parked fleet without surge rolled: {other:?}"),
        }
    }

    /// The commands a decision that acts on nothing commits.
    fn quiet_commit(decision: Decision) -> Vec<Command> {
        match decision {
            Decision::Steady { commit, .. } | Decision::Wait { commit, .. } => commit,
            other => panic!("expected a quiet pass: {other:?}"),
        }
    }

    #[test]
    fn without_surge_a_replacement_the_conductor_cannot_reach_fails_and_is_retried_after_backoff() {
        // A fleet of two without surge, checked by a TCP connect to 8080
        // within 300 s. Member 0's instance i-new (launched at 2 s) never
        // answers; member 1's i-b does.
        let (mut d, [m0, m1]) = fleet_of_two_surging("ami-2", 0);
        for r in d.resources.values_mut() {
            if let Spec::Instance(InstanceSpec {
                fleet: Some(fm), ..
            }) = &mut r.spec
            {
                fm.health_check = HealthCheck::Tcp { port: 8080 };
            }
        }
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        bind(&mut p, m0, "i-new");
        bind(&mut p, m1, "i-b");
        let o: ObservedState = [
            machine("i-new", "ami-2", m0, 2_000, Health::Ok),
            machine("i-b", "ami-2", m1, 1_000, Health::Ok),
        ]
        .into_iter()
        .collect();
        let reached: BTreeSet<String> = ["i-b".to_string()].into();
        let failed = Command::RolloutFailed {
            fid: fid(),
            resource: m0,
            cloud_id: "i-new".into(),
            name: "web.instances[0]".into(),
        };
        let past_grace = 2_000 + 301_000;
        // Of the first build (no replacement launched it), it is never
        // condemned by the conductor's connect: it is only not ready.
        let first = reconcile(&p, &d, &o, &reached, past_grace, ticks(0, 0));
        assert!(!quiet_commit(first).contains(&failed));

        // Launched by member 0's replacement (recorded at 1.5 s), it is on
        // trial: past its grace unreached, it failed.
        p.replacements.insert(
            1,
            ReplacementRecord {
                id: 1,
                job: 10,
                at: 1_500,
                replaced: ReplacedInstance {
                    resource: m0,
                    cloud_id: "i-old".into(),
                    reason: ReplaceReason::Age,
                    detail: String::new(),
                },
            },
        );
        let trial = reconcile(&p, &d, &o, &reached, past_grace, ticks(0, 0));
        assert!(quiet_commit(trial).contains(&failed));
        // Reached in time, it passed.
        let answered: BTreeSet<String> = ["i-b".to_string(), "i-new".to_string()].into();
        let passed = reconcile(&p, &d, &o, &answered, past_grace, ticks(0, 0));
        assert!(!quiet_commit(passed).contains(&failed));
        // Past its trial it is established: never condemned by the connect.
        let later = past_grace + rollout_failure::TCP_TRIAL_MS + 1_000;
        let established = reconcile(&p, &d, &o, &reached, later, ticks(0, 0));
        assert!(!quiet_commit(established).contains(&failed));

        // Recorded: kept through its backoff (30 s), then terminated and
        // replaced.
        p.rollout_failures.insert(
            m0,
            RolloutFailure {
                count: 1,
                last_at: past_grace,
                cloud_id: "i-new".into(),
                name: "web.instances[0]".into(),
            },
        );
        let backing_off = reconcile(&p, &d, &o, &reached, past_grace + 10_000, ticks(0, 0));
        assert!(!quiet_commit(backing_off).contains(&failed));
        match reconcile(&p, &d, &o, &reached, past_grace + 31_000, ticks(0, 0)) {
            Decision::Act { plan, .. } => {
                let types: Vec<&str> = plan.requests.iter().map(|r| r.request_type()).collect();
                assert!(
                    types.contains(&"aws.ec2.terminate_instances")
                        && types.contains(&"aws.ec2.run_instances"),
                    "{types:?}"
                );
            }
            other => panic!("the failed replacement was not retried: {other:?}"),
        }
    }

    /// A NAT gateway (pending in the cloud) and a table routing through it.
    fn nat_and_route(d: &mut DesiredState) -> (LogicalId, LogicalId) {
        let nat = LogicalId::new(d.fid, "nat");
        let table = LogicalId::new(d.fid, "routes");
        let region = Region::new("us-west-2");
        d.insert(Resource {
            id: nat,
            name: "nat".into(),
            region: region.clone(),
            spec: Spec::NatGateway(NatGatewaySpec {
                subnet: Ref::External("subnet-1".into()),
                allocation: None,
                tags: Tags::new(),
            }),
        })
        .unwrap();
        d.insert(Resource {
            id: table,
            name: "routes".into(),
            region,
            spec: Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: Ref::External("vpc-1".into()),
                routes: [Route {
                    destination: canon_model::IpCidr::V4(Ipv4Cidr::ANY),
                    target: Ref::Managed(nat),
                }]
                .into_iter()
                .collect(),
                associations: Default::default(),
                tags: Tags::new(),
            }),
        })
        .unwrap();
        (nat, table)
    }

    /// The cloud with the gateway still pending and the table without its
    /// route.
    fn pending_gateway(d: &DesiredState, p: &mut ProcessRecord) -> ObservedState {
        let mut ready = d.clone();
        let (nat, table) = (
            LogicalId::new(d.fid, "nat"),
            LogicalId::new(d.fid, "routes"),
        );
        if let Some(Spec::RouteTable(t)) = ready.resources.get_mut(&table).map(|r| &mut r.spec) {
            t.routes.clear();
        }
        let mut o = applied(&ready, p);
        let cid = p.bindings[&nat].cloud_id.clone();
        let mut r = o.get(&cid).unwrap().clone();
        r.pending = true;
        o.insert(r);
        o
    }

    #[test]
    fn a_job_waits_for_a_pending_gateway_without_finishing() {
        let mut d = DesiredState::empty(fid());
        nat_and_route(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::Run, JobStatus::InProgress)],
        );
        let o = pending_gateway(&d, &mut p);
        let why = match reconcile(&p, &d, &o, &BTreeSet::new(), 20, ticks(0, 0)) {
            Decision::Wait { commit, why } => {
                assert_eq!(why, "waiting for nat to become available (1 change(s))");
                assert_eq!(
                    commit,
                    vec![Command::JobProgressed {
                        fid: fid(),
                        job: 10,
                        ticks: 0,
                        message: Some(why.clone()),
                        opens_pass: false,
                        planned: Vec::new(),
                    }]
                );
                why
            }
            other => panic!("{other:?}"),
        };
        // Said once: the next pass that still waits writes nothing.
        if let Some(j) = p.jobs.get_mut(&10) {
            j.message = why;
        }
        match reconcile(&p, &d, &o, &BTreeSet::new(), 30, ticks(0, 0)) {
            Decision::Wait { commit, .. } => assert!(commit.is_empty(), "{commit:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enforcement_that_can_only_wait_opens_no_drift() {
        let mut d = DesiredState::empty(fid());
        nat_and_route(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        let o = pending_gateway(&d, &mut p);
        match reconcile(&p, &d, &o, &BTreeSet::new(), 20, ticks(0, 0)) {
            Decision::Wait { commit, .. } => assert!(commit.is_empty(), "{commit:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_job_parks_the_process_until_it_changes() {
        let mut d = DesiredState::empty(fid());
        group(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::Run, JobStatus::Failed)],
        );
        assert!(matches!(
            reconcile(
                &p,
                &d,
                &ObservedState::new(),
                &BTreeSet::new(),
                20,
                ticks(0, 0)
            ),
            Decision::Sleep { .. }
        ));
        // An update (newer than the failure) unparks it.
        p.updated_at = 11;
        p.jobs
            .insert(20, job(20, JobKind::Update, JobStatus::InProgress));
        assert!(matches!(
            reconcile(
                &p,
                &d,
                &ObservedState::new(),
                &BTreeSet::new(),
                30,
                ticks(0, 0)
            ),
            Decision::Act { job: 20, .. }
        ));
    }

    #[test]
    fn suspended_and_killed_processes_sleep() {
        let d = DesiredState::empty(fid());
        for state in [ProcessState::Suspended, ProcessState::Killed] {
            let p = record(state, vec![job(1, JobKind::Run, JobStatus::Succeeded)]);
            assert!(matches!(
                reconcile(
                    &p,
                    &d,
                    &ObservedState::new(),
                    &BTreeSet::new(),
                    5,
                    ticks(0, 0)
                ),
                Decision::Sleep { .. }
            ));
        }
    }

    #[test]
    fn a_finished_kill_clears_bindings_and_marks_the_process_killed() {
        let mut d = DesiredState::empty(fid());
        let sg = group(&mut d);
        let mut p = record(
            ProcessState::Killing,
            vec![job(10, JobKind::Kill, JobStatus::InProgress)],
        );
        // Bound, but already gone from the cloud.
        let _ = applied(&d, &mut p);
        match reconcile(
            &p,
            &d,
            &ObservedState::new(),
            &BTreeSet::new(),
            20,
            ticks(0, 0),
        ) {
            Decision::Steady { commit, .. } => {
                assert_eq!(commit[0], Command::BindingCleared { resource: sg });
                assert!(commit.contains(&Command::ProcessStateChanged {
                    fid: fid(),
                    state: ProcessState::Killed
                }));
                assert!(matches!(
                    commit.last(),
                    Some(Command::JobFinished {
                        job: 10,
                        status: JobStatus::Succeeded,
                        ..
                    })
                ));
            }
            other => panic!("{other:?}"),
        }
    }
}
