//! Errors whose effect may already be in place, the half both clouds
//! share. EC2 refuses a whole authorize when any one of its rules exists
//! (`InvalidPermission.Duplicate`), so on that error each adapter reads the
//! group (its own way) and authorizes only the rules still missing; a
//! network ACL entry refused because its number is taken
//! (`NetworkAclEntryAlreadyExists`) is done if the ACL holds that very
//! entry (a create sent again after its answer was lost); and an error
//! classified already-done stands for an outcome.

use std::collections::BTreeSet;

use canon_model::{AclEntry, Action, CloudRef, Rule, SortedVecSet};

use crate::error::{CloudError, ErrorClass, DUPLICATE_RULE, NACL_ENTRY_EXISTS};
use crate::Outcome;

/// An authorize of security-group rules that EC2 refused for a duplicate.
#[derive(Debug, Clone, Copy)]
pub struct Authorization<'a> {
    group: &'a CloudRef,
    rules: &'a BTreeSet<Rule<CloudRef>>,
    /// Ingress rules, else egress.
    pub ingress: bool,
}

/// What is left of an authorize once the group's current rules are known.
#[derive(Debug)]
pub enum Remaining {
    /// Every rule is on the group already.
    Nothing(Outcome),
    /// The same authorize, of the missing rules only.
    Authorize(Action),
}

impl<'a> Authorization<'a> {
    /// The authorize to narrow when `action` failed with `e` because one
    /// of its rules exists; `None` for any other failure.
    pub fn refused(action: &'a Action, e: &CloudError) -> Option<Self> {
        if e.code != DUPLICATE_RULE {
            return None;
        }
        match action {
            Action::AuthorizeSecurityGroupIngress { group, rules } => Some(Authorization {
                group,
                rules,
                ingress: true,
            }),
            Action::AuthorizeSecurityGroupEgress { group, rules } => Some(Authorization {
                group,
                rules,
                ingress: false,
            }),
            _ => None,
        }
    }

    /// The group's cloud id.
    pub fn group_id(&self) -> Result<&'a str, CloudError> {
        crate::refs::id(self.group)
    }

    /// What is left to authorize on group `gid`, which has `have` in this
    /// direction.
    pub fn remaining(&self, gid: &str, have: &SortedVecSet<Rule<String>>) -> Remaining {
        let missing: BTreeSet<Rule<CloudRef>> = self
            .rules
            .iter()
            .filter(|r| !have.contains(&r.map_peer(|g| g.id().unwrap_or_default().to_string())))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Remaining::Nothing(Outcome::already_done(
                None,
                format!("every rule already on {gid}"),
            ));
        }
        let group = self.group.clone();
        Remaining::Authorize(if self.ingress {
            Action::AuthorizeSecurityGroupIngress {
                group,
                rules: missing,
            }
        } else {
            Action::AuthorizeSecurityGroupEgress {
                group,
                rules: missing,
            }
        })
    }
}

/// A network ACL entry EC2 refused because its direction and number are
/// taken.
#[derive(Debug, Clone, Copy)]
pub struct EntryTaken<'a> {
    network_acl: &'a CloudRef,
    entry: &'a AclEntry,
}

impl<'a> EntryTaken<'a> {
    /// The create to check when `action` failed with `e` because its
    /// entry's number is taken; `None` for any other failure.
    pub fn refused(action: &'a Action, e: &CloudError) -> Option<Self> {
        match action {
            Action::CreateNetworkAclEntry { network_acl, entry } if e.code == NACL_ENTRY_EXISTS => {
                Some(EntryTaken { network_acl, entry })
            }
            _ => None,
        }
    }

    /// The ACL's cloud id.
    pub fn acl_id(&self) -> Result<&'a str, CloudError> {
        crate::refs::id(self.network_acl)
    }

    /// Done if the ACL's entries `have` hold the entry asked for; else
    /// `e`, the refusal (retried: the next plan replaces the entry).
    pub fn settle(&self, have: &BTreeSet<AclEntry>, e: CloudError) -> Result<Outcome, CloudError> {
        if have.contains(self.entry) {
            Ok(Outcome::already_done(
                None,
                format!("{} {} is there already", self.entry.property(), self.entry),
            ))
        } else {
            Err(e)
        }
    }
}

/// An error classified already-done as the outcome it stands for; any
/// other error as it is.
pub fn already_done(e: CloudError) -> Result<Outcome, CloudError> {
    if e.class == ErrorClass::AlreadyDone {
        Ok(Outcome::already_done(
            None,
            format!("{}: {}", e.code, e.message),
        ))
    } else {
        Err(e)
    }
}
