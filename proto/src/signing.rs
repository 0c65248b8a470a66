//! The bytes a user signs: the layouts of the command envelope and of the
//! read token. They are part of the wire format, so they live here, once,
//! for the client that signs and the node that verifies.
//!
//! Every variable-length field is length-prefixed and each kind of payload
//! starts with its own domain tag, so no two different messages share a
//! payload and a signature over a Canon message is valid for nothing else.

/// Domain tag of a signed command.
const COMMAND_DOMAIN: &[u8] = b"canon.api.v1.command\0";
/// Domain tag of a read token.
const READ_DOMAIN: &[u8] = b"canon.api.v1.read\0";

/// gRPC metadata keys of a read token.
pub const READ_USER: &str = "canon-user";
pub const READ_TIMESTAMP: &str = "canon-timestamp";
/// The signature, hex.
pub const READ_SIGNATURE: &str = "canon-signature";

fn put(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_be_bytes());
    out.extend_from_slice(part);
}

/// The bytes signed for a command envelope.
pub fn signing_payload(user: &str, nonce: &[u8], timestamp_ms: u64, command: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(COMMAND_DOMAIN.len() + user.len() + nonce.len() + command.len() + 32);
    out.extend_from_slice(COMMAND_DOMAIN);
    put(&mut out, user.as_bytes());
    put(&mut out, nonce);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    put(&mut out, command);
    out
}

/// The bytes signed for a read: `method` is the RPC's name (`Status`,
/// `History`, `Events`), `request` the encoded request.
pub fn read_payload(user: &str, timestamp_ms: u64, method: &str, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(READ_DOMAIN.len() + user.len() + request.len() + 48);
    out.extend_from_slice(READ_DOMAIN);
    put(&mut out, user.as_bytes());
    put(&mut out, method.as_bytes());
    put(&mut out, request);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out
}
