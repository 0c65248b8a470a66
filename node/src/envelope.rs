//! The signed command envelope: what makes "only a correctly signed, fresh
//! command for this cluster changes state" true at the node's door.
//!
//! A client signs `signing_payload(signer, nonce, expires, command)` with
//! its ed25519 key; the signer part names the user, the key id, the
//! audience (the cluster id) and the signing time. The node checks, in
//! order: the user is known; the audience is this cluster (a staging
//! command is never accepted by production); the key id is one of the
//! user's keys and the signature verifies against it; the envelope is live
//! (signed no later than the allowed clock skew ahead of the node's clock,
//! not past its expiry, and with a life of at most
//! [`ENVELOPE_TTL_MAX_MS`]); the nonce has not been seen while the envelope
//! lives (a transport that redelivers one message, SQS, names the delivery:
//! the same delivery may pass again, any other use of the nonce is a
//! replay). A replay sent to another node passes its nonce cache, but the
//! command inside carries a command id that the replicated log answers
//! once: the state machine remembers every id at least as long as any
//! envelope can live (`canon_raft::state`), so a replay anywhere changes
//! nothing.
//!
//! Whose key: the cluster's root keys (the node's configuration: today's
//! admin key) are tried first and make a root [`Principal`]; otherwise the
//! user's keys in the trust policy the caller passes in (the one the key id
//! names; the principal carries that id).
//!
//! Reads carry a lighter signed token in gRPC metadata ([`READ_USER`],
//! [`READ_KEY_ID`], [`READ_AUDIENCE`], [`READ_TIMESTAMP`],
//! [`READ_SIGNATURE`]): a signature over [`read_payload`] (the signer part,
//! the method and the request itself), checked for the user's key, the
//! audience and freshness but not for replay (a read changes nothing).
//! Nodes refuse unsigned reads unless started to allow them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use canon_proto::canon::api::v1 as pb;
use canon_proto::canon::sqs::v1 as sqs;
use canon_raft::state::{ENVELOPE_SKEW_MAX_MS, ENVELOPE_TTL_MAX_MS};
use canon_raft::Principal;
use canon_trust::{PolicyDocument, PublicKey};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Nonces must be this long.
pub const NONCE_LEN: usize = 16;

/// The layouts a client signs (the wire format's, shared with the client).
pub use canon_proto::signing::{
    read_payload, signing_payload, Signer as SignedBy, READ_AUDIENCE, READ_KEY_ID, READ_SIGNATURE,
    READ_TIMESTAMP, READ_USER,
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
    #[error(
        "the envelope names no cluster (audience): the client is older than this node; upgrade it"
    )]
    NoAudience,
    #[error("the envelope is for cluster {got:?}, and this is cluster {expected:?}: a command for another cluster is never accepted")]
    WrongAudience { got: String, expected: String },
    #[error("user {user:?} has no key with id {key_id:?} (rotated out? `canon policy get` lists the key ids)")]
    UnknownKey { user: String, key_id: String },
    #[error("timestamp is {skew_ms} ms away from the node's clock (limit {limit_ms} ms); check the clock")]
    Stale { skew_ms: u64, limit_ms: u64 },
    #[error("the envelope expired {ago_ms} ms ago (node clock); sign it again, and check the clock if it was just made")]
    Expired { ago_ms: u64 },
    #[error("the envelope lives {ttl_ms} ms; the limit is {max_ms} ms")]
    TtlTooLong { ttl_ms: u64, max_ms: u64 },
    #[error("nonce already used (replayed command)")]
    Replayed,
}

/// The root users a node knows, the cluster it serves and the nonces it
/// has seen.
pub struct EnvelopeVerifier {
    /// Root keys and their ids: always accepted, flagged in the principal.
    keys: BTreeMap<String, (VerifyingKey, String)>,
    /// This cluster's id: the only audience accepted.
    audience: String,
    /// How far a signing time may be from the node's clock.
    skew: Duration,
    /// Nonce → the time until which its envelope could still pass, and
    /// the delivery that used it (if the transport names deliveries).
    seen: Mutex<HashMap<Vec<u8>, Seen>>,
}

/// A nonce seen: until when its envelope could pass, and the delivery that
/// used it.
#[derive(Debug)]
struct Seen {
    until: u64,
    delivery: Option<String>,
}

/// A key `user` may sign with: the key, its id and whether it is root.
type Candidate = (VerifyingKey, String, bool);

impl EnvelopeVerifier {
    /// A verifier for `keys` (user → root public key) of cluster
    /// `audience`, allowing `skew` between a signer's clock and the node's
    /// (at most [`ENVELOPE_SKEW_MAX_MS`]: the state machine's replay window
    /// is sized for it).
    pub fn new(keys: BTreeMap<String, VerifyingKey>, audience: &str, skew: Duration) -> Self {
        let skew = skew.min(Duration::from_millis(ENVELOPE_SKEW_MAX_MS));
        let keys = keys
            .into_iter()
            .map(|(user, key)| {
                let id = PublicKey(key.to_bytes()).id().0;
                (user, (key, id))
            })
            .collect();
        EnvelopeVerifier {
            keys,
            audience: audience.to_string(),
            skew,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster id envelopes must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The keys `user` may sign with: their root key, else their keys in
    /// `policy`.
    fn candidates(&self, user: &str, policy: &PolicyDocument) -> Vec<Candidate> {
        if let Some((key, id)) = self.keys.get(user) {
            return vec![(*key, id.clone(), true)];
        }
        let Some(u) = policy.user(user) else {
            return Vec::new();
        };
        u.keys
            .iter()
            .filter_map(|k| Some((VerifyingKey::from_bytes(&k.0).ok()?, k.id().0, false)))
            .collect()
    }

    /// Who and for whom, before anything costly: the user is known, the
    /// signature well formed, the audience ours and the key id the user's.
    fn identify(
        &self,
        signed: Signed<'_>,
        policy: &PolicyDocument,
    ) -> Result<(Candidate, Signature), EnvelopeError> {
        let by = signed.by;
        let candidates = self.candidates(by.user, policy);
        if candidates.is_empty() {
            return Err(EnvelopeError::UnknownUser(by.user.to_string()));
        }
        let sig = Signature::from_slice(signed.signature)
            .map_err(|_| EnvelopeError::MalformedSignature)?;
        if by.audience.is_empty() {
            return Err(EnvelopeError::NoAudience);
        }
        if by.audience != self.audience {
            return Err(EnvelopeError::WrongAudience {
                got: by.audience.to_string(),
                expected: self.audience.clone(),
            });
        }
        let key = candidates
            .into_iter()
            .find(|(_, id, _)| id == by.key_id)
            .ok_or_else(|| EnvelopeError::UnknownKey {
                user: by.user.to_string(),
                key_id: by.key_id.to_string(),
            })?;
        Ok((key, sig))
    }

    /// Checks that `sig` is `key`'s signature over `payload` (the key
    /// [`identify`](Self::identify) found for `signed`): the principal.
    fn prove(
        signed: Signed<'_>,
        (key, key_id, root): Candidate,
        sig: &Signature,
        payload: &[u8],
    ) -> Result<Principal, EnvelopeError> {
        key.verify(payload, sig)
            .map_err(|_| EnvelopeError::BadSignature(signed.by.user.to_string()))?;
        Ok(Principal {
            user: signed.by.user.to_string(),
            key_id,
            root,
        })
    }

    fn skew_ms(&self) -> u64 {
        u64::try_from(self.skew.as_millis()).unwrap_or(u64::MAX)
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
        let (key, sig) = self.identify(signed, policy)?;
        let payload = read_payload(&signed.by, method, request);
        let principal = Self::prove(signed, key, &sig, &payload)?;
        let limit_ms = self.skew_ms();
        let skew_ms = now_ms.abs_diff(signed.by.timestamp_ms);
        if skew_ms > limit_ms {
            return Err(EnvelopeError::Stale { skew_ms, limit_ms });
        }
        Ok(principal)
    }

    /// Checks that an envelope signed at `signed_ms` and void after
    /// `expires_ms` lives at node time `now_ms`: the time until which it
    /// could pass this check (how long its nonce must be remembered).
    fn check_life(
        &self,
        signed_ms: u64,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<u64, EnvelopeError> {
        let limit_ms = self.skew_ms();
        if signed_ms > now_ms.saturating_add(limit_ms) {
            let skew_ms = signed_ms - now_ms;
            return Err(EnvelopeError::Stale { skew_ms, limit_ms });
        }
        let ttl_ms = expires_ms.saturating_sub(signed_ms);
        if ttl_ms > ENVELOPE_TTL_MAX_MS {
            let max_ms = ENVELOPE_TTL_MAX_MS;
            return Err(EnvelopeError::TtlTooLong { ttl_ms, max_ms });
        }
        let void_after = expires_ms.saturating_add(limit_ms);
        if now_ms > void_after || expires_ms <= signed_ms {
            return Err(EnvelopeError::Expired {
                ago_ms: now_ms.saturating_sub(expires_ms),
            });
        }
        Ok(void_after)
    }

    /// Checks one envelope around `command`, signed with `nonce` and void
    /// after `expires_ms`, at node time `now_ms`; `policy` holds the users'
    /// keys.
    pub fn verify(
        &self,
        signed: Signed<'_>,
        envelope: Envelope<'_>,
        policy: &PolicyDocument,
        now_ms: u64,
    ) -> Result<Principal, EnvelopeError> {
        // Who and what before when: an unknown signer, a malformed
        // signature or another cluster's envelope is refused as such,
        // whatever else is wrong.
        let (key, sig) = self.identify(signed, policy)?;
        if envelope.nonce.len() != NONCE_LEN {
            return Err(EnvelopeError::BadNonce);
        }
        let payload = signing_payload(
            &signed.by,
            envelope.nonce,
            envelope.expires_ms,
            envelope.command,
        );
        let principal = Self::prove(signed, key, &sig, &payload)?;
        let void_after = self.check_life(signed.by.timestamp_ms, envelope.expires_ms, now_ms)?;
        // A poisoned lock only means another request panicked mid-insert;
        // the map is still a valid map.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Forget nonces whose envelopes can no longer pass the checks above.
        if seen.len() > 1024 {
            seen.retain(|_, s| s.until >= now_ms);
        }
        let delivery = envelope.delivery.map(str::to_string);
        match seen.get(envelope.nonce) {
            Some(s) if s.delivery.is_none() || s.delivery != delivery => {
                return Err(EnvelopeError::Replayed)
            }
            _ => {}
        }
        let until = void_after;
        seen.insert(envelope.nonce.to_vec(), Seen { until, delivery });
        Ok(principal)
    }
}

/// Who claims to have signed (user, key id, audience, time), and the
/// signature.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub by: SignedBy<'a>,
    pub signature: &'a [u8],
}

impl<'a> Signed<'a> {
    /// The signer part of a command envelope.
    pub fn of_envelope(env: &'a pb::SignedEnvelope) -> Signed<'a> {
        Signed {
            by: SignedBy {
                user: &env.user,
                key_id: &env.key_id,
                audience: &env.audience,
                timestamp_ms: env.timestamp_ms,
            },
            signature: &env.signature,
        }
    }

    /// The signer part of a read that came over SQS.
    pub fn of_read(read: &'a sqs::SignedRead) -> Signed<'a> {
        Signed {
            by: SignedBy {
                user: &read.user,
                key_id: &read.key_id,
                audience: &read.audience,
                timestamp_ms: read.timestamp_ms,
            },
            signature: &read.signature,
        }
    }
}

/// What a command envelope wraps beside its signer: the nonce, the expiry
/// and the encoded command; and how it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub nonce: &'a [u8],
    pub expires_ms: u64,
    pub command: &'a [u8],
    /// The transport's id of this delivery (an SQS message id), if it
    /// redelivers: a message delivered again after a transient failure is
    /// checked again, not refused as a replay. `None` (gRPC): every use
    /// after the first is a replay.
    pub delivery: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    /// The wrapped part of `env`, delivered as `delivery` names (see
    /// [`Envelope::delivery`]).
    pub fn of(env: &'a pb::SignedEnvelope, delivery: Option<&'a str>) -> Envelope<'a> {
        Envelope {
            nonce: &env.nonce,
            expires_ms: env.expires_ms,
            command: &env.command,
            delivery,
        }
    }
}

impl EnvelopeError {
    /// The signature verified before this refusal (the envelope is late,
    /// early, overlong or replayed, not forged): what it names, a reply
    /// queue among them, is the signer's.
    pub fn after_signature(&self) -> bool {
        matches!(
            self,
            EnvelopeError::Stale { .. }
                | EnvelopeError::Expired { .. }
                | EnvelopeError::TtlTooLong { .. }
                | EnvelopeError::Replayed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const PROD: &str = "prod";

    fn setup() -> (SigningKey, EnvelopeVerifier) {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut keys = BTreeMap::new();
        keys.insert("admin".to_string(), key.verifying_key());
        (
            key,
            EnvelopeVerifier::new(keys, PROD, Duration::from_secs(300)),
        )
    }

    fn key_id(key: &SigningKey) -> String {
        PublicKey(key.verifying_key().to_bytes()).id().0
    }

    /// A test envelope: who signs, for which cluster, when, until when.
    struct Env {
        user: &'static str,
        key_id: String,
        audience: &'static str,
        at: u64,
        expires: u64,
        nonce: [u8; 16],
        command: &'static [u8],
        signature: Vec<u8>,
        delivery: Option<&'static str>,
    }

    impl Env {
        fn new(key: &SigningKey, user: &'static str, nonce: u8, at: u64) -> Env {
            let mut e = Env {
                user,
                key_id: key_id(key),
                audience: PROD,
                at,
                expires: at + 60_000,
                nonce: [nonce; 16],
                command: b"cmd",
                signature: Vec::new(),
                delivery: None,
            };
            e.sign(key);
            e
        }

        fn by(&self) -> SignedBy<'_> {
            SignedBy {
                user: self.user,
                key_id: &self.key_id,
                audience: self.audience,
                timestamp_ms: self.at,
            }
        }

        fn sign(&mut self, key: &SigningKey) -> &mut Env {
            let payload = signing_payload(&self.by(), &self.nonce, self.expires, self.command);
            self.signature = key.sign(&payload).to_bytes().to_vec();
            self
        }

        fn verify(
            &self,
            v: &EnvelopeVerifier,
            policy: &PolicyDocument,
            now: u64,
        ) -> Result<Principal, EnvelopeError> {
            let signed = Signed {
                by: self.by(),
                signature: &self.signature,
            };
            let envelope = Envelope {
                nonce: &self.nonce,
                expires_ms: self.expires,
                command: self.command,
                delivery: self.delivery,
            };
            v.verify(signed, envelope, policy, now)
        }
    }

    /// A policy where `alice` holds these keys (a rotation under way).
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
        let env = Env::new(&key, "admin", 1, 1000);
        let p = env.verify(&v, &none(), 2000).unwrap();
        assert!(p.root);
        assert_eq!(p.user, "admin");
        assert_eq!(p.key_id, key_id(&key));
        assert_eq!(env.verify(&v, &none(), 2000), Err(EnvelopeError::Replayed));
    }

    #[test]
    fn a_redelivery_passes_again_and_any_other_use_is_a_replay() {
        let (key, v) = setup();
        let mut env = Env::new(&key, "admin", 20, 1000);
        env.delivery = Some("message-1");
        assert!(env.verify(&v, &none(), 2000).is_ok());
        // SQS delivers message-1 again (its first try failed transiently).
        assert!(env.verify(&v, &none(), 3000).is_ok());
        // The same body sent as another message, or over gRPC: a replay.
        env.delivery = Some("message-2");
        assert_eq!(env.verify(&v, &none(), 3000), Err(EnvelopeError::Replayed));
        env.delivery = None;
        assert_eq!(env.verify(&v, &none(), 3000), Err(EnvelopeError::Replayed));
        // A gRPC envelope redelivered "as a message" is a replay too.
        let mut grpc = Env::new(&key, "admin", 21, 1000);
        assert!(grpc.verify(&v, &none(), 2000).is_ok());
        grpc.delivery = Some("message-3");
        assert_eq!(grpc.verify(&v, &none(), 2000), Err(EnvelopeError::Replayed));
    }

    #[test]
    fn the_key_id_picks_one_of_a_policy_users_keys() {
        let (_, v) = setup();
        let (old, new) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let doc = policy(&[&old, &new]);
        for (i, key) in [&old, &new].into_iter().enumerate() {
            let p = Env::new(key, "alice", 10 + i as u8, 1000)
                .verify(&v, &doc, 1000)
                .unwrap();
            assert!(!p.root);
            assert_eq!(p.key_id, key_id(key));
        }
        // Signed by the new key but naming the old one's id: forged.
        let mut env = Env::new(&new, "alice", 12, 1000);
        env.key_id = key_id(&old);
        env.sign(&new);
        assert!(matches!(
            env.verify(&v, &doc, 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
        // Once the old key is rotated out, its id is unknown.
        let env = Env::new(&old, "alice", 13, 1000);
        assert_eq!(
            env.verify(&v, &policy(&[&new]), 1000),
            Err(EnvelopeError::UnknownKey {
                user: "alice".into(),
                key_id: key_id(&old)
            })
        );
        // Without the policy, alice is nobody.
        let env = Env::new(&old, "alice", 14, 1000);
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::UnknownUser(_))
        ));
    }

    #[test]
    fn another_clusters_envelope_is_refused() {
        let (key, v) = setup();
        let mut env = Env::new(&key, "admin", 3, 1000);
        env.audience = "staging";
        env.sign(&key);
        assert_eq!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::WrongAudience {
                got: "staging".into(),
                expected: PROD.into()
            })
        );
        env.audience = "";
        env.sign(&key);
        assert_eq!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::NoAudience)
        );
        // Relabelled to this cluster after signing: the signature breaks.
        let mut env = Env::new(&key, "admin", 4, 1000);
        env.audience = "staging";
        env.sign(&key);
        env.audience = PROD;
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn expired_future_and_overlong_envelopes_are_refused() {
        let (key, v) = setup();
        let env = Env::new(&key, "admin", 5, 1000);
        // Expired: past its expiry by more than the allowed skew.
        assert!(matches!(
            env.verify(&v, &none(), env.expires + 300_001),
            Err(EnvelopeError::Expired { .. })
        ));
        // Signed too far ahead of the node's clock.
        let env = Env::new(&key, "admin", 6, 1_000_000);
        assert!(matches!(
            env.verify(&v, &none(), 1_000_000 - 300_001),
            Err(EnvelopeError::Stale { .. })
        ));
        // A life longer than the state machine's replay window allows.
        let mut env = Env::new(&key, "admin", 7, 1000);
        env.expires = 1000 + ENVELOPE_TTL_MAX_MS + 1;
        env.sign(&key);
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::TtlTooLong { .. })
        ));
        // Expiring before it was signed.
        let mut env = Env::new(&key, "admin", 8, 1000);
        env.expires = 999;
        env.sign(&key);
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::Expired { .. })
        ));
        // Within skew of its expiry it still passes.
        let env = Env::new(&key, "admin", 9, 1000);
        assert!(env.verify(&v, &none(), env.expires + 1000).is_ok());
    }

    #[test]
    fn forged_and_unknown_are_refused() {
        let (key, v) = setup();
        let mut env = Env::new(&key, "admin", 2, 1000);
        env.command = b"other";
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
        let env = Env::new(&key, "eve", 2, 1000);
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::UnknownUser(_))
        ));
        let mut env = Env::new(&key, "admin", 2, 1000);
        env.signature = vec![0; 3];
        assert_eq!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::MalformedSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let mut env = Env::new(&other, "admin", 3, 1000);
        env.key_id = key_id(&key);
        env.sign(&other);
        assert!(matches!(
            env.verify(&v, &none(), 1000),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn a_read_token_binds_user_cluster_time_method_and_request() {
        let (key, v) = setup();
        let id = key_id(&key);
        let by = |audience| SignedBy {
            user: "admin",
            key_id: &id,
            audience,
            timestamp_ms: 1000,
        };
        let sig = key
            .sign(&read_payload(&by(PROD), "Status", b"req"))
            .to_bytes()
            .to_vec();
        let read = |audience, method, req: &[u8], sig: &[u8], now| {
            let signed = Signed {
                by: by(audience),
                signature: sig,
            };
            v.verify_read(signed, method, req, &none(), now)
        };
        assert!(read(PROD, "Status", b"req", &sig, 2000).is_ok());
        // Reads are not replay-checked: the same token reads again.
        assert!(read(PROD, "Status", b"req", &sig, 2000).is_ok());
        for (method, req) in [("History", &b"req"[..]), ("Status", &b"other"[..])] {
            assert!(matches!(
                read(PROD, method, req, &sig, 2000),
                Err(EnvelopeError::BadSignature(_))
            ));
        }
        assert!(matches!(
            read(PROD, "Status", b"req", &sig, 400_000),
            Err(EnvelopeError::Stale { .. })
        ));
        let staging = key
            .sign(&read_payload(&by("staging"), "Status", b"req"))
            .to_bytes()
            .to_vec();
        assert!(matches!(
            read("staging", "Status", b"req", &staging, 2000),
            Err(EnvelopeError::WrongAudience { .. })
        ));
        // A command signature is not a read token.
        let env = Env::new(&key, "admin", 1, 1000);
        assert!(read(PROD, "Status", b"req", &env.signature, 2000).is_err());
    }
}
