//! The rules of one-time join tokens (meta group): how a cluster that runs
//! without TLS knows a joining node was invited. An admin's token is
//! recorded by the SHA-256 of its secret; the first node to present it
//! spends it. Called by [`CanonState::apply`](super::CanonState::apply).
//!
//! A node may present its token again until it is a member (a join that
//! failed after the token was spent is retried with the same token); once
//! it is a member, the token admits nobody. Expired tokens are forgotten
//! when the next token is issued or redeemed.

use canon_model::UnixMillis;

use super::{CanonState, JoinToken};
use crate::command::Rejection;
use crate::ids::NodeId;

impl CanonState {
    /// `JoinTokenIssued`: records a new token (its hash), void after
    /// `expires_at`, for `node` or any id.
    pub(super) fn issue_join_token(
        &mut self,
        at: UnixMillis,
        hash: &str,
        expires_at: UnixMillis,
        node: Option<NodeId>,
    ) -> Result<(), Rejection> {
        self.forget_expired_join_tokens(at);
        if expires_at <= at {
            return Err(Rejection::JoinToken(
                "the token would be void already".into(),
            ));
        }
        if self.meta.join_tokens.contains_key(hash) {
            return Err(Rejection::JoinToken("that token was issued before".into()));
        }
        self.meta.join_tokens.insert(
            hash.to_string(),
            JoinToken {
                issued_at: at,
                expires_at,
                node,
                redeemed_by: None,
            },
        );
        Ok(())
    }

    /// `JoinTokenRedeemed`: node `node` spends the token `hash` at `at`.
    pub(super) fn redeem_join_token(
        &mut self,
        at: UnixMillis,
        hash: &str,
        node: NodeId,
    ) -> Result<(), Rejection> {
        self.forget_expired_join_tokens(at);
        let member = self.meta.members.contains_key(&node);
        let refuse = |why: String| Err(Rejection::JoinToken(why));
        let Some(token) = self.meta.join_tokens.get_mut(hash) else {
            return refuse(
                "unknown join token (never issued here, or expired): ask an admin for a new one \
                 (`canon cluster join-token`)"
                    .into(),
            );
        };
        if let Some(only) = token.node.filter(|only| *only != node) {
            return refuse(format!("the token admits node {only}, not node {node}"));
        }
        match token.redeemed_by {
            Some(by) if by != node => {
                return refuse(format!("the token was already used by node {by}"));
            }
            Some(_) if member => {
                return refuse(format!(
                    "the token was already used: node {node} joined with it"
                ));
            }
            _ => {}
        }
        token.redeemed_by = Some(node);
        Ok(())
    }

    fn forget_expired_join_tokens(&mut self, at: UnixMillis) {
        self.meta.join_tokens.retain(|_, t| t.expires_at >= at);
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Command, Rejection, Request, Response};
    use crate::ids::NodeId;
    use crate::state::CanonState;
    use crate::META_GROUP;

    fn meta() -> CanonState {
        CanonState::new(META_GROUP, 4)
    }

    fn apply(s: &mut CanonState, at: u64, command: Command) -> Result<(), String> {
        match s.apply(&Request::new(at, command)) {
            Response::Applied => Ok(()),
            Response::Rejected(Rejection::JoinToken(why)) => Err(why),
            Response::Rejected(other) => panic!("unexpected rejection {other:?}"),
        }
    }

    fn issue(hash: &str, expires_at: u64, node: Option<NodeId>) -> Command {
        Command::JoinTokenIssued {
            hash: hash.into(),
            expires_at,
            node,
        }
    }

    fn redeem(hash: &str, node: NodeId) -> Command {
        Command::JoinTokenRedeemed {
            hash: hash.into(),
            node,
        }
    }

    #[test]
    fn a_token_admits_one_node_once() {
        let mut s = meta();
        apply(&mut s, 10, issue("h1", 1_000, None)).unwrap();
        apply(&mut s, 20, redeem("h1", 4)).unwrap();
        let e = apply(&mut s, 30, redeem("h1", 5)).unwrap_err();
        assert!(e.contains("already used by node 4"), "{e}");
        // The same node may retry until it is a member...
        apply(&mut s, 40, redeem("h1", 4)).unwrap();
        apply(
            &mut s,
            50,
            Command::MemberSet {
                node: 4,
                addr: "h:1".into(),
            },
        )
        .unwrap();
        // ...and not after.
        let e = apply(&mut s, 60, redeem("h1", 4)).unwrap_err();
        assert!(e.contains("already used"), "{e}");
    }

    #[test]
    fn unknown_expired_and_other_nodes_tokens_are_refused() {
        let mut s = meta();
        let e = apply(&mut s, 10, redeem("nope", 4)).unwrap_err();
        assert!(e.contains("unknown join token"), "{e}");
        apply(&mut s, 10, issue("h1", 100, None)).unwrap();
        let e = apply(&mut s, 101, redeem("h1", 4)).unwrap_err();
        assert!(e.contains("unknown join token"), "{e}");
        assert!(
            s.meta.join_tokens.is_empty(),
            "expired tokens are forgotten"
        );
        apply(&mut s, 200, issue("h2", 1_000, Some(7))).unwrap();
        let e = apply(&mut s, 210, redeem("h2", 8)).unwrap_err();
        assert!(e.contains("admits node 7, not node 8"), "{e}");
        apply(&mut s, 220, redeem("h2", 7)).unwrap();
    }

    #[test]
    fn a_token_is_issued_once_and_never_void_at_birth() {
        let mut s = meta();
        apply(&mut s, 10, issue("h1", 1_000, None)).unwrap();
        assert!(apply(&mut s, 20, issue("h1", 2_000, None)).is_err());
        assert!(apply(&mut s, 30, issue("h2", 30, None)).is_err());
        assert_eq!(s.meta.join_tokens.len(), 1);
    }

    #[test]
    fn tokens_survive_snapshots_and_old_snapshots_load_without_them() {
        let mut s = meta();
        apply(&mut s, 10, issue("h1", 1_000, None)).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        let back: CanonState = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.meta.join_tokens, s.meta.join_tokens);
        let mut old = json;
        old["meta"].as_object_mut().unwrap().remove("join_tokens");
        let back: CanonState = serde_json::from_value(old).unwrap();
        assert!(back.meta.join_tokens.is_empty());
    }
}
