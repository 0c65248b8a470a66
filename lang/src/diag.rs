//! Diagnostics as values: every phase reports problems as [`Diagnostic`]s
//! (never panics, never stops at the first one); `render` turns them into
//! text or JSON.

use crate::span::Span;

/// What kind of problem: the phase that found it, or the warning's nature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Syntax,
    Scope,
    Type,
    Runtime,
    /// Warning: a binding or import that is never used.
    Unused,
    /// Warning: a local name hides another of the same name.
    Shadowing,
    /// Warning: a fleet's subnets share an availability zone.
    FleetZones,
    /// Warning: a `case` with no arm for some value of its scrutinee.
    NotExhaustive,
    /// Warning: IPv6 rules on a security group whose VPC has no IPv6 block.
    Ipv6WithoutRange,
    /// An organisation's validation found the composition wanting
    /// (`canon_lang::validation`).
    Validation,
}

impl Kind {
    /// How the kind reads in a report header, e.g. `scope error`.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Syntax => "syntax error",
            Kind::Scope => "scope error",
            Kind::Type => "type error",
            Kind::Runtime => "runtime error",
            Kind::Unused => "unused binding",
            Kind::Shadowing => "shadowing",
            Kind::FleetZones => "fleet zones",
            Kind::NotExhaustive => "non-exhaustive case",
            Kind::Ipv6WithoutRange => "IPv6 rule without IPv6",
            Kind::Validation => "validation failed",
        }
    }

    /// Stable machine name (JSON `kind`).
    pub fn code(self) -> &'static str {
        match self {
            Kind::Syntax => "syntax",
            Kind::Scope => "scope",
            Kind::Type => "type",
            Kind::Runtime => "runtime",
            Kind::Unused => "unused",
            Kind::Shadowing => "shadowing",
            Kind::FleetZones => "fleet-zones",
            Kind::NotExhaustive => "non-exhaustive",
            Kind::Ipv6WithoutRange => "ipv6-without-range",
            Kind::Validation => "validation",
        }
    }

    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Kind::Unused
                | Kind::Shadowing
                | Kind::FleetZones
                | Kind::NotExhaustive
                | Kind::Ipv6WithoutRange
        )
    }
}

/// Whether a diagnostic fails the compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One call on the evaluation stack when a runtime error was raised: the
/// function called and where the call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub span: Span,
}

/// One problem found in a composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: Kind,
    pub severity: Severity,
    /// Short heading shown above the source lines (`Not in scope:`).
    pub title: String,
    /// The full message (`Constructor not in scope: AWS.Us-west-3`).
    pub message: String,
    pub span: Span,
    /// Text under the caret; may be empty.
    pub label: String,
    /// "Perhaps you mean" lines and other advice.
    pub hints: Vec<String>,
    /// For runtime errors: the calls that led here, innermost first, ending
    /// at the user's call site.
    pub stack: Vec<Frame>,
}

impl Diagnostic {
    pub fn new(kind: Kind, span: Span, message: impl Into<String>) -> Self {
        let message = message.into();
        Diagnostic {
            kind,
            severity: if kind.is_warning() {
                Severity::Warning
            } else {
                Severity::Error
            },
            title: default_title(kind).to_string(),
            message,
            span,
            label: String::new(),
            hints: Vec::new(),
            stack: Vec::new(),
        }
    }

    pub fn syntax(span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Kind::Syntax, span, message)
    }
    pub fn scope(span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Kind::Scope, span, message)
    }
    pub fn type_error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Kind::Type, span, message)
    }
    pub fn runtime(span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Kind::Runtime, span, message)
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn default_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Syntax => "Syntax error:",
        Kind::Scope => "Not in scope:",
        Kind::Type => "Type mismatch:",
        Kind::Runtime => "error:",
        Kind::Unused => "Unused:",
        Kind::Shadowing => "Shadowing:",
        Kind::FleetZones => "Fleet not spread across zones:",
        Kind::NotExhaustive => "Case not exhaustive:",
        Kind::Ipv6WithoutRange => "IPv6 rule in an IPv4-only VPC:",
        Kind::Validation => "Validation failed:",
    }
}

/// Edit distance with adjacent transpositions (optimal string alignment),
/// for "perhaps you mean" hints: `tpc` is one edit from `tcp`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidates closest to `name`: all those at the smallest distance, if
/// that distance is small enough to be a plausible typo. Sorted, deduplicated.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best = usize::MAX;
    let mut out: Vec<&str> = Vec::new();
    for c in candidates {
        if c == name {
            continue;
        }
        let d = edit_distance(name, c);
        if d > limit {
            continue;
        }
        if d < best {
            best = d;
            out.clear();
        }
        if d == best {
            out.push(c);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_closest() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("tpc", "tcp"), 1);
        let c = closest(
            "Us-west-3",
            [
                "Us-west-1",
                "Us-west-2",
                "Us-east-1",
                "Eu-west-3",
                "Ca-west-1",
            ],
        );
        assert_eq!(c, vec!["Us-west-1", "Us-west-2"]);
        assert!(closest("zzzzzz", ["Us-west-1"]).is_empty());
    }
}
