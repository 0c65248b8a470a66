//! The event stream (`Canon.Events`): what changed, as it changes. Each
//! subscriber polls its node's replica (stale reads: cheap, and at most a
//! moment behind) and reports the differences between one look and the
//! next; quiet enforcement passes are not events.

use std::collections::BTreeMap;
use std::time::Duration;

use canon_model::{Fid, JobStatus, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{group_of_alias, shard::group_of_shard, Consistency, RaftNode};
use tokio::sync::mpsc;

/// How often a subscriber looks.
const POLL: Duration = Duration::from_millis(300);

/// What a subscriber remembers of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    state: ProcessState,
    jobs: BTreeMap<u64, JobStatus>,
    drift: BTreeMap<u64, bool>,
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
    }
}

fn job_view(j: &canon_model::JobRecord) -> pb::JobView {
    pb::JobView {
        id: j.id,
        kind: j.kind.to_string(),
        status: j.status.to_string(),
        started_ms: j.started,
        updated_ms: j.updated,
        ticks: j.ticks,
        message: j.message.clone(),
    }
}

/// The drift record as the API shows it.
pub fn drift_view(d: &canon_model::DriftEvent) -> pb::DriftView {
    pb::DriftView {
        id: d.id,
        logical_id: d.resource.to_string(),
        kind: d.kind.to_string(),
        cloud_id: d.cloud_id.clone().unwrap_or_default(),
        property: d.property.clone(),
        declared: d.declared.clone().unwrap_or_default(),
        observed: d.observed.clone().unwrap_or_default(),
        detected_ms: d.detected_at,
        healed_ms: d.healed_at.unwrap_or(0),
    }
}

/// The events between `before` (None: the process is new) and `p`.
fn diff(before: Option<&Seen>, p: &ProcessRecord, now: u64) -> Vec<pb::Event> {
    let base = |kind: &str| pb::Event {
        at_ms: now,
        kind: kind.to_string(),
        alias: p.alias.clone(),
        fid: p.fid.to_string(),
        job: None,
        drift: None,
        state: String::new(),
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
    out
}

/// Streams events into `tx` until the receiver is gone or the node stops.
pub async fn follow(
    node: RaftNode,
    alias: String,
    tx: mpsc::Sender<Result<pb::Event, tonic::Status>>,
) {
    let shards = node.shard_count();
    let groups: Vec<u64> = if alias.is_empty() {
        (0..shards).map(group_of_shard).collect()
    } else {
        vec![group_of_alias(&alias, shards)]
    };
    let mut known: Option<BTreeMap<Fid, Seen>> = None;
    loop {
        let mut now_seen = BTreeMap::new();
        let mut events = Vec::new();
        let now = crate::now_ms();
        for g in &groups {
            let procs = node
                .read(*g, Consistency::Stale, |s| {
                    s.processes
                        .values()
                        .filter(|p| alias.is_empty() || p.alias == alias)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .await;
            let Ok(procs) = procs else {
                // The node is stopping: end the stream.
                return;
            };
            for p in procs {
                if let Some(k) = &known {
                    events.extend(diff(k.get(&p.fid), &p, now));
                }
                now_seen.insert(p.fid, seen(&p));
            }
        }
        known = Some(now_seen);
        for e in events {
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tx.closed() => return,
        }
    }
}
