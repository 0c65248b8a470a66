//! Drift records across passes. A difference is recorded once: a pass that
//! finds it again while its event is still open (enforcement off, or a
//! heal cut short) reuses that event instead of opening another, so a
//! detect-only process does not open a new event every tick, and the pass
//! that finally heals it closes the event it was first recorded under.
//! With enforcement off (`canon property ALIAS enforcement off`) a pass
//! records and alerts drift but heals nothing ([`detect`]).

use canon_model::{DetectedBy, Difference, DriftEvent, Plan, UnixMillis};
use canon_raft::state::ProcessRecord;
use canon_raft::Command;

use super::{system_job, Decision, IdSource, TickState};

/// The drift events of one pass: every difference's event id, and the
/// `DriftOpened` commands of those not recorded before.
pub(super) struct Recorded {
    pub ids: Vec<u64>,
    pub opened: Vec<Command>,
}

/// True if open event `e` records difference `d`.
fn same(e: &DriftEvent, d: &Difference) -> bool {
    e.resource == d.resource
        && e.property == d.property
        && e.declared == d.declared
        && e.observed == d.observed
}

/// Matches each difference to an open event of `process` that records it
/// (each event at most once), and opens an event for the rest.
pub(super) fn record(
    process: &ProcessRecord,
    differences: &[Difference],
    ids: &mut IdSource,
) -> Recorded {
    let mut open: Vec<&DriftEvent> = process
        .drift
        .values()
        .filter(|e| e.healed_at.is_none())
        .collect();
    let mut out = Recorded {
        ids: Vec::with_capacity(differences.len()),
        opened: Vec::new(),
    };
    for d in differences {
        if let Some(at) = open.iter().position(|e| same(e, d)) {
            out.ids.push(open.swap_remove(at).id);
            continue;
        }
        let id = ids.drift();
        out.ids.push(id);
        out.opened.push(Command::DriftOpened {
            fid: process.fid,
            drift: id,
            resource: d.resource,
            kind: d.kind,
            cloud_id: d.cloud_id.clone(),
            property: d.property.clone(),
            declared: d.declared.clone(),
            observed: d.observed.clone(),
            violates: Vec::new(),
            // A pass that looks because an event asked finds it by event.
            detected_by: process
                .suspected
                .map_or(DetectedBy::Tick, |at| DetectedBy::Event {
                    at,
                    by: process.suspected_by.clone(),
                }),
        });
    }
    out
}

/// A pass that finds the cloud as declared closes the events still open:
/// drift that was only detected and has since gone (put back by hand, or
/// healed by a pass whose closing commit was lost).
pub(super) fn close_gone(process: &ProcessRecord) -> Vec<Command> {
    process
        .drift
        .values()
        .filter(|e| e.healed_at.is_none())
        .map(|e| Command::DriftHealed {
            fid: process.fid,
            drift: e.id,
        })
        .collect()
}

/// Enforcement off: record the differences not recorded yet (the actor
/// alerts them), count the tick on the SYSTEM job, and heal nothing. The
/// job says so whenever new drift is recorded.
pub(super) fn detect(
    process: &ProcessRecord,
    plan: &Plan,
    mut commit: Vec<Command>,
    ids: &mut IdSource,
    now: UnixMillis,
    ticks: TickState,
) -> Decision {
    let fid = process.fid;
    let recorded = record(process, &plan.differences, ids);
    let new = !recorded.opened.is_empty();
    commit.extend(recorded.opened);
    let (job, mut flushed) = match system_job(process) {
        Some(job) => (job, false),
        None => {
            let job = ids.job();
            commit.push(Command::JobStarted {
                fid,
                job,
                kind: canon_model::JobKind::System,
                message: String::new(),
            });
            (job, true)
        }
    };
    let due = now.saturating_sub(ticks.last_flush) >= ticks.flush_every;
    if new || (!flushed && due) {
        commit.push(Command::JobProgressed {
            fid,
            job,
            ticks: ticks.unflushed_ticks + 1,
            message: new.then(|| {
                format!(
                    "enforcement off: {} difference(s) detected, not healed",
                    plan.differences.len()
                )
            }),
            opens_pass: false,
            planned: Vec::new(),
        });
        flushed = true;
    }
    Decision::Detected { commit, flushed }
}

#[cfg(test)]
mod tests {
    use canon_model::*;
    use canon_raft::state::ProcessRecord;
    use canon_raft::Command;

    use super::super::tests::{applied, fid, group, job, record, ticks};
    use super::super::{reconcile, Decision};

    /// Sam's group with a rogue all-traffic rule, on a Running process
    /// with a SYSTEM job; the process with enforcement `on`.
    fn drifted(on: bool) -> (ProcessRecord, DesiredState, ObservedState) {
        let mut d = DesiredState::empty(fid());
        let sg = group(&mut d);
        let mut p = record(
            ProcessState::Running,
            vec![job(10, JobKind::System, JobStatus::InProgress)],
        );
        p.properties = p.properties.with(ProcessProperty::Enforcement(on));
        let mut o = applied(&d, &mut p);
        let cid = p.bindings[&sg].cloud_id.clone();
        let mut r = o.get(&cid).unwrap().clone();
        if let Spec::SecurityGroup(g) = &mut r.spec {
            g.ingress
                .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
        }
        o.insert(r);
        (p, d, o)
    }

    /// Applies the `DriftOpened` of `commit` to `p`, as the log would.
    fn open_in(p: &mut ProcessRecord, commit: &[Command]) {
        for c in commit {
            if let Command::DriftOpened {
                fid,
                drift,
                resource,
                kind,
                cloud_id,
                property,
                declared,
                observed,
                violates,
                detected_by,
            } = c
            {
                p.drift.insert(
                    *drift,
                    DriftEvent {
                        id: *drift,
                        fid: *fid,
                        resource: *resource,
                        kind: *kind,
                        cloud_id: cloud_id.clone(),
                        property: property.clone(),
                        declared: declared.clone(),
                        observed: observed.clone(),
                        detected_at: 1,
                        healed_at: None,
                        violates: violates.clone(),
                        detected_by: detected_by.clone(),
                    },
                );
            }
        }
    }

    fn opened(commit: &[Command]) -> Vec<u64> {
        commit
            .iter()
            .filter_map(|c| match c {
                Command::DriftOpened { drift, .. } => Some(*drift),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn enforcement_off_records_drift_once_and_heals_nothing() {
        let (mut p, d, o) = drifted(false);
        let first = match reconcile(&p, &d, &o, &Default::default(), 50_000, ticks(3, 40_000)) {
            Decision::Detected { commit, flushed } => {
                assert!(flushed, "new drift is written at once");
                assert_eq!(opened(&commit).len(), 1, "{commit:?}");
                assert!(commit.iter().any(|c| matches!(c,
                    Command::JobProgressed { job: 10, message: Some(m), .. }
                        if m.contains("enforcement off") && m.contains("not healed"))));
                commit
            }
            other => panic!("enforcement off must not act: {other:?}"),
        };
        open_in(&mut p, &first);
        // The next pass finds the same drift, already recorded: nothing
        // new, no request, no write until the flush is due.
        match reconcile(&p, &d, &o, &Default::default(), 51_000, ticks(0, 50_000)) {
            Decision::Detected { commit, flushed } => {
                assert!(commit.is_empty() && !flushed, "{commit:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn turning_enforcement_back_on_heals_the_drift_it_recorded() {
        let (mut p, d, o) = drifted(false);
        let Decision::Detected { commit, .. } =
            reconcile(&p, &d, &o, &Default::default(), 50_000, ticks(0, 0))
        else {
            panic!("detect-only expected");
        };
        open_in(&mut p, &commit);
        let recorded = opened(&commit)[0];
        p.properties = p.properties.with(ProcessProperty::Enforcement(true));
        match reconcile(&p, &d, &o, &Default::default(), 60_000, ticks(0, 50_000)) {
            Decision::Act {
                before,
                plan,
                after,
                drift,
                ..
            } => {
                assert_eq!(plan.requests.len(), 1, "the rogue rule is revoked");
                assert!(opened(&before).is_empty(), "recorded once: {before:?}");
                assert_eq!(drift, vec![recorded]);
                assert!(after.contains(&Command::DriftHealed {
                    fid: fid(),
                    drift: recorded
                }));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn drift_recorded_but_gone_is_closed_once_the_cloud_matches() {
        let (mut p, d, o) = drifted(false);
        let Decision::Detected { commit, .. } =
            reconcile(&p, &d, &o, &Default::default(), 50_000, ticks(0, 0))
        else {
            panic!("detect-only expected");
        };
        open_in(&mut p, &commit);
        let recorded = opened(&commit)[0];
        // Someone put the group back by hand.
        let mut clean = p.clone();
        clean.bindings.clear();
        let o = applied(&d, &mut clean);
        match reconcile(&p, &d, &o, &Default::default(), 60_000, ticks(0, 50_000)) {
            Decision::Steady { commit, .. } => {
                assert!(commit.contains(&Command::DriftHealed {
                    fid: fid(),
                    drift: recorded
                }));
            }
            other => panic!("{other:?}"),
        }
    }
}
