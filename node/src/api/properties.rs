//! `canon property ALIAS NAME on|off`: a process's enforcement (off: drift
//! is recorded and alerted, not healed) and lock (on: update and kill are
//! refused). A property change is a change to how the process is managed,
//! so it is authorised as `process.update`; the lock is a guard against
//! mistakes, not a permission: whoever may update a process may unlock it.
//! The change is replicated in the process record (`ProcessPropertySet`),
//! so it survives a change of leader and shows in history and the audit.

use canon_model::ProcessProperty;
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, CommandId, Rejection};
use canon_trust::Action;
use tonic::Status;

use super::grpc_status::{bad, rejection_status};
use super::intake::{valid_alias, Caller};
use super::job_ids::Started;
use super::shard::Signer;
use super::Api;
use crate::views::summary;

/// Refuses `what` (update, kill) on a locked process, saying how to unlock
/// it; the state machine refuses the same, this answers before anything
/// is proposed.
pub(super) fn refuse_if_locked(p: &ProcessRecord, what: &str) -> Result<(), Status> {
    if p.properties.locked {
        return Err(rejection_status(Rejection::Locked {
            alias: p.alias.clone(),
            refused: what.to_string(),
        }));
    }
    Ok(())
}

impl Api {
    pub(super) async fn set_property(
        &self,
        by: Caller<'_>,
        set: pb::SetProperty,
    ) -> Result<pb::CommandReply, Status> {
        let alias = set.alias.as_str();
        valid_alias(alias)?;
        let property =
            ProcessProperty::named(&set.name, set.on).map_err(|e| bad(&e.to_string()))?;
        let p = self.live_process(alias).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessUpdate,
                Some(&p.account),
                Some(alias),
            )
            .await?;
        let after = p.properties.with(property);
        if by.dry_run {
            return Ok(pb::CommandReply {
                process: Some(summary(&p, self.node.shard_count())),
                message: format!("would set {property} on {alias} ({after})"),
                plan_json: "[]".into(),
                ..Default::default()
            });
        }
        let mut index = 0;
        if after != p.properties {
            let door = by.door(Action::ProcessUpdate, decided, None);
            let signer = Signer {
                principal: by.principal,
                door: &door,
            };
            let changed = Command::ProcessPropertySet {
                fid: p.fid,
                property,
            };
            index = self
                .propose_applied(signer, alias, CommandId(by.id), changed)
                .await?;
        }
        let none = Started { job: 0, index: 0 };
        let message = format!("{alias}: {after}");
        self.reply_for(alias, (none, index), message).await
    }
}
