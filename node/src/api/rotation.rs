//! `canon fleet rotate ALIAS [--fleet NAME | --all]`: a rolling rotation on
//! demand (issue #18). The command is a change to how the process is
//! managed, so it is authorised as `process.update`. It proposes
//! `RotationRequested`, whose log entry's time is the request's: the
//! process actor then replaces every instance in scope launched before it,
//! as the planner rations a rotation for age, and clears the request once
//! none is left. A dry run plans the rotation as the actor would (against a
//! fresh observation, with the process's intent and the `Tcp` health
//! probes: `Api::plan_as_actor`) and answers with the instances it would
//! replace and in how many steps.

use canon_model::rotation_request::{add_request, rollout_steps};
use canon_model::{DesiredState, ProcessState, RotationRequest, RotationScope, Spec};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, CommandId};
use canon_trust::Action;
use serde_json::{json, Value};
use tonic::Status;

use super::dry_run::bindings_of;
use super::grpc_status::bad;
use super::intake::{valid_alias, Caller};
use super::job_ids::Started;
use super::shard::Signer;
use super::Api;
use crate::views::summary;

/// The scope a RotateFleet names.
fn scope_of(r: &pb::RotateFleet) -> Result<RotationScope, Status> {
    match (r.all, r.fleet.as_str()) {
        (true, "") => Ok(RotationScope::All),
        (true, _) => Err(bad("name a fleet or ask for every instance, not both")),
        (false, "") => Ok(RotationScope::Fleets),
        (false, name) => Ok(RotationScope::Fleet(name.to_string())),
    }
}

/// Refuses a scope that names nothing `desired` declares: a fleet it does
/// not have, or fleet members when it has none.
fn check_scope(alias: &str, desired: &DesiredState, scope: &RotationScope) -> Result<(), Status> {
    let mut fleets: Vec<&str> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::Instance(i) => i.fleet.as_ref().map(|f| f.fleet.as_str()),
            _ => None,
        })
        .collect();
    fleets.sort_unstable();
    fleets.dedup();
    match scope {
        RotationScope::All => Ok(()),
        RotationScope::Fleets if fleets.is_empty() => Err(Status::failed_precondition(format!(
            "{alias} declares no fleet; `canon fleet rotate {alias} --all` rotates every instance"
        ))),
        RotationScope::Fleet(name) if !fleets.contains(&name.as_str()) => {
            Err(Status::invalid_argument(format!(
                "{alias} has no fleet named {name:?} (its fleets: {})",
                if fleets.is_empty() {
                    "none".to_string()
                } else {
                    fleets.join(", ")
                }
            )))
        }
        _ => Ok(()),
    }
}

impl Api {
    pub(super) async fn rotate_fleet(
        &self,
        by: Caller<'_>,
        r: pb::RotateFleet,
    ) -> Result<pb::CommandReply, Status> {
        let alias = r.alias.as_str();
        valid_alias(alias)?;
        let scope = scope_of(&r)?;
        let p = self.live_process(alias).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessUpdate,
                Some(&p.account),
                Some(alias),
            )
            .await?;
        if !matches!(p.state, ProcessState::Running | ProcessState::Suspended) {
            return Err(Status::failed_precondition(format!(
                "{alias} is {}: only a Running or Suspended process rotates",
                p.state
            )));
        }
        let desired = self.desired(&p.composition, p.fid)?;
        check_scope(alias, &desired, &scope)?;
        if by.dry_run {
            return self.dry_run_rotation(&p, &desired, scope).await;
        }
        let door = by.door(Action::ProcessUpdate, decided, None);
        let signer = Signer {
            principal: by.principal,
            door: &door,
        };
        let requested = Command::RotationRequested { fid: p.fid, scope };
        let index = self
            .propose_applied(signer, alias, CommandId(by.id), requested)
            .await?;
        let mut message = format!("{alias}: rotation requested");
        if !p.properties.enforcement {
            message.push_str(" (enforcement is off: nothing is replaced until it is on)");
        } else if p.state == ProcessState::Suspended {
            message.push_str(" (suspended: it rotates once resumed)");
        }
        let none = Started { job: 0, index: 0 };
        self.reply_for(alias, (none, index), message).await
    }

    /// What rotating `p`'s instances in `scope` now would replace: planned
    /// against a fresh observation, with a request of this moment.
    async fn dry_run_rotation(
        &self,
        p: &ProcessRecord,
        desired: &DesiredState,
        scope: RotationScope,
    ) -> Result<pb::CommandReply, Status> {
        let observed = self.observe_process(p, desired).await?;
        let now = self.clock.now_ms();
        let request = RotationRequest { before: now, scope };
        let bindings = bindings_of(p);
        let mut rotations = p.rotations.clone();
        add_request(&mut rotations, request.clone());
        let planned = self
            .plan_as_actor(p, desired, &observed, now, &rotations)
            .await;
        let replace: Vec<Value> = planned
            .rotating
            .iter()
            .filter_map(|l| {
                let r = desired.resources.get(l)?;
                let fleet = match &r.spec {
                    Spec::Instance(i) => i.fleet.as_ref().map(|f| f.fleet.clone()),
                    _ => None,
                };
                Some(json!({
                    "name": r.name,
                    "logical_id": l.to_string(),
                    "cloud_id": bindings.cloud_id(l),
                    "fleet": fleet,
                }))
            })
            .collect();
        let steps = rollout_steps(desired, &planned.rotating);
        let listed = json!({
            "replace": replace,
            "steps": steps,
            "requests": planned.to_json(),
        });
        Ok(pb::CommandReply {
            process: Some(summary(p, self.node.shard_count())),
            job: 0,
            plan_json: listed.to_string(),
            message: format!(
                "would replace {} instance(s) of {} ({}) in {steps} step(s)",
                replace.len(),
                p.alias,
                request.scope
            ),
            policy_version: 0,
            log_index: 0,
        })
    }
}
