//! Errors whose effect may already be in place, the half both clouds
//! share. EC2 refuses a whole authorize when any one of its rules exists
//! (`InvalidPermission.Duplicate`), so on that error each adapter reads the
//! group (its own way) and authorizes only the rules still missing; and an
//! error classified already-done stands for an outcome.

use std::collections::BTreeSet;

use canon_model::{Action, CloudRef, Rule};

use crate::error::{CloudError, ErrorClass, DUPLICATE_RULE};
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
    pub fn remaining(&self, gid: &str, have: &BTreeSet<Rule<String>>) -> Remaining {
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
