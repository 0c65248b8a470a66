//! Command intake (the Submit and RemoveMember calls): the envelope checked
//! at the door ([`crate::envelope`]), the command decoded, its fields
//! validated, and the command handed to its lifecycle handler (or to a dry
//! run). Nothing reaches the shard before these checks pass.

use canon_proto::canon::api::v1 as pb;
use canon_raft::Composition;
use prost::Message;
use tonic::Status;
use uuid::Uuid;

use super::grpc_status::{bad, envelope_status};
use super::Api;
use crate::now_ms;

impl Api {
    /// Checks a command envelope (see [`crate::envelope`]) and decodes
    /// the command inside.
    pub(super) fn open_envelope(&self, env: pb::SignedEnvelope) -> Result<pb::Command, Status> {
        self.verifier
            .verify(
                &env.user,
                &env.nonce,
                env.timestamp_ms,
                &env.command,
                &env.signature,
                now_ms(),
            )
            .map_err(|e| {
                self.metrics.refused();
                envelope_status(e)
            })?;
        let cmd = pb::Command::decode(env.command.as_slice())
            .map_err(|e| bad(&format!("the command does not decode: {e}")))?;
        tracing::info!(user = %env.user, command_id = %cmd.command_id, dry_run = cmd.dry_run, "command");
        Ok(cmd)
    }

    /// Carries out a Submit's command.
    pub(super) async fn handle_command(
        &self,
        cmd: pb::Command,
    ) -> Result<pb::CommandReply, Status> {
        let id = command_id(&cmd)?;
        let action = cmd.action.ok_or_else(|| bad("the command has no action"))?;
        self.metrics.call(metric_name(&action, cmd.dry_run));
        let dry_run = cmd.dry_run;
        match action {
            pb::command::Action::Run(run) => self.run(id, dry_run, run).await,
            pb::command::Action::Update(u) => self.update(id, dry_run, u).await,
            pb::command::Action::Kill(k) => self.kill(id, dry_run, &k.alias).await,
            pb::command::Action::Suspend(s) => {
                let state = canon_model::ProcessState::Suspended;
                self.set_state(id, dry_run, &s.alias, state).await
            }
            pb::command::Action::Resume(r) => {
                let state = canon_model::ProcessState::Running;
                self.set_state(id, dry_run, &r.alias, state).await
            }
            pb::command::Action::RemoveMember(_) => Err(bad(
                "remove_member is sent with the RemoveMember call, not Submit",
            )),
        }
    }

    /// The account a command runs its process in: the one it names, else
    /// the node's default.
    pub(super) fn account_of(&self, requested: &str) -> String {
        if requested.is_empty() {
            self.account.clone()
        } else {
            requested.to_string()
        }
    }
}

/// The client's command id.
pub(super) fn command_id(cmd: &pb::Command) -> Result<Uuid, Status> {
    cmd.command_id
        .parse()
        .map_err(|_| bad("command_id is not a UUID"))
}

/// The `canon_api_calls_total` label of a command.
fn metric_name(action: &pb::command::Action, dry_run: bool) -> &'static str {
    match (action, dry_run) {
        (_, true) => "dry_run",
        (pb::command::Action::Run(_), _) => "run",
        (pb::command::Action::Update(_), _) => "update",
        (pb::command::Action::Kill(_), _) => "kill",
        (pb::command::Action::Suspend(_), _) => "suspend",
        (pb::command::Action::Resume(_), _) => "resume",
        (pb::command::Action::RemoveMember(_), _) => "remove_member",
    }
}

/// A requested tick interval: `0` means none (the node's default, or the
/// process's current one on update); otherwise 1 s to 24 h.
pub(super) fn tick_interval(ms: u64) -> Result<Option<u64>, Status> {
    match ms {
        0 => Ok(None),
        ms if (canon_model::MIN_TICK_INTERVAL..=canon_model::MAX_TICK_INTERVAL)
            .contains(&std::time::Duration::from_millis(ms)) =>
        {
            Ok(Some(ms))
        }
        ms => Err(bad(&format!(
            "tick interval {ms} ms is out of range: use 1s to 24h"
        ))),
    }
}

/// An alias as the API accepts it: 1-128 letters, digits, `-`, `_`, `.`.
pub(super) fn valid_alias(alias: &str) -> Result<(), Status> {
    let ok = !alias.is_empty()
        && alias.len() <= 128
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(bad(&format!(
            "bad alias {alias:?}: use 1-128 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The command's composition, checked to decode.
pub(super) fn composition_of(c: Option<pb::CompiledComposition>) -> Result<Composition, Status> {
    let c = c.ok_or_else(|| bad("the command carries no composition"))?;
    canon_lang::Compiled::decode(&c.bytes)
        .map_err(|e| bad(&format!("the compiled composition does not decode: {e}")))?;
    Ok(Composition {
        bytes: c.bytes,
        source_hash: c.source_hash,
    })
}
