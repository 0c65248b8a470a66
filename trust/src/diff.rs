//! What a new policy document changes, line by line, for `canon policy
//! apply` to show before (or instead of, with `--dry-run`) applying it.

use std::fmt;

use crate::document::{Account, Binding, PolicyDocument, Role, Subject, User};

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
    taken_up(&mut out, old, new);
    out
}

/// A user added under a name that bindings already named: those bindings
/// now grant them something, though no binding changed. Said, so that
/// adding a user does not hand out roles unseen.
fn taken_up(out: &mut Vec<Change>, old: &PolicyDocument, new: &PolicyDocument) {
    for user in new.users.iter().filter(|u| old.user(&u.name).is_none()) {
        let named = Subject::User(user.name.clone());
        let roles: Vec<String> = new
            .bindings
            .iter()
            .filter(|b| old.bindings.contains(b) && b.subjects.contains(&named))
            .map(|b| b.role.clone())
            .collect();
        if !roles.is_empty() {
            out.push(Change {
                sign: Sign::Added,
                text: format!(
                    "user {} takes up roles bound to them before they were listed: {}",
                    user.name,
                    list(&roles)
                ),
            });
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_user_a_binding_already_named_says_what_they_take_up() {
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let before = r#"
[[roles]]
name = "deployer"
rules = [{ effect = "allow", actions = ["process.*"] }]

[[bindings]]
role = "deployer"
subjects = ["user:bob"]
"#;
        let after = format!("[[users]]\nname = \"bob\"\nkeys = [\"{key}\"]\n{before}");
        let old = PolicyDocument::from_toml(before).unwrap();
        let new = PolicyDocument::from_toml(&after).unwrap();
        let lines: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("+ user bob (keys "), "{lines:?}");
        assert_eq!(
            lines[1],
            "+ user bob takes up roles bound to them before they were listed: deployer"
        );
        // Adding the binding and the user at once shows the binding itself.
        let empty = PolicyDocument::default();
        let lines: Vec<String> = diff(&empty, &new).iter().map(ToString::to_string).collect();
        assert!(!lines.iter().any(|l| l.contains("takes up")), "{lines:?}");
    }
}
