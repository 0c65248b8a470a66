//! Command intake, the one door of every command whatever carried it (the
//! Submit, RemoveMember and CreateJoinToken calls, a message of the SQS
//! intake queue): the envelope checked ([`crate::envelope`]), the command
//! decoded, its fields validated, and the command handed to its lifecycle
//! handler (or to a dry run). Nothing reaches the shard before these checks
//! pass. The transport only says how the command came ([`Arrival`]): its
//! audit channel, its certificate, and the delivery id of a transport that
//! redelivers.

use canon_proto::canon::api::v1 as pb;
use canon_raft::{Composition, DoorContext, Principal};
use canon_trust::audit::Channel;
use canon_trust::{Action, PolicyDocument};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};
use uuid::Uuid;

use super::authz::{Asker, Decided};
use super::grpc_status::{bad, envelope_status};
use super::policy_admin::policy_change;
use super::refusals::envelope_refusal;
use super::Api;
use crate::envelope::{Envelope, EnvelopeError, Signed};
use crate::now_ms;

/// A command the door refused before carrying it out: the answer, and
/// whether the signature had verified (then what the command names, its
/// reply queue among them, is the signer's).
#[derive(Debug)]
pub struct Shut {
    pub status: Status,
    pub signed: bool,
}

impl From<Shut> for Status {
    fn from(s: Shut) -> Status {
        s.status
    }
}

impl From<Status> for Shut {
    /// A refusal after the signature verified.
    fn from(status: Status) -> Shut {
        Shut {
            status,
            signed: true,
        }
    }
}

/// What carrying out a command, or answering a read, answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Command(pb::CommandReply),
    RemoveMember(pb::RemoveMemberReply),
    JoinToken(pb::JoinTokenReply),
    Status(pb::StatusReply),
    History(pb::HistoryReply),
    Policy(pb::PolicyReply),
    Accounts(pb::ListAccountsReply),
    CanI(pb::CanIReply),
    Audit(pb::AuditReply),
    Validations(pb::ValidationsReply),
}

impl Api {
    /// The door for a command from a transport that carries any command
    /// (the SQS intake queue): the same checks and handlers as the Submit,
    /// RemoveMember and CreateJoinToken calls, chosen by the command's
    /// action.
    pub async fn take(&self, env: &pb::SignedEnvelope, arrival: &Arrival) -> Result<Answer, Shut> {
        let (cmd, principal, hash) = self.open_envelope(env, arrival).await?;
        let by = Asker {
            principal: &principal,
            request_hash: &hash,
            arrival,
        };
        use pb::command::Action as A;
        match cmd.action {
            Some(A::RemoveMember(_)) => Ok(Answer::RemoveMember(
                self.remove_member_command(cmd, by).await?,
            )),
            Some(A::CreateJoinToken(_)) => {
                Ok(Answer::JoinToken(self.join_token_command(cmd, by).await?))
            }
            _ => Ok(Answer::Command(
                self.handle_command(cmd, &principal, &hash, arrival).await?,
            )),
        }
    }

    /// A RemoveMember command that passed the door: authorised
    /// (`cluster.remove`), then carried out.
    pub(super) async fn remove_member_command(
        &self,
        cmd: pb::Command,
        by: Asker<'_>,
    ) -> Result<pb::RemoveMemberReply, Status> {
        self.authorise(by, Action::ClusterRemove, None, None)
            .await?;
        self.handle_remove_member(cmd).await
    }

    /// A CreateJoinToken command that passed the door: authorised
    /// (`cluster.join`), then carried out.
    pub(super) async fn join_token_command(
        &self,
        cmd: pb::Command,
        by: Asker<'_>,
    ) -> Result<pb::JoinTokenReply, Status> {
        let decided = self.authorise(by, Action::ClusterJoin, None, None).await?;
        self.handle_create_join_token(cmd, by, decided).await
    }

    /// Checks a command envelope (see [`crate::envelope`]) that came by
    /// `arrival` and decodes the command inside; the principal who signed
    /// it and the SHA-256 (hex) of the signed command bytes. A refusal is
    /// recorded in the audit chain (rate-limited) before it is answered.
    pub(super) async fn open_envelope(
        &self,
        env: &pb::SignedEnvelope,
        arrival: &Arrival,
    ) -> Result<(pb::Command, Principal, String), Shut> {
        let signed = Signed::of_envelope(env);
        let envelope = Envelope::of(env, arrival.delivery.as_deref());
        let verify =
            |policy: &PolicyDocument| self.verifier.verify(signed, envelope, policy, now_ms());
        let principal = match self.with_policy_keys(verify).await {
            Ok(p) => p,
            Err(e) => {
                self.metrics.refused();
                let refusal = envelope_refusal(env, e.to_string(), arrival);
                self.record_refusal(refusal).await;
                let signed = e.after_signature();
                return Err(Shut {
                    status: envelope_status(e),
                    signed,
                });
            }
        };
        let cmd = pb::Command::decode(env.command.as_slice())
            .map_err(|e| bad(&format!("the command does not decode: {e}")))?;
        tracing::info!(user = %env.user, key = %principal.key_id, root = principal.root,
            command_id = %cmd.command_id, dry_run = cmd.dry_run, channel = %arrival.channel,
            "command");
        self.flag(&principal, "command");
        let hash = hex::encode(Sha256::digest(&env.command));
        Ok((cmd, principal, hash))
    }

    /// Runs a signature check against the users' keys of the policy this
    /// node has applied; if the signer or their key id is unknown there, or
    /// the signature does not verify, once more against the current policy
    /// (a user or key added a moment ago, not yet applied here).
    pub(super) async fn with_policy_keys<T>(
        &self,
        check: impl Fn(&PolicyDocument) -> Result<T, EnvelopeError>,
    ) -> Result<T, EnvelopeError> {
        let local = self
            .policy(false)
            .await
            .map(|p| p.document)
            .unwrap_or_default();
        let first = check(&local);
        if !matches!(
            first,
            Err(EnvelopeError::UnknownUser(_)
                | EnvelopeError::UnknownKey { .. }
                | EnvelopeError::BadSignature(_))
        ) {
            return first;
        }
        match self.policy(true).await {
            Ok(fresh) if fresh.document != local => check(&fresh.document),
            _ => first,
        }
    }

    /// Carries out a Submit's command for `principal`.
    pub(super) async fn handle_command(
        &self,
        cmd: pb::Command,
        principal: &Principal,
        request_hash: &str,
        arrival: &Arrival,
    ) -> Result<pb::CommandReply, Status> {
        let id = command_id(&cmd)?;
        let mut action = cmd.action.ok_or_else(|| bad("the command has no action"))?;
        crate::overflow::bring_composition(self.overflow.as_ref(), &mut action).await?;
        self.metrics.call(metric_name(&action, cmd.dry_run));
        let dry_run = cmd.dry_run;
        let by = Caller {
            id,
            dry_run,
            principal,
            request_hash,
            arrival,
        };
        use pb::command::Action as A;
        match action {
            A::Run(run) => self.run(by, run).await,
            A::Update(u) => self.update(by, u).await,
            A::Kill(k) => self.kill(by, &k.alias).await,
            A::Suspend(s) => {
                let state = canon_model::ProcessState::Suspended;
                self.set_state(by, &s.alias, state).await
            }
            A::Resume(r) => {
                let state = canon_model::ProcessState::Running;
                self.set_state(by, &r.alias, state).await
            }
            A::Release(r) => self.release(by, &r.alias).await,
            A::SetProperty(p) => self.set_property(by, p).await,
            A::RotateFleet(r) => self.rotate_fleet(by, r).await,
            A::RemoveMember(_) => Err(bad(
                "remove_member is sent with the RemoveMember call, not Submit",
            )),
            A::CreateJoinToken(_) => Err(bad(
                "create_join_token is sent with the CreateJoinToken call, not Submit",
            )),
            A::ValidationAdd(add) => self.add_validation(by, add).await,
            A::ValidationRemove(n) => self.remove_validation(by, n.name).await,
            other => {
                let change = policy_change(other)?;
                self.change_policy(by, change).await
            }
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

/// How a call reached the door: its channel and, over mutual TLS, the
/// SHA-256 (hex, of the DER) of the certificate its connection presented
/// (both go into the audit record the call leaves); and, from a transport
/// that delivers a message again after a transient failure (SQS), the id
/// of the delivery, under which the envelope may pass the door again
/// without reading as a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrival {
    pub channel: Channel,
    pub cert_fingerprint: Option<String>,
    pub delivery: Option<String>,
}

impl Arrival {
    /// A gRPC call: its connection's certificate, if it presented one.
    pub(super) fn grpc<T>(request: &Request<T>) -> Arrival {
        let cert = canon_tls::ConnInfo::of(request).and_then(|c| c.peer.fingerprint());
        Arrival {
            channel: Channel::Grpc,
            cert_fingerprint: cert.map(str::to_string),
            delivery: None,
        }
    }

    /// A message of the SQS intake queue, named by its message id (the
    /// same on every delivery of it).
    pub fn sqs(message_id: &str) -> Arrival {
        Arrival {
            channel: Channel::Sqs,
            cert_fingerprint: None,
            delivery: Some(message_id.to_string()),
        }
    }
}

/// A checked command's id, whether it is a dry run, who sent it, the hash
/// of its signed bytes, and how it arrived.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caller<'a> {
    pub id: Uuid,
    pub dry_run: bool,
    pub principal: &'a Principal,
    pub request_hash: &'a str,
    pub arrival: &'a Arrival,
}

impl<'a> Caller<'a> {
    /// The sender, for [`Api::authorise`].
    pub(super) fn asker(&self) -> Asker<'a> {
        Asker {
            principal: self.principal,
            request_hash: self.request_hash,
            arrival: self.arrival,
        }
    }

    /// What the door knew of this command once it `decided` `action`, for
    /// the audit record its proposals leave.
    pub(super) fn door(
        &self,
        action: Action,
        decided: Decided,
        region: Option<String>,
    ) -> DoorContext {
        DoorContext {
            action: action.to_string().into(),
            channel: self.arrival.channel,
            request_hash: Some(self.request_hash.to_string().into()),
            cert_fingerprint: self.arrival.cert_fingerprint.as_deref().map(Into::into),
            rule: decided.rule.map(Into::into),
            policy_version: decided.policy_version,
            region: region.map(Into::into),
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
        (pb::command::Action::CreateJoinToken(_), _) => "create_join_token",
        (pb::command::Action::PolicyPut(_), _) => "policy_put",
        (pb::command::Action::AccountAdd(_), _) => "account_add",
        (pb::command::Action::AccountUpdate(_), _) => "account_update",
        (pb::command::Action::AccountRemove(_), _) => "account_remove",
        (pb::command::Action::UserAdd(_), _) => "user_add",
        (pb::command::Action::UserRemove(_), _) => "user_remove",
        (pb::command::Action::UserKeys(_), _) => "user_keys",
        (pb::command::Action::Release(_), _) => "release",
        (pb::command::Action::SetProperty(_), _) => "set_property",
        (pb::command::Action::RotateFleet(_), _) => "rotate_fleet",
        (pb::command::Action::ValidationAdd(_), _) => "validation_add",
        (pb::command::Action::ValidationRemove(_), _) => "validation_remove",
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
