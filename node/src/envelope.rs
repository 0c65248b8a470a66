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
//! Reads (Status, History, Events) may carry a lighter signed token in
//! gRPC metadata ([`READ_USER`], [`READ_TIMESTAMP`], [`READ_SIGNATURE`]): a
//! signature over [`read_payload`] (user, timestamp, method and the request
//! itself), checked for the user's key and freshness but not for replay (a
//! read changes nothing). A node started with signed reads required refuses
//! unsigned reads; otherwise they pass, as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

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

/// The users a node knows and the nonces it has seen.
pub struct EnvelopeVerifier {
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

    /// Checks that `signature` is `user`'s over `payload`, made within the
    /// freshness window of `now_ms`.
    fn check(
        &self,
        user: &str,
        payload: &[u8],
        timestamp_ms: u64,
        signature: &[u8],
        now_ms: u64,
    ) -> Result<u64, EnvelopeError> {
        let key = self
            .keys
            .get(user)
            .ok_or_else(|| EnvelopeError::UnknownUser(user.to_string()))?;
        let sig =
            Signature::from_slice(signature).map_err(|_| EnvelopeError::MalformedSignature)?;
        key.verify(payload, &sig)
            .map_err(|_| EnvelopeError::BadSignature(user.to_string()))?;
        let limit_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let skew_ms = now_ms.abs_diff(timestamp_ms);
        if skew_ms > limit_ms {
            return Err(EnvelopeError::Stale { skew_ms, limit_ms });
        }
        Ok(limit_ms)
    }

    /// Checks one read token at node time `now_ms`.
    pub fn verify_read(
        &self,
        user: &str,
        timestamp_ms: u64,
        method: &str,
        request: &[u8],
        signature: &[u8],
        now_ms: u64,
    ) -> Result<(), EnvelopeError> {
        let payload = read_payload(user, timestamp_ms, method, request);
        self.check(user, &payload, timestamp_ms, signature, now_ms)
            .map(|_| ())
    }

    /// Checks one envelope at node time `now_ms`.
    pub fn verify(
        &self,
        user: &str,
        nonce: &[u8],
        timestamp_ms: u64,
        command: &[u8],
        signature: &[u8],
        now_ms: u64,
    ) -> Result<(), EnvelopeError> {
        if !self.keys.contains_key(user) {
            return Err(EnvelopeError::UnknownUser(user.to_string()));
        }
        Signature::from_slice(signature).map_err(|_| EnvelopeError::MalformedSignature)?;
        if nonce.len() != NONCE_LEN {
            return Err(EnvelopeError::BadNonce);
        }
        let payload = signing_payload(user, nonce, timestamp_ms, command);
        let limit_ms = self.check(user, &payload, timestamp_ms, signature, now_ms)?;
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
        seen.insert(nonce.to_vec(), timestamp_ms);
        Ok(())
    }
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

    #[test]
    fn a_good_envelope_passes_once() {
        let (key, v) = setup();
        let sig = sign(&key, "admin", &[1; 16], 1000, b"cmd");
        assert_eq!(
            v.verify("admin", &[1; 16], 1000, b"cmd", &sig, 2000),
            Ok(())
        );
        assert_eq!(
            v.verify("admin", &[1; 16], 1000, b"cmd", &sig, 2000),
            Err(EnvelopeError::Replayed)
        );
    }

    #[test]
    fn forged_stale_and_unknown_are_refused() {
        let (key, v) = setup();
        let sig = sign(&key, "admin", &[2; 16], 1000, b"cmd");
        assert!(matches!(
            v.verify("admin", &[2; 16], 1000, b"other", &sig, 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
        assert!(matches!(
            v.verify("admin", &[2; 16], 1000, b"cmd", &sig, 1000 + 301_000),
            Err(EnvelopeError::Stale { .. })
        ));
        assert!(matches!(
            v.verify("eve", &[2; 16], 1000, b"cmd", &sig, 1000),
            Err(EnvelopeError::UnknownUser(_))
        ));
        assert_eq!(
            v.verify("admin", &[2; 16], 1000, b"cmd", &[0; 3], 1000),
            Err(EnvelopeError::MalformedSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign(&other, "admin", &[3; 16], 1000, b"cmd");
        assert!(matches!(
            v.verify("admin", &[3; 16], 1000, b"cmd", &forged, 1000),
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
        assert_eq!(
            v.verify_read("admin", 1000, "Status", b"req", &sig, 2000),
            Ok(())
        );
        // Reads are not replay-checked: the same token reads again.
        assert_eq!(
            v.verify_read("admin", 1000, "Status", b"req", &sig, 2000),
            Ok(())
        );
        for (user, method, req) in [
            ("admin", "History", &b"req"[..]),
            ("admin", "Status", &b"other"[..]),
        ] {
            assert!(matches!(
                v.verify_read(user, 1000, method, req, &sig, 2000),
                Err(EnvelopeError::BadSignature(_))
            ));
        }
        assert!(matches!(
            v.verify_read("admin", 1000, "Status", b"req", &sig, 400_000),
            Err(EnvelopeError::Stale { .. })
        ));
        // A command signature is not a read token.
        let cmd = sign(&key, "admin", &[1; 16], 1000, b"req");
        assert!(v
            .verify_read("admin", 1000, "Status", b"req", &cmd, 2000)
            .is_err());
    }
}
