//! The trust policy in the replicated log: the versioned document the meta
//! group keeps ([`VersionedPolicy`]), what a [`PolicyChange`] makes of it
//! ([`apply_change`]), and the one authorisation check that the state
//! machine and the node's API share ([`authorise`]), so a refusal reads the
//! same wherever it is made. (What a command carries, [`Principal`] and
//! [`PolicyChange`], is in `policy_command`, beside the command format.)
//!
//! Pure: deciding depends only on the document and the request, so every
//! replica applying the same log decides alike.

use canon_trust::{
    AccessRequest, Decision, KeyId, PolicyDocument, PolicyError, PublicKey, Subject,
};
use serde::{Deserialize, Serialize};

use crate::command::Rejection;
pub use crate::policy_command::{PolicyChange, Principal};

/// The policy document as the meta group holds it. Version 0 is "no policy
/// yet" (a cluster, or a data dir, from before policies): only root keys
/// are accepted then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedPolicy {
    /// 0 before the first change; +1 per accepted change.
    pub version: u64,
    pub document: PolicyDocument,
}

/// The document `change` makes of `old`, validated.
pub fn apply_change(
    change: &PolicyChange,
    old: &PolicyDocument,
) -> Result<PolicyDocument, Rejection> {
    let mut doc = old.clone();
    match change {
        PolicyChange::Put { document, .. } => doc = document.clone(),
        PolicyChange::AccountAdd { account } => {
            if doc.account(&account.name).is_some() {
                return Err(Rejection::PolicyInvalid(format!(
                    "account `{0}` already exists; `canon account update {0}` changes it",
                    account.name
                )));
            }
            doc.accounts.push(account.clone())
        }
        PolicyChange::AccountUpdate { account } => {
            let slot = doc
                .accounts
                .iter_mut()
                .find(|a| a.name == account.name)
                .ok_or_else(|| no_such("account", &account.name))?;
            *slot = account.clone();
        }
        PolicyChange::AccountRemove { name } => {
            doc.account(name).ok_or_else(|| no_such("account", name))?;
            doc.accounts.retain(|a| &a.name != name);
        }
        PolicyChange::UserAdd { user } => {
            if doc.user(&user.name).is_some() {
                return Err(Rejection::PolicyInvalid(format!(
                    "user `{0}` already exists; `canon user rotate-key {0}` replaces their key",
                    user.name
                )));
            }
            refuse_keys_held(&doc, &user.keys, &user.name)?;
            doc.users.push(user.clone())
        }
        PolicyChange::UserRemove { name } => {
            doc.user(name).ok_or_else(|| no_such("user", name))?;
            remove_user(&mut doc, name);
        }
        PolicyChange::UserKeys {
            name,
            add,
            remove,
            replace_all,
        } => {
            let keys = KeyChange {
                add,
                remove,
                replace_all: *replace_all,
            };
            change_keys(&mut doc, name, &keys)?
        }
    }
    doc.validate().map_err(|e| match e {
        PolicyError::Syntax(m) | PolicyError::Invalid(m) => Rejection::PolicyInvalid(m),
    })?;
    Ok(doc)
}

fn no_such(what: &str, name: &str) -> Rejection {
    Rejection::PolicyInvalid(format!("no {what} named `{name}`"))
}

/// What [`PolicyChange::UserKeys`] does to a user's keys.
struct KeyChange<'a> {
    add: &'a [PublicKey],
    remove: &'a [KeyId],
    replace_all: bool,
}

/// Removes user `name`'s keys (all of them, or those with the ids named,
/// each of which must be theirs) and adds the new ones; the document's
/// validation then insists on at least one key left and no key shared.
fn change_keys(
    doc: &mut PolicyDocument,
    name: &str,
    change: &KeyChange<'_>,
) -> Result<(), Rejection> {
    let (add, remove) = (change.add, change.remove);
    refuse_keys_held(doc, add, name)?;
    let user = doc
        .users
        .iter_mut()
        .find(|u| u.name == name)
        .ok_or_else(|| no_such("user", name))?;
    if change.replace_all {
        user.keys.clear();
    }
    for id in remove {
        if !user.keys.iter().any(|k| &k.id() == id) {
            return Err(Rejection::PolicyInvalid(format!(
                "user `{name}` has no key with id {id}"
            )));
        }
    }
    user.keys.retain(|k| !remove.contains(&k.id()));
    for key in add {
        if !user.keys.contains(key) {
            user.keys.push(*key);
        }
    }
    Ok(())
}

/// Refuses `keys` if a user of `doc` other than `owner` already signs with
/// one of them: a key names one user. Whose it is, the refusal does not
/// say: who holds a key is the policy's to tell, and the caller may not
/// read the policy.
fn refuse_keys_held(
    doc: &PolicyDocument,
    keys: &[PublicKey],
    owner: &str,
) -> Result<(), Rejection> {
    let held = keys.iter().find(|k| {
        doc.users
            .iter()
            .any(|u| u.name != owner && u.keys.contains(k))
    });
    match held {
        Some(k) => Err(Rejection::PolicyInvalid(format!(
            "key {} (id {}) is already another user's",
            k,
            k.id()
        ))),
        None => Ok(()),
    }
}

fn remove_user(doc: &mut PolicyDocument, name: &str) {
    doc.users.retain(|u| u.name != name);
    let gone = Subject::User(name.to_string());
    for b in &mut doc.bindings {
        b.subjects.retain(|s| s != &gone);
    }
    doc.bindings.retain(|b| !b.subjects.is_empty());
}

/// Decides whether `principal` may make `request` under `policy`. Root is
/// always allowed (the decision names no rule). A user must still hold the
/// key they signed with in this version of the policy; a refusal names the
/// user, the action, the target and the missing permission or the deny
/// rule that decided.
pub fn authorise(
    policy: &PolicyDocument,
    principal: &Principal,
    request: &AccessRequest<'_>,
) -> Result<Decision, Rejection> {
    if principal.root {
        return Ok(Decision {
            effect: canon_trust::Effect::Allow,
            matched: None,
        });
    }
    authorise_key(policy, principal, request)?;
    let decision = canon_trust::evaluate(policy, &principal.user, request);
    if decision.is_allowed() {
        return Ok(decision);
    }
    Err(refused(
        principal,
        request,
        match &decision.matched {
            Some(rule) => format!("denied by {rule}"),
            None => format!("missing permission {}", missing(request)),
        },
    ))
}

/// Checks only that `principal` signed with a key that is still theirs in
/// `policy` (root always is): enough for a change to their own keys.
pub fn authorise_key(
    policy: &PolicyDocument,
    principal: &Principal,
    request: &AccessRequest<'_>,
) -> Result<(), Rejection> {
    if principal.root {
        return Ok(());
    }
    match policy.key(&KeyId(principal.key_id.clone())) {
        Some((u, _)) if u.name == principal.user => Ok(()),
        _ => Err(refused(
            principal,
            request,
            format!(
                "key {} is not {}'s in the policy now",
                principal.key_id, principal.user
            ),
        )),
    }
}

fn refused(principal: &Principal, request: &AccessRequest<'_>, reason: String) -> Rejection {
    Rejection::Refused {
        user: principal.user.clone(),
        action: request.action.to_string(),
        target: target(request),
        reason,
    }
}

/// The permission a refused request lacks, as a rule would grant it.
fn missing(request: &AccessRequest<'_>) -> String {
    let mut s = request.action.to_string();
    if let Some(a) = request.account {
        s += &format!(" on account {a}");
    }
    if let Some(a) = request.alias {
        s += &format!(" for alias {a}");
    }
    s
}

/// What a request is on, as a refusal names it.
fn target(request: &AccessRequest<'_>) -> String {
    match (request.account, request.alias) {
        (None, None) => "the cluster".into(),
        (Some(acc), None) => format!("account {acc}"),
        (None, Some(alias)) => format!("alias {alias}"),
        (Some(acc), Some(alias)) => format!("alias {alias} in account {acc}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_trust::Action;

    const ALICE: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn doc() -> PolicyDocument {
        PolicyDocument::from_toml(&format!(
            r#"
[[users]]
name = "alice"
keys = ["{ALICE}"]
groups = ["web"]

[[roles]]
name = "deployer"
rules = [
  {{ effect = "allow", actions = ["process.*"], accounts = ["web-*"] }},
  {{ effect = "deny", actions = ["process.kill"], accounts = ["web-prod"] }},
]

[[bindings]]
role = "deployer"
subjects = ["group:web", "user:alice"]
"#
        ))
        .unwrap()
    }

    fn alice() -> Principal {
        let key = canon_trust::PublicKey::from_hex(ALICE).unwrap();
        Principal {
            user: "alice".into(),
            key_id: key.id().0,
            root: false,
        }
    }

    fn ask(action: Action, account: &str) -> AccessRequest<'_> {
        AccessRequest {
            action,
            account: Some(account),
            alias: Some("web-1"),
        }
    }

    #[test]
    fn refusals_name_user_action_target_and_reason() {
        let d = doc();
        assert!(authorise(&d, &alice(), &ask(Action::ProcessRun, "web-dev")).is_ok());
        let e = authorise(&d, &alice(), &ask(Action::ProcessKill, "web-prod")).unwrap_err();
        let text = e.to_string();
        for part in [
            "alice",
            "process.kill",
            "web-prod",
            "web-1",
            "denied by role deployer rule 2",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let e = authorise(&d, &alice(), &ask(Action::ProcessRun, "db")).unwrap_err();
        assert!(
            e.to_string()
                .contains("missing permission process.run on account db"),
            "{e}"
        );
        let root = Principal {
            root: true,
            ..alice()
        };
        assert!(authorise(
            &PolicyDocument::default(),
            &root,
            &ask(Action::PolicyPut, "x")
        )
        .is_ok());
        let stale = Principal {
            key_id: "0000".into(),
            ..alice()
        };
        let e = authorise(&d, &stale, &ask(Action::ProcessRun, "web-dev")).unwrap_err();
        assert!(e.to_string().contains("not alice's"), "{e}");
    }

    #[test]
    fn adding_what_exists_is_refused_by_name_not_by_index() {
        const BOB: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
        let key = |hex: &str| canon_trust::PublicKey::from_hex(hex).unwrap();
        let user = |name: &str, hex: &str| canon_trust::User {
            name: name.into(),
            keys: vec![key(hex)],
            groups: Vec::new(),
        };
        let refusal = |change: PolicyChange| apply_change(&change, &doc()).unwrap_err().to_string();

        let again = refusal(PolicyChange::UserAdd {
            user: user("alice", BOB),
        });
        assert!(again.contains("user `alice` already exists"), "{again}");
        assert!(!again.contains("users["), "{again}");

        let shared = refusal(PolicyChange::UserAdd {
            user: user("bob", ALICE),
        });
        assert!(shared.contains("is already another user's"), "{shared}");
        assert!(
            !shared.contains("alice"),
            "whose key it is stays unsaid: {shared}"
        );

        let d = apply_change(
            &PolicyChange::UserAdd {
                user: user("bob", BOB),
            },
            &doc(),
        )
        .unwrap();
        let taken = apply_change(
            &PolicyChange::UserKeys {
                name: "bob".into(),
                add: vec![key(ALICE)],
                remove: Vec::new(),
                replace_all: false,
            },
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(taken.contains("is already another user's"), "{taken}");
        let kept = apply_change(
            &PolicyChange::UserKeys {
                name: "bob".into(),
                add: vec![key(BOB)],
                remove: Vec::new(),
                replace_all: true,
            },
            &d,
        );
        assert!(kept.is_ok(), "a user's own key is not another's: {kept:?}");

        let with_account = PolicyDocument::from_toml(
            "[[accounts]]\nname = \"web-dev\"\naws_account_id = \"333333333333\"\n",
        )
        .unwrap();
        let account = with_account.accounts[0].clone();
        let d = apply_change(
            &PolicyChange::AccountAdd {
                account: account.clone(),
            },
            &doc(),
        )
        .unwrap();
        let e = apply_change(&PolicyChange::AccountAdd { account }, &d)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("account `web-dev` already exists; `canon account update web-dev`"),
            "{e}"
        );
    }

    #[test]
    fn removing_a_user_drops_them_from_bindings() {
        let remove = |name: &str| {
            let change = PolicyChange::UserRemove { name: name.into() };
            apply_change(&change, &doc())
        };
        let d = remove("alice").unwrap();
        assert!(d.users.is_empty());
        assert_eq!(d.bindings[0].subjects, vec![Subject::Group("web".into())]);
        let e = remove("bob").unwrap_err();
        assert!(e.to_string().contains("no user named `bob`"));
    }
}
