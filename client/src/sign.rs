//! Signing commands and reads: the client half of the envelope and read
//! token checked by every node (`canon_node::envelope`). The payload layouts
//! are the wire format's (`canon_proto::signing`), shared with the node.

use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message;

use crate::pb;

use canon_trust::PublicKey;

pub use canon_proto::signing::{
    read_payload, signing_payload, Signer as SignedBy, READ_AUDIENCE, READ_KEY_ID, READ_SIGNATURE,
    READ_TIMESTAMP, READ_USER,
};

/// How long an envelope the client signs stays valid. Nodes accept lives
/// up to 10 minutes (`canon_raft::state::ENVELOPE_TTL_MAX_MS`); 5 leaves
/// room for a command that waits out an election and a slow link.
pub const ENVELOPE_TTL_MS: u64 = 5 * 60 * 1000;

/// A user and their key.
#[derive(Clone)]
pub struct Signer {
    pub user: String,
    key: SigningKey,
    /// The key's id (`canon_trust::PublicKey::id`), named in every
    /// signature so that a node picks the right one of the user's keys.
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("user", &self.user)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Signer {
    pub fn new(user: impl Into<String>, key: SigningKey) -> Self {
        let key_id = PublicKey(key.verifying_key().to_bytes()).id().0;
        Signer {
            user: user.into(),
            key,
            key_id,
        }
    }

    /// Reads a hex secret key file (as `canon dev` writes it).
    pub fn from_file(user: impl Into<String>, path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "key file {} does not hold a 32-byte hex key",
                    path.display()
                )
            })?;
        Ok(Signer::new(user, SigningKey::from_bytes(&bytes)))
    }

    /// The id of this signer's key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn signed_by<'a>(&'a self, audience: &'a str, timestamp_ms: u64) -> SignedBy<'a> {
        SignedBy {
            user: &self.user,
            key_id: &self.key_id,
            audience,
            timestamp_ms,
        }
    }

    /// A fresh envelope (new nonce, current time, valid for
    /// [`ENVELOPE_TTL_MS`]) around `command`, for cluster `audience`.
    pub fn envelope(&self, audience: &str, command: &pb::Command) -> pb::SignedEnvelope {
        let bytes = command.encode_to_vec();
        let nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        let timestamp_ms = now_ms();
        let expires_ms = timestamp_ms.saturating_add(ENVELOPE_TTL_MS);
        let by = self.signed_by(audience, timestamp_ms);
        let signature = self
            .key
            .sign(&signing_payload(&by, &nonce, expires_ms, &bytes))
            .to_bytes()
            .to_vec();
        pb::SignedEnvelope {
            command: bytes,
            user: self.user.clone(),
            nonce,
            timestamp_ms,
            signature,
            audience: audience.to_string(),
            key_id: self.key_id.clone(),
            expires_ms,
        }
    }

    /// The time and signature of a read of `method` over `request` for
    /// cluster `audience`, made now.
    fn sign_read(&self, audience: &str, method: &str, request: &[u8]) -> (u64, [u8; 64]) {
        let timestamp_ms = now_ms();
        let by = self.signed_by(audience, timestamp_ms);
        let signature = self
            .key
            .sign(&read_payload(&by, method, request))
            .to_bytes();
        (timestamp_ms, signature)
    }

    /// A read of `method` over SQS: the token over `body` (an encoded
    /// `SqsReadBody`), for cluster `audience`, made now.
    pub fn sqs_read(
        &self,
        audience: &str,
        method: &str,
        body: Vec<u8>,
    ) -> canon_proto::canon::sqs::v1::SignedRead {
        let (timestamp_ms, signature) = self.sign_read(audience, method, &body);
        canon_proto::canon::sqs::v1::SignedRead {
            method: method.to_string(),
            body,
            user: self.user.clone(),
            key_id: self.key_id.clone(),
            audience: audience.to_string(),
            timestamp_ms,
            signature: signature.to_vec(),
        }
    }

    /// A read token for `method` (`Status`, `History`, `Events`, …) and
    /// `request`, for cluster `audience`: gRPC metadata (key, value)
    /// pairs, made now.
    pub fn read_token(
        &self,
        audience: &str,
        method: &str,
        request: &[u8],
    ) -> [(&'static str, String); 5] {
        let (timestamp_ms, signature) = self.sign_read(audience, method, request);
        [
            (READ_USER, self.user.clone()),
            (READ_KEY_ID, self.key_id.clone()),
            (READ_AUDIENCE, audience.to_string()),
            (READ_TIMESTAMP, timestamp_ms.to_string()),
            (READ_SIGNATURE, hex::encode(signature)),
        ]
    }
}
