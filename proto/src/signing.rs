//! The bytes a user signs: the layouts of the command envelope and of the
//! read token; and the bytes a cluster signs: its replies over SQS. They are part of the wire format, so they live here, once,
//! for the client that signs and the node that verifies.
//!
//! Every variable-length field is length-prefixed and each kind of payload
//! starts with its own domain tag, so no two different messages share a
//! payload and a signature over a Canon message is valid for nothing else.
//! Version 2 (this one) signs the audience (the cluster id), the key id and
//! the expiry too; a version 1 signature verifies against none of these
//! layouts.

/// Domain tag of a signed command.
const COMMAND_DOMAIN: &[u8] = b"canon.api.v2.command\0";
/// Domain tag of a read token.
const READ_DOMAIN: &[u8] = b"canon.api.v2.read\0";
/// Domain tag of a node's reply on an SQS reply queue.
const REPLY_DOMAIN: &[u8] = b"canon.sqs.v1.reply\0";

/// gRPC metadata keys of a read token.
pub const READ_USER: &str = "canon-user";
pub const READ_KEY_ID: &str = "canon-key-id";
pub const READ_AUDIENCE: &str = "canon-audience";
pub const READ_TIMESTAMP: &str = "canon-timestamp";
/// The signature, hex.
pub const READ_SIGNATURE: &str = "canon-signature";

/// Who signs, with which key, for which cluster and when: the part of a
/// signature that both commands and reads carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signer<'a> {
    pub user: &'a str,
    /// The id of the key that signs (`canon_trust::PublicKey::id`).
    pub key_id: &'a str,
    /// The cluster id the message is for.
    pub audience: &'a str,
    /// Milliseconds since the Unix epoch when it was signed.
    pub timestamp_ms: u64,
}

impl Signer<'_> {
    fn put(&self, out: &mut Vec<u8>) {
        put(out, self.user.as_bytes());
        put(out, self.key_id.as_bytes());
        put(out, self.audience.as_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
    }
}

fn put(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_be_bytes());
    out.extend_from_slice(part);
}

/// The bytes signed for a command envelope: the signer, the nonce, the
/// expiry and the encoded command.
pub fn signing_payload(by: &Signer<'_>, nonce: &[u8], expires_ms: u64, command: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(COMMAND_DOMAIN.len() + nonce.len() + command.len() + 128);
    out.extend_from_slice(COMMAND_DOMAIN);
    by.put(&mut out);
    put(&mut out, nonce);
    out.extend_from_slice(&expires_ms.to_be_bytes());
    put(&mut out, command);
    out
}

/// The bytes signed for a read: `method` is the RPC's name (`Status`,
/// `History`, `Events`, …), `request` the encoded request.
pub fn read_payload(by: &Signer<'_>, method: &str, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(READ_DOMAIN.len() + request.len() + 128);
    out.extend_from_slice(READ_DOMAIN);
    by.put(&mut out);
    put(&mut out, method.as_bytes());
    put(&mut out, request);
    out
}

/// The bytes a cluster's reply key signs for a reply over SQS: the
/// cluster id, the key id and the encoded `SqsReply`.
pub fn reply_payload(audience: &str, key_id: &str, reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REPLY_DOMAIN.len() + reply.len() + 64);
    out.extend_from_slice(REPLY_DOMAIN);
    put(&mut out, audience.as_bytes());
    put(&mut out, key_id.as_bytes());
    put(&mut out, reply);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(audience: &str) -> Signer<'_> {
        Signer {
            user: "alice",
            key_id: "k1",
            audience,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn every_field_changes_the_payload() {
        let base = signing_payload(&by("prod"), b"n", 2, b"cmd");
        assert_ne!(base, signing_payload(&by("staging"), b"n", 2, b"cmd"));
        assert_ne!(base, signing_payload(&by("prod"), b"n", 3, b"cmd"));
        assert_ne!(base, signing_payload(&by("prod"), b"m", 2, b"cmd"));
        let other_key = Signer {
            key_id: "k2",
            ..by("prod")
        };
        assert_ne!(base, signing_payload(&other_key, b"n", 2, b"cmd"));
        // Length prefixes: moving a byte between fields is a new payload.
        let shifted = Signer {
            user: "alic",
            key_id: "ek1",
            ..by("prod")
        };
        assert_ne!(base, signing_payload(&shifted, b"n", 2, b"cmd"));
    }

    #[test]
    fn a_command_payload_is_never_a_read_payload() {
        let read = read_payload(&by("prod"), "Status", b"cmd");
        assert!(read.starts_with(READ_DOMAIN));
        assert!(signing_payload(&by("prod"), b"", 0, b"cmd").starts_with(COMMAND_DOMAIN));
        assert_ne!(read, signing_payload(&by("prod"), b"", 0, b"cmd"));
        let reply = reply_payload("prod", "k1", b"cmd");
        assert!(reply.starts_with(REPLY_DOMAIN));
        assert_ne!(reply, reply_payload("staging", "k1", b"cmd"));
        assert_ne!(reply, reply_payload("prod", "k2", b"cmd"));
    }
}
