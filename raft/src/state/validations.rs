//! The organisation's validation modules (meta group; issue #20 §4): what
//! `canon validation add` stores and every node evaluates before it takes a
//! run or an update. The state machine only keeps them: the door authorised
//! the change (`validation.add`, `validation.remove`) and checked that the
//! module compiles before proposing it. Called by
//! [`CanonState::apply`](super::CanonState::apply).

use canon_model::UnixMillis;
use serde::{Deserialize, Serialize};

use super::CanonState;
use crate::command::Rejection;
use crate::policy::Principal;

/// A validation module as the meta group keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValidation {
    /// The file name its diagnostics show (`policy.lw`).
    pub file: String,
    /// The module's text.
    pub text: String,
    /// When it was stored (command time).
    pub added_at: UnixMillis,
    /// The user who stored it, when a user did.
    #[serde(default)]
    pub added_by: Option<String>,
}

impl CanonState {
    /// `ValidationSet`: stores module `name`, replacing one of that name.
    pub(super) fn set_validation(
        &mut self,
        at: UnixMillis,
        principal: Option<&Principal>,
        name: &str,
        file: &str,
        text: &str,
    ) {
        self.meta.validations.insert(
            name.to_string(),
            StoredValidation {
                file: file.to_string(),
                text: text.to_string(),
                added_at: at,
                added_by: principal.map(|p| p.user.clone()),
            },
        );
    }

    /// `ValidationRemoved`: drops module `name`.
    pub(super) fn remove_validation(&mut self, name: &str) -> Result<(), Rejection> {
        match self.meta.validations.remove(name) {
            Some(_) => Ok(()),
            None => Err(Rejection::UnknownValidation(name.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, Rejection, Request, Response};
    use crate::shard::META_GROUP;
    use crate::state::CanonState;

    fn apply(s: &mut CanonState, at: u64, command: Command) -> Response {
        s.apply(&Request::new(at, command))
    }

    #[test]
    fn modules_are_stored_replaced_and_removed_by_name() {
        let mut s = CanonState::new(META_GROUP, 4);
        let set = |text: &str| Command::ValidationSet {
            name: "org".into(),
            file: "policy.lw".into(),
            text: text.into(),
        };
        assert_eq!(apply(&mut s, 1, set("a")), Response::Applied);
        assert_eq!(apply(&mut s, 2, set("b")), Response::Applied);
        let stored = &s.meta.validations["org"];
        assert_eq!((stored.text.as_str(), stored.added_at), ("b", 2));
        let remove = || Command::ValidationRemoved { name: "org".into() };
        assert_eq!(apply(&mut s, 3, remove()), Response::Applied);
        assert!(s.meta.validations.is_empty());
        assert_eq!(
            apply(&mut s, 4, remove()),
            Response::Rejected(Rejection::UnknownValidation("org".into()))
        );
    }

    #[test]
    fn shard_groups_refuse_them() {
        let mut s = CanonState::new(1, 4);
        let r = apply(&mut s, 1, Command::ValidationRemoved { name: "org".into() });
        assert!(
            matches!(r, Response::Rejected(Rejection::WrongGroup { .. })),
            "{r:?}"
        );
    }
}
