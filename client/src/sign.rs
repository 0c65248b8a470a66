//! Signing commands and reads: the client half of the envelope and read
//! token checked by every node (`canon_node::envelope`). The payload layouts
//! are the wire format's (`canon_proto::signing`), shared with the node.

use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message;

use crate::pb;

pub use canon_proto::signing::{
    read_payload, signing_payload, READ_SIGNATURE, READ_TIMESTAMP, READ_USER,
};

/// A user and their key.
#[derive(Clone)]
pub struct Signer {
    pub user: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("user", &self.user)
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
        Signer {
            user: user.into(),
            key,
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

    /// A fresh envelope (new nonce, current time) around `command`.
    pub fn envelope(&self, command: &pb::Command) -> pb::SignedEnvelope {
        let bytes = command.encode_to_vec();
        let nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        let timestamp_ms = now_ms();
        let signature = self
            .key
            .sign(&signing_payload(&self.user, &nonce, timestamp_ms, &bytes))
            .to_bytes()
            .to_vec();
        pb::SignedEnvelope {
            command: bytes,
            user: self.user.clone(),
            nonce,
            timestamp_ms,
            signature,
        }
    }

    /// A read token for `method` (`Status`, `History`, `Events`) and
    /// `request`: gRPC metadata (key, value) pairs, made now.
    pub fn read_token(&self, method: &str, request: &[u8]) -> [(&'static str, String); 3] {
        let timestamp_ms = now_ms();
        let signature = self
            .key
            .sign(&read_payload(&self.user, timestamp_ms, method, request))
            .to_bytes();
        [
            (READ_USER, self.user.clone()),
            (READ_TIMESTAMP, timestamp_ms.to_string()),
            (READ_SIGNATURE, hex::encode(signature)),
        ]
    }
}
