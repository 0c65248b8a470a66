//! The audit chain in a streamed snapshot: its records in chunks of a
//! compact binary form, not inside the state's one CBOR record.
//!
//! Why: a busy group's chain holds hundreds of thousands of records between
//! two retention sweeps. As one CBOR value it was encoded whole in memory
//! (hundreds of megabytes, every field name written out in every record)
//! before a byte was written, on every replica, at every snapshot: most of
//! the CPU the audit added to a write (issue #13's benchmark) and a memory
//! spike a snapshot must not make (issue #19). In chunks of at most
//! [`CHUNK_RECORDS`] records, each with a table of the text its records
//! share, a snapshot holds one chunk at a time and writes a fraction of
//! the bytes.
//!
//! A chunk is `varint text count | texts | varint record count | records`.
//! A record is its entry's fields in declaration order: integers as
//! varints, shared text as an index into the chunk's table (optional text
//! as index + 1, 0 for none), a detail and request ids as text, hashes and
//! ids as their bytes ([`Packed`]), and its own hash. Its `prev` is not
//! written: it is the hash of the record before it, or the anchor's for
//! the first, by construction ([`crate::audit::AuditChain::append`]), and
//! is restored so on reading. (So a chain whose `prev` were ever wrong in
//! memory would read back with it mended; `verify` still finds the break,
//! as a hash that does not follow from the record before.)

use std::collections::HashMap;

use canon_trust::audit::{
    AuditDecision, AuditEntry, AuditPrincipal, AuditRecord, AuditTarget, Decider, Packed, Text,
};
use canon_trust::Effect;

use crate::audit::AuditChain;
use crate::codec::CodecError;
use crate::compact::{bad, channel_byte, write_str, write_varint, Reader};

/// Most records in one chunk: a chunk of typical records is some tens of
/// kilobytes, so a snapshot never holds much of the chain encoded.
pub const CHUNK_RECORDS: usize = 4096;

const PACKED_SHA256: u8 = 0;
const PACKED_UUID: u8 = 1;
const PACKED_TEXT: u8 = 2;

/// Encodes `records` (at most [`CHUNK_RECORDS`] of them) as one chunk.
pub fn encode_chunk<'a>(records: impl Iterator<Item = &'a AuditRecord>) -> Vec<u8> {
    let mut table = TextTable::default();
    let mut body = Vec::with_capacity(64 * 1024);
    let mut count = 0u64;
    for record in records {
        write_record(&mut body, &mut table, record);
        count += 1;
    }
    // The table goes first but is known last: the body is copied once
    // behind it (tens of kilobytes a chunk).
    let mut out = Vec::with_capacity(body.len() + 16 * table.texts.len() + 16);
    write_varint(&mut out, table.texts.len() as u64);
    for text in &table.texts {
        write_str(&mut out, text);
    }
    write_varint(&mut out, count);
    out.extend_from_slice(&body);
    out
}

/// Reads one chunk into the back of `chain`, sharing its text through the
/// chain's interner; the records' `prev` follows the chain (module docs).
/// How many records it held.
pub fn decode_chunk_into(bytes: &[u8], chain: &mut AuditChain) -> Result<u64, CodecError> {
    let mut r = Reader::new(bytes);
    let n = r.count()?;
    // A count is at most the bytes left, but each item takes more room in
    // memory than its one byte: reserve no more than a chunk's worth.
    let mut texts = Vec::with_capacity(n.min(CHUNK_RECORDS));
    for _ in 0..n {
        let s = r.str()?;
        texts.push(chain.intern(s));
    }
    let count = r.count()?;
    for _ in 0..count {
        let (entry, hash) = read_record(&mut r, &texts)?;
        let prev = match chain.records.back() {
            Some(last) => last.hash.clone(),
            None => Packed::new(&chain.anchor.hash),
        };
        chain.records.push_back(AuditRecord { entry, prev, hash });
    }
    r.finish()?;
    Ok(count as u64)
}

/// The chunk's shared text, each once, in order of first use.
#[derive(Default)]
struct TextTable<'a> {
    index: HashMap<&'a str, u64, foldhash::fast::RandomState>,
    texts: Vec<&'a str>,
}

impl<'a> TextTable<'a> {
    fn index_of(&mut self, text: &'a str) -> u64 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = self.texts.len() as u64;
        self.texts.push(text);
        self.index.insert(text, i);
        i
    }

    fn write(&mut self, out: &mut Vec<u8>, text: &'a Text) {
        let i = self.index_of(text.as_str());
        write_varint(out, i);
    }

    fn write_opt(&mut self, out: &mut Vec<u8>, text: Option<&'a Text>) {
        match text {
            Some(t) => {
                let i = self.index_of(t.as_str());
                write_varint(out, i + 1);
            }
            None => write_varint(out, 0),
        }
    }
}

fn write_record<'a>(out: &mut Vec<u8>, table: &mut TextTable<'a>, record: &'a AuditRecord) {
    let e = &record.entry;
    write_varint(out, e.group);
    write_varint(out, e.seq);
    write_varint(out, e.at);
    write_packed(out, &e.command_id);
    table.write(out, &e.command);
    match &e.principal {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            table.write(out, &p.user);
            table.write_opt(out, p.key_id.as_ref());
            table.write_opt(out, p.cert_fingerprint.as_ref());
            out.push(channel_byte(p.channel));
            out.push(u8::from(p.root));
        }
    }
    table.write(out, &e.action);
    table.write_opt(out, e.target.account.as_ref());
    table.write_opt(out, e.target.region.as_ref());
    table.write_opt(out, e.target.alias.as_ref());
    table.write_opt(out, e.target.fid.as_ref());
    out.push(match e.decision.effect {
        Effect::Allow => 0,
        Effect::Deny => 1,
    });
    table.write_opt(out, e.decision.rule.as_ref());
    write_opt_varint(out, e.decision.policy_version);
    out.push(decider_byte(e.decision.by));
    table.write(out, &e.outcome);
    match &e.detail {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            write_str(out, d);
        }
    }
    match &e.request_hash {
        None => out.push(0),
        Some(h) => {
            out.push(1);
            write_packed(out, h);
        }
    }
    write_varint(out, e.aws_request_ids.len() as u64);
    for id in &e.aws_request_ids {
        write_str(out, id);
    }
    write_varint(out, e.dropped);
    write_packed(out, &record.hash);
}

fn read_record(r: &mut Reader<'_>, texts: &[Text]) -> Result<(AuditEntry, Packed), CodecError> {
    let lookup = |i: u64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| texts.get(i))
            .cloned()
            .ok_or_else(|| bad(format!("text {i} is not in the chunk's table")))
    };
    let text = |r: &mut Reader<'_>| lookup(r.varint()?);
    let opt_text = |r: &mut Reader<'_>| match r.varint()? {
        0 => Ok(None),
        i => lookup(i - 1).map(Some),
    };
    let group = r.varint()?;
    let seq = r.varint()?;
    let at = r.varint()?;
    let command_id = read_packed(r)?;
    let command = text(r)?;
    let principal = match r.byte()? {
        0 => None,
        1 => Some(AuditPrincipal {
            user: text(r)?,
            key_id: opt_text(r)?,
            cert_fingerprint: opt_text(r)?,
            channel: r.channel()?,
            root: r.bool()?,
        }),
        other => return Err(bad(format!("bad principal marker {other}"))),
    };
    let action = text(r)?;
    let target = AuditTarget {
        account: opt_text(r)?,
        region: opt_text(r)?,
        alias: opt_text(r)?,
        fid: opt_text(r)?,
    };
    let effect = match r.byte()? {
        0 => Effect::Allow,
        1 => Effect::Deny,
        other => return Err(bad(format!("bad effect {other}"))),
    };
    let decision = AuditDecision {
        effect,
        rule: opt_text(r)?,
        policy_version: read_opt_varint(r)?,
        by: read_decider(r)?,
    };
    let outcome = text(r)?;
    let detail = match r.bool()? {
        false => None,
        true => Some(r.str()?.to_string()),
    };
    let request_hash = match r.bool()? {
        false => None,
        true => Some(read_packed(r)?),
    };
    let ids = r.count()?;
    let mut aws_request_ids = Vec::with_capacity(ids.min(8));
    for _ in 0..ids {
        aws_request_ids.push(r.str()?.to_string());
    }
    let dropped = r.varint()?;
    let hash = read_packed(r)?;
    let entry = AuditEntry {
        group,
        seq,
        at,
        command_id,
        command,
        principal,
        action,
        target,
        decision,
        outcome,
        detail,
        request_hash,
        aws_request_ids,
        dropped,
    };
    Ok((entry, hash))
}

fn write_opt_varint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            write_varint(out, v);
        }
    }
}

fn read_opt_varint(r: &mut Reader<'_>) -> Result<Option<u64>, CodecError> {
    match r.bool()? {
        false => Ok(None),
        true => r.varint().map(Some),
    }
}

/// A [`Packed`] in the form it holds, so it reads back in the same form.
fn write_packed(out: &mut Vec<u8>, p: &Packed) {
    if let Some(raw) = p.sha256_bytes() {
        out.push(PACKED_SHA256);
        out.extend_from_slice(raw);
    } else if let Some(raw) = p.uuid_bytes() {
        out.push(PACKED_UUID);
        out.extend_from_slice(raw);
    } else {
        out.push(PACKED_TEXT);
        p.with_str(|s| write_str(out, s));
    }
}

fn read_packed(r: &mut Reader<'_>) -> Result<Packed, CodecError> {
    match r.byte()? {
        PACKED_SHA256 => Ok(Packed::sha256(r.array::<32>()?)),
        PACKED_UUID => Ok(Packed::uuid(r.array::<16>()?)),
        // Text is packed only if it is a hash or a UUID, which the two
        // forms above hold: `new` gives back the text form it was.
        PACKED_TEXT => r.str().map(Packed::new),
        other => Err(bad(format!("unknown packed form {other}"))),
    }
}

fn decider_byte(d: Decider) -> u8 {
    match d {
        Decider::Door => 0,
        Decider::StateMachine => 1,
        Decider::Conductor => 2,
    }
}

fn read_decider(r: &mut Reader<'_>) -> Result<Decider, CodecError> {
    match r.byte()? {
        0 => Ok(Decider::Door),
        1 => Ok(Decider::StateMachine),
        2 => Ok(Decider::Conductor),
        other => Err(bad(format!("unknown decider {other}"))),
    }
}

/// A chain of `n` records of every shape a record takes (with and without
/// a principal, target parts, rule, detail, request ids; hashes, UUIDs
/// and plain text in the packed fields), trimmed once so that it starts
/// after an anchor. For this module's tests and the snapshot format's.
#[cfg(test)]
pub(crate) fn varied_chain(group: u64, n: u64) -> AuditChain {
    let mut chain = AuditChain::default();
    for i in 0..n + 3 {
        let entry = varied_entry(&mut chain, i);
        chain.append(group, entry);
    }
    chain.trim_through(3);
    chain
}

#[cfg(test)]
fn varied_entry(chain: &mut AuditChain, i: u64) -> AuditEntry {
    let some = |k: u64| i.is_multiple_of(k);
    let mut t = |s: String| chain.intern(&s);
    AuditEntry {
        group: 0,
        seq: 0,
        at: 1_700_000_000_000 + i * 37,
        command_id: match i % 3 {
            0 => Packed::uuid([i as u8; 16]),
            1 => Packed::new(&format!("cmd-{i}")),
            _ => Packed::sha256([7; 32]),
        },
        command: t(["ProcessCreated", "CloudCalled", "AuditRefused"][(i % 3) as usize].into()),
        principal: (!some(4)).then(|| AuditPrincipal {
            user: t(format!("user-{}", i % 5)),
            key_id: some(2).then(|| t(format!("key{}", i % 3))),
            cert_fingerprint: some(3).then(|| t("ab".repeat(32))),
            channel: match some(5) {
                true => canon_trust::audit::Channel::Sqs,
                false => canon_trust::audit::Channel::Grpc,
            },
            root: some(7),
        }),
        action: t(format!("process.{}", ["run", "kill"][(i % 2) as usize])),
        target: AuditTarget {
            account: some(2).then(|| t("web-prod".into())),
            region: some(3).then(|| t("us-west-2".into())),
            alias: (!some(6)).then(|| t(format!("web-{}", i % 11))),
            fid: some(5).then(|| t(format!("fid-{i}"))),
        },
        decision: AuditDecision {
            effect: if some(9) { Effect::Deny } else { Effect::Allow },
            rule: some(2).then(|| t("role web rule 1 (allow process.* on accounts *)".into())),
            policy_version: some(3).then_some(i),
            by: [Decider::Door, Decider::StateMachine, Decider::Conductor][(i % 3) as usize],
        },
        outcome: t(if some(9) {
            "refused: no".into()
        } else {
            "applied".into()
        }),
        detail: some(4).then(|| format!("job {i}: ok \u{2713}")),
        request_hash: match i % 3 {
            0 => None,
            1 => Some(Packed::sha256([i as u8; 32])),
            _ => Some(Packed::new("not-a-hash")),
        },
        aws_request_ids: (0..i % 3).map(|k| format!("req-{i}-{k}")).collect(),
        dropped: i % 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `chain`'s records through chunks of `per` into a chain with the
    /// same anchor.
    fn round_trip(chain: &AuditChain, per: usize) -> AuditChain {
        let mut back = AuditChain {
            anchor: chain.anchor.clone(),
            ..AuditChain::default()
        };
        let mut records = chain.records.iter().peekable();
        while records.peek().is_some() {
            let bytes = encode_chunk(records.by_ref().take(per));
            decode_chunk_into(&bytes, &mut back).unwrap();
        }
        back
    }

    #[test]
    fn chunks_give_back_the_chain_its_links_and_its_shared_text() {
        let chain = varied_chain(4, 500);
        assert_eq!(chain.anchor.seq, 3, "starts after an anchor");
        for per in [1, 7, CHUNK_RECORDS] {
            let back = round_trip(&chain, per);
            assert_eq!(back, chain, "{per} a chunk");
            assert_eq!(back.verify(4), Ok(500));
            // Equal text is one copy, within a chunk and across chunks.
            let runs: Vec<_> = back
                .records
                .iter()
                .filter(|r| r.entry.action == "process.run")
                .map(|r| &r.entry.action)
                .collect();
            assert!(runs.windows(2).all(|a| a[0].shares(a[1])), "{per} a chunk");
        }
    }

    #[test]
    fn a_chunk_is_a_fraction_of_the_cbor() {
        let chain = varied_chain(0, 1000);
        let chunk = encode_chunk(chain.records.iter());
        let cbor = crate::codec::encode(&chain.records).unwrap();
        assert!(
            chunk.len() * 3 < cbor.len(),
            "{} bytes against {}",
            chunk.len(),
            cbor.len()
        );
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let chain = varied_chain(0, 40);
        let bytes = encode_chunk(chain.records.iter());
        for cut in 0..bytes.len() {
            let mut into = AuditChain::default();
            assert!(
                decode_chunk_into(&bytes[..cut], &mut into).is_err(),
                "cut {cut}"
            );
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[at] ^= flip;
                let mut into = AuditChain::default();
                // Either an error or some chain: never a panic.
                let _ = decode_chunk_into(&bad, &mut into);
            }
        }
        let mut extra = bytes;
        extra.push(0);
        assert!(decode_chunk_into(&extra, &mut AuditChain::default()).is_err());
    }
}
