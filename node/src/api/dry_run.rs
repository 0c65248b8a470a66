//! Dry runs: what a run, update, kill, suspend or resume would do, planned
//! here against a fresh observation of the cloud and answered with the
//! request list; nothing is proposed and nothing changes. Command intake
//! sends a command here instead of to the shard when it is marked dry.
//! A live process's dry run plans as its actor does ([`Api::plan_as_actor`]):
//! at this moment, with its replicated intent (rotations requested, failed
//! replacements) and the conductor's `Tcp` health probes, so it prints
//! what the actor will do.

use canon_model::rollout_failure::latest_replacements;
use canon_model::{
    plan, plan_with, Bindings, DesiredState, Fid, Intent, ObservedState, Plan, ProcessState,
    RotationRequest,
};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use tonic::Status;

use super::Api;
use crate::views::summary;

/// The bindings recorded in the log, as the planner wants them.
pub(super) fn bindings_of(p: &ProcessRecord) -> Bindings {
    canon_scheduler::reconcile::bindings_of(p)
}

/// A dry run's answer: the plan as JSON and how many requests it makes
/// (and how many changes wait for a resource to become ready, which a
/// later pass makes: routes through a NAT gateway the plan creates).
fn planned_reply(
    process: Option<pb::ProcessSummary>,
    job: u64,
    planned: &Plan,
) -> pb::CommandReply {
    pb::CommandReply {
        process,
        job,
        plan_json: planned.to_json().to_string(),
        message: match planned.waiting.len() {
            0 => format!("{} requests", planned.requests.len()),
            w => format!(
                "{} requests, then {w} more once what they need is available",
                planned.requests.len()
            ),
        },
        policy_version: 0,
        log_index: 0,
    }
}

impl Api {
    /// What running `desired` as a new process `fid` under `alias` would do.
    pub(super) async fn dry_run_new(
        &self,
        alias: &str,
        fid: Fid,
        account: &str,
        desired: &DesiredState,
    ) -> Result<pb::CommandReply, Status> {
        if let Some(p) = self.process(alias).await? {
            if p.state.is_live() && p.fid != fid {
                return Err(Status::already_exists(format!(
                    "alias {alias:?} is taken by live process {}",
                    p.fid
                )));
            }
        }
        let observed = self.observe(account, desired).await?;
        let planned = plan(desired, &observed, &Bindings::new());
        Ok(planned_reply(None, 0, &planned))
    }

    /// What giving process `p` the declaration `desired` would do.
    pub(super) async fn dry_run_update(
        &self,
        p: &ProcessRecord,
        desired: &DesiredState,
    ) -> Result<pb::CommandReply, Status> {
        let observed = self.observe_process(p, desired).await?;
        let now = self.clock.now_ms();
        let planned = self
            .plan_as_actor(p, desired, &observed, now, &p.rotations)
            .await;
        let process = Some(summary(p, self.node.shard_count()));
        Ok(planned_reply(process, now, &planned))
    }

    /// What `p`'s actor would plan for `desired` against `observed` at
    /// `now` with the rotations `rotations` outstanding: with `p`'s failed
    /// replacements, and the `Tcp` health checks probed from here as the
    /// actor probes them (`canon_scheduler::probe`).
    pub(super) async fn plan_as_actor(
        &self,
        p: &ProcessRecord,
        desired: &DesiredState,
        observed: &ObservedState,
        now: canon_model::UnixMillis,
        rotations: &[RotationRequest],
    ) -> Plan {
        let reached = canon_scheduler::probe::probe(&self.cloud, p, desired, observed).await;
        let replaced_at = latest_replacements(p.replacements.values());
        let intent = Intent {
            rotations,
            failures: &p.rollout_failures,
            reached: &reached,
            replaced_at: &replaced_at,
        };
        plan_with(desired, observed, &bindings_of(p), now, intent)
    }

    /// What killing process `p` would delete.
    pub(super) async fn dry_run_kill(&self, p: &ProcessRecord) -> Result<pb::CommandReply, Status> {
        // The stored declaration says which regions the process uses.
        let desired = self.desired(&p.composition, p.fid)?;
        let observed = self.observe_process(p, &desired).await?;
        let planned = plan(&desired.emptied(), &observed, &bindings_of(p));
        let process = Some(summary(p, self.node.shard_count()));
        Ok(planned_reply(process, 0, &planned))
    }

    /// What suspending or resuming process `p` would change.
    pub(super) fn dry_run_state(&self, p: &ProcessRecord, state: ProcessState) -> pb::CommandReply {
        pb::CommandReply {
            process: Some(summary(p, self.node.shard_count())),
            job: 0,
            plan_json: "[]".into(),
            message: format!("would change {} from {} to {state}", p.alias, p.state),
            policy_version: 0,
            log_index: 0,
        }
    }
}
