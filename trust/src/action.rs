//! The actions a policy grants or denies, named as the seed's Conductor
//! named them (`process.run`, `policy.put`, …).
//!
//! The list is closed: a rule that names an action no command checks is a
//! typo, refused when the policy is read, with the nearest names offered.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::pattern::Pattern;

macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// Something a principal asks to do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action, in the order the docs list them.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The action's name (`process.run`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    ProcessRun => "process.run",
    ProcessUpdate => "process.update",
    ProcessKill => "process.kill",
    ProcessSuspend => "process.suspend",
    ProcessResume => "process.resume",
    ProcessStatus => "process.status",
    ProcessHistory => "process.history",
    ProcessRelease => "process.release",
    AccountAdd => "account.add",
    AccountList => "account.list",
    AccountUpdate => "account.update",
    AccountRemove => "account.remove",
    PolicyGet => "policy.get",
    PolicyPut => "policy.put",
    PolicyEscalate => "policy.escalate",
    UserAdd => "user.add",
    UserRemove => "user.remove",
    UserRotateKey => "user.rotate-key",
    AuditRead => "audit.read",
    ClusterJoin => "cluster.join",
    ClusterRemove => "cluster.remove",
    ValidationAdd => "validation.add",
    ValidationRemove => "validation.remove",
    ValidationList => "validation.list",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An action name that is not one of [`Action::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{name}`{}", hint(.suggestions))]
pub struct UnknownAction {
    pub name: String,
    /// The nearest known names, best first.
    pub suggestions: Vec<&'static str>,
}

fn hint(suggestions: &[&str]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; perhaps you mean {}", suggestions.join(" or "))
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAction {
                name: s.to_string(),
                suggestions: nearest(s),
            })
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A pattern over action names (`process.*`, `*`, `policy.get`) that
/// matches at least one known action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionPattern(Pattern);

impl ActionPattern {
    /// Parses a pattern, refusing one that matches no known action.
    pub fn parse(text: &str) -> Result<Self, UnknownAction> {
        let pattern = Pattern::parse(text).map_err(|_| UnknownAction {
            name: text.to_string(),
            suggestions: nearest(text),
        })?;
        if Action::ALL.iter().any(|a| pattern.matches(a.name())) {
            Ok(ActionPattern(pattern))
        } else {
            Err(UnknownAction {
                name: text.to_string(),
                suggestions: nearest(text.trim_end_matches('*')),
            })
        }
    }

    /// Whether `action` matches.
    pub fn matches(&self, action: Action) -> bool {
        self.0.matches(action.name())
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ActionPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActionPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ActionPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Known action names within a small edit distance of `name`, nearest first.
fn nearest(name: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = Action::ALL
        .iter()
        .map(|a| (edit_distance(name, a.name()), a.name()))
        .filter(|(d, _)| *d <= 3)
        .collect();
    scored.sort();
    scored.into_iter().take(2).map(|(_, n)| n).collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>().unwrap(), *a);
        }
        assert_eq!(Action::ALL.len(), 24);
    }

    #[test]
    fn a_typo_is_refused_with_the_nearest_names() {
        let e = "proces.run".parse::<Action>().unwrap_err();
        assert_eq!(e.suggestions.first(), Some(&"process.run"));
        assert!(e.to_string().contains("perhaps you mean process.run"));
        let e = ActionPattern::parse("procss.*").unwrap_err();
        assert!(e.to_string().contains("unknown action `procss.*`"));
    }

    #[test]
    fn patterns_match_families() {
        let p = ActionPattern::parse("process.*").unwrap();
        assert!(p.matches(Action::ProcessKill));
        assert!(!p.matches(Action::PolicyPut));
        assert!(ActionPattern::parse("*")
            .unwrap()
            .matches(Action::ClusterJoin));
    }
}
