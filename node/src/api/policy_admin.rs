//! Changes to the trust policy (`canon policy apply`, `canon user …`,
//! `canon account …`): the command turned into a [`PolicyChange`], proposed
//! to the meta group with its principal (whose state machine authorises it
//! at its log index), and answered with the diff it made. A dry run applies
//! the same rule to a copy of the meta group's state, so it is refused
//! exactly when the real change would be, and changes nothing.

use canon_proto::canon::api::v1 as pb;
use canon_raft::state::CanonState;
use canon_raft::{
    Command, CommandId, Consistency, PolicyChange, Request, Response, VersionedPolicy, META_GROUP,
};
use canon_trust::{diff, Account, KeyId, PolicyDocument, PublicKey, User};
use tonic::Status;

use super::grpc_status::{bad, node_status, rejection_status};
use super::intake::Caller;
use super::refusals::door_refusal;
use super::Api;

/// The policy change a command asks for.
pub(super) fn policy_change(action: pb::command::Action) -> Result<PolicyChange, Status> {
    use pb::command::Action as A;
    Ok(match action {
        A::PolicyPut(p) => PolicyChange::Put {
            document: PolicyDocument::from_toml(&p.toml)
                .map_err(|e| bad(&format!("the policy does not read: {e}")))?,
            base_version: p.base_version,
        },
        A::AccountAdd(a) => PolicyChange::AccountAdd {
            account: account_from(a),
        },
        A::AccountUpdate(a) => PolicyChange::AccountUpdate {
            account: account_from(a),
        },
        A::AccountRemove(n) => PolicyChange::AccountRemove { name: n.name },
        A::UserAdd(u) => PolicyChange::UserAdd {
            user: user_from(u)?,
        },
        A::UserRemove(n) => PolicyChange::UserRemove { name: n.name },
        A::UserKeys(k) => PolicyChange::UserKeys {
            add: k
                .add
                .iter()
                .map(|h| PublicKey::from_hex(h).map_err(|e| bad(&e)))
                .collect::<Result<_, _>>()?,
            remove: k.remove.into_iter().map(KeyId).collect(),
            replace_all: k.replace_all,
            name: k.name,
        },
        _ => return Err(bad("not a change to the policy")),
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn account_from(a: pb::AccountView) -> Account {
    Account {
        name: a.name,
        aws_account_id: a.aws_account_id,
        role_arn: non_empty(a.role_arn),
        external_id: non_empty(a.external_id),
        region: non_empty(a.region),
        events_queues: a.events_queues.into_iter().collect(),
    }
}

/// An account as the API shows it.
pub(super) fn account_view(a: &Account) -> pb::AccountView {
    pb::AccountView {
        name: a.name.clone(),
        aws_account_id: a.aws_account_id.clone(),
        role_arn: a.role_arn.clone().unwrap_or_default(),
        external_id: a.external_id.clone().unwrap_or_default(),
        region: a.region.clone().unwrap_or_default(),
        events_queues: a
            .events_queues
            .iter()
            .map(|(r, u)| (r.clone(), u.clone()))
            .collect(),
    }
}

fn user_from(u: pb::UserAdd) -> Result<User, Status> {
    let keys = u
        .keys
        .iter()
        .map(|k| PublicKey::from_hex(k).map_err(|e| bad(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(User {
        name: u.name,
        keys,
        groups: u.groups,
    })
}

/// The diff from `old` to `new`, one change a line.
fn diff_text(old: &PolicyDocument, new: &PolicyDocument) -> String {
    let lines: Vec<String> = diff(old, new).iter().map(ToString::to_string).collect();
    if lines.is_empty() {
        "no changes".into()
    } else {
        lines.join("\n")
    }
}

impl Api {
    /// Proposes `change` (or, for a dry run, decides it on a copy) and
    /// answers with the diff and the policy's version.
    pub(super) async fn change_policy(
        &self,
        by: Caller<'_>,
        change: PolicyChange,
    ) -> Result<pb::CommandReply, Status> {
        // Read once: for the stranding check and, after the write, the diff.
        let before = self.policy(true).await?;
        let stranding = self.stranding(by.principal, &change, &before.document);
        if let Some((account, reason)) = stranding.await? {
            // Refused at the door, so recorded here (a dry run changes
            // nothing and records nothing). The target is the account in
            // use, which a whole policy (`Put`) does not name itself.
            if !by.dry_run {
                let target = (Some(account.as_str()), None);
                let refusal = door_refusal(
                    by.asker(),
                    change.action(),
                    target,
                    reason.clone(),
                    before.version,
                );
                self.record_refusal(refusal).await;
            }
            return Err(Status::failed_precondition(reason));
        }
        // The state machine decides (and records the decision); the door
        // adds what only it knows.
        let door = by.door(change.action(), Default::default(), None);
        let req = Request::new(self.clock.now_ms(), Command::PolicyChanged { change })
            .by(by.principal.clone())
            .with_door(door);
        let req = Request {
            id: CommandId(by.id),
            ..req
        };
        if by.dry_run {
            return self.dry_run_policy(req).await;
        }
        let committed = self
            .node
            .propose_committed(META_GROUP, req)
            .await
            .map_err(node_status)?;
        match committed.response {
            Response::Applied => {}
            Response::Rejected(r) => {
                self.metrics.forbidden();
                return Err(rejection_status(r));
            }
        }
        let after = self.policy(true).await?;
        let message = if after.version == before.version + 1 {
            diff_text(&before.document, &after.document)
        } else {
            format!("applied; the policy is now at version {}", after.version)
        };
        tracing::info!(user = %by.principal.user, version = after.version, "policy changed");
        Ok(pb::CommandReply {
            log_index: committed.index,
            ..policy_reply(&after, message)
        })
    }

    /// What `req` would do to the current policy, decided by the state
    /// machine's own rule on a copy.
    async fn dry_run_policy(&self, req: Request) -> Result<pb::CommandReply, Status> {
        let decided = self
            .node
            .read(META_GROUP, Consistency::Linearizable, |s: &CanonState| {
                let mut copy = s.clone();
                let response = copy.apply(&req);
                (s.meta.policy.clone(), copy.meta.policy, response)
            })
            .await
            .map_err(node_status)?;
        match decided {
            (before, after, Response::Applied) => {
                let message = diff_text(&before.document, &after.document);
                Ok(policy_reply(&before, message))
            }
            (_, _, Response::Rejected(r)) => Err(rejection_status(r)),
        }
    }
}

fn policy_reply(policy: &VersionedPolicy, message: String) -> pb::CommandReply {
    pb::CommandReply {
        process: None,
        job: 0,
        plan_json: String::new(),
        message,
        policy_version: policy.version,
        log_index: 0,
    }
}
