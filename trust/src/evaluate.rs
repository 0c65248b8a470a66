//! Deciding one request: may this user do this action on this account and
//! alias?
//!
//! A matching deny wins; otherwise a matching allow grants; otherwise the
//! answer is deny. A rule matches when a binding gives its role to the user
//! (by name or by one of the user's groups), the binding's accounts (if any)
//! match the request's account, and the rule's actions, accounts and
//! aliases match. The decision names the rule that decided, so a refusal
//! can say why.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::document::{Binding, Effect, PolicyDocument, Rule, Subject};
use crate::pattern::any_matches;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRequest<'a> {
    pub action: Action,
    /// The account the action is on (none for cluster-wide actions).
    pub account: Option<&'a str>,
    /// The process alias the action is on (none for actions on no process,
    /// or on every process, such as listing).
    pub alias: Option<&'a str>,
}

impl fmt::Display for AccessRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        if let Some(a) = self.account {
            write!(f, " on account {a}")?;
        }
        if let Some(a) = self.alias {
            write!(f, " for alias {a}")?;
        }
        Ok(())
    }
}

/// The rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRule {
    pub role: String,
    /// 1-based, as people count the rules of a role.
    pub rule: usize,
    /// The rule as text (`deny process.kill on accounts web-prod`).
    pub text: String,
}

impl fmt::Display for MatchedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role {} rule {} ({})", self.role, self.rule, self.text)
    }
}

/// The answer and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub effect: Effect,
    /// The deny or allow rule that decided; none when no rule matched (an
    /// implicit deny).
    pub matched: Option<MatchedRule>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matched {
            Some(m) => write!(f, "{} by {m}", self.effect),
            None => write!(f, "{}: no rule allows it", self.effect),
        }
    }
}

/// One rule that applies to a user, with where it comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applicable<'d> {
    pub binding: &'d Binding,
    pub role: &'d str,
    /// 0-based index in the role.
    pub index: usize,
    pub rule: &'d Rule,
}

impl Applicable<'_> {
    fn matches(&self, request: &AccessRequest<'_>) -> bool {
        let binding_ok = match &self.binding.accounts {
            Some(accounts) => any_matches(accounts, request.account),
            None => true,
        };
        binding_ok
            && self.rule.actions.iter().any(|a| a.matches(request.action))
            && self
                .rule
                .accounts
                .as_ref()
                .is_none_or(|ps| any_matches(ps, request.account))
            && self
                .rule
                .aliases
                .as_ref()
                .is_none_or(|ps| any_matches(ps, request.alias))
    }

    fn to_matched(self) -> MatchedRule {
        MatchedRule {
            role: self.role.to_string(),
            rule: self.index + 1,
            text: self.rule.to_string(),
        }
    }
}

/// Every rule bound to `user`, directly or through a group; none for an
/// unknown user.
pub(crate) fn applicable<'d>(doc: &'d PolicyDocument, user: &str) -> Vec<Applicable<'d>> {
    let Some(u) = doc.user(user) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for binding in &doc.bindings {
        let bound = binding.subjects.iter().any(|s| match s {
            Subject::User(name) => name == user,
            Subject::Group(g) => u.groups.contains(g),
        });
        let Some(role) = bound.then(|| doc.role(&binding.role)).flatten() else {
            continue;
        };
        for (index, rule) in role.rules.iter().enumerate() {
            out.push(Applicable {
                binding,
                role: &role.name,
                index,
                rule,
            });
        }
    }
    out
}

/// Decides `request` for `user` over rules already gathered by
/// [`applicable`].
pub(crate) fn decide(rules: &[Applicable<'_>], request: &AccessRequest<'_>) -> Decision {
    let mut allow = None;
    for a in rules.iter().filter(|a| a.matches(request)) {
        match a.rule.effect {
            Effect::Deny => {
                return Decision {
                    effect: Effect::Deny,
                    matched: Some(a.to_matched()),
                }
            }
            Effect::Allow => {
                allow.get_or_insert(*a);
            }
        }
    }
    match allow {
        Some(a) => Decision {
            effect: Effect::Allow,
            matched: Some(a.to_matched()),
        },
        None => Decision {
            effect: Effect::Deny,
            matched: None,
        },
    }
}

/// Decides `request` for the user named `user` under `doc`.
pub fn evaluate(doc: &PolicyDocument, user: &str, request: &AccessRequest<'_>) -> Decision {
    decide(&applicable(doc, user), request)
}
