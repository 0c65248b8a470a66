//! The signed command envelope: what makes "only a correctly signed, fresh
//! command changes state" true at the node's door.
//!
//! A client signs `signing_payload(user, nonce, timestamp, command)` with its
//! ed25519 key. The node checks, in order: the user is known and the
//! signature verifies against that user's key; the timestamp is within the
//! freshness window of the node's clock; the nonce has not been seen inside
//! that window. A replay sent to another node passes its nonce cache, but
//! the command inside carries a command id that the replicated log answers
//! once (its dedup window is longer than the freshness window), so a replay
//! anywhere changes nothing.
//!
//! Whose key: the cluster's root keys (the node's configuration: today's
//! admin key) are tried first and make a root [`Principal`]; otherwise the
//! user's keys in the trust policy the caller passes in (any of them, for
//! rotation; the principal names the key id that verified).
//!
//! Reads (Status, History, Events) may carry a lighter signed token in
//! gRPC metadata ([`READ_USER`], [`READ_TIMESTAMP`], [`READ_SIGNATURE`]): a
//! signature over [`read_payload`] (user, timestamp, method and the request
//! itself), checked for the user's key and freshness but not for replay (a
//! read changes nothing). A node started with signed reads required refuses
//! unsigned reads; otherwise they pass, as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use canon_raft::Principal;
use canon_trust::{PolicyDocument, PublicKey};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Nonces must be this long.
pub const NONCE_LEN: usize = 16;

/// The layouts a client signs (the wire format's, shared with the client).
pub use canon_proto::signing::{
    read_payload, signing_payload, READ_SIGNATURE, READ_TIMESTAMP, READ_USER,
};

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("malformed signature")]
    MalformedSignature,
    #[error("signature does not verify for user {0:?}")]
    BadSignature(String),
    #[error("nonce must be {NONCE_LEN} bytes")]
    BadNonce,
    #[error("timestamp is {skew_ms} ms away from the node's clock (limit {limit_ms} ms); check the clock")]
    Stale { skew_ms: u64, limit_ms: u64 },
    #[error("nonce already used (replayed command)")]
    Replayed,
}

/// The root users a node knows and the nonces it has seen.
pub struct EnvelopeVerifier {
    /// Root keys: always accepted, flagged in the principal.
    keys: BTreeMap<String, VerifyingKey>,
    window: Duration,
    seen: Mutex<HashMap<Vec<u8>, u64>>,
}

impl EnvelopeVerifier {
    /// A verifier for `keys` (user → public key) accepting timestamps within
    /// `window` of the node's clock.
    pub fn new(keys: BTreeMap<String, VerifyingKey>, window: Duration) -> Self {
        EnvelopeVerifier {
            keys,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The keys `user` may sign with: their root key, else their keys in
    /// `policy`, each with its id and whether it is root.
    fn candidates(&self, user: &str, policy: &PolicyDocument) -> Vec<(VerifyingKey, String, bool)> {
        if let Some(key) = self.keys.get(user) {
            return vec![(*key, PublicKey(key.to_bytes()).id().0, true)];
        }
        let Some(u) = policy.user(user) else {
            return Vec::new();
        };
        u.keys
            .iter()
            .filter_map(|k| Some((VerifyingKey::from_bytes(&k.0).ok()?, k.id().0, false)))
            .collect()
    }

    /// Checks that `signature` is `user`'s over `payload`, made within the
    /// freshness window of `now_ms`; the principal and the window.
    fn check(
        &self,
        signed: Signed<'_>,
        payload: &[u8],
        policy: &PolicyDocument,
        now_ms: u64,
    ) -> Result<(Principal, u64), EnvelopeError> {
        let user = signed.user;
        let candidates = self.candidates(user, policy);
        if candidates.is_empty() {
            return Err(EnvelopeError::UnknownUser(user.to_string()));
        }
        let sig = Signature::from_slice(signed.signature)
            .map_err(|_| EnvelopeError::MalformedSignature)?;
        let (_, key_id, root) = candidates
            .into_iter()
            .find(|(key, _, _)| key.verify(payload, &sig).is_ok())
            .ok_or_else(|| EnvelopeError::BadSignature(user.to_string()))?;
        let limit_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let skew_ms = now_ms.abs_diff(signed.timestamp_ms);
        if skew_ms > limit_ms {
            return Err(EnvelopeError::Stale { skew_ms, limit_ms });
        }
        let principal = Principal {
            user: user.to_string(),
            key_id,
            root,
        };
        Ok((principal, limit_ms))
    }

    /// Checks one read token at node time `now_ms`; `policy` holds the
    /// users' keys.
    pub fn verify_read(
        &self,
        signed: Signed<'_>,
        method: &str,
        request: &[u8],
        policy: &PolicyDocument,
        now_ms: u64,
    ) -> Result<Principal, EnvelopeError> {
        let payload = read_payload(signed.user, signed.timestamp_ms, method, request);
        self.check(signed, &payload, policy, now_ms)
            .map(|(principal, _)| principal)
    }

    /// Checks one envelope around `command`, signed with `nonce`, at node
    /// time `now_ms`; `policy` holds the users' keys.
    pub fn verify(
        &self,
        signed: Signed<'_>,
        nonce: &[u8],
        command: &[u8],
        policy: &PolicyDocument,
        now_ms: u64,
    ) -> Result<Principal, EnvelopeError> {
        // Who and what before when: an unknown signer or a malformed
        // signature is refused as such, whatever else is wrong.
        if self.candidates(signed.user, policy).is_empty() {
            return Err(EnvelopeError::UnknownUser(signed.user.to_string()));
        }
        Signature::from_slice(signed.signature).map_err(|_| EnvelopeError::MalformedSignature)?;
        if nonce.len() != NONCE_LEN {
            return Err(EnvelopeError::BadNonce);
        }
        let payload = signing_payload(signed.user, nonce, signed.timestamp_ms, command);
        let (principal, limit_ms) = self.check(signed, &payload, policy, now_ms)?;
        // A poisoned lock only means another request panicked mid-insert;
        // the map is still a valid map.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Forget nonces whose envelopes are too old to pass the check above.
        if seen.len() > 1024 {
            seen.retain(|_, at| now_ms.abs_diff(*at) <= limit_ms);
        }
        if seen.contains_key(nonce) {
            return Err(EnvelopeError::Replayed);
        }
        seen.insert(nonce.to_vec(), signed.timestamp_ms);
        Ok(principal)
    }
}

/// Who claims to have signed, when, and the signature.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub user: &'a str,
    pub timestamp_ms: u64,
    pub signature: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn setup() -> (SigningKey, EnvelopeVerifier) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut keys = BTreeMap::new();
        keys.insert("admin".to_string(), key.verifying_key());
        (key, EnvelopeVerifier::new(keys, Duration::from_secs(300)))
    }

    fn sign(key: &SigningKey, user: &str, nonce: &[u8], at: u64, cmd: &[u8]) -> Vec<u8> {
        key.sign(&signing_payload(user, nonce, at, cmd))
            .to_bytes()
            .to_vec()
    }

    fn signed<'a>(user: &'a str, at: u64, signature: &'a [u8]) -> Signed<'a> {
        Signed {
            user,
            timestamp_ms: at,
            signature,
        }
    }

    /// A policy where `alice` holds two keys (a rotation under way).
    fn policy(keys: &[&SigningKey]) -> PolicyDocument {
        let hex: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", hex::encode(k.verifying_key().as_bytes())))
            .collect();
        PolicyDocument::from_toml(&format!(
            "[[users]]\nname = \"alice\"\nkeys = [{}]\n",
            hex.join(", ")
        ))
        .unwrap()
    }

    fn none() -> PolicyDocument {
        PolicyDocument::default()
    }

    #[test]
    fn a_good_envelope_passes_once() {
        let (key, v) = setup();
        let sig = sign(&key, "admin", &[1; 16], 1000, b"cmd");
        let p = v
            .verify(signed("admin", 1000, &sig), &[1; 16], b"cmd", &none(), 2000)
            .unwrap();
        assert!(p.root);
        assert_eq!(p.user, "admin");
        assert_eq!(
            v.verify(signed("admin", 1000, &sig), &[1; 16], b"cmd", &none(), 2000),
            Err(EnvelopeError::Replayed)
        );
    }

    #[test]
    fn any_of_a_policy_users_keys_signs_as_that_user() {
        let (_, v) = setup();
        let (old, new) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let doc = policy(&[&old, &new]);
        for (i, key) in [&old, &new].into_iter().enumerate() {
            let nonce = [i as u8 + 10; 16];
            let sig = sign(key, "alice", &nonce, 1000, b"cmd");
            let p = v
                .verify(signed("alice", 1000, &sig), &nonce, b"cmd", &doc, 1000)
                .unwrap();
            assert!(!p.root);
            assert_eq!(p.key_id, PublicKey(key.verifying_key().to_bytes()).id().0);
        }
        // Without the policy, alice is nobody; another user's key is not hers.
        let sig = sign(&old, "alice", &[20; 16], 1000, b"cmd");
        assert!(matches!(
            v.verify(
                signed("alice", 1000, &sig),
                &[20; 16],
                b"cmd",
                &none(),
                1000
            ),
            Err(EnvelopeError::UnknownUser(_))
        ));
        let sig = sign(
            &SigningKey::from_bytes(&[3; 32]),
            "alice",
            &[21; 16],
            1000,
            b"cmd",
        );
        assert!(matches!(
            v.verify(signed("alice", 1000, &sig), &[21; 16], b"cmd", &doc, 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn forged_stale_and_unknown_are_refused() {
        let (key, v) = setup();
        let sig = sign(&key, "admin", &[2; 16], 1000, b"cmd");
        let check = |user, at, sig: &[u8], nonce: &[u8], cmd: &[u8], now| {
            v.verify(signed(user, at, sig), nonce, cmd, &none(), now)
        };
        assert!(matches!(
            check("admin", 1000, &sig, &[2; 16], b"other", 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
        assert!(matches!(
            check("admin", 1000, &sig, &[2; 16], b"cmd", 1000 + 301_000),
            Err(EnvelopeError::Stale { .. })
        ));
        assert!(matches!(
            check("eve", 1000, &sig, &[2; 16], b"cmd", 1000),
            Err(EnvelopeError::UnknownUser(_))
        ));
        assert_eq!(
            check("admin", 1000, &[0; 3], &[2; 16], b"cmd", 1000),
            Err(EnvelopeError::MalformedSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign(&other, "admin", &[3; 16], 1000, b"cmd");
        assert!(matches!(
            check("admin", 1000, &forged, &[3; 16], b"cmd", 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn a_read_token_binds_user_time_method_and_request() {
        let (key, v) = setup();
        let sig = key
            .sign(&read_payload("admin", 1000, "Status", b"req"))
            .to_bytes()
            .to_vec();
        let read = |method, req: &[u8], sig: &[u8], now| {
            v.verify_read(signed("admin", 1000, sig), method, req, &none(), now)
        };
        assert!(read("Status", b"req", &sig, 2000).is_ok());
        // Reads are not replay-checked: the same token reads again.
        assert!(read("Status", b"req", &sig, 2000).is_ok());
        for (method, req) in [("History", &b"req"[..]), ("Status", &b"other"[..])] {
            assert!(matches!(
                read(method, req, &sig, 2000),
                Err(EnvelopeError::BadSignature(_))
            ));
        }
        assert!(matches!(
            read("Status", b"req", &sig, 400_000),
            Err(EnvelopeError::Stale { .. })
        ));
        // A command signature is not a read token.
        let cmd = sign(&key, "admin", &[1; 16], 1000, b"req");
        assert!(read("Status", b"req", &cmd, 2000).is_err());
    }
}
