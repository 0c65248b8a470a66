//! The rule of the meta group's trust policy: a change is authorised for
//! its principal against the policy in force at its log index (root always
//! passes), written against the version it names, valid, and gives nobody
//! more than its author holds unless the author holds `policy.escalate`.
//! A refused change changes nothing. Called by
//! [`CanonState::apply`](super::CanonState::apply) for `PolicyChanged`.

use canon_trust::{check_no_escalation, AccessRequest};

use super::CanonState;
use crate::command::Rejection;
use crate::policy::{
    apply_change, authorise, authorise_key, PolicyChange, Principal, VersionedPolicy,
};

impl CanonState {
    /// `PolicyChanged`: the checks above, then the new document as the next
    /// version.
    pub(super) fn change_policy(
        &mut self,
        principal: Option<&Principal>,
        change: &PolicyChange,
    ) -> Result<(), Rejection> {
        let current = &self.meta.policy;
        let Some(principal) = principal else {
            return Err(Rejection::Refused {
                user: "(unsigned)".into(),
                action: change.action().to_string(),
                target: "the cluster".into(),
                reason: "a policy change must come from a signed command".into(),
            });
        };
        let request = AccessRequest {
            action: change.action(),
            account: change.account(),
            alias: None,
        };
        if change.is_own_key_change(principal) {
            // Still a key of theirs in force now (a removed key cannot
            // bring itself back).
            authorise_key(&current.document, principal, &request)?;
        } else {
            authorise(&current.document, principal, &request)?;
        }
        if let PolicyChange::Put {
            base_version: Some(expected),
            ..
        } = change
        {
            if *expected != current.version {
                return Err(Rejection::PolicyVersion {
                    expected: *expected,
                    actual: current.version,
                });
            }
        }
        let document = apply_change(change, &current.document)?;
        if !principal.root {
            check_no_escalation(&current.document, &document, &principal.user)
                .map_err(|e| Rejection::Escalation(e.to_string()))?;
        }
        self.meta.policy = VersionedPolicy {
            version: current.version + 1,
            document,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use canon_trust::{PolicyDocument, PublicKey};

    use super::*;
    use crate::command::{Command, Request, Response};
    use crate::shard::META_GROUP;

    const ALICE: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const BOB: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    fn user(name: &str, key: &str) -> Principal {
        Principal {
            user: name.into(),
            key_id: PublicKey::from_hex(key).unwrap().id().0,
            root: false,
        }
    }

    fn root() -> Principal {
        Principal {
            user: "admin".into(),
            key_id: "root".into(),
            root: true,
        }
    }

    /// alice may change the policy and run processes in web-*; bob nothing.
    fn doc(alice_actions: &str) -> PolicyDocument {
        PolicyDocument::from_toml(&format!(
            r#"
[[users]]
name = "alice"
keys = ["{ALICE}"]

[[users]]
name = "bob"
keys = ["{BOB}"]

[[roles]]
name = "admin-ish"
rules = [{{ effect = "allow", actions = [{alice_actions}], accounts = ["web-*"] }},
         {{ effect = "allow", actions = ["policy.put"] }}]

[[bindings]]
role = "admin-ish"
subjects = ["user:alice"]
"#
        ))
        .unwrap()
    }

    fn put(by: Principal, document: PolicyDocument, base: Option<u64>) -> Request {
        Request::new(
            1,
            Command::PolicyChanged {
                change: PolicyChange::Put {
                    document,
                    base_version: base,
                },
            },
        )
        .by(by)
    }

    fn refused(state: &mut CanonState, req: &Request) -> Rejection {
        let before = state.meta.clone();
        match state.apply(req) {
            Response::Rejected(r) => {
                assert_eq!(state.meta, before, "a refused change changed the state");
                r
            }
            Response::Applied => panic!("{req} was applied"),
        }
    }

    #[test]
    fn only_authorised_non_escalating_changes_apply() {
        let mut s = CanonState::new(META_GROUP, 2);
        assert_eq!(s.meta.policy.version, 0);
        // Before any policy only root changes it.
        let e = refused(
            &mut s,
            &put(user("alice", ALICE), doc("\"process.run\""), None),
        );
        assert!(e.to_string().contains("not alice's"), "{e}");
        assert!(s
            .apply(&put(root(), doc("\"process.run\""), Some(0)))
            .is_applied());
        assert_eq!(s.meta.policy.version, 1);
        // bob holds nothing.
        let e = refused(&mut s, &put(user("bob", BOB), doc("\"process.*\""), None));
        assert!(
            e.to_string().contains(
                "user bob may not policy.put on the cluster: missing permission policy.put"
            ),
            "{e}"
        );
        // alice may put, but not give herself process.kill.
        let e = refused(
            &mut s,
            &put(user("alice", ALICE), doc("\"process.*\""), None),
        );
        assert!(matches!(e, Rejection::Escalation(_)), "{e}");
        // A stale base version is refused; the current one applies.
        let same = doc("\"process.run\"");
        let e = refused(&mut s, &put(user("alice", ALICE), same.clone(), Some(0)));
        assert_eq!(
            e,
            Rejection::PolicyVersion {
                expected: 0,
                actual: 1
            }
        );
        assert!(s
            .apply(&put(user("alice", ALICE), same, Some(1)))
            .is_applied());
        assert_eq!(s.meta.policy.version, 2);
        // Unsigned changes are refused.
        let unsigned = Request::new(
            2,
            Command::PolicyChanged {
                change: PolicyChange::UserRemove { name: "bob".into() },
            },
        );
        assert!(matches!(
            refused(&mut s, &unsigned),
            Rejection::Refused { .. }
        ));
    }

    fn keys(by: Principal, name: &str, add: &[&str], remove: &[&str]) -> Request {
        let change = PolicyChange::UserKeys {
            name: name.into(),
            add: add
                .iter()
                .map(|k| PublicKey::from_hex(k).unwrap())
                .collect(),
            remove: remove
                .iter()
                .map(|k| PublicKey::from_hex(k).unwrap().id())
                .collect(),
            replace_all: false,
        };
        Request::new(1, Command::PolicyChanged { change }).by(by)
    }

    #[test]
    fn anyone_rotates_their_own_key_and_only_rotate_key_others() {
        // A third key, for the rotation.
        const NEW: &str = "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025";
        let mut s = CanonState::new(META_GROUP, 2);
        assert!(s
            .apply(&put(root(), doc("\"process.run\""), None))
            .is_applied());
        // bob holds no role, yet replaces his own key.
        assert!(s
            .apply(&keys(user("bob", BOB), "bob", &[NEW], &[BOB]))
            .is_applied());
        let bob = s.meta.policy.document.user("bob").unwrap();
        assert_eq!(bob.keys, vec![PublicKey::from_hex(NEW).unwrap()]);
        // The replaced key cannot act again, not even on its own keys.
        let e = refused(&mut s, &keys(user("bob", BOB), "bob", &[BOB], &[NEW]));
        assert!(e.to_string().contains("not bob's"), "{e}");
        // alice may not touch bob's keys without user.rotate-key.
        let e = refused(&mut s, &keys(user("alice", ALICE), "bob", &[BOB], &[]));
        assert!(
            e.to_string().contains("missing permission user.rotate-key"),
            "{e}"
        );
        // Nobody is left without a key, nor given another user's, nor
        // rid of a key they do not hold.
        let e = refused(&mut s, &keys(user("bob", NEW), "bob", &[], &[NEW]));
        assert!(e.to_string().contains("no keys"), "{e}");
        let e = refused(&mut s, &keys(user("bob", NEW), "bob", &[ALICE], &[]));
        assert!(e.to_string().contains("already another user's"), "{e}");
        let e = refused(&mut s, &keys(user("bob", NEW), "bob", &[], &[ALICE]));
        assert!(e.to_string().contains("has no key with id"), "{e}");
        // Root rotates anyone's, and may replace them all without naming
        // them.
        assert!(s
            .apply(&keys(root(), "alice", &[BOB], &[ALICE]))
            .is_applied());
        let replace = Request::new(
            1,
            Command::PolicyChanged {
                change: PolicyChange::UserKeys {
                    name: "alice".into(),
                    add: vec![PublicKey::from_hex(ALICE).unwrap()],
                    remove: Vec::new(),
                    replace_all: true,
                },
            },
        )
        .by(root());
        assert!(s.apply(&replace).is_applied());
        let alice = s.meta.policy.document.user("alice").unwrap();
        assert_eq!(alice.keys, vec![PublicKey::from_hex(ALICE).unwrap()]);
    }

    #[test]
    fn the_policy_survives_the_snapshot_codec_and_old_snapshots_read_as_none() {
        let mut s = CanonState::new(META_GROUP, 2);
        assert!(s
            .apply(&put(root(), doc("\"process.run\""), None))
            .is_applied());
        let back: CanonState = crate::codec::decode(&crate::codec::encode(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // A meta record written before policies existed.
        #[derive(serde::Serialize)]
        struct OldMeta {
            shard_count: Option<u32>,
            members: std::collections::BTreeMap<u64, ()>,
            placement: std::collections::BTreeMap<u32, Vec<u64>>,
        }
        let old = OldMeta {
            shard_count: Some(2),
            members: Default::default(),
            placement: Default::default(),
        };
        let meta: super::super::ClusterMeta =
            crate::codec::decode(&crate::codec::encode(&old).unwrap()).unwrap();
        assert_eq!(meta.policy, VersionedPolicy::default());
    }
}
