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

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use crate::action::Action;
use crate::document::{Effect, PolicyDocument, User};
use crate::evaluate::{applicable, decide, AccessRequest, Applicable};
use crate::pattern::{Pattern, OUTSIDE};

/// A change that would give a user something its author does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{author} may not give {user}{note} {request}: {author} does not hold it \
     (only a holder of policy.escalate may grant more than they hold)",
    note = if *.unlisted { " (named in a binding, not a user yet)" } else { "" }
)]
pub struct Escalation {
    pub author: String,
    pub user: String,
    /// `user` is named by a binding and not listed as a user: the change
    /// would give whoever is added under that name the request.
    pub unlisted: bool,
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
    let check = Check {
        author,
        author_rules: &author_rules,
        points: &points,
    };
    for user in &new.users {
        check.user(old, new, &user.name, false)?;
    }
    // A binding may name a user not listed yet: it grants nothing until one
    // is added, but whoever writes it must hold what it would grant, or a
    // later `user add` by someone else (root) would hand it out unchecked.
    let unlisted: BTreeSet<&str> = new.unlisted_subjects().map(|(_, _, name)| name).collect();
    for name in unlisted {
        let old_view = match old.user(name) {
            Some(_) => Cow::Borrowed(old),
            None => Cow::Owned(with_user(old, name)),
        };
        check.user(&old_view, &with_user(new, name), name, true)?;
    }
    Ok(())
}

/// What every user of a change is checked against.
struct Check<'a> {
    author: &'a str,
    author_rules: &'a [Applicable<'a>],
    points: &'a Points,
}

impl Check<'_> {
    /// Refuses the change if `user` may do under `new` something they may
    /// not under `old` and the author may not either (`unlisted`: `user`
    /// is only named by a binding).
    fn user(
        &self,
        old: &PolicyDocument,
        new: &PolicyDocument,
        user: &str,
        unlisted: bool,
    ) -> Result<(), Box<Escalation>> {
        let now = applicable(new, user);
        let before = applicable(old, user);
        if same_rules(&now, &before) {
            return Ok(());
        }
        let Some((action, account, alias)) =
            self.points
                .first_newly_allowed(&now, &before, self.author_rules)
        else {
            return Ok(());
        };
        let request = AccessRequest {
            action,
            account: account.as_deref(),
            alias: alias.as_deref(),
        };
        Err(Box::new(Escalation {
            author: self.author.to_string(),
            user: user.to_string(),
            unlisted,
            request: describe(&request).to_string(),
            action,
            account,
            alias,
        }))
    }
}

/// `doc` with a user `name` of no keys and no groups: what a binding to
/// `name` would give a user of that name.
fn with_user(doc: &PolicyDocument, name: &str) -> PolicyDocument {
    let mut d = doc.clone();
    d.users.push(User {
        name: name.to_string(),
        keys: Vec::new(),
        groups: Vec::new(),
    });
    d
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
