//! The bodies of the fuzz targets: what must hold for any bytes a stranger
//! can hand a node (or the CLI), written once and run two ways — by
//! libFuzzer (`fuzz_targets/`, nightly) and, on stable in CI, over the
//! seed corpus (`corpus/<target>/`) and mutations of it
//! (`node/tests/fuzz_bodies.rs`, which includes this file as a module).
//!
//! - [`envelope`]: a `SignedEnvelope` as Submit receives it — decoded,
//!   its command decoded as a refusal's record does, verified as a
//!   command envelope and as a read token against a fixed cluster;
//! - [`policy`]: a trust policy as `canon policy apply` and the meta
//!   group read it — parsed and validated, and what is accepted survives
//!   its own TOML, evaluates every action, and never escalates by itself;
//! - [`audit_record`]: JSON lines as `canon audit verify --file` reads
//!   them — decoded, re-encoded alike, and verified as a chain;
//! - [`snapshot`]: a snapshot image as a node reads one from its data dir
//!   or a peer, every frame's checksum put right first so that mutations
//!   reach the records behind it (the state, the audit chain's chunks, the
//!   processes) — read, and what reads writes an image whose chain reads
//!   back the same;
//! - [`entry`]: a log entry as a node reads its WAL when it opens its data
//!   dir, an AppendEntries as a follower reads a peer's, a proposal as a
//!   leader reads one forwarded to it — each decoded in either format
//!   (the compact one and the first, CBOR), and what decodes written again
//!   in both formats, each reading back the same.
//!
//! Each returns how far the input got, so the stable test can check that
//! its seeds reach the deep end; none may panic.

use std::collections::BTreeMap;
use std::time::Duration;

use canon_node::envelope::{Envelope, EnvelopeVerifier, Signed};
use canon_proto::canon::api::v1 as pb;
use canon_trust::audit::{chain_hash, verify, Anchor, AuditRecord};
use canon_trust::{
    check_no_escalation, diff, evaluate, AccessRequest, Action, PolicyDocument, PublicKey, User,
};
use ed25519_dalek::SigningKey;
use prost::Message;

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// It did not decode (not protobuf, not UTF-8, not TOML, not JSON).
    Undecodable,
    /// It decoded and was refused (a bad signature, an invalid policy, a
    /// broken chain).
    Refused,
    /// It passed every check.
    Accepted,
}

/// The cluster the envelopes are checked for.
pub const AUDIENCE: &str = "fuzz";
/// The node's clock when it checks them (ms since the epoch).
pub const NOW_MS: u64 = 1_700_000_000_000;
/// The root user (the node's configured key).
pub const ROOT_USER: &str = "admin";
/// A user of the policy.
pub const POLICY_USER: &str = "alice";

/// The root user's signing key (the seeds are signed with it).
pub fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The policy user's signing key.
pub fn user_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// The policy the envelopes are checked against: alice and her key.
fn envelope_policy() -> PolicyDocument {
    PolicyDocument {
        users: vec![User {
            name: POLICY_USER.into(),
            keys: vec![PublicKey(user_key().verifying_key().to_bytes())],
            groups: Vec::new(),
        }],
        ..PolicyDocument::default()
    }
}

/// Any bytes as a `SignedEnvelope` at a node's door.
pub fn envelope(data: &[u8]) -> Reached {
    let Ok(env) = pb::SignedEnvelope::decode(data) else {
        return Reached::Undecodable;
    };
    // A refused envelope's record names what it asked for: its command is
    // decoded before anyone knows who signed it.
    let command = pb::Command::decode(env.command.as_slice()).ok();
    let roots = BTreeMap::from([(ROOT_USER.to_string(), root_key().verifying_key())]);
    let verifier = EnvelopeVerifier::new(roots, AUDIENCE, Duration::from_secs(300));
    let policy = envelope_policy();
    // Read as the door reads it (`Api::open_envelope`).
    let signed = Signed::of_envelope(&env);
    let wrapped = Envelope::of(&env, None);
    // The same signer part as a read token (over the command's bytes).
    if let Ok(reader) = verifier.verify_read(signed, "Status", &env.command, &policy, NOW_MS) {
        assert_eq!(reader.user, env.user);
    }
    match verifier.verify(signed, wrapped, &policy, NOW_MS) {
        Ok(principal) => {
            assert_eq!(principal.user, env.user, "verified as someone else");
            assert_eq!(principal.root, env.user == ROOT_USER);
            // Checked once, an envelope is spent.
            assert!(verifier.verify(signed, wrapped, &policy, NOW_MS).is_err());
            if command.is_some() {
                Reached::Accepted
            } else {
                Reached::Refused
            }
        }
        Err(e) => {
            let _ = e.to_string();
            Reached::Refused
        }
    }
}

/// Any bytes as a trust policy document (TOML).
pub fn policy(data: &[u8]) -> Reached {
    let Ok(text) = std::str::from_utf8(data) else {
        return Reached::Undecodable;
    };
    let doc = match PolicyDocument::from_toml(text) {
        Ok(doc) => doc,
        Err(e) => {
            let _ = e.to_string();
            return Reached::Refused;
        }
    };
    let again = PolicyDocument::from_toml(&doc.to_toml());
    assert_eq!(again.as_ref(), Ok(&doc), "a document's own TOML reads back");
    assert!(diff(&doc, &doc).is_empty());
    let _ = diff(&PolicyDocument::default(), &doc);
    let users = doc.users.iter().map(|u| u.name.as_str());
    for user in users.chain(["nobody"]) {
        for action in Action::ALL {
            for (account, alias) in [(None, None), (Some("web-prod"), Some("web-1"))] {
                let request = AccessRequest {
                    action: *action,
                    account,
                    alias,
                };
                let _ = evaluate(&doc, user, &request).to_string();
            }
        }
        assert!(
            check_no_escalation(&doc, &doc, user).is_ok(),
            "{user} escalates by changing nothing"
        );
    }
    Reached::Accepted
}

/// Any bytes as an exported audit log (JSON lines), checked the way
/// `canon audit verify --file` checks one.
pub fn audit_record(data: &[u8]) -> Reached {
    let Ok(text) = std::str::from_utf8(data) else {
        return Reached::Undecodable;
    };
    let mut records = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(r) = AuditRecord::from_json_line(line) else {
            return Reached::Undecodable;
        };
        let back = AuditRecord::from_json_line(&r.to_json_line());
        assert_eq!(back.as_ref(), Ok(&r), "a record's own line reads back");
        records.push(r);
    }
    let Some(first) = records.first() else {
        return Reached::Undecodable;
    };
    let group = first.entry.group;
    let anchor = Anchor {
        seq: first.entry.seq.saturating_sub(1),
        hash: first.prev.to_string(),
    };
    match verify(group, &anchor, &records) {
        Ok(n) => {
            assert_eq!(n, records.len() as u64);
            for r in &records {
                assert_eq!(chain_hash(&r.prev.to_string(), &r.entry), r.hash);
            }
            Reached::Accepted
        }
        Err(e) => {
            let _ = e.to_string();
            Reached::Refused
        }
    }
}

/// See the module doc.
pub fn snapshot(data: &[u8]) -> Reached {
    use canon_raft::store::snap_format::{encode_image, read_image, MAGIC};
    if !data.starts_with(MAGIC) {
        return Reached::Undecodable;
    }
    let mut bytes = data.to_vec();
    put_checksums_right(&mut bytes, MAGIC.len());
    match read_image(&bytes[..]) {
        Ok(image) => {
            let chain = image.state.audit.clone();
            let again = encode_image(&image.meta, image.state);
            let again = again.map(|b| read_image(&b[..]).map(|i| i.state.audit));
            match again {
                Ok(Ok(back)) => assert_eq!(back, chain, "a chain read back"),
                other => panic!("a snapshot that read does not write again: {other:?}"),
            }
            Reached::Accepted
        }
        Err(e) => {
            let _ = e.to_string();
            Reached::Refused
        }
    }
}

/// Sets the CRC of each whole frame (`kind | length | CRC | payload`)
/// from `at` on to what its kind and payload make.
fn put_checksums_right(bytes: &mut [u8], mut at: usize) {
    while let Some(head) = bytes.get(at..at + 9) {
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let Some(end) = (at + 9).checked_add(len).filter(|e| *e <= bytes.len()) else {
            return;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[at..at + 1]);
        crc.update(&bytes[at + 9..end]);
        bytes[at + 5..at + 9].copy_from_slice(&crc.finalize().to_le_bytes());
        at = end;
    }
}

/// See the module doc. Writing the first format goes through serde and
/// reads back a batch without the compact bytes it was decoded from, so
/// the compact writing after it encodes every request afresh rather than
/// reusing the input's bytes.
pub fn entry(data: &[u8]) -> Reached {
    use canon_raft::entry_codec as codec;
    if data.is_empty() {
        return Reached::Undecodable;
    }
    let decoded = [
        codec::decode_entry(data)
            .map(|e| reads_back_alike(&e, codec::encode_entry_as, codec::decode_entry)),
        codec::decode_append_entries(data).map(|a| {
            reads_back_alike(
                &a,
                codec::encode_append_entries_as,
                codec::decode_append_entries,
            )
        }),
        codec::decode_request(data)
            .map(|r| reads_back_alike(&r, codec::encode_request_as, codec::decode_request)),
    ];
    let mut reached = Reached::Refused;
    for outcome in decoded {
        match outcome {
            Ok(()) => reached = Reached::Accepted,
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    reached
}

/// Writes `value` in the first format, reads it, writes that in the
/// compact format and reads it again: every step must succeed and each
/// value read must be `value` (compared by its `Debug` form: not every
/// type in a log entry is `PartialEq`).
fn reads_back_alike<T: std::fmt::Debug>(
    value: &T,
    write: impl Fn(
        canon_raft::entry_codec::WriteFormat,
        &T,
    ) -> Result<Vec<u8>, canon_raft::codec::CodecError>,
    read: impl Fn(&[u8]) -> Result<T, canon_raft::codec::CodecError>,
) {
    use canon_raft::entry_codec::WriteFormat;
    let expected = format!("{value:?}");
    let mut current = None::<T>;
    for format in [WriteFormat::First, WriteFormat::Compact] {
        let from = current.as_ref().unwrap_or(value);
        let bytes = write(format, from)
            .unwrap_or_else(|e| panic!("what was read does not write ({format:?}): {e}"));
        let back = read(&bytes)
            .unwrap_or_else(|e| panic!("what was written ({format:?}) does not read: {e}"));
        assert_eq!(
            format!("{back:?}"),
            expected,
            "read back alike ({format:?})"
        );
        current = Some(back);
    }
}
