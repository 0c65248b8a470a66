//! Which IAM role the adapter assumes to act in an account. Canon runs in
//! its own account and reaches each team's account through a role that
//! trusts it (with an external id, the confused-deputy guard AWS
//! recommends). The accounts live in the cluster's trust policy and change
//! while nodes run, so the adapter asks an [`AccountRoles`] on each new
//! client rather than reading a fixed map once.

use std::collections::BTreeMap;

use crate::BoxFuture;

/// A role to assume: its ARN and the external id its trust policy asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
}

impl AssumeRole {
    /// A role without an external id.
    pub fn arn(role_arn: impl Into<String>) -> Self {
        AssumeRole {
            role_arn: role_arn.into(),
            external_id: None,
        }
    }
}

/// Where the adapter learns the role of an account (the `Scope.account` of
/// a call): `Ok(None)`, act with the node's own credentials; an error, the
/// directory cannot say now (the call fails, retryable: acting with the
/// node's own credentials instead could act in the wrong account).
pub trait AccountRoles: Send + Sync + std::fmt::Debug {
    fn role_of<'a>(&'a self, account: &'a str)
        -> BoxFuture<'a, Result<Option<AssumeRole>, String>>;
}

/// A fixed map, account → role (configuration, tests).
impl AccountRoles for BTreeMap<String, AssumeRole> {
    fn role_of<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Option<AssumeRole>, String>> {
        let role = self.get(account).cloned();
        Box::pin(async move { Ok(role) })
    }
}
