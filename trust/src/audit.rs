//! The audit record and its hash chain, written once for everyone who
//! makes or checks one: the Raft state machine appends records (so every
//! replica holds the same chain), the node serves them, and the CLI
//! recomputes the chain (`canon audit verify`), from the cluster or from an
//! exported file.
//!
//! # The chain
//! Each record's `hash` is `hex(SHA-256(prev ‖ "\n" ‖ canonical(entry)))`,
//! where `prev` is the previous record's hash (the group's [`Anchor`] for
//! its first record: 64 zeros, or the hash of the last record retention
//! trimmed) and `canonical(entry)` is the entry's JSON as [`canonical`]
//! writes it: fields in declaration order, absent optional fields left
//! out, no spaces. Anyone can recompute it from an exported line
//! (`canon audit export`), without Canon.
//!
//! # Changing the format
//! Records are re-encoded to be checked, so an old record must encode to
//! the same bytes in every later release: add fields only, each optional
//! (or an empty list, or zero) and skipped when absent; never rename,
//! reorder or remove one. The canonical bytes are written by hand
//! (`audit::json`, for speed) and must stay `serde_json`'s: a field added to
//! the entry is written there too (it does not compile until it is), and
//! its tests compare the two writers.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::document::Effect;

mod json;

/// A text field of a record: a shared, immutable string, written and read
/// as a plain JSON (or CBOR) string, so records encode to the same bytes as
/// when these fields were `String`s.
///
/// Why shared: every replica keeps every record until retention trims it,
/// and most of a record's text repeats from record to record (the user,
/// the key, the action, the rule, the target, the command's name,
/// `applied`). As `String`s, each was an allocation of its own per record,
/// kept for the record's life: the allocator's work and a heap that grows
/// with the chain were most of what the audit added to a write (issue
/// #13). Cloning a `Text` is a reference count, so the state machine's
/// interner (`canon_raft::audit`) hands the same string to every record
/// that repeats it. The texts no record repeats (hashes, the command id)
/// are [`Packed`] instead.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<str>);

impl Text {
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `self` and `other` are the same allocation (not merely
    /// equal text).
    pub fn shares(&self, other: &Text) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// How many holders this string has (records, requests, an interner).
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    #[inline]
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    #[inline]
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::from(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::from(s))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text(Arc::from(s.as_str()))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0.to_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        **self == *other.0
    }
}

impl Serialize for Text {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_str(FromStrVisitor(PhantomData))
    }
}

/// A record's hash, `prev`, request hash or command id: text that is
/// almost always a SHA-256 in lowercase hex (64 digits) or a lowercase
/// hyphenated UUID (36 characters), held as its 32 or 16 bytes inside the
/// record instead of as a string of its own; any other text (an exported
/// file is anyone's) is held as that text. Written and read as the plain
/// string it spells, so records, hashes and snapshots are byte for byte
/// what `String` fields made.
///
/// Why: these are the texts of a record that no other record repeats
/// (sharing, as [`Text`] does, saves nothing), and as strings they were
/// three allocations of every record kept, on every replica (issue #13).
/// Equality is the text's: the form is chosen from the text alone, so equal
/// texts are always held alike.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Packed(Repr);

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Repr {
    Sha256([u8; 32]),
    Uuid([u8; 16]),
    Text(Text),
}

/// Where a hyphen stands in a hyphenated UUID.
const UUID_HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl Packed {
    /// A SHA-256 given as its bytes (reads as its lowercase hex).
    pub fn sha256(raw: [u8; 32]) -> Packed {
        Packed(Repr::Sha256(raw))
    }

    /// A UUID given as its bytes (reads as its lowercase hyphenated form).
    pub fn uuid(raw: [u8; 16]) -> Packed {
        Packed(Repr::Uuid(raw))
    }

    /// `text`, packed if it is a lowercase hex SHA-256 or a lowercase
    /// hyphenated UUID.
    pub fn new(text: &str) -> Packed {
        let b = text.as_bytes();
        if b.len() == 64 {
            if let Some(raw) = unhex::<32>(b) {
                return Packed(Repr::Sha256(raw));
            }
        }
        if b.len() == 36 && UUID_HYPHENS.iter().all(|&i| b[i] == b'-') {
            let mut digits = [0u8; 32];
            let mut n = 0;
            for (i, &c) in b.iter().enumerate() {
                if !UUID_HYPHENS.contains(&i) {
                    digits[n] = c;
                    n += 1;
                }
            }
            if let Some(raw) = unhex::<16>(&digits) {
                return Packed(Repr::Uuid(raw));
            }
        }
        Packed(Repr::Text(Text::from(text)))
    }

    /// The SHA-256's bytes, if that is what it holds.
    pub fn sha256_bytes(&self) -> Option<&[u8; 32]> {
        match &self.0 {
            Repr::Sha256(raw) => Some(raw),
            _ => None,
        }
    }

    /// The UUID's bytes, if that is what it holds.
    pub fn uuid_bytes(&self) -> Option<&[u8; 16]> {
        match &self.0 {
            Repr::Uuid(raw) => Some(raw),
            _ => None,
        }
    }

    /// Whether it holds its text as text (neither a SHA-256 nor a UUID).
    pub fn is_text(&self) -> bool {
        matches!(self.0, Repr::Text(_))
    }

    /// Calls `f` with the text (written on the stack when packed).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut buf = [0u8; 64];
        let text = match &self.0 {
            Repr::Text(t) => return f(t),
            Repr::Sha256(raw) => {
                hex_into(raw, &mut buf);
                &buf[..64]
            }
            Repr::Uuid(raw) => {
                // 8-4-4-4-12 digits: the groups are 4, 2, 2, 2 and 6 bytes.
                let mut at = 0;
                for (i, group) in [&raw[..4], &raw[4..6], &raw[6..8], &raw[8..10], &raw[10..]]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        buf[at] = b'-';
                        at += 1;
                    }
                    hex_into(group, &mut buf[at..at + 2 * group.len()]);
                    at += 2 * group.len();
                }
                &buf[..36]
            }
        };
        // Hex digits and hyphens are ASCII: the fallback is never taken.
        f(std::str::from_utf8(text).unwrap_or_default())
    }
}

/// `raw` as lowercase hex into `out` (twice its length).
pub(crate) fn hex_into(raw: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(raw) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
}

/// Lowercase hex digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The `N` bytes `hex` spells, if it is exactly `2N` lowercase hex digits.
fn unhex<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut raw = [0u8; N];
    for (byte, pair) in raw.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(raw)
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| fmt::Debug::fmt(s, f))
    }
}

impl fmt::Display for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl From<&str> for Packed {
    fn from(s: &str) -> Packed {
        Packed::new(s)
    }
}

impl From<String> for Packed {
    fn from(s: String) -> Packed {
        Packed::new(&s)
    }
}

impl From<&String> for Packed {
    fn from(s: &String) -> Packed {
        Packed::new(s)
    }
}

impl PartialEq<str> for Packed {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|s| s == other)
    }
}

impl PartialEq<&str> for Packed {
    fn eq(&self, other: &&str) -> bool {
        self.with_str(|s| s == *other)
    }
}

impl PartialEq<String> for Packed {
    fn eq(&self, other: &String) -> bool {
        self.with_str(|s| s == other)
    }
}

impl PartialEq<Packed> for String {
    fn eq(&self, other: &Packed) -> bool {
        other == self
    }
}

impl PartialEq<Packed> for &str {
    fn eq(&self, other: &Packed) -> bool {
        other == self
    }
}

impl Serialize for Packed {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|s| serializer.serialize_str(s))
    }
}

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Packed, D::Error> {
        deserializer.deserialize_str(FromStrVisitor(PhantomData))
    }
}

/// Reads a string into any type made from one: [`Text`] and [`Packed`]
/// are both written as the plain string they spell.
struct FromStrVisitor<T>(PhantomData<T>);

impl<T: for<'a> From<&'a str>> serde::de::Visitor<'_> for FromStrVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from(v))
    }
}

/// The `prev` of a chain's first record when nothing was trimmed.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a command reached the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The gRPC API.
    #[default]
    Grpc,
    /// An SQS queue (for nodes that listen on no port).
    Sqs,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Grpc => "grpc",
            Channel::Sqs => "sqs",
        })
    }
}

/// Who sent a command, as the door found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPrincipal {
    /// The user the envelope names (for a forged one: the name it claims).
    pub user: Text,
    /// The id of the key whose signature verified; absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Text>,
    /// The SHA-256 of the client certificate, when the channel had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<Text>,
    pub channel: Channel,
    /// Signed with a root key (always allowed, always flagged).
    pub root: bool,
}

/// What a command is on. Each part is absent when it does not apply or is
/// not known where the record is made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<Text>,
}

/// Who decided whether a command may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decider {
    /// The node's API, against the policy read linearizably (process
    /// commands, refusals before anything was proposed).
    Door,
    /// The meta group's state machine, at the command's log index (policy
    /// changes).
    StateMachine,
    /// Nobody: the conductor's own work (heals, job ends, cloud calls).
    Conductor,
}

impl fmt::Display for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decider::Door => "door",
            Decider::StateMachine => "state-machine",
            Decider::Conductor => "conductor",
        })
    }
}

/// The decision on a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDecision {
    pub effect: Effect,
    /// The rule that decided (`role web rule 1 (…)`), `root key`, or the
    /// reason of a refusal; absent for the conductor's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Text>,
    /// The policy version the decision was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    pub by: Decider,
}

/// One audited event, without its place in the chain's hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The Raft group whose chain holds it (0: the meta group).
    pub group: u64,
    /// 1, 2, 3, … within the group, never reused (trimming keeps counting).
    pub seq: u64,
    /// The command's time (its proposer's clock), ms since the epoch.
    pub at: u64,
    /// The command id in the log.
    pub command_id: Packed,
    /// The log command (`ProcessCreated`, `CloudCalled`, …).
    pub command: Text,
    /// Who sent it; absent for the conductor's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<AuditPrincipal>,
    /// A policy action (`process.run`) for a user's command, a
    /// `conductor.…` name for the conductor's own work.
    pub action: Text,
    pub target: AuditTarget,
    pub decision: AuditDecision,
    /// `applied`, `rejected: …`, `refused: …`.
    pub outcome: Text,
    /// More about it: the job, the cloud request and resource, the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// SHA-256 (hex) of the signed command bytes, for a user's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<Packed>,
    /// The cloud's request ids, where the cloud adapter reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws_request_ids: Vec<String>,
    /// Refusals the door did not record (rate limit) since its last
    /// recorded one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A record as the chain holds it: the entry, the previous record's hash
/// and its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous record's `hash`.
    pub prev: Packed,
    pub hash: Packed,
}

impl AuditRecord {
    /// `entry` linked after a record (or anchor) whose hash is `prev`.
    pub fn link(prev: &str, entry: AuditEntry) -> AuditRecord {
        AuditRecord::link_after(&Packed::new(prev), entry)
    }

    /// `entry` linked after a record whose hash is `prev`.
    pub fn link_after(prev: &Packed, entry: AuditEntry) -> AuditRecord {
        let hash = chain_hash_packed(prev, &entry);
        AuditRecord {
            entry,
            prev: prev.clone(),
            hash,
        }
    }

    /// The record as one JSON line (no newline), as exported.
    pub fn to_json_line(&self) -> String {
        // A struct of strings, integers, booleans and unit enums: serde_json
        // cannot fail on it.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record read back from [`AuditRecord::to_json_line`].
    pub fn from_json_line(line: &str) -> Result<AuditRecord, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }
}

/// The bytes an entry's hash covers (see the module doc).
pub fn canonical(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(TYPICAL_ENTRY);
    json::write_entry(&mut out, entry);
    out
}

/// Room for a typical entry's canonical bytes, so a buffer grows rarely.
const TYPICAL_ENTRY: usize = 640;

/// The hash of `entry` linked after `prev`. The state machine computes one
/// per audited request on every replica: the canonical bytes are written
/// by hand ([`json`]) into one buffer and hashed in one call, and the
/// digest is written out as hex without a character iterator. The bytes
/// hashed are exactly [`canonical`]'s.
pub fn chain_hash(prev: &str, entry: &AuditEntry) -> String {
    lower_hex(&chain_digest(prev, entry))
}

/// [`chain_hash`] as a [`Packed`] (its 32 bytes, no hex string made).
pub fn chain_hash_packed(prev: &Packed, entry: &AuditEntry) -> Packed {
    Packed::sha256(prev.with_str(|prev| chain_digest(prev, entry)))
}

/// The SHA-256 [`chain_hash`] writes out.
fn chain_digest(prev: &str, entry: &AuditEntry) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(prev.len() + 1 + TYPICAL_ENTRY);
    bytes.extend_from_slice(prev.as_bytes());
    bytes.push(b'\n');
    json::write_entry(&mut bytes, entry);
    Sha256::digest(&bytes).into()
}

/// `digest` as lowercase hex (what `hex::encode` writes).
fn lower_hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Where a group's chain starts: the sequence number and hash of the last
/// record retention removed (0 and [`GENESIS`] when none was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

impl Default for Anchor {
    fn default() -> Self {
        Anchor {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

/// The first record of a chain that does not check out, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("group {group}, record {seq}: {what}")]
pub struct ChainBreak {
    pub group: u64,
    pub seq: u64,
    pub what: String,
}

/// Checks `records`, in order, as group `group`'s chain from `anchor`:
/// sequence numbers follow on, each `prev` is the hash before it, each hash
/// is its entry's. The number of records checked, or the first break.
pub fn verify<'a>(
    group: u64,
    anchor: &Anchor,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<u64, ChainBreak> {
    let mut seq = anchor.seq;
    let anchor_hash = Packed::new(&anchor.hash);
    let mut prev = &anchor_hash;
    let mut n = 0;
    for r in records {
        let at = |what: String| ChainBreak {
            group,
            seq: r.entry.seq,
            what,
        };
        if r.entry.group != group {
            return Err(at(format!("is marked group {}", r.entry.group)));
        }
        // Checked: an export's numbers are anyone's (u64::MAX then more).
        let next = seq.checked_add(1);
        if Some(r.entry.seq) != next {
            return Err(at(format!(
                "follows record {seq}: {} missing or out of order",
                if next.is_some_and(|n| r.entry.seq > n) {
                    "records are"
                } else {
                    "records are repeated"
                }
            )));
        }
        if r.prev != *prev {
            return Err(at(format!(
                "its prev {} is not the previous record's hash {prev}",
                short(&r.prev.to_string())
            )));
        }
        let recomputed = chain_hash_packed(prev, &r.entry);
        if recomputed != r.hash {
            return Err(at(format!(
                "its contents do not match its hash (stored {}, recomputed {}): the record was changed",
                short(&r.hash.to_string()),
                short(&recomputed.to_string())
            )));
        }
        seq = r.entry.seq;
        prev = &r.hash;
        n += 1;
    }
    Ok(n)
}

fn short(hash: &str) -> &str {
    hash.get(..16).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, outcome: &str) -> AuditEntry {
        AuditEntry {
            group: 3,
            seq,
            at: 1_700_000_000_000u64.wrapping_add(seq),
            command_id: format!("id-{seq}").into(),
            command: "ProcessCreated".into(),
            principal: Some(AuditPrincipal {
                user: "alice".into(),
                key_id: Some("k1".into()),
                cert_fingerprint: None,
                channel: Channel::Grpc,
                root: false,
            }),
            action: "process.run".into(),
            target: AuditTarget {
                alias: Some("web".into()),
                ..AuditTarget::default()
            },
            decision: AuditDecision {
                effect: Effect::Allow,
                rule: Some("role web rule 1".into()),
                policy_version: Some(4),
                by: Decider::Door,
            },
            outcome: outcome.into(),
            detail: None,
            request_hash: None,
            aws_request_ids: Vec::new(),
            dropped: 0,
        }
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|s| {
                let r = AuditRecord::link(&prev, entry(s, "applied"));
                prev = r.hash.to_string();
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_survives_json_lines() {
        let c = chain(5);
        assert_eq!(verify(3, &Anchor::default(), &c), Ok(5));
        let back: Vec<AuditRecord> = c
            .iter()
            .map(|r| AuditRecord::from_json_line(&r.to_json_line()).unwrap())
            .collect();
        assert_eq!(back, c);
        // From an anchor: the tail of the chain alone.
        let anchor = Anchor {
            seq: 2,
            hash: c[1].hash.to_string(),
        };
        assert_eq!(verify(3, &anchor, &c[2..]), Ok(3));
    }

    #[test]
    fn the_first_broken_record_is_named() {
        let mut c = chain(5);
        c[2].entry.outcome = "rejected".into();
        let e = verify(3, &Anchor::default(), &c).unwrap_err();
        assert_eq!((e.group, e.seq), (3, 3));
        assert!(e.what.contains("do not match its hash"), "{e}");
        // Rehashing the edited record moves the break to the next one.
        c[2] = AuditRecord::link_after(&c[1].hash, c[2].entry.clone());
        let e = verify(3, &Anchor::default(), &c).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.what.contains("prev"), "{e}");
        // A removed record.
        let mut c = chain(5);
        c.remove(1);
        let e = verify(3, &Anchor::default(), &c).unwrap_err();
        assert_eq!(e.seq, 3);
        assert!(e.what.contains("missing"), "{e}");
    }

    #[test]
    fn a_chain_past_the_last_sequence_number_is_broken_not_a_crash() {
        let last = AuditRecord::link(GENESIS, entry(u64::MAX, "applied"));
        let after = AuditRecord::link_after(&last.hash, entry(u64::MAX, "applied"));
        let anchor = Anchor {
            seq: u64::MAX - 1,
            hash: GENESIS.to_string(),
        };
        let e = verify(3, &anchor, [&last, &after]).unwrap_err();
        assert_eq!(e.seq, u64::MAX);
        assert!(e.what.contains("repeated"), "{e}");
    }

    #[test]
    fn the_hash_covers_prev_a_newline_and_the_canonical_bytes() {
        let e = entry(1, "applied");
        let mut h = Sha256::new();
        h.update(GENESIS.as_bytes());
        h.update(b"\n");
        h.update(canonical(&e));
        assert_eq!(chain_hash(GENESIS, &e), hex::encode(h.finalize()));
    }

    #[test]
    fn text_is_written_and_read_as_a_plain_string() {
        for s in ["", "alice", "a \"quoted\" \\ line\n", "ünïcödé ✓"] {
            let t = Text::from(s);
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(s).unwrap()
            );
            let back: Text = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
            assert_eq!(back, t);
            assert_eq!(back, s);
        }
        // Clones share; equal text read afresh does not.
        let t = Text::from("alice");
        assert!(t.clone().shares(&t));
        assert!(!Text::from("alice").shares(&t));
        assert_eq!(t.holders(), 1);
    }

    #[test]
    fn a_linked_record_shares_its_prev_and_hashes_as_chain_hash_does() {
        let first = AuditRecord::link(GENESIS, entry(1, "applied"));
        let second = AuditRecord::link_after(&first.hash, entry(2, "applied"));
        assert_eq!(second.prev, first.hash);
        assert_eq!(
            second.hash,
            chain_hash(&first.hash.to_string(), &second.entry)
        );
        assert_eq!(verify(3, &Anchor::default(), [&first, &second]), Ok(2));
    }

    #[test]
    fn packed_text_reads_as_the_text_it_was_given() {
        let sha = "0123456789abcdef".repeat(4);
        let uuid = "5c6a4e0e-8a47-4b1e-9f57-3f1d2a6b7c81";
        let others = [
            String::new(),
            "id-1".to_string(),
            sha.to_uppercase(),
            uuid.to_uppercase(),
            format!("{}g", &sha[..63]),
            uuid.replace('-', "_"),
            format!("{uuid}0"),
            "5c6a4e0e-8a47-4b1e-9f57-3f1d2a6b7c8-".to_string(),
            "ünïcödé ✓".to_string(),
        ];
        for text in [sha.as_str(), uuid]
            .into_iter()
            .chain(others.iter().map(String::as_str))
        {
            let p = Packed::new(text);
            assert_eq!(p.to_string(), text);
            assert_eq!(p, text);
            assert_eq!(format!("{p:?}"), format!("{text:?}"));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            let back: Packed = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p);
        }
        assert!(Packed::new(&sha).sha256_bytes().is_some());
        assert!(Packed::new(uuid).sha256_bytes().is_none());
        assert_eq!(
            Packed::new(uuid).0,
            Repr::Uuid(unhex::<16>(uuid.replace('-', "").as_bytes()).unwrap())
        );
        assert!(matches!(Packed::new(&sha.to_uppercase()).0, Repr::Text(_)));
        assert_ne!(Packed::new(&sha), Packed::new(&sha.to_uppercase()));
    }

    #[test]
    fn lower_hex_writes_what_hex_encode_writes() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn canonical_encoding_leaves_absent_fields_out() {
        let text = String::from_utf8(canonical(&entry(1, "applied"))).unwrap();
        assert!(!text.contains("detail"), "{text}");
        assert!(!text.contains("dropped"), "{text}");
        assert!(!text.contains("aws_request_ids"), "{text}");
        assert!(text.starts_with(r#"{"group":3,"seq":1,"#), "{text}");
    }
}
