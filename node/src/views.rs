//! How the replicated records look on the wire: a process's summary row, a
//! job and a drift event. The API's reads and replies and the event stream
//! both show them, so each is written once here.

use canon_model::{DriftEvent, JobKind, JobRecord, JobStatus, ReplacementRecord};
use canon_proto::canon::api::v1 as pb;
use canon_raft::group_of_alias;
use canon_raft::state::{FoldedHistory, ProcessRecord};

/// The summary row of a process (`canon status`).
pub fn summary(p: &ProcessRecord, shards: u32) -> pb::ProcessSummary {
    let newest = p
        .jobs
        .values()
        .filter(|j| j.kind != JobKind::System || j.status == JobStatus::Failed)
        .max_by_key(|j| (j.started, j.id));
    let last_message = match newest {
        None => String::new(),
        Some(j) => match j.status {
            JobStatus::Succeeded => "SUCCESS".to_string(),
            JobStatus::InProgress => format!("{} IN PROGRESS", j.kind),
            JobStatus::Failed => format!("FAILED: {}", j.message),
        },
    };
    pb::ProcessSummary {
        fid: p.fid.to_string(),
        alias: p.alias.clone(),
        account: p.account.clone(),
        state: p.state.to_string(),
        created_ms: p.created_at,
        updated_ms: p.updated_at,
        last_message,
        source_hash: p.composition.source_hash.clone(),
        group: group_of_alias(&p.alias, shards),
        tick_interval_ms: p.tick_interval_ms.unwrap_or(0),
        open_drift: p.drift.values().filter(|d| d.healed_at.is_none()).count() as u64,
        enforcement_off: !p.properties.enforcement,
        locked: p.properties.locked,
        rotations: p
            .rotations
            .iter()
            .map(|r| pb::RotationView {
                requested_ms: r.before,
                scope: r.scope.to_string(),
            })
            .collect(),
        rollout_parked: p
            .rollout_failures
            .values()
            .filter(|f| f.parked())
            .map(|f| f.parked_message())
            .collect(),
    }
}

/// A job status as the API carries it.
pub fn job_status(s: JobStatus) -> pb::JobStatus {
    match s {
        JobStatus::InProgress => pb::JobStatus::InProgress,
        JobStatus::Succeeded => pb::JobStatus::Succeeded,
        JobStatus::Failed => pb::JobStatus::Failed,
    }
}

/// A job as the API shows it (history and events).
pub fn job_view(j: &JobRecord) -> pb::JobView {
    pb::JobView {
        id: j.id,
        kind: j.kind.to_string(),
        status: job_status(j.status).into(),
        started_ms: j.started,
        updated_ms: j.updated,
        ticks: j.ticks,
        message: j.message.clone(),
    }
}

/// A drift record as the API shows it.
pub fn drift_view(d: &DriftEvent) -> pb::DriftView {
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
        violates: d.violates.clone(),
        detected_by: d.detected_by.name().to_string(),
        event_ms: d.detected_by.event_at().unwrap_or(0),
        changed_by: d.detected_by.changed_by().unwrap_or_default().to_string(),
    }
}

/// An instance replacement as the API shows it (history and events).
pub fn replacement_view(r: &ReplacementRecord) -> pb::ReplacementView {
    pb::ReplacementView {
        id: r.id,
        logical_id: r.replaced.resource.to_string(),
        cloud_id: r.replaced.cloud_id.clone(),
        reason: r.replaced.reason.to_string(),
        detail: r.replaced.detail.clone(),
        job: r.job,
        at_ms: r.at,
    }
}

/// What retention folded, as the API shows it.
pub fn folded_view(f: &FoldedHistory) -> pb::FoldedHistory {
    pb::FoldedHistory {
        jobs: f.jobs,
        jobs_failed: f.jobs_failed,
        drift: f.drift,
        through_ms: f.through_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_status_has_its_own_wire_value() {
        let wire: Vec<pb::JobStatus> = [
            JobStatus::InProgress,
            JobStatus::Succeeded,
            JobStatus::Failed,
        ]
        .into_iter()
        .map(job_status)
        .collect();
        assert_eq!(
            wire,
            [
                pb::JobStatus::InProgress,
                pb::JobStatus::Succeeded,
                pb::JobStatus::Failed
            ]
        );
    }
}
