//! Events as differences: what a process's record shows now that it did
//! not the last time it was read (a new state, a job started or finished,
//! drift opened or healed). Quiet enforcement passes change nothing here,
//! so they are not events.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{Fid, JobStatus, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::CanonState;

use crate::views::{drift_view, job_view, replacement_view};

/// What was last seen of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: ProcessState,
    jobs: BTreeMap<u64, JobStatus>,
    drift: BTreeMap<u64, bool>,
    replacements: BTreeSet<u64>,
}

fn seen(p: &ProcessRecord) -> Seen {
    Seen {
        state: p.state,
        jobs: p.jobs.iter().map(|(id, j)| (*id, j.status)).collect(),
        drift: p
            .drift
            .iter()
            .map(|(id, d)| (*id, d.healed_at.is_some()))
            .collect(),
        replacements: p.replacements.keys().copied().collect(),
    }
}

/// The events between `before` (None: the process is new) and `p`.
fn diff(before: Option<&Seen>, p: &ProcessRecord, now: u64) -> Vec<pb::Event> {
    let base = |kind: &str| pb::Event {
        at_ms: now,
        kind: kind.to_string(),
        alias: p.alias.clone(),
        fid: p.fid.to_string(),
        ..pb::Event::default()
    };
    let mut out = Vec::new();
    if before.map(|b| b.state) != Some(p.state) {
        out.push(pb::Event {
            state: p.state.to_string(),
            ..base("process.state")
        });
    }
    for (id, j) in &p.jobs {
        let old = before.and_then(|b| b.jobs.get(id));
        if old.is_none() {
            out.push(pb::Event {
                job: Some(job_view(j)),
                ..base("job.started")
            });
        }
        if j.status.is_finished() && old.is_none_or(|s| !s.is_finished()) {
            out.push(pb::Event {
                job: Some(job_view(j)),
                ..base("job.finished")
            });
        }
    }
    for (id, d) in &p.drift {
        let old = before.and_then(|b| b.drift.get(id));
        if old.is_none() {
            out.push(pb::Event {
                drift: Some(drift_view(d)),
                ..base("drift.opened")
            });
        }
        if d.healed_at.is_some() && old != Some(&true) {
            out.push(pb::Event {
                drift: Some(drift_view(d)),
                ..base("drift.healed")
            });
        }
    }
    for (id, r) in &p.replacements {
        if before.is_none_or(|b| !b.replacements.contains(id)) {
            out.push(pb::Event {
                replacement: Some(replacement_view(r)),
                ..base("instance.replaced")
            });
        }
    }
    out
}

/// One event with the account of the process it is about (whom a
/// viewer's policy lets see it depends on both).
#[derive(Debug, Clone)]
pub struct Noted {
    pub account: String,
    pub event: pb::Event,
}

/// What one group's watcher has seen of each of its processes.
#[derive(Debug, Default)]
pub struct Known(BTreeMap<Fid, Seen>);

impl Known {
    /// Compares `fids` (every process of the group if `None`) in `state`
    /// with what was seen; returns the events (none when `report` is
    /// false: the first read only learns) and remembers what it saw.
    pub fn changes(
        &mut self,
        state: &CanonState,
        fids: Option<&BTreeSet<Fid>>,
        report: bool,
    ) -> Vec<Noted> {
        let now = crate::now_ms();
        let mut out = Vec::new();
        let mut visit = |p: &ProcessRecord, known: &mut BTreeMap<Fid, Seen>| {
            if report {
                out.extend(
                    diff(known.get(&p.fid), p, now)
                        .into_iter()
                        .map(|event| Noted {
                            account: p.account.clone(),
                            event,
                        }),
                );
            }
            known.insert(p.fid, seen(p));
        };
        match fids {
            Some(fids) => {
                for fid in fids {
                    match state.processes.get(fid) {
                        Some(p) => visit(p, &mut self.0),
                        None => {
                            self.0.remove(fid);
                        }
                    }
                }
            }
            None => {
                self.0.retain(|fid, _| state.processes.contains_key(fid));
                for p in state.processes.values() {
                    visit(p, &mut self.0);
                }
            }
        }
        out
    }
}
