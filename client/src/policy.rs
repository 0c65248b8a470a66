//! The trust policy's calls: read it, apply a new one (or see what it
//! would change), add and remove users and accounts, and ask whether a
//! user may do an action. Changes are signed commands like any other;
//! the reads always carry a read token (the node requires one).

use crate::pb;
use crate::sdk::{Client, ClientError};

use pb::command::Action;

impl Client {
    /// The policy (TOML, JSON) and its version (0: none yet).
    pub async fn policy_get(&self) -> Result<pb::PolicyReply, ClientError> {
        let req = pb::GetPolicyRequest {};
        self.signed_read("GetPolicy", &req, |mut api, req| async move {
            api.get_policy(req).await
        })
        .await
    }

    /// Replaces the policy with `toml`, only if it is still at
    /// `base_version` when given; a dry run answers with the diff and
    /// changes nothing. The reply's message is the diff.
    pub async fn policy_put(
        &self,
        toml: &str,
        base_version: Option<u64>,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let put = pb::PolicyPut {
            toml: toml.to_string(),
            base_version,
        };
        self.submit(Action::PolicyPut(put), dry_run).await
    }

    /// Whether `req.user` (empty: this client's user) may do `req.action`.
    pub async fn can_i(&self, req: pb::CanIRequest) -> Result<pb::CanIReply, ClientError> {
        self.signed_read(
            "CanI",
            &req,
            |mut api, req| async move { api.can_i(req).await },
        )
        .await
    }

    /// The policy's accounts.
    pub async fn list_accounts(&self) -> Result<pb::ListAccountsReply, ClientError> {
        let req = pb::ListAccountsRequest {};
        self.signed_read("ListAccounts", &req, |mut api, req| async move {
            api.list_accounts(req).await
        })
        .await
    }

    /// Adds an account, or (`update`) replaces the one of the same name.
    pub async fn account_put(
        &self,
        account: pb::AccountView,
        update: bool,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let action = if update {
            Action::AccountUpdate(account)
        } else {
            Action::AccountAdd(account)
        };
        self.submit(action, dry_run).await
    }

    /// Removes the account `name`.
    pub async fn account_remove(
        &self,
        name: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let name = pb::NameOnly { name: name.into() };
        self.submit(Action::AccountRemove(name), dry_run).await
    }

    /// Adds user `name` with hex ed25519 public `keys` and `groups`.
    pub async fn user_add(
        &self,
        name: &str,
        keys: Vec<String>,
        groups: Vec<String>,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let user = pb::UserAdd {
            name: name.into(),
            keys,
            groups,
        };
        self.submit(Action::UserAdd(user), dry_run).await
    }

    /// Removes user `name`'s keys with ids in `keys.remove` (or all, with
    /// `keys.replace_all`) and adds `keys.add` (hex public keys), in one
    /// change (`user.rotate-key`; a user may always change their own).
    pub async fn user_keys(
        &self,
        keys: pb::UserKeys,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        self.submit(Action::UserKeys(keys), dry_run).await
    }

    /// Removes user `name` (and their place in bindings).
    pub async fn user_remove(
        &self,
        name: &str,
        dry_run: bool,
    ) -> Result<pb::CommandReply, ClientError> {
        let name = pb::NameOnly { name: name.into() };
        self.submit(Action::UserRemove(name), dry_run).await
    }
}
