//! The no-escalation rule: a change to the policy may give a user only what
//! the author of the change already holds, unless the author holds
//! `policy.escalate`.
//!
//! "What a change gives" is every request some user may make under the new
//! document and not under the old one — by a new binding, a new rule, a
//! wider pattern, a new group membership, a removed deny, or a new user.
//! Patterns only ever end in `*`, so finitely many representative accounts
//! and aliases ([`Pattern::representatives`]) tell apart everything the two
//! documents can: checking those points checks every request.

use std::collections::BTreeSet;
use std::fmt;

use crate::action::Action;
use crate::document::{Effect, PolicyDocument};
use crate::evaluate::{applicable, decide, AccessRequest, Applicable};
use crate::pattern::{Pattern, OUTSIDE};

/// A change that would give a user something its author does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{author} may not give {user} {request}: {author} does not hold it \
     (only a holder of policy.escalate may grant more than they hold)"
)]
pub struct Escalation {
    pub author: String,
    pub user: String,
    /// The first request found that the change would newly allow, as
    /// people read it (`process.kill on account web-…`).
    pub request: String,
    /// That request itself: its account and alias are representative names
    /// (a name ending in U+0001 stands for any name with that prefix).
    pub action: Action,
    pub account: Option<String>,
    pub alias: Option<String>,
}

/// Checks that `author`, under the policy `old`, may make the change to
/// `new`. The cluster's root key is not a user and is never checked here.
pub fn check_no_escalation(
    old: &PolicyDocument,
    new: &PolicyDocument,
    author: &str,
) -> Result<(), Box<Escalation>> {
    let author_rules = applicable(old, author);
    let escalate = AccessRequest {
        action: Action::PolicyEscalate,
        account: None,
        alias: None,
    };
    if decide(&author_rules, &escalate).is_allowed() {
        return Ok(());
    }
    let points = Points::of(old, new);
    for user in &new.users {
        let now = applicable(new, &user.name);
        let before = applicable(old, &user.name);
        if same_rules(&now, &before) {
            continue;
        }
        if let Some((action, account, alias)) =
            points.first_newly_allowed(&now, &before, &author_rules)
        {
            let request = AccessRequest {
                action,
                account: account.as_deref(),
                alias: alias.as_deref(),
            };
            return Err(Box::new(Escalation {
                author: author.to_string(),
                user: user.name.clone(),
                request: describe(&request).to_string(),
                action,
                account,
                alias,
            }));
        }
    }
    Ok(())
}

fn same_rules(a: &[Applicable<'_>], b: &[Applicable<'_>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.rule == y.rule && x.binding.accounts == y.binding.accounts)
}

/// Representative accounts and aliases of two documents.
struct Points {
    accounts: Vec<Option<String>>,
    aliases: Vec<Option<String>>,
}

impl Points {
    fn of(old: &PolicyDocument, new: &PolicyDocument) -> Self {
        let mut account_patterns = BTreeSet::new();
        let mut alias_patterns = BTreeSet::new();
        for doc in [old, new] {
            for a in &doc.accounts {
                account_patterns.insert(Pattern::Exact(a.name.clone()));
            }
            for b in &doc.bindings {
                account_patterns.extend(b.accounts.iter().flatten().cloned());
            }
            for rule in doc.roles.iter().flat_map(|r| &r.rules) {
                account_patterns.extend(rule.accounts.iter().flatten().cloned());
                alias_patterns.extend(rule.aliases.iter().flatten().cloned());
            }
        }
        let with_none = |names: Vec<String>| {
            std::iter::once(None)
                .chain(names.into_iter().map(Some))
                .collect()
        };
        Points {
            accounts: with_none(Pattern::representatives(&account_patterns)),
            aliases: with_none(Pattern::representatives(&alias_patterns)),
        }
    }

    /// The first request `now` allows, `before` does not, and the author's
    /// rules do not allow either.
    fn first_newly_allowed(
        &self,
        now: &[Applicable<'_>],
        before: &[Applicable<'_>],
        author: &[Applicable<'_>],
    ) -> Option<(Action, Option<String>, Option<String>)> {
        for action in Action::ALL.iter().copied() {
            for account in &self.accounts {
                for alias in &self.aliases {
                    let request = AccessRequest {
                        action,
                        account: account.as_deref(),
                        alias: alias.as_deref(),
                    };
                    let granted = decide(now, &request).effect == Effect::Allow
                        && !decide(before, &request).is_allowed();
                    if granted && !decide(author, &request).is_allowed() {
                        return Some((action, account.clone(), alias.clone()));
                    }
                }
            }
        }
        None
    }
}

/// A representative request as people read it: `web-…` for "an account
/// whose name starts with web-".
fn describe(request: &AccessRequest<'_>) -> Described {
    let show = |name: Option<&str>, what: &str| -> Option<String> {
        name.map(|n| match n.strip_suffix(OUTSIDE) {
            Some("") => format!("any {what}"),
            Some(prefix) => format!("{what} {prefix}…"),
            None => format!("{what} {n}"),
        })
    };
    Described {
        action: request.action,
        account: show(request.account, "account"),
        alias: show(request.alias, "alias"),
    }
}

struct Described {
    action: Action,
    account: Option<String>,
    alias: Option<String>,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        if let Some(a) = &self.account {
            write!(f, " on {a}")?;
        }
        if let Some(a) = &self.alias {
            write!(f, " for {a}")?;
        }
        Ok(())
    }
}
