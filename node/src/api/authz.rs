//! Who may do what, at the API: the trust policy as the meta group holds
//! it, whose keys the door checks signatures against; the decision on
//! commands that do not go through the meta group (process commands, member
//! removal), made here against the policy read linearizably (the meta
//! group's own commands are decided again in its state machine, at their
//! log index); and the flag raised on every use of the root key. A
//! refusal decided here is recorded in the audit chain before it is
//! answered (`refusals`).

use canon_raft::{authorise, Consistency, Principal, Rejection, VersionedPolicy, META_GROUP};
use canon_trust::{AccessRequest, Action};
use tonic::Status;

use super::grpc_status::{node_status, rejection_status};
use super::intake::Arrival;
use super::refusals::policy_refusal;
use super::Api;

/// Who asks the door for something, as it found them: the signer, the
/// SHA-256 (hex) of what they signed, and how the call came. A refusal's
/// audit record says all of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asker<'a> {
    pub principal: &'a Principal,
    pub request_hash: &'a str,
    pub arrival: &'a Arrival,
}

/// The door's decision to let a command through, for its audit record.
#[derive(Debug, Clone, Default)]
pub(super) struct Decided {
    /// The rule that allowed it, or `root key`.
    pub rule: Option<String>,
    /// The policy version it was decided against (none for root).
    pub policy_version: Option<u64>,
}

impl Api {
    /// The meta group's policy: as this node has applied it, or (`fresh`)
    /// as of every change acknowledged before this call.
    pub(super) async fn policy(&self, fresh: bool) -> Result<VersionedPolicy, Status> {
        let consistency = if fresh {
            Consistency::Linearizable
        } else {
            Consistency::Stale
        };
        self.node
            .read(META_GROUP, consistency, |s| s.meta.policy.clone())
            .await
            .map_err(node_status)
    }

    /// Logs and counts a use of the root key (an operator should see every
    /// one), and the use of anyone else's at debug level.
    pub(super) fn flag(&self, principal: &Principal, what: &str) {
        if principal.root {
            self.metrics.root_used();
            tracing::warn!(user = %principal.user, key = %principal.key_id, what, "root key used");
        } else {
            tracing::debug!(user = %principal.user, key = %principal.key_id, what, "signed by a policy user");
        }
    }

    /// May `by` do `action` on `account` and `alias`? Root may; a user is
    /// decided against the current policy. A refusal is recorded in the
    /// audit chain (rate-limited), then answered PermissionDenied, naming
    /// the user, action, target and missing permission.
    pub(super) async fn authorise(
        &self,
        by: Asker<'_>,
        action: Action,
        account: Option<&str>,
        alias: Option<&str>,
    ) -> Result<Decided, Status> {
        let (rejection, version) = match self.decide(by.principal, action, account, alias).await? {
            Ok(decided) => return Ok(decided),
            Err(refused) => refused,
        };
        self.metrics.forbidden();
        let refusal = policy_refusal(by, action, (account, alias), &rejection, version);
        self.record_refusal(refusal).await;
        Err(rejection_status(rejection))
    }

    /// [`Api::authorise`]'s decision: allowed, or refused (with the policy
    /// version that refused it); an error only when the policy could not
    /// be read.
    pub(super) async fn decide(
        &self,
        principal: &Principal,
        action: Action,
        account: Option<&str>,
        alias: Option<&str>,
    ) -> Result<Result<Decided, (Rejection, u64)>, Status> {
        if principal.root {
            return Ok(Ok(Decided {
                rule: Some("root key".into()),
                policy_version: None,
            }));
        }
        let policy = self.policy(true).await?;
        let request = AccessRequest {
            action,
            account,
            alias,
        };
        Ok(authorise(&policy.document, principal, &request)
            .map(|d| Decided {
                rule: d.matched.map(|m| m.to_string()),
                policy_version: Some(policy.version),
            })
            .map_err(|r| (r, policy.version)))
    }

    /// The account a process command names, checked: the node's default
    /// (empty), or, once the policy lists accounts, one of them.
    pub(super) async fn checked_account(&self, requested: &str) -> Result<String, Status> {
        let account = self.account_of(requested);
        if account == self.account {
            return Ok(account);
        }
        let policy = self.policy(false).await?;
        if policy.version == 0 || policy.document.account(&account).is_some() {
            Ok(account)
        } else {
            Err(Status::invalid_argument(format!(
                "no account named {account:?} in the policy (canon account list)"
            )))
        }
    }
}
