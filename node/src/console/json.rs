//! The console's JSON: the API's replies (protobuf) as the page reads
//! them. Field names follow the CLI's `--json` output where both exist.

use canon_proto::canon::api::v1 as pb;
use serde_json::{json, Value};

pub fn summary(p: &pb::ProcessSummary) -> Value {
    json!({
        "alias": p.alias, "fid": p.fid, "account": p.account, "state": p.state,
        "created": p.created_ms, "updated": p.updated_ms, "last_message": p.last_message,
        "group": p.group, "tick_interval_ms": p.tick_interval_ms, "open_drift": p.open_drift,
    })
}

fn job_status(j: &pb::JobView) -> &'static str {
    match pb::JobStatus::try_from(j.status) {
        Ok(pb::JobStatus::InProgress) => "IN PROGRESS",
        Ok(pb::JobStatus::Succeeded) => "SUCCEEDED",
        Ok(pb::JobStatus::Failed) => "FAILED",
        _ => "",
    }
}

pub fn job(j: &pb::JobView) -> Value {
    json!({
        "id": j.id, "kind": j.kind, "status": job_status(j), "started": j.started_ms,
        "updated": j.updated_ms, "ticks": j.ticks, "message": j.message,
    })
}

/// A drift record; `heal_ms` is how long it stood (none while open).
pub fn drift(d: &pb::DriftView) -> Value {
    let healed = (d.healed_ms != 0).then_some(d.healed_ms);
    json!({
        "id": d.id, "logical_id": d.logical_id, "kind": d.kind, "cloud_id": d.cloud_id,
        "property": d.property, "declared": d.declared, "observed": d.observed,
        "detected": d.detected_ms, "healed": healed,
        "heal_ms": healed.map(|h| h.saturating_sub(d.detected_ms)),
        "detected_by": d.detected_by,
        "changed_by": (!d.changed_by.is_empty()).then_some(&d.changed_by),
        "event": (d.event_ms != 0).then_some(d.event_ms),
        // From the cloud's change to the heal, when an event told of it.
        "event_to_heal_ms": healed.filter(|_| d.event_ms != 0).map(|h| h.saturating_sub(d.event_ms)),
    })
}

/// One process: its row, each resource declared against observed, jobs
/// newest first, drift newest first.
pub fn process(status: &pb::StatusReply, history: &pb::HistoryReply) -> Value {
    let declared: Value = serde_json::from_str(&status.desired_json).unwrap_or(Value::Null);
    let resources: Vec<Value> = status
        .resources
        .iter()
        .map(|r| {
            let observed: Value = serde_json::from_str(&r.observed_json).unwrap_or(Value::Null);
            json!({
                "name": r.name, "logical_id": r.logical_id, "kind": r.kind, "region": r.region,
                "cloud_id": r.cloud_id,
                "declared": declared["resources"][&r.logical_id]["spec"],
                "observed": observed.get("spec").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut drift: Vec<&pb::DriftView> = history.drift.iter().collect();
    drift.sort_by_key(|d| std::cmp::Reverse((d.detected_ms, d.id)));
    json!({
        "process": status.processes.first().map(summary),
        "resources": resources,
        "observe_error": status.observe_error,
        "jobs": history.jobs.iter().map(job).collect::<Vec<_>>(),
        "drift": drift.into_iter().map(self::drift).collect::<Vec<_>>(),
    })
}

pub fn cluster(c: &pb::ClusterStatusReply) -> Value {
    let members: Vec<Value> = c
        .members
        .iter()
        .map(
            |m| json!({"node": m.node, "addr": m.addr, "reachable": m.reachable, "error": m.error}),
        )
        .collect();
    let groups: Vec<Value> = c
        .groups
        .iter()
        .map(|g| {
            let lag = g.followers.iter().map(|f| f.lag).max();
            json!({
                "group": g.group, "leader": g.leader, "term": g.term, "voters": g.voters,
                "learners": g.learners, "last_log_index": g.last_log_index,
                "applied_index": g.applied_index, "lag_max": lag,
            })
        })
        .collect();
    json!({
        "node": c.node, "cluster_id": c.cluster_id, "shard_count": c.shard_count,
        "members": members, "groups": groups,
    })
}

/// An event of the stream: what happened, to which process.
pub fn event(e: &pb::Event) -> Value {
    json!({
        "at": e.at_ms, "event": e.kind, "alias": e.alias, "fid": e.fid,
        "job": e.job.as_ref().map(job), "drift": e.drift.as_ref().map(drift),
        "state": e.state, "lost": e.lost,
    })
}
