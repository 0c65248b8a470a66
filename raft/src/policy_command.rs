//! What a command of the trust policy carries: who sent it
//! ([`Principal`], inside the [`Request`](crate::Request)) and the change to
//! the policy document the meta group is asked to make ([`PolicyChange`]).
//! Part of the log's format (see [`crate::command`] for the rules of
//! changing it); the rules that decide them are in [`crate::policy`].

use std::fmt;

use canon_trust::{Account, Action, KeyId, PolicyDocument, PublicKey, User};
use serde::{Deserialize, Serialize};

/// Who sent a command, as the node that checked its signature found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user named in the envelope.
    pub user: String,
    /// The id of the key whose signature verified (see
    /// [`canon_trust::PublicKey::id`]).
    pub key_id: String,
    /// Signed with the cluster's root key (a key of the node's
    /// configuration, not of the policy): always allowed, always flagged.
    pub root: bool,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (key {}", self.user, self.key_id)?;
        if self.root {
            f.write_str(", root")?;
        }
        f.write_str(")")
    }
}

/// A change to the policy document, each authorised by its own action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyChange {
    /// Replace the whole document (`policy.put`). With `base_version`, only
    /// if the current version is that one (optimistic concurrency).
    Put {
        document: PolicyDocument,
        base_version: Option<u64>,
    },
    /// `account.add`: a new account.
    AccountAdd { account: Account },
    /// `account.update`: replaces the account of the same name.
    AccountUpdate { account: Account },
    /// `account.remove`.
    AccountRemove { name: String },
    /// `user.add`: a new user.
    UserAdd { user: User },
    /// `user.remove`: the user, and their place in bindings (a binding left
    /// with no subjects goes too).
    UserRemove { name: String },
    /// `user.rotate-key`: keys added to and removed from a user (a user
    /// may always change their own keys). Absent in logs written before
    /// it existed (a new variant: old logs never hold it).
    UserKeys {
        name: String,
        add: Vec<PublicKey>,
        remove: Vec<KeyId>,
        /// Remove every current key first.
        #[serde(default)]
        replace_all: bool,
    },
}

impl PolicyChange {
    /// The action that authorises this change.
    pub fn action(&self) -> Action {
        match self {
            PolicyChange::Put { .. } => Action::PolicyPut,
            PolicyChange::AccountAdd { .. } => Action::AccountAdd,
            PolicyChange::AccountUpdate { .. } => Action::AccountUpdate,
            PolicyChange::AccountRemove { .. } => Action::AccountRemove,
            PolicyChange::UserAdd { .. } => Action::UserAdd,
            PolicyChange::UserRemove { .. } => Action::UserRemove,
            PolicyChange::UserKeys { .. } => Action::UserRotateKey,
        }
    }

    /// Whether `principal` changes only their own keys: signing with a key
    /// they hold proves they may, whatever the policy grants.
    pub fn is_own_key_change(&self, principal: &Principal) -> bool {
        matches!(self, PolicyChange::UserKeys { name, .. } if *name == principal.user)
    }

    /// The account the change is on, for account patterns of rules.
    pub fn account(&self) -> Option<&str> {
        match self {
            PolicyChange::AccountAdd { account } | PolicyChange::AccountUpdate { account } => {
                Some(&account.name)
            }
            PolicyChange::AccountRemove { name } => Some(name),
            _ => None,
        }
    }
}
