//! Name patterns as policies write them: `*` (anything), `prefix*`
//! (anything that starts with the prefix) or an exact name.
//!
//! Only a trailing `*` is a wildcard. That keeps matching a prefix test and
//! makes every question the no-escalation rule asks (does this pattern match
//! that name, which names tell two policies apart) decidable by looking at a
//! handful of representative names; see [`Pattern::representatives`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A character no name may contain: representative names of "anything after
/// this prefix" end with it, so they match no exact name and no longer
/// prefix.
pub(crate) const OUTSIDE: char = '\u{1}';

/// `*`, `prefix*` or an exact name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// Matches every name that starts with the prefix (`*` is the empty
    /// prefix).
    Prefix(String),
    /// Matches this name only.
    Exact(String),
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("the pattern is empty; write `*` to match everything")]
    Empty,
    #[error("`{0}` has a `*` before its end; only a trailing `*` is a wildcard (`web-*`)")]
    InnerStar(String),
    #[error("`{0}` contains a control character")]
    Control(String),
}

impl Pattern {
    /// The pattern that matches everything.
    pub fn any() -> Self {
        Pattern::Prefix(String::new())
    }

    /// Parses `*`, `prefix*` or an exact name.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.chars().any(char::is_control) {
            return Err(PatternError::Control(text.escape_debug().to_string()));
        }
        let (body, wildcard) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.contains('*') {
            return Err(PatternError::InnerStar(text.to_string()));
        }
        Ok(if wildcard {
            Pattern::Prefix(body.to_string())
        } else {
            Pattern::Exact(body.to_string())
        })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Pattern::Exact(exact) => name == exact,
        }
    }

    /// True for `*`.
    pub fn is_any(&self) -> bool {
        matches!(self, Pattern::Prefix(p) if p.is_empty())
    }

    /// Names that stand for every name as far as `patterns` can tell: any
    /// name matches exactly the same patterns of the list as one of these.
    /// (An exact name stands for itself; `prefix` followed by [`OUTSIDE`]
    /// stands for every other name under the longest prefix it has; and
    /// [`OUTSIDE`] alone for names no prefix matches.)
    pub fn representatives<'a>(patterns: impl IntoIterator<Item = &'a Pattern>) -> Vec<String> {
        let mut names = vec![OUTSIDE.to_string()];
        for p in patterns {
            names.push(match p {
                Pattern::Exact(e) => e.clone(),
                Pattern::Prefix(prefix) => format!("{prefix}{OUTSIDE}"),
            });
        }
        names.sort();
        names.dedup();
        names
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Prefix(p) => write!(f, "{p}*"),
            Pattern::Exact(e) => f.write_str(e),
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether any of `patterns` matches `name`; a request without a name (an
/// action on no account, say) is matched only by `*`.
pub fn any_matches(patterns: &[Pattern], name: Option<&str>) -> bool {
    match name {
        Some(name) => patterns.iter().any(|p| p.matches(name)),
        None => patterns.iter().any(Pattern::is_any),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(Pattern::parse("*").unwrap(), Pattern::any());
        assert_eq!(
            Pattern::parse("web-*").unwrap(),
            Pattern::Prefix("web-".into())
        );
        assert_eq!(
            Pattern::parse("web-prod").unwrap(),
            Pattern::Exact("web-prod".into())
        );
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(
            Pattern::parse("w*b"),
            Err(PatternError::InnerStar(_))
        ));
        assert!(matches!(
            Pattern::parse("a\u{1}"),
            Err(PatternError::Control(_))
        ));
    }

    #[test]
    fn matching() {
        let web = Pattern::parse("web-*").unwrap();
        assert!(web.matches("web-prod"));
        assert!(web.matches("web-"));
        assert!(!web.matches("web"));
        assert!(Pattern::any().matches(""));
        assert!(any_matches(&[Pattern::any()], None));
        assert!(!any_matches(&[web], None));
    }

    #[test]
    fn representatives_tell_every_class_apart() {
        let ps: Vec<Pattern> = ["web-*", "web-prod", "w*", "db"]
            .iter()
            .map(|p| Pattern::parse(p).unwrap())
            .collect();
        let reps = Pattern::representatives(&ps);
        let class = |name: &str| ps.iter().map(|p| p.matches(name)).collect::<Vec<_>>();
        for name in [
            "web-prod", "web-dev", "w", "wx", "db", "dbx", "", "zzz", "web-",
        ] {
            assert!(
                reps.iter().any(|r| class(r) == class(name)),
                "{name:?} has no representative"
            );
        }
    }
}
