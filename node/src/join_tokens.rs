//! One-time join tokens: how a cluster without TLS knows that a node asking
//! to join was invited. An admin makes one (`canon cluster join-token`, or
//! the dev harness for its own nodes); the secret goes to the new node,
//! only its SHA-256 into the meta group's log
//! ([`canon_raft::Command::JoinTokenIssued`]), where the first node to
//! present it spends it. With TLS a node's own certificate admits it and
//! tokens are not needed.

use std::time::Duration;

use canon_model::UnixMillis;
use canon_raft::{Command, NodeId};
use rand08::RngCore;
use sha2::{Digest, Sha256};

/// How long a join token admits a node when its maker names no time.
pub const JOIN_TOKEN_TTL_DEFAULT: Duration = Duration::from_secs(60 * 60);
/// The longest a join token may live: an invitation, not a credential.
pub const JOIN_TOKEN_TTL_MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const _: () = assert!(JOIN_TOKEN_TTL_DEFAULT.as_secs() <= JOIN_TOKEN_TTL_MAX.as_secs());

/// Join tokens start with this, so that one pasted in the wrong place is
/// recognisable.
const JOIN_TOKEN_PREFIX: &str = "canon-join-";

/// A fresh token: the secret, and the command that records it (its hash)
/// as admitting `node` (or any id) until `expires_at`.
pub struct NewJoinToken {
    pub secret: String,
    pub hash: String,
    pub expires_at: UnixMillis,
    pub issue: Command,
}

impl NewJoinToken {
    /// A token made at `now_ms` from the operating system's random source,
    /// living `ttl`.
    pub fn generate(now_ms: UnixMillis, ttl: Duration, node: Option<NodeId>) -> Self {
        let mut bytes = [0u8; 32];
        rand08::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = format!("{JOIN_TOKEN_PREFIX}{}", hex::encode(bytes));
        let hash = join_token_hash(&secret);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at = now_ms.saturating_add(ttl_ms);
        let issue = Command::JoinTokenIssued {
            hash: hash.clone(),
            expires_at,
            node,
        };
        NewJoinToken {
            secret,
            hash,
            expires_at,
            issue,
        }
    }
}

/// The SHA-256 (hex) of a join token (surrounding blanks ignored): all the
/// cluster keeps of it.
pub fn join_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A join token's life as asked (`ttl_ms`, 0: the default); refused past
/// the maximum.
pub fn join_token_ttl(ttl_ms: u64) -> Result<Duration, String> {
    if ttl_ms == 0 {
        return Ok(JOIN_TOKEN_TTL_DEFAULT);
    }
    let ttl = Duration::from_millis(ttl_ms);
    if ttl > JOIN_TOKEN_TTL_MAX {
        return Err(format!(
            "a join token lives at most {} hours",
            JOIN_TOKEN_TTL_MAX.as_secs() / 3600
        ));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_only_their_hash_is_recorded() {
        let a = NewJoinToken::generate(1_000, Duration::from_secs(60), Some(4));
        let b = NewJoinToken::generate(1_000, Duration::from_secs(60), Some(4));
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("canon-join-"));
        assert_eq!(a.expires_at, 61_000);
        assert_eq!(join_token_hash(&format!(" {}\n", a.secret)), a.hash);
        let recorded = format!("{:?}", a.issue);
        assert!(recorded.contains(&a.hash) && !recorded.contains(&a.secret));
    }

    #[test]
    fn ttls_default_and_are_bounded() {
        assert_eq!(join_token_ttl(0).unwrap(), JOIN_TOKEN_TTL_DEFAULT);
        assert_eq!(join_token_ttl(5_000).unwrap(), Duration::from_secs(5));
        let too_long = u64::try_from(JOIN_TOKEN_TTL_MAX.as_millis()).unwrap() + 1;
        assert!(join_token_ttl(too_long)
            .unwrap_err()
            .contains("at most 168 hours"));
    }
}
