//! The reads (Status and History): every process's summary row (all at
//! once here; a page at a time in `status_pages`), or one
//! process with each resource it declares or still has bound and what the
//! cloud shows of it; a process's jobs and drift events. Answered from the
//! owning shard with linearizable reads, after the read token is checked.

use canon_model::{DesiredState, ObservedState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{authorise, Consistency};
use canon_trust::{AccessRequest, Action};
use tonic::Status;

use super::grpc_status::{node_status, not_found};
use super::read_auth::Reader;
use super::Api;
use crate::views::{drift_view, folded_view, job_view, replacement_view, summary};

impl Api {
    /// Status for `reader` (none: an unsigned read, where those pass):
    /// one process needs `process.status` on it; the list shows only the
    /// processes the reader may see.
    pub(super) async fn handle_status(
        &self,
        reader: Option<&Reader>,
        req: pb::StatusRequest,
    ) -> Result<pb::StatusReply, Status> {
        if req.alias.is_empty() && req.page_size > 0 {
            return self.status_page(reader, &req).await;
        }
        if req.alias.is_empty() {
            // Every row at once: what clients before paging ask for.
            let mut processes = self.every_summary(req.all).await?;
            self.visible_to(reader, &mut processes).await?;
            return Ok(pb::StatusReply {
                processes,
                ..Default::default()
            });
        }
        let p = self
            .process_or_gone(&req.alias)
            .await?
            .ok_or_else(|| not_found(&req.alias))?;
        self.may_read(reader, Action::ProcessStatus, &p).await?;
        let desired = self.desired(&p.composition, p.fid)?;
        let (observed, observe_error) = match self.observe_bound(&p, &desired).await {
            Ok(o) => (o, String::new()),
            Err(e) => (ObservedState::new(), e.message().to_string()),
        };
        Ok(pb::StatusReply {
            processes: vec![summary(&p, self.node.shard_count())],
            resources: resource_views(&p, &desired, &observed),
            observe_error,
            // A declaration always serialises (plain data); were it not
            // to, the graph would say it has nothing to draw.
            desired_json: serde_json::to_string(&desired).unwrap_or_default(),
            next_page_token: String::new(),
        })
    }

    /// `action` on process `p`, for a signed reader.
    async fn may_read(
        &self,
        reader: Option<&Reader>,
        action: Action,
        p: &ProcessRecord,
    ) -> Result<(), Status> {
        match reader {
            Some(by) => {
                self.authorise(by.asker(), action, Some(&p.account), Some(&p.alias))
                    .await?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Keeps the rows a signed, non-root reader may `process.status`.
    async fn visible_to(
        &self,
        reader: Option<&Reader>,
        rows: &mut Vec<pb::ProcessSummary>,
    ) -> Result<(), Status> {
        self.keep_visible(reader, rows, |row| (&row.account, &row.alias))
            .await
    }

    /// Keeps the items (processes, by `account_alias`) a signed, non-root
    /// reader may `process.status`.
    pub(super) async fn keep_visible<T>(
        &self,
        reader: Option<&Reader>,
        items: &mut Vec<T>,
        account_alias: impl Fn(&T) -> (&str, &str),
    ) -> Result<(), Status> {
        let Some(by) = reader.map(|r| &r.principal).filter(|p| !p.root) else {
            return Ok(());
        };
        let policy = self.policy(true).await?;
        items.retain(|item| {
            let (account, alias) = account_alias(item);
            let request = AccessRequest {
                action: Action::ProcessStatus,
                account: Some(account),
                alias: Some(alias),
            };
            authorise(&policy.document, by, &request).is_ok()
        });
        Ok(())
    }

    /// Every process's row (live ones unless `all`), newest first.
    pub(super) async fn every_summary(&self, all: bool) -> Result<Vec<pb::ProcessSummary>, Status> {
        let shards = self.node.shard_count();
        let mut rows = self
            .each_process(|p| (all || p.state.is_live()).then(|| summary(p, shards)))
            .await?;
        rows.sort_by(|a, b| (b.created_ms, &b.alias).cmp(&(a.created_ms, &a.alias)));
        Ok(rows)
    }

    /// `pick` of every process of every shard (linearizable reads), where
    /// it picks something.
    pub(super) async fn each_process<T>(
        &self,
        pick: impl Fn(&ProcessRecord) -> Option<T>,
    ) -> Result<Vec<T>, Status> {
        let mut out = Vec::new();
        for shard in 0..self.node.shard_count() {
            let group = canon_raft::shard::group_of_shard(shard);
            let mut picked = self
                .node
                .read(group, Consistency::Linearizable, |s| {
                    s.processes
                        .values()
                        .filter_map(|p| pick(p))
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(node_status)?;
            out.append(&mut picked);
        }
        Ok(out)
    }

    pub(super) async fn handle_history(
        &self,
        reader: Option<&Reader>,
        req: pb::HistoryRequest,
    ) -> Result<pb::HistoryReply, Status> {
        let p = self
            .process_or_gone(&req.alias)
            .await?
            .ok_or_else(|| not_found(&req.alias))?;
        self.may_read(reader, Action::ProcessHistory, &p).await?;
        let in_range = |started: u64, updated: u64| {
            (req.start_ms == 0 || updated >= req.start_ms)
                && (req.end_ms == 0 || started <= req.end_ms)
        };
        let mut jobs: Vec<pb::JobView> = p
            .jobs
            .values()
            .filter(|j| in_range(j.started, j.updated))
            .map(job_view)
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse((j.started_ms, j.id)));
        let drift = p
            .drift
            .values()
            .filter(|d| in_range(d.detected_at, d.healed_at.unwrap_or(d.detected_at)))
            .map(drift_view)
            .collect();
        let replacements = p
            .replacements
            .values()
            .filter(|r| in_range(r.at, r.at))
            .map(replacement_view)
            .collect();
        Ok(pb::HistoryReply {
            process: Some(summary(&p, self.node.shard_count())),
            jobs,
            drift,
            folded: Some(folded_view(&p.folded)),
            replacements,
        })
    }
}

/// The observed resource `cloud_id` as JSON; empty if the cloud lacks it.
fn observed_json(observed: &ObservedState, cloud_id: &str) -> String {
    observed
        .get(cloud_id)
        .and_then(|o| serde_json::to_string(o).ok())
        .unwrap_or_default()
}

/// Each resource `p` declares, then each it has bound but no longer
/// declares (being deleted), with what the cloud shows of it.
fn resource_views(
    p: &ProcessRecord,
    desired: &DesiredState,
    observed: &ObservedState,
) -> Vec<pb::ResourceView> {
    let mut resources = Vec::new();
    for r in desired.resources.values() {
        let cloud_id = p
            .bindings
            .get(&r.id)
            .map(|b| b.cloud_id.clone())
            .unwrap_or_default();
        resources.push(pb::ResourceView {
            name: r.name.clone(),
            logical_id: r.id.to_string(),
            kind: r.kind().to_string(),
            region: r.region.as_str().to_string(),
            observed_json: observed_json(observed, &cloud_id),
            cloud_id,
        });
    }
    for (id, b) in &p.bindings {
        if !desired.resources.contains_key(id) {
            resources.push(pb::ResourceView {
                name: String::new(),
                logical_id: id.to_string(),
                kind: b.kind.to_string(),
                region: String::new(),
                cloud_id: b.cloud_id.clone(),
                observed_json: observed_json(observed, &b.cloud_id),
            });
        }
    }
    resources
}
