//! What a new policy document changes, line by line, for `canon policy
//! apply` to show before (or instead of, with `--dry-run`) applying it.

use std::fmt;

use crate::document::{Account, Binding, PolicyDocument, Role, User};

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Added,
    Removed,
    Changed,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub sign: Sign,
    pub text: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.sign {
            Sign::Added => '+',
            Sign::Removed => '-',
            Sign::Changed => '~',
        };
        write!(f, "{sign} {}", self.text)
    }
}

/// The changes from one document to another, in document order: users,
/// accounts, roles, bindings.
pub fn diff(old: &PolicyDocument, new: &PolicyDocument) -> Vec<Change> {
    let mut out = Vec::new();
    named(
        &mut out,
        &old.users,
        &new.users,
        |u| &u.name,
        user_text,
        user_change,
    );
    named(
        &mut out,
        &old.accounts,
        &new.accounts,
        |a| &a.name,
        account_text,
        account_change,
    );
    named(
        &mut out,
        &old.roles,
        &new.roles,
        |r| &r.name,
        role_text,
        role_change,
    );
    bindings(&mut out, &old.bindings, &new.bindings);
    out
}

/// Entries identified by name: removed, added, or changed in place.
fn named<T: PartialEq>(
    out: &mut Vec<Change>,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
    text: impl Fn(&T) -> String,
    change: impl Fn(&T, &T) -> String,
) {
    for o in old {
        if !new.iter().any(|n| name(n) == name(o)) {
            out.push(Change {
                sign: Sign::Removed,
                text: text(o),
            });
        }
    }
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            None => out.push(Change {
                sign: Sign::Added,
                text: text(n),
            }),
            Some(o) if o != n => out.push(Change {
                sign: Sign::Changed,
                text: change(o, n),
            }),
            Some(_) => {}
        }
    }
}

fn user_text(u: &User) -> String {
    let keys: Vec<String> = u.keys.iter().map(|k| k.id().to_string()).collect();
    format!(
        "user {} (keys {}; groups {})",
        u.name,
        keys.join(", "),
        list(&u.groups)
    )
}

fn user_change(old: &User, new: &User) -> String {
    format!("{} → {}", user_text(old), user_text(new))
}

fn account_text(a: &Account) -> String {
    let mut s = format!("account {} ({}", a.name, a.aws_account_id);
    if let Some(r) = &a.role_arn {
        s += &format!(", role {r}");
    }
    if a.external_id.is_some() {
        s += ", external id set";
    }
    if let Some(r) = &a.region {
        s += &format!(", region {r}");
    }
    for (region, url) in &a.events_queues {
        s += &format!(", events of {region} from {url}");
    }
    s + ")"
}

fn account_change(old: &Account, new: &Account) -> String {
    format!("{} → {}", account_text(old), account_text(new))
}

fn role_text(r: &Role) -> String {
    let rules: Vec<String> = r.rules.iter().map(ToString::to_string).collect();
    format!("role {}: {}", r.name, rules.join("; "))
}

fn role_change(old: &Role, new: &Role) -> String {
    let removed: Vec<String> = old
        .rules
        .iter()
        .filter(|r| !new.rules.contains(r))
        .map(|r| format!("- {r}"))
        .collect();
    let added: Vec<String> = new
        .rules
        .iter()
        .filter(|r| !old.rules.contains(r))
        .map(|r| format!("+ {r}"))
        .collect();
    let mut parts = removed;
    parts.extend(added);
    if parts.is_empty() {
        parts.push("rules reordered".into());
    }
    format!("role {}: {}", new.name, parts.join("; "))
}

fn binding_text(b: &Binding) -> String {
    let subjects: Vec<String> = b.subjects.iter().map(ToString::to_string).collect();
    let mut s = format!("binding {} → {}", b.role, subjects.join(", "));
    if let Some(accounts) = &b.accounts {
        let a: Vec<String> = accounts.iter().map(ToString::to_string).collect();
        s += &format!(" on accounts {}", a.join(", "));
    }
    s
}

/// Bindings have no names: they are compared as a list of values.
fn bindings(out: &mut Vec<Change>, old: &[Binding], new: &[Binding]) {
    for o in old.iter().filter(|o| !new.contains(o)) {
        out.push(Change {
            sign: Sign::Removed,
            text: binding_text(o),
        });
    }
    for n in new.iter().filter(|n| !old.contains(n)) {
        out.push(Change {
            sign: Sign::Added,
            text: binding_text(n),
        });
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
