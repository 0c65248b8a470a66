//! The policy's accounts as the AWS adapter needs them: which role to
//! assume (and with which external id) to act in a process's account.
//! Processes name their account by its policy name; the adapter asks this
//! directory on each new client, so an account added or changed with
//! `canon account …` takes effect without a restart. The directory is made
//! before the node it reads (the cloud is built first) and attached to it
//! once the node runs.

use std::sync::{Arc, OnceLock};

use canon_cloud::{AccountRoles, AssumeRole, BoxFuture};
use canon_raft::{Consistency, RaftNode, META_GROUP};

/// The roles of the trust policy's accounts, read from this node's replica
/// of the meta group.
#[derive(Clone, Default)]
pub struct PolicyAccounts {
    node: Arc<OnceLock<RaftNode>>,
}

impl std::fmt::Debug for PolicyAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyAccounts")
            .field("attached", &self.node.get().is_some())
            .finish()
    }
}

impl PolicyAccounts {
    /// A directory not yet reading any node (every look-up fails until
    /// [`PolicyAccounts::attach`]).
    pub fn new() -> Self {
        PolicyAccounts::default()
    }

    /// Reads `node`'s policy from now on (the first node attached stays).
    pub fn attach(&self, node: RaftNode) {
        // A second attach (another node of a dev cluster) changes nothing:
        // every node replicates the same policy.
        let _ = self.node.set(node);
    }
}

impl AccountRoles for PolicyAccounts {
    fn role_of<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<AssumeRole>, String>> {
        Box::pin(async move {
            let node = self
                .node
                .get()
                .ok_or_else(|| "the node is still starting".to_string())?;
            node.read(META_GROUP, Consistency::Stale, |s| {
                let account = s.meta.policy.document.account(account)?;
                let role_arn = account.role_arn.clone()?;
                Some(AssumeRole {
                    role_arn,
                    external_id: account.external_id.clone(),
                })
            })
            .await
            .map_err(|e| format!("cannot read the trust policy: {e}"))
        })
    }
}
