//! The compact format of log entries, of AppendEntries and of proposals
//! (codec format tag 2), the bytes every write costs on every replica.
//!
//! The first format ([`crate::codec`], tag 1) is CBOR through serde: every
//! field name of every request is written and read back, options are
//! boxed, and a request hash is 64 hex characters. A user's signed write
//! was 288 bytes and a follower spent more time decoding it than applying
//! it. This format writes the same values positionally: integers as
//! LEB128 varints, a request id as its 16 bytes, a SHA-256 in hex as its
//! 32 bytes, and the common commands (`Noop`, `BenchPut`) field by field.
//! Every other command is written as its tag-1 CBOR inside the compact
//! request, so a command added later needs nothing here.
//!
//! Entries written in the first format (older logs) still decode:
//! [`decode_entry`] and [`decode_append_entries`] read either tag. Snapshots
//! and every other value keep the first format.
//!
//! A batch's compact bytes are made once and kept in the batch
//! ([`Batch::encoding_cell`]): the leader's log write, the AppendEntries to
//! each follower and each follower's own log write reuse them.
//!
//! # Rolling upgrades
//! A node of a release before this format cannot read it. So the format a
//! node *writes* is a process-wide setting ([`set_write_format`],
//! `canond --entry-format`): during a rolling upgrade from such a
//! release, every upgraded node runs with [`WriteFormat::First`] (it reads
//! both, writes what the old members read); once every member runs this
//! release, a second roll without the option turns the compact format on.
//!
//! # Shared text
//! A follower decodes every request of every entry, and most requests of a
//! batch come from the same few users through the same door: decoding
//! each one's principal, action and rule afresh was seven allocations a
//! signed request. Each decoding thread remembers the last principal and
//! the last action, rule, region and certificate fingerprint it decoded
//! ([`Recent`]), and a request that repeats one shares it (an `Arc`)
//! instead; its request hash, written as its 32 bytes, is read back into
//! them ([`Packed`]) rather than into a hex string. It changes nothing
//! decoded, only what shares memory; one of each per thread, so bounded.
//!
//! # Compatibility
//! The layout is fixed: a new field of `Request`, `Principal` or
//! `DoorContext` needs a new flag bit (old readers refuse unknown bits, so
//! nothing is silently dropped), and a new command written field by field
//! needs a new command kind. The encoders destructure each type whole, so
//! adding a field does not compile until this module handles it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use canon_trust::audit::{Packed, Text};
use openraft::raft::AppendEntriesRequest;
use openraft::{CommittedLeaderId, EntryPayload, LeaderId, LogId};
use uuid::Uuid;

use crate::audit::DoorContext;
use crate::codec::{self, CodecError};
use crate::command::{Batch, Command, CommandId, Request};
use crate::compact::{bad, channel_byte, write_bytes, write_str, write_varint, Reader};
use crate::ids::NodeId;
use crate::policy_command::Principal;
use crate::types::{Entry, TypeConfig, Vote};

/// Format tag of compactly encoded entries and AppendEntries.
pub const FORMAT_COMPACT_V2: u8 = 2;

// Entry payload kinds.
const PAYLOAD_BLANK: u8 = 0;
const PAYLOAD_NORMAL: u8 = 1;
const PAYLOAD_MEMBERSHIP: u8 = 2;

// Request flags.
const HAS_FENCE: u8 = 1;
const HAS_PRINCIPAL: u8 = 2;
const HAS_DOOR: u8 = 4;
const REQUEST_FLAGS: u8 = HAS_FENCE | HAS_PRINCIPAL | HAS_DOOR;

// Command kinds.
const COMMAND_CBOR: u8 = 0;
const COMMAND_NOOP: u8 = 1;
const COMMAND_BENCH_PUT: u8 = 2;

// Door context flags.
const DOOR_REQUEST_HASH: u8 = 1;
const DOOR_CERT_FINGERPRINT: u8 = 2;
const DOOR_RULE: u8 = 4;
const DOOR_POLICY_VERSION: u8 = 8;
const DOOR_REGION: u8 = 16;
const DOOR_FLAGS: u8 =
    DOOR_REQUEST_HASH | DOOR_CERT_FINGERPRINT | DOOR_RULE | DOOR_POLICY_VERSION | DOOR_REGION;

// How a hash string is written.
const HASH_TEXT: u8 = 0;
const HASH_SHA256_HEX: u8 = 1;

/// Which format a node writes its log entries, AppendEntries and
/// proposals in (it reads both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    /// The compact format (tag 2): the default.
    Compact,
    /// The first format (CBOR, tag 1), which releases before the compact
    /// format read: for the first roll of a rolling upgrade from one.
    First,
}

impl std::str::FromStr for WriteFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "compact" => Ok(WriteFormat::Compact),
            "first" | "cbor" => Ok(WriteFormat::First),
            other => Err(format!(
                "unknown entry format {other:?}: use compact (the default) or first (while \
                 members of a release before the compact format remain)"
            )),
        }
    }
}

/// Whether this process writes the first format (false: compact).
static WRITES_FIRST_FORMAT: AtomicBool = AtomicBool::new(false);

/// Sets the format this process writes from now on (every node in it).
pub fn set_write_format(format: WriteFormat) {
    WRITES_FIRST_FORMAT.store(format == WriteFormat::First, Ordering::Relaxed);
}

/// The format this process writes.
pub fn write_format() -> WriteFormat {
    match WRITES_FIRST_FORMAT.load(Ordering::Relaxed) {
        true => WriteFormat::First,
        false => WriteFormat::Compact,
    }
}

/// Encodes a log entry (the value of its log key) in the format this
/// process writes ([`write_format`]).
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, CodecError> {
    encode_entry_as(write_format(), entry)
}

/// Encodes a log entry in `format`.
pub fn encode_entry_as(format: WriteFormat, entry: &Entry) -> Result<Vec<u8>, CodecError> {
    written_in(format, entry, 64 + payload_hint(entry), |out, e| {
        write_entry_body(out, e)
    })
}

/// `value` in the first format, or in the compact one (tag, then what
/// `body` writes into a buffer of `capacity`).
fn written_in<T: serde::Serialize>(
    format: WriteFormat,
    value: &T,
    capacity: usize,
    body: impl FnOnce(&mut Vec<u8>, &T) -> Result<(), CodecError>,
) -> Result<Vec<u8>, CodecError> {
    if format == WriteFormat::First {
        return codec::encode(value);
    }
    let mut out = Vec::with_capacity(capacity);
    out.push(FORMAT_COMPACT_V2);
    body(&mut out, value)?;
    Ok(out)
}

/// A value in either format: the first's CBOR, or what `body` reads of
/// the compact one, which must be all of it.
fn read_in_either<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    body: impl FnOnce(&mut Reader) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    if bytes.first() != Some(&FORMAT_COMPACT_V2) {
        return codec::decode(bytes);
    }
    let mut r = Reader::new(&bytes[1..]);
    let value = body(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Decodes a log entry written by [`encode_entry`] or, in the first
/// format, by an older release.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, CodecError> {
    read_in_either(bytes, read_entry_body)
}

/// Encodes an AppendEntries request in the format this process writes;
/// in the compact one, each entry's batch is encoded at most once over its
/// life (usually already, by the leader's log write).
pub fn encode_append_entries(
    req: &AppendEntriesRequest<TypeConfig>,
) -> Result<Vec<u8>, CodecError> {
    encode_append_entries_as(write_format(), req)
}

/// Encodes an AppendEntries request in `format`.
pub fn encode_append_entries_as(
    format: WriteFormat,
    req: &AppendEntriesRequest<TypeConfig>,
) -> Result<Vec<u8>, CodecError> {
    let hint: usize = req.entries.iter().map(payload_hint).sum();
    let capacity = 48 + hint + 24 * req.entries.len();
    written_in(format, req, capacity, |out, req| {
        write_vote(out, &req.vote);
        write_opt_log_id(out, req.prev_log_id.as_ref());
        write_opt_log_id(out, req.leader_commit.as_ref());
        write_varint(out, req.entries.len() as u64);
        let mut body = Vec::new();
        for entry in &req.entries {
            body.clear();
            write_entry_body(&mut body, entry)?;
            write_bytes(out, &body);
        }
        Ok(())
    })
}

/// Decodes an AppendEntries request in either format (an older leader
/// sends the first).
pub fn decode_append_entries(bytes: &[u8]) -> Result<AppendEntriesRequest<TypeConfig>, CodecError> {
    read_in_either(bytes, |r| {
        let vote = read_vote(r)?;
        let prev_log_id = read_opt_log_id(r)?;
        let leader_commit = read_opt_log_id(r)?;
        let count = r.count()?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let mut body = Reader::new(r.bytes()?);
            entries.push(read_entry_body(&mut body)?);
            body.finish()?;
        }
        Ok(AppendEntriesRequest {
            vote,
            prev_log_id,
            entries,
            leader_commit,
        })
    })
}

/// Encodes one request in the compact format: a proposal sent to the
/// group's leader (forwarded by a node, or from a client).
pub fn encode_request(req: &Request) -> Result<Vec<u8>, CodecError> {
    encode_request_as(write_format(), req)
}

/// Encodes one request (a proposal) in `format`.
pub fn encode_request_as(format: WriteFormat, req: &Request) -> Result<Vec<u8>, CodecError> {
    written_in(format, req, 1 + size_hint(req), |out, r| {
        write_request(out, r)
    })
}

/// Decodes a request written by [`encode_request`] or, in the first
/// format, by an older release.
pub fn decode_request(bytes: &[u8]) -> Result<Request, CodecError> {
    read_in_either(bytes, read_request)
}

/// The compact encoding of `batch`'s requests, made on first use and kept.
pub fn batch_bytes(batch: &Batch) -> Result<&[u8], CodecError> {
    let cell = batch.encoding_cell();
    if let Some(bytes) = cell.get() {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(16 + batch.requests().iter().map(size_hint).sum::<usize>());
    write_varint(&mut out, batch.requests().len() as u64);
    for req in batch.requests() {
        write_request(&mut out, req)?;
    }
    // Another thread may have set it meanwhile: equal bytes, either will do.
    let _ = cell.set(out.into_boxed_slice());
    cell.get()
        .map(|b| &b[..])
        .ok_or_else(|| CodecError::Encode("batch encoding was not kept".into()))
}

fn payload_hint(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(batch) => match batch.encoding_cell().get() {
            Some(bytes) => bytes.len(),
            None => batch.requests().iter().map(size_hint).sum(),
        },
        _ => 64,
    }
}

fn size_hint(req: &Request) -> usize {
    match &req.command {
        Command::BenchPut { value, .. } => 48 + value.len(),
        _ => 64,
    }
}

fn write_entry_body(out: &mut Vec<u8>, entry: &Entry) -> Result<(), CodecError> {
    write_log_id(out, &entry.log_id);
    match &entry.payload {
        EntryPayload::Blank => out.push(PAYLOAD_BLANK),
        EntryPayload::Normal(batch) => {
            out.push(PAYLOAD_NORMAL);
            out.extend_from_slice(batch_bytes(batch)?);
        }
        EntryPayload::Membership(m) => {
            out.push(PAYLOAD_MEMBERSHIP);
            out.extend_from_slice(&codec::encode(m)?);
        }
    }
    Ok(())
}

fn read_entry_body(r: &mut Reader<'_>) -> Result<Entry, CodecError> {
    let log_id = read_log_id(r)?;
    let payload = match r.byte()? {
        PAYLOAD_BLANK => EntryPayload::Blank,
        PAYLOAD_NORMAL => {
            let start = r.rest();
            let count = r.count()?;
            let mut requests = Vec::with_capacity(count);
            for _ in 0..count {
                requests.push(read_request(r)?);
            }
            let used = start.len() - r.rest().len();
            EntryPayload::Normal(Batch::with_encoding(requests, start[..used].into()))
        }
        PAYLOAD_MEMBERSHIP => EntryPayload::Membership(codec::decode(r.take_rest())?),
        other => return Err(bad(format!("unknown entry payload kind {other}"))),
    };
    Ok(Entry { log_id, payload })
}

fn write_request(out: &mut Vec<u8>, req: &Request) -> Result<(), CodecError> {
    let Request {
        id,
        at,
        command,
        fence,
        principal,
        door,
    } = req;
    out.extend_from_slice(id.0.as_bytes());
    write_varint(out, *at);
    let mut flags = 0;
    if fence.is_some() {
        flags |= HAS_FENCE;
    }
    if principal.is_some() {
        flags |= HAS_PRINCIPAL;
    }
    if door.is_some() {
        flags |= HAS_DOOR;
    }
    out.push(flags);
    if let Some(term) = fence {
        write_varint(out, *term);
    }
    if let Some(p) = principal {
        write_principal(out, p);
    }
    if let Some(d) = door {
        write_door(out, d);
    }
    write_command(out, command)
}

fn read_request(r: &mut Reader<'_>) -> Result<Request, CodecError> {
    let id = CommandId(Uuid::from_bytes(r.array::<16>()?));
    let at = r.varint()?;
    let flags = r.byte()?;
    if flags & !REQUEST_FLAGS != 0 {
        return Err(bad(format!("unknown request flags {flags:#04x}")));
    }
    let fence = if flags & HAS_FENCE != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let principal = if flags & HAS_PRINCIPAL != 0 {
        Some(read_principal(r)?)
    } else {
        None
    };
    let door = if flags & HAS_DOOR != 0 {
        Some(Box::new(read_door(r)?))
    } else {
        None
    };
    let command = read_command(r)?;
    Ok(Request {
        id,
        at,
        command,
        fence,
        principal,
        door,
    })
}

fn write_command(out: &mut Vec<u8>, command: &Command) -> Result<(), CodecError> {
    match command {
        Command::Noop => out.push(COMMAND_NOOP),
        Command::BenchPut { key, value } => {
            out.push(COMMAND_BENCH_PUT);
            write_varint(out, *key);
            write_bytes(out, value);
        }
        other => {
            out.push(COMMAND_CBOR);
            write_bytes(out, &codec::encode(other)?);
        }
    }
    Ok(())
}

fn read_command(r: &mut Reader<'_>) -> Result<Command, CodecError> {
    match r.byte()? {
        COMMAND_NOOP => Ok(Command::Noop),
        COMMAND_BENCH_PUT => Ok(Command::BenchPut {
            key: r.varint()?,
            value: r.bytes()?.to_vec(),
        }),
        COMMAND_CBOR => codec::decode(r.bytes()?),
        other => Err(bad(format!("unknown command kind {other}"))),
    }
}

fn write_principal(out: &mut Vec<u8>, p: &Principal) {
    let Principal { user, key_id, root } = p;
    write_str(out, user);
    write_str(out, key_id);
    out.push(u8::from(*root));
}

/// What this thread decoded last, for the requests after it to share (see
/// the module doc).
#[derive(Default)]
struct Recent {
    principal: Option<Arc<Principal>>,
    action: Option<Text>,
    rule: Option<Text>,
    region: Option<Text>,
    cert_fingerprint: Option<Text>,
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// `text`, shared with `slot` if it holds the same text; else a new one,
/// kept in `slot` for the next.
fn shared(slot: &mut Option<Text>, text: &str) -> Text {
    match slot {
        Some(t) if **t == *text => t.clone(),
        _ => {
            let t = Text::from(text);
            *slot = Some(t.clone());
            t
        }
    }
}

/// Which of [`Recent`]'s texts a field shares.
#[derive(Clone, Copy)]
enum Field {
    Action,
    Rule,
    Region,
    CertFingerprint,
}

/// `text` of `field`, shared with the last one this thread decoded.
fn recent_text(field: Field, text: &str) -> Text {
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        let slot = match field {
            Field::Action => &mut recent.action,
            Field::Rule => &mut recent.rule,
            Field::Region => &mut recent.region,
            Field::CertFingerprint => &mut recent.cert_fingerprint,
        };
        shared(slot, text)
    })
}

fn read_principal(r: &mut Reader<'_>) -> Result<Arc<Principal>, CodecError> {
    let user = r.str()?;
    let key_id = r.str()?;
    let root = r.bool()?;
    Ok(RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        match &recent.principal {
            Some(p) if p.user == user && p.key_id == key_id && p.root == root => p.clone(),
            _ => {
                let p = Arc::new(Principal {
                    user: user.to_owned(),
                    key_id: key_id.to_owned(),
                    root,
                });
                recent.principal = Some(p.clone());
                p
            }
        }
    }))
}

fn write_door(out: &mut Vec<u8>, d: &DoorContext) {
    let DoorContext {
        action,
        channel,
        request_hash,
        cert_fingerprint,
        rule,
        policy_version,
        region,
    } = d;
    write_str(out, action);
    out.push(channel_byte(*channel));
    let mut flags = 0;
    for (present, bit) in [
        (request_hash.is_some(), DOOR_REQUEST_HASH),
        (cert_fingerprint.is_some(), DOOR_CERT_FINGERPRINT),
        (rule.is_some(), DOOR_RULE),
        (policy_version.is_some(), DOOR_POLICY_VERSION),
        (region.is_some(), DOOR_REGION),
    ] {
        if present {
            flags |= bit;
        }
    }
    out.push(flags);
    if let Some(h) = request_hash {
        match h.sha256_bytes() {
            Some(raw) => {
                out.push(HASH_SHA256_HEX);
                out.extend_from_slice(raw);
            }
            None => h.with_str(|text| write_hash(out, text)),
        }
    }
    if let Some(h) = cert_fingerprint {
        write_hash(out, h);
    }
    if let Some(rule) = rule {
        write_str(out, rule);
    }
    if let Some(v) = policy_version {
        write_varint(out, *v);
    }
    if let Some(region) = region {
        write_str(out, region);
    }
}

fn read_door(r: &mut Reader<'_>) -> Result<DoorContext, CodecError> {
    let action = recent_text(Field::Action, r.str()?);
    let channel = r.channel()?;
    let flags = r.byte()?;
    if flags & !DOOR_FLAGS != 0 {
        return Err(bad(format!("unknown door context flags {flags:#04x}")));
    }
    let has = |bit: u8| flags & bit != 0;
    Ok(DoorContext {
        action,
        channel,
        request_hash: if has(DOOR_REQUEST_HASH) {
            Some(read_packed(r)?)
        } else {
            None
        },
        cert_fingerprint: if has(DOOR_CERT_FINGERPRINT) {
            Some(recent_text(Field::CertFingerprint, &read_hash(r)?))
        } else {
            None
        },
        rule: if has(DOOR_RULE) {
            Some(recent_text(Field::Rule, r.str()?))
        } else {
            None
        },
        policy_version: if has(DOOR_POLICY_VERSION) {
            Some(r.varint()?)
        } else {
            None
        },
        region: if has(DOOR_REGION) {
            Some(recent_text(Field::Region, r.str()?))
        } else {
            None
        },
    })
}

/// A SHA-256 in lowercase hex as its 32 bytes; any other text as text, so
/// that it reads back exactly as written.
fn write_hash(out: &mut Vec<u8>, text: &str) {
    match sha256_hex_bytes(text) {
        Some(raw) => {
            out.push(HASH_SHA256_HEX);
            out.extend_from_slice(&raw);
        }
        None => {
            out.push(HASH_TEXT);
            write_str(out, text);
        }
    }
}

fn read_hash(r: &mut Reader<'_>) -> Result<Text, CodecError> {
    match r.byte()? {
        HASH_SHA256_HEX => {
            let raw = r.array::<32>()?;
            let mut hex = [0u8; 64];
            hex_into(&raw, &mut hex);
            std::str::from_utf8(&hex)
                .map(Text::from)
                .map_err(|e| bad(format!("hex is not UTF-8: {e}")))
        }
        HASH_TEXT => r.str().map(Text::from),
        other => Err(bad(format!("unknown hash form {other}"))),
    }
}

/// A hash as [`write_hash`] wrote it, held as its bytes (see
/// [`Packed`]).
fn read_packed(r: &mut Reader<'_>) -> Result<Packed, CodecError> {
    match r.byte()? {
        HASH_SHA256_HEX => Ok(Packed::sha256(r.array::<32>()?)),
        HASH_TEXT => r.str().map(Packed::new),
        other => Err(bad(format!("unknown hash form {other}"))),
    }
}

/// The 32 bytes `text` spells, if it is exactly 64 lowercase hex digits.
fn sha256_hex_bytes(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    };
    let mut raw = [0u8; 32];
    for (byte, pair) in raw.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Some(raw)
}

/// `raw` as lowercase hex into `out` (twice its length).
fn hex_into(raw: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(raw) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn write_log_id(out: &mut Vec<u8>, id: &LogId<NodeId>) {
    write_varint(out, id.leader_id.term);
    write_varint(out, id.leader_id.node_id);
    write_varint(out, id.index);
}

fn read_log_id(r: &mut Reader<'_>) -> Result<LogId<NodeId>, CodecError> {
    let term = r.varint()?;
    let node_id = r.varint()?;
    let index = r.varint()?;
    Ok(LogId::new(CommittedLeaderId::new(term, node_id), index))
}

fn write_opt_log_id(out: &mut Vec<u8>, id: Option<&LogId<NodeId>>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            write_log_id(out, id);
        }
    }
}

fn read_opt_log_id(r: &mut Reader<'_>) -> Result<Option<LogId<NodeId>>, CodecError> {
    match r.byte()? {
        0 => Ok(None),
        1 => read_log_id(r).map(Some),
        other => Err(bad(format!("bad option marker {other}"))),
    }
}

fn write_vote(out: &mut Vec<u8>, vote: &Vote) {
    write_varint(out, vote.leader_id.term);
    write_varint(out, vote.leader_id.node_id);
    out.push(u8::from(vote.committed));
}

fn read_vote(r: &mut Reader<'_>) -> Result<Vote, CodecError> {
    let term = r.varint()?;
    let node_id = r.varint()?;
    let committed = r.bool()?;
    Ok(Vote {
        leader_id: LeaderId::new(term, node_id),
        committed,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use canon_model::{Fid, JobKind};
    use canon_trust::audit::Channel;
    use openraft::Membership;

    use super::*;
    use crate::types::Node;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn signed(at: u64, command: Command) -> Request {
        Request::fenced(7, at, command)
            .by(Principal {
                user: "alice".into(),
                key_id: "k-1".into(),
                root: false,
            })
            .with_door(DoorContext {
                action: "process.run".into(),
                channel: Channel::Sqs,
                request_hash: Some(HASH.into()),
                cert_fingerprint: Some("not-hex".into()),
                rule: Some("ops may run".into()),
                policy_version: Some(3),
                region: Some("eu-west-1".into()),
            })
    }

    fn requests() -> Vec<Request> {
        vec![
            Request::new(1, Command::Noop),
            Request::new(
                u64::MAX,
                Command::BenchPut {
                    key: 300,
                    value: (0..=255).collect(),
                },
            ),
            signed(
                1_700_000_000_000,
                Command::JobStarted {
                    fid: Fid::random(),
                    job: 9,
                    kind: JobKind::Run,
                    message: "run ✓".into(),
                },
            ),
            Request::new(2, Command::Noop).with_door(DoorContext {
                request_hash: Some(HASH.to_uppercase().into()),
                ..DoorContext::default()
            }),
        ]
    }

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 2), index),
            payload,
        }
    }

    fn membership() -> Membership<NodeId, Node> {
        let nodes: BTreeMap<NodeId, Node> = (1..=3)
            .map(|n| (n, Node::new(format!("127.0.0.1:{}", 7000 + n))))
            .collect();
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)
    }

    #[test]
    fn every_kind_of_entry_round_trips() {
        for e in [
            entry(1, EntryPayload::Blank),
            entry(2, EntryPayload::Membership(membership())),
            entry(300, EntryPayload::Normal(Batch::from(requests()))),
        ] {
            let bytes = encode_entry(&e).unwrap();
            assert_eq!(bytes[0], FORMAT_COMPACT_V2);
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn entries_of_the_first_format_still_decode() {
        let e = entry(5, EntryPayload::Normal(Batch::from(requests())));
        let old = codec::encode(&e).unwrap();
        assert_eq!(old[0], 1);
        assert_eq!(decode_entry(&old).unwrap(), e);
        let m = entry(6, EntryPayload::Membership(membership()));
        assert_eq!(decode_entry(&codec::encode(&m).unwrap()).unwrap(), m);
    }

    #[test]
    fn a_signed_request_is_much_smaller_than_in_cbor() {
        let req = signed(1_700_000_000_000, Command::Noop);
        let e = entry(1, EntryPayload::Normal(Batch::from(vec![req])));
        let (old, new) = (codec::encode(&e).unwrap(), encode_entry(&e).unwrap());
        assert!(new.len() * 2 < old.len(), "{} vs {}", new.len(), old.len());
    }

    #[test]
    fn a_batch_is_encoded_once_and_a_decoded_one_keeps_its_bytes() {
        let batch = Batch::from(requests());
        let first = batch_bytes(&batch).unwrap().as_ptr();
        assert_eq!(batch_bytes(&batch.clone()).unwrap().as_ptr(), first);
        let bytes = encode_entry(&entry(1, EntryPayload::Normal(batch.clone()))).unwrap();
        let EntryPayload::Normal(decoded) = decode_entry(&bytes).unwrap().payload else {
            panic!("not a normal entry");
        };
        assert!(decoded.encoding_cell().get().is_some());
        assert_eq!(batch_bytes(&decoded).unwrap(), batch_bytes(&batch).unwrap());
    }

    fn append_request(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote {
                leader_id: LeaderId::new(3, 2),
                committed: true,
            },
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), 4)),
            entries,
            leader_commit: None,
        }
    }

    /// openraft's request has no `PartialEq`.
    fn assert_same(a: &AppendEntriesRequest<TypeConfig>, b: &AppendEntriesRequest<TypeConfig>) {
        assert_eq!(a.vote, b.vote);
        assert_eq!(a.prev_log_id, b.prev_log_id);
        assert_eq!(a.leader_commit, b.leader_commit);
        assert_eq!(a.entries, b.entries);
    }

    #[test]
    fn append_entries_round_trip_in_either_format() {
        let req = append_request(vec![
            entry(5, EntryPayload::Normal(Batch::from(requests()))),
            entry(6, EntryPayload::Blank),
            entry(7, EntryPayload::Membership(membership())),
        ]);
        let new = encode_append_entries(&req).unwrap();
        assert_same(&decode_append_entries(&new).unwrap(), &req);
        let old = codec::encode(&req).unwrap();
        assert_same(&decode_append_entries(&old).unwrap(), &req);
        let heartbeat = append_request(Vec::new());
        let bytes = encode_append_entries(&heartbeat).unwrap();
        assert_same(&decode_append_entries(&bytes).unwrap(), &heartbeat);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let req = append_request(vec![entry(
            5,
            EntryPayload::Normal(Batch::from(requests())),
        )]);
        let good = encode_append_entries(&req).unwrap();
        for cut in 1..good.len() {
            assert!(decode_append_entries(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(decode_append_entries(&extra).is_err());
        // Every single-byte change either fails or decodes to something.
        for i in 1..good.len() {
            let mut bent = good.clone();
            bent[i] ^= 0xff;
            let _ = decode_append_entries(&bent);
        }
        let e = encode_entry(&entry(1, EntryPayload::Blank)).unwrap();
        let mut huge_count = vec![FORMAT_COMPACT_V2];
        huge_count.extend_from_slice(&e[1..e.len() - 1]);
        huge_count.push(PAYLOAD_NORMAL);
        huge_count.extend_from_slice(&[0xff; 9]);
        huge_count.push(0x01);
        assert!(decode_entry(&huge_count).is_err());
        assert!(decode_entry(&[]).is_err());
        assert!(matches!(
            decode_entry(&[9, 0]),
            Err(CodecError::UnknownFormat(9))
        ));
    }

    #[test]
    fn a_proposal_round_trips_in_either_format() {
        for req in requests() {
            let new = encode_request(&req).unwrap();
            assert_eq!(new[0], FORMAT_COMPACT_V2);
            assert_eq!(decode_request(&new).unwrap(), req);
            assert_eq!(decode_request(&codec::encode(&req).unwrap()).unwrap(), req);
            assert!(decode_request(&new[..new.len() - 1]).is_err());
        }
    }

    /// A node told to write the first format (a rolling upgrade from a
    /// release before the compact one) writes only what such a release
    /// reads: tag-1 CBOR that the first format's own decoder takes, for
    /// every kind of entry, AppendEntries and proposals.
    #[test]
    fn the_first_format_is_written_for_members_of_an_older_release() {
        let entries = vec![
            entry(1, EntryPayload::Blank),
            entry(2, EntryPayload::Membership(membership())),
            entry(3, EntryPayload::Normal(Batch::from(requests()))),
        ];
        for e in &entries {
            let bytes = encode_entry_as(WriteFormat::First, e).unwrap();
            assert_eq!(bytes[0], 1);
            assert_eq!(&codec::decode::<Entry>(&bytes).unwrap(), e);
            assert_eq!(&decode_entry(&bytes).unwrap(), e);
        }
        let req = append_request(entries);
        let bytes = encode_append_entries_as(WriteFormat::First, &req).unwrap();
        assert_eq!(bytes[0], 1);
        assert_same(&codec::decode(&bytes).unwrap(), &req);
        for r in requests() {
            let bytes = encode_request_as(WriteFormat::First, &r).unwrap();
            assert_eq!(codec::decode::<Request>(&bytes).unwrap(), r);
        }
        // And the compact format otherwise.
        let e = entry(4, EntryPayload::Blank);
        assert_eq!(
            encode_entry_as(WriteFormat::Compact, &e).unwrap()[0],
            FORMAT_COMPACT_V2
        );
    }

    #[test]
    fn the_write_format_is_named_plainly() {
        assert_eq!("compact".parse(), Ok(WriteFormat::Compact));
        assert_eq!("first".parse(), Ok(WriteFormat::First));
        assert_eq!("cbor".parse(), Ok(WriteFormat::First));
        let e = "v3".parse::<WriteFormat>().unwrap_err();
        assert!(e.contains("compact") && e.contains("first"), "{e}");
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.finish().is_ok());
        }
        let too_long = [0xffu8; 11];
        assert!(Reader::new(&too_long).varint().is_err());
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).varint().is_err());
    }
}
