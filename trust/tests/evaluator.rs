//! Property tests of the evaluator and the no-escalation rule over random
//! policies: deny wins, no matching allow means deny, and a change that
//! passes the escalation check gives nobody a request its author could not
//! make.

use canon_trust::{
    check_no_escalation, evaluate, AccessRequest, Action, ActionPattern, Binding, Effect, Pattern,
    PolicyDocument, PublicKey, Role, Rule, Subject, User,
};
use proptest::prelude::*;

const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const GROUPS: [&str; 2] = ["g0", "g1"];
const ACTIONS: [&str; 8] = [
    "*",
    "process.*",
    "process.run",
    "process.kill",
    "policy.*",
    "policy.escalate",
    "audit.read",
    "account.*",
];

fn name() -> impl Strategy<Value = String> {
    "[ab]{0,3}"
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        Just(Pattern::any()),
        "[ab]{0,2}".prop_map(Pattern::Prefix),
        "[ab]{1,3}".prop_map(Pattern::Exact),
    ]
}

fn patterns() -> impl Strategy<Value = Option<Vec<Pattern>>> {
    prop::option::of(prop::collection::vec(pattern(), 1..3))
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::bool::weighted(0.7),
        prop::collection::vec(prop::sample::select(&ACTIONS[..]), 1..3),
        patterns(),
        patterns(),
    )
        .prop_map(|(allow, actions, accounts, aliases)| Rule {
            effect: if allow { Effect::Allow } else { Effect::Deny },
            actions: actions
                .into_iter()
                .map(|a| ActionPattern::parse(a).expect("known pattern"))
                .collect(),
            accounts,
            aliases,
        })
}

/// A name bindings may use that no document lists as a user (a teammate
/// not added yet).
const UNLISTED: &str = "zed";

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        prop::sample::select(&USERS[..]).prop_map(|u| Subject::User(u.to_string())),
        Just(Subject::User(UNLISTED.to_string())),
        prop::sample::select(&GROUPS[..]).prop_map(|g| Subject::Group(g.to_string())),
    ]
}

/// `doc` as it would be once `UNLISTED` is added, with no groups.
fn with_unlisted(doc: &PolicyDocument) -> PolicyDocument {
    let mut d = doc.clone();
    d.users.push(User {
        name: UNLISTED.to_string(),
        keys: vec![key(99)],
        groups: Vec::new(),
    });
    d
}

fn key(i: usize) -> PublicKey {
    let mut k = [0u8; 32];
    k[0] = i as u8;
    PublicKey(k)
}

prop_compose! {
    fn document()(
        groups in prop::collection::vec(prop::collection::vec(prop::sample::select(&GROUPS[..]), 0..2), USERS.len()),
        roles in prop::collection::vec(prop::collection::vec(rule(), 1..4), 1..4),
        bindings in prop::collection::vec((0usize..3, prop::collection::vec(subject(), 1..3), patterns()), 0..4),
    ) -> PolicyDocument {
        let users = USERS.iter().enumerate().map(|(i, u)| User {
            name: u.to_string(),
            keys: vec![key(i)],
            groups: groups[i].iter().map(|g| g.to_string()).collect(),
        }).collect();
        let roles: Vec<Role> = roles.into_iter().enumerate().map(|(i, rules)| Role {
            name: format!("r{i}"),
            rules,
        }).collect();
        let bindings = bindings.into_iter().map(|(r, subjects, accounts)| Binding {
            role: roles[r % roles.len()].name.clone(),
            subjects,
            accounts,
        }).collect();
        PolicyDocument { users, accounts: Vec::new(), roles, bindings }
    }
}

fn request() -> impl Strategy<Value = (Action, Option<String>, Option<String>)> {
    (
        prop::sample::select(Action::ALL),
        prop::option::of(name()),
        prop::option::of(name()),
    )
}

/// The rule semantics, written out plainly: the oracle the evaluator is
/// checked against.
fn oracle(
    doc: &PolicyDocument,
    user: &str,
    action: Action,
    account: Option<&str>,
    alias: Option<&str>,
) -> (bool, bool) {
    let matches = |ps: &Option<Vec<Pattern>>, name: Option<&str>| match (ps, name) {
        (None, _) => true,
        (Some(ps), Some(n)) => ps.iter().any(|p| p.matches(n)),
        (Some(ps), None) => ps.iter().any(|p| p.is_any()),
    };
    let u = doc.user(user).expect("known user");
    let (mut allow, mut deny) = (false, false);
    for b in &doc.bindings {
        let bound = b.subjects.iter().any(|s| match s {
            Subject::User(n) => n == user,
            Subject::Group(g) => u.groups.contains(g),
        });
        if !bound || !matches(&b.accounts, account) {
            continue;
        }
        for r in &doc.role(&b.role).expect("bound role").rules {
            let hit = r.actions.iter().any(|a| a.matches(action))
                && matches(&r.accounts, account)
                && matches(&r.aliases, alias);
            if hit {
                match r.effect {
                    Effect::Allow => allow = true,
                    Effect::Deny => deny = true,
                }
            }
        }
    }
    (allow, deny)
}

fn allowed(
    doc: &PolicyDocument,
    user: &str,
    action: Action,
    account: Option<&str>,
    alias: Option<&str>,
) -> bool {
    evaluate(
        doc,
        user,
        &AccessRequest {
            action,
            account,
            alias,
        },
    )
    .is_allowed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn deny_wins_and_no_allow_means_deny(
        doc in document(),
        user in prop::sample::select(&USERS[..]),
        (action, account, alias) in request(),
    ) {
        doc.validate().expect("generated documents are valid");
        let decision = evaluate(&doc, user, &AccessRequest { action, account: account.as_deref(), alias: alias.as_deref() });
        let (allow, deny) = oracle(&doc, user, action, account.as_deref(), alias.as_deref());
        prop_assert_eq!(decision.is_allowed(), allow && !deny);
        if deny {
            let rule = decision.matched.clone().expect("a deny names its rule");
            prop_assert!(rule.text.starts_with("deny"));
        } else if allow {
            prop_assert!(decision.matched.expect("an allow names its rule").text.starts_with("allow"));
        } else {
            prop_assert!(decision.matched.is_none());
        }
    }

    #[test]
    fn a_change_that_passes_gives_nobody_more_than_its_author_holds(
        old in document(),
        new in document(),
        author in prop::sample::select(&USERS[..]),
        probes in prop::collection::vec(request(), 64),
    ) {
        // A binding to the unlisted name is judged as it will act once
        // someone of that name is added: every user, and that one.
        let (old_then, new_then) = (with_unlisted(&old), with_unlisted(&new));
        if let Err(e) = check_no_escalation(&old, &new, author) {
            // A refusal names a request that really is new and not held.
            let (account, alias) = (e.account.as_deref(), e.alias.as_deref());
            prop_assert_eq!(e.unlisted, e.user == UNLISTED);
            prop_assert!(allowed(&new_then, &e.user, e.action, account, alias));
            prop_assert!(!allowed(&old_then, &e.user, e.action, account, alias));
            prop_assert!(!allowed(&old, author, e.action, account, alias));
            prop_assert!(!allowed(&old, author, Action::PolicyEscalate, None, None));
            return Ok(());
        }
        let escalates = allowed(&old, author, Action::PolicyEscalate, None, None);
        for (action, account, alias) in &probes {
            for user in USERS.iter().chain([&UNLISTED]) {
                let (account, alias) = (account.as_deref(), alias.as_deref());
                let gained = allowed(&new_then, user, *action, account, alias)
                    && !allowed(&old_then, user, *action, account, alias);
                prop_assert!(
                    !gained || escalates || allowed(&old, author, *action, account, alias),
                    "{author} gave {user} {action} {account:?} {alias:?} without holding it"
                );
            }
        }
    }
}

fn doc_from(text: &str) -> PolicyDocument {
    PolicyDocument::from_toml(text).expect("valid policy")
}

fn policy(alice_rules: &str, bob_groups: &str, extra: &str) -> PolicyDocument {
    let k = |i| key(i).to_string();
    doc_from(&format!(
        r#"
[[users]]
name = "alice"
keys = ["{}"]

[[users]]
name = "bob"
keys = ["{}"]
groups = [{bob_groups}]

[[roles]]
name = "admin"
rules = [{alice_rules}]

[[roles]]
name = "deployer"
rules = [{{ effect = "allow", actions = ["process.*"], accounts = ["web-*"] }}]

[[bindings]]
role = "admin"
subjects = ["user:alice"]

[[bindings]]
role = "deployer"
subjects = ["group:web"]
{extra}
"#,
        k(1),
        k(2)
    ))
}

#[test]
fn an_author_may_grant_what_they_hold() {
    let holds = r#"{ effect = "allow", actions = ["policy.put", "process.*"] }"#;
    let old = policy(holds, "", "");
    let new = policy(holds, "\"web\"", "");
    check_no_escalation(&old, &new, "alice").expect("alice holds process.* everywhere");
}

#[test]
fn an_author_may_not_grant_what_they_do_not_hold() {
    let holds = r#"{ effect = "allow", actions = ["policy.put", "process.status"] }"#;
    let old = policy(holds, "", "");
    let new = policy(holds, "\"web\"", "");
    let e = check_no_escalation(&old, &new, "alice").unwrap_err();
    assert_eq!(e.user, "bob");
    assert!(
        e.request.starts_with("process.run on account web-"),
        "{}",
        e.request
    );
    assert!(e.to_string().contains("policy.escalate"));
}

#[test]
fn a_deny_on_the_author_limits_what_they_may_grant() {
    let holds = r#"{ effect = "allow", actions = ["policy.put", "process.*"] },
                   { effect = "deny", actions = ["process.kill"], accounts = ["web-prod"] }"#;
    let old = policy(holds, "", "");
    let new = policy(holds, "\"web\"", "");
    let e = check_no_escalation(&old, &new, "alice").unwrap_err();
    assert!(
        e.request.starts_with("process.kill on account web-prod"),
        "{}",
        e.request
    );
}

#[test]
fn removing_a_deny_is_a_grant() {
    let holds = r#"{ effect = "allow", actions = ["policy.put"] }"#;
    let deny = r#"
[[roles]]
name = "no-kill"
rules = [{ effect = "deny", actions = ["process.kill"] }]

[[bindings]]
role = "no-kill"
subjects = ["user:bob"]
"#;
    let old = policy(holds, "\"web\"", deny);
    let new = policy(holds, "\"web\"", "");
    let e = check_no_escalation(&old, &new, "alice").unwrap_err();
    assert!(
        e.request.starts_with("process.kill on account web-"),
        "{}",
        e.request
    );
}

#[test]
fn policy_escalate_lets_an_author_grant_anything() {
    let holds = r#"{ effect = "allow", actions = ["policy.put", "policy.escalate"] }"#;
    let old = policy(holds, "", "");
    let new = policy(holds, "\"web\"", "");
    check_no_escalation(&old, &new, "alice").expect("escalate holder");
}

#[test]
fn an_author_may_not_widen_their_own_rights() {
    let holds = r#"{ effect = "allow", actions = ["policy.put"] }"#;
    let wider = r#"{ effect = "allow", actions = ["policy.put", "audit.read"] }"#;
    let e =
        check_no_escalation(&policy(holds, "", ""), &policy(wider, "", ""), "alice").unwrap_err();
    assert_eq!(e.user, "alice");
    assert!(e.request.starts_with("audit.read"), "{}", e.request);
}

#[test]
fn a_binding_to_a_user_not_added_yet_is_a_grant_to_whoever_is_added() {
    let holds = r#"{ effect = "allow", actions = ["policy.put", "user.add"] }"#;
    let to_carol = r#"
[[bindings]]
role = "deployer"
subjects = ["user:carol"]
"#;
    let old = policy(holds, "", "");
    let new = policy(holds, "", to_carol);
    let e = check_no_escalation(&old, &new, "alice").unwrap_err();
    assert_eq!(e.user, "carol");
    assert!(e.unlisted);
    assert!(
        e.to_string()
            .contains("carol (named in a binding, not a user yet) process.run"),
        "{e}"
    );
    // Kept as it was, the binding is no new grant.
    check_no_escalation(&new, &new, "alice").expect("nothing changes");
}
