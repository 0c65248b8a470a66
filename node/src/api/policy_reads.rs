//! Reading the trust policy: the document (`canon policy get`), the
//! accounts (`canon account list`) and one decision (`canon auth can-i`).
//! Each needs a signed read, and is itself authorised: `policy.get`,
//! `account.list`, and for a decision about someone else `policy.get`.

use canon_proto::canon::api::v1 as pb;
use canon_trust::{evaluate, AccessRequest, Action};
use tonic::Status;

use super::grpc_status::bad;
use super::policy_admin::account_view;
use super::read_auth::Reader;
use super::Api;

impl Api {
    /// The policy as TOML and JSON, with its version.
    pub(super) async fn handle_get_policy(&self, by: &Reader) -> Result<pb::PolicyReply, Status> {
        self.authorise(by.asker(), Action::PolicyGet, None, None)
            .await?;
        let policy = self.policy(true).await?;
        let json = serde_json::to_string_pretty(&policy.document)
            .map_err(|e| Status::internal(format!("the policy as JSON: {e}")))?;
        Ok(pb::PolicyReply {
            version: policy.version,
            toml: policy.document.to_toml(),
            json,
        })
    }

    /// The policy's accounts.
    pub(super) async fn handle_list_accounts(
        &self,
        by: &Reader,
    ) -> Result<pb::ListAccountsReply, Status> {
        self.authorise(by.asker(), Action::AccountList, None, None)
            .await?;
        let policy = self.policy(true).await?;
        Ok(pb::ListAccountsReply {
            version: policy.version,
            accounts: policy.document.accounts.iter().map(account_view).collect(),
        })
    }

    /// Whether `req.user` (empty: the caller) may do `req.action`, and the
    /// rule that decides. Asking about another user needs `policy.get`.
    pub(super) async fn handle_can_i(
        &self,
        reader: &Reader,
        req: pb::CanIRequest,
    ) -> Result<pb::CanIReply, Status> {
        let by = &reader.principal;
        let action: Action = req.action.parse().map_err(|e| bad(&format!("{e}")))?;
        let user = if req.user.is_empty() {
            by.user.clone()
        } else {
            req.user.clone()
        };
        if user != by.user {
            self.authorise(reader.asker(), Action::PolicyGet, None, None)
                .await?;
        }
        let policy = self.policy(true).await?;
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let (account, alias) = (some(&req.account), some(&req.alias));
        let request = AccessRequest {
            action,
            account: account.as_deref(),
            alias: alias.as_deref(),
        };
        if user == by.user && by.root {
            return Ok(pb::CanIReply {
                allowed: true,
                rule: String::new(),
                message: format!(
                    "allow: {user} signs with the cluster's root key, which may do anything"
                ),
                policy_version: policy.version,
                user,
                root: true,
            });
        }
        let decision = evaluate(&policy.document, &user, &request);
        let message = if policy.document.user(&user).is_none() {
            format!(
                "{user}: {request}: deny: no user named {user:?} in the policy (version {})",
                policy.version
            )
        } else {
            format!("{user}: {request}: {decision}")
        };
        Ok(pb::CanIReply {
            allowed: decision.is_allowed(),
            rule: decision
                .matched
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            message,
            policy_version: policy.version,
            user,
            root: false,
        })
    }
}
