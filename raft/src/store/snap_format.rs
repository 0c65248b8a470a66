//! The streamed snapshot format: a group's state written and read one
//! record at a time, so that neither building, sending nor installing a
//! snapshot ever holds the whole encoded image in memory.
//!
//! A snapshot is `MAGIC`, then records, each framed as
//! `kind (1 byte) | length (u32 LE) | CRC-32 of kind and payload (u32 LE) | payload`,
//! the payload being a [`codec`] value, or an `Audit` chunk's bytes:
//!
//! 1. `Head`: the snapshot's meta, its group and how many process records
//!    follow;
//! 2. `Rest`: the [`CanonState`] without its processes and its audit
//!    records (cluster data, dedup answers, the audit chain's anchor,
//!    aliases);
//! 3. the audit records, oldest first, in `Audit` chunks of
//!    [`snap_audit`]'s compact form (as many as `Head` says; snapshots
//!    written before it held them in `Rest`, and say none, as does a node
//!    writing the first log format, `--entry-format first`, for members of
//!    a release before the chunks during a rolling upgrade);
//! 4. one `Process` record per process;
//! 5. `End`: the process count again and the byte length so far, so that a
//!    file cut at a record boundary is still found truncated.
//!
//! Snapshots of releases before this format were one [`codec`] value of
//! the whole state; [`decode_image`] still reads those (old data
//! directories, and leaders of an older release during a rolling upgrade).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::snap_audit;
use crate::codec::{self, CodecError};
use crate::entry_codec::{self, WriteFormat};
use crate::ids::GroupId;
use crate::state::CanonState;
use crate::types::SnapshotMeta;

/// The first bytes of a streamed snapshot (an old whole-state snapshot
/// starts with a codec format tag, `1`).
pub const MAGIC: &[u8; 8] = b"CANONSS1";

/// No single record may claim more than this (a damaged length must not
/// make the reader allocate gigabytes).
const MAX_RECORD: u32 = 1 << 30;

const KIND_HEAD: u8 = 1;
const KIND_REST: u8 = 2;
const KIND_PROCESS: u8 = 3;
const KIND_END: u8 = 4;
const KIND_AUDIT: u8 = 5;

/// The first record.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    meta: SnapshotMeta,
    group: GroupId,
    processes: u64,
    /// Audit records in `Audit` chunks after `Rest` (none in snapshots of
    /// releases before them, whose `Rest` holds the chain whole).
    #[serde(default)]
    audit_records: u64,
}

/// The last record.
#[derive(Debug, Serialize, Deserialize)]
struct End {
    processes: u64,
    /// Bytes before this record (magic included).
    bytes: u64,
}

/// What is wrong with a snapshot's bytes, and where.
#[derive(Debug, thiserror::Error)]
pub enum SnapFormatError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("truncated at byte {offset} (in record {record})")]
    Truncated { offset: u64, record: u64 },
    #[error("record {record} at byte {offset}: {detail}")]
    Bad {
        record: u64,
        offset: u64,
        detail: String,
    },
    #[error("not a snapshot (neither the streamed format nor an old whole-state image)")]
    NotSnapshot,
}

/// A decoded snapshot.
#[derive(Debug)]
pub struct SnapshotImage {
    pub meta: SnapshotMeta,
    pub state: CanonState,
}

/// Writes the snapshot `meta` of `state` to `out`, record by record.
/// Returns the bytes written. The audit chain goes in chunks unless this
/// node writes for older releases ([`WriteFormat::First`]).
pub fn write_image<W: Write>(
    out: W,
    meta: &SnapshotMeta,
    state: CanonState,
) -> Result<u64, SnapFormatError> {
    let chunked = entry_codec::write_format() == WriteFormat::Compact;
    write_image_as(out, meta, state, chunked)
}

/// [`write_image`], the chain in `Audit` chunks or (not `chunked`) inside
/// `Rest`, as releases before the chunks wrote it.
fn write_image_as<W: Write>(
    out: W,
    meta: &SnapshotMeta,
    mut state: CanonState,
    chunked: bool,
) -> Result<u64, SnapFormatError> {
    let processes = std::mem::take(&mut state.processes);
    let audit = match chunked {
        true => std::mem::take(&mut state.audit.records),
        false => imbl::Vector::new(),
    };
    let mut w = RecordWriter { out, bytes: 0 };
    w.raw(MAGIC)?;
    let count = processes.len() as u64;
    w.record(
        KIND_HEAD,
        &Head {
            meta: meta.clone(),
            group: state.group,
            processes: count,
            audit_records: audit.len() as u64,
        },
    )?;
    w.record(KIND_REST, &state)?;
    let mut records = audit.iter().peekable();
    while records.peek().is_some() {
        let chunk = snap_audit::encode_chunk(records.by_ref().take(snap_audit::CHUNK_RECORDS));
        w.payload(KIND_AUDIT, chunk)?;
    }
    for p in processes.values() {
        w.record(KIND_PROCESS, &**p)?;
    }
    let end = End {
        processes: count,
        bytes: w.bytes,
    };
    w.record(KIND_END, &end)?;
    w.out.flush()?;
    Ok(w.bytes)
}

struct RecordWriter<W> {
    out: W,
    bytes: u64,
}

impl<W: Write> RecordWriter<W> {
    fn raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn record<T: Serialize>(&mut self, kind: u8, value: &T) -> Result<(), SnapFormatError> {
        let payload = codec::encode(value).map_err(|e| SnapFormatError::Bad {
            record: 0,
            offset: self.bytes,
            detail: e.to_string(),
        })?;
        self.payload(kind, payload)
    }

    fn payload(&mut self, kind: u8, payload: Vec<u8>) -> Result<(), SnapFormatError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD)
            .ok_or_else(|| SnapFormatError::Bad {
                record: 0,
                offset: self.bytes,
                detail: format!("a record of {} bytes is over the limit", payload.len()),
            })?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[kind]);
        crc.update(&payload);
        let mut frame = [0u8; 9];
        frame[0] = kind;
        frame[1..5].copy_from_slice(&len.to_le_bytes());
        frame[5..9].copy_from_slice(&crc.finalize().to_le_bytes());
        self.raw(&frame)?;
        self.raw(&payload)?;
        Ok(())
    }
}

struct RecordReader<R> {
    input: R,
    offset: u64,
    record: u64,
    buf: Vec<u8>,
}

impl<R: Read> RecordReader<R> {
    fn truncated(&self) -> SnapFormatError {
        SnapFormatError::Truncated {
            offset: self.offset,
            record: self.record,
        }
    }

    fn bad(&self, at: u64, detail: impl std::fmt::Display) -> SnapFormatError {
        SnapFormatError::Bad {
            record: self.record,
            offset: at,
            detail: detail.to_string(),
        }
    }

    fn exact(&mut self, n: usize) -> Result<(), SnapFormatError> {
        self.buf.clear();
        self.buf.resize(n, 0);
        match self.input.read_exact(&mut self.buf) {
            Ok(()) => {
                self.offset += n as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.truncated()),
            Err(e) => Err(e.into()),
        }
    }

    /// The next record, which must be of `kind`.
    fn next<T: serde::de::DeserializeOwned>(
        &mut self,
        kind: u8,
        what: &str,
    ) -> Result<T, SnapFormatError> {
        let at = self.offset;
        self.next_payload(kind, what)?;
        let value = codec::decode(&self.buf).map_err(|e| self.bad(at, format!("{what}: {e}")))?;
        self.record += 1;
        Ok(value)
    }

    /// The next record's payload (in `buf`), checked, which must be of
    /// `kind`; the record is not counted yet.
    fn next_payload(&mut self, kind: u8, what: &str) -> Result<(), SnapFormatError> {
        let at = self.offset;
        self.exact(9)?;
        let found = self.buf[0];
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let crc = u32::from_le_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
        if found != kind {
            return Err(self.bad(
                at,
                format!("expected the {what} record, found kind {found}"),
            ));
        }
        if len > MAX_RECORD {
            return Err(self.bad(at, format!("claims {len} bytes, over the limit")));
        }
        self.exact(len as usize)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(&self.buf);
        if hasher.finalize() != crc {
            return Err(self.bad(at, format!("{what} record fails its checksum")));
        }
        Ok(())
    }

    /// Reads `Audit` chunks into `state`'s chain until it has `expected`
    /// records past any `Rest` brought.
    fn audit_into(&mut self, state: &mut CanonState, expected: u64) -> Result<(), SnapFormatError> {
        let mut read = 0;
        while read < expected {
            let at = self.offset;
            self.next_payload(KIND_AUDIT, "audit")?;
            let chunk = std::mem::take(&mut self.buf);
            let n = snap_audit::decode_chunk_into(&chunk, &mut state.audit)
                .map_err(|e| self.bad(at, format!("audit: {e}")))?;
            self.buf = chunk;
            if n == 0 {
                return Err(self.bad(at, "an empty audit chunk"));
            }
            read += n;
            self.record += 1;
        }
        if read != expected {
            return Err(self.bad(
                self.offset,
                format!("the head says {expected} audit records, the chunks held {read}"),
            ));
        }
        Ok(())
    }
}

fn reader_after_magic<R: Read>(input: R) -> Result<RecordReader<R>, SnapFormatError> {
    let mut r = RecordReader {
        input,
        offset: 0,
        record: 0,
        buf: Vec::new(),
    };
    r.exact(MAGIC.len())?;
    if r.buf != MAGIC {
        return Err(SnapFormatError::NotSnapshot);
    }
    Ok(r)
}

/// Reads a streamed snapshot record by record (the reader should be
/// buffered). Everything must be there, intact, and nothing after it.
pub fn read_image<R: Read>(input: R) -> Result<SnapshotImage, SnapFormatError> {
    let mut r = reader_after_magic(input)?;
    let head: Head = r.next(KIND_HEAD, "head")?;
    let rest_at = r.offset;
    let mut state: CanonState = r.next(KIND_REST, "state")?;
    if state.group != head.group {
        return Err(r.bad(
            rest_at,
            format!(
                "state of group {} under a head of group {}",
                state.group, head.group
            ),
        ));
    }
    r.audit_into(&mut state, head.audit_records)?;
    for _ in 0..head.processes {
        let at = r.offset;
        let p: crate::state::ProcessRecord = r.next(KIND_PROCESS, "process")?;
        if state
            .processes
            .insert(p.fid, std::sync::Arc::new(p))
            .is_some()
        {
            return Err(r.bad(at, "a process appears twice"));
        }
    }
    let end_at = r.offset;
    let end: End = r.next(KIND_END, "end")?;
    if end.processes != head.processes || end.bytes != end_at {
        return Err(r.bad(
            end_at,
            format!(
                "end record says {} processes and {} bytes, read {} and {end_at}",
                end.processes, end.bytes, head.processes
            ),
        ));
    }
    let mut probe = [0u8; 1];
    match r.input.read(&mut probe)? {
        0 => {}
        _ => return Err(r.bad(r.offset, "bytes after the end record")),
    }
    state.rebuild_indexes();
    Ok(SnapshotImage {
        meta: head.meta,
        state,
    })
}

/// Whether `first_bytes` start an old whole-state snapshot (one codec
/// value) rather than a streamed one.
pub(crate) fn is_old_image(first_bytes: &[u8]) -> bool {
    !first_bytes.starts_with(&MAGIC[..1])
}

/// Decodes an old whole-state snapshot (its meta kept beside it).
pub(crate) fn decode_old_image(bytes: &[u8]) -> Result<CanonState, CodecError> {
    CanonState::decode(bytes)
}

/// Decodes a snapshot held in memory, in either format; `meta` is the
/// meta it was stored or sent with, which a streamed image must match.
pub fn decode_image(bytes: &[u8], meta: &SnapshotMeta) -> Result<SnapshotImage, SnapFormatError> {
    if is_old_image(bytes) {
        let state = decode_old_image(bytes).map_err(|e| SnapFormatError::Bad {
            record: 0,
            offset: 0,
            detail: format!("old whole-state image: {e}"),
        })?;
        return Ok(SnapshotImage {
            meta: meta.clone(),
            state,
        });
    }
    let image = read_image(bytes)?;
    check_meta(&image.meta, meta)?;
    Ok(image)
}

/// A streamed image's own meta must be the one it travels with.
pub(crate) fn check_meta(
    found: &SnapshotMeta,
    expected: &SnapshotMeta,
) -> Result<(), SnapFormatError> {
    if found.last_log_id != expected.last_log_id {
        return Err(SnapFormatError::Bad {
            record: 0,
            offset: MAGIC.len() as u64,
            detail: format!(
                "the image ends at {:?} but was announced as ending at {:?}",
                found.last_log_id, expected.last_log_id
            ),
        });
    }
    Ok(())
}

/// Encodes a snapshot into memory (simulations and tests).
pub fn encode_image(meta: &SnapshotMeta, state: CanonState) -> Result<Vec<u8>, SnapFormatError> {
    let mut out = Vec::new();
    write_image(&mut out, meta, state)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet_state::{fleet_state, FleetShape};
    use crate::types::{LogId, StoredMembership};

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("test-{index}"),
        }
    }

    fn small_state(seed: u64) -> CanonState {
        let shape = FleetShape {
            composition_bytes: (seed % 50) as usize,
            resources: (seed % 4) as usize,
            jobs: seed % 5,
            drift: seed % 3,
        };
        fleet_state(seed % 7, shape, seed)
    }

    #[test]
    fn generated_states_round_trip() {
        for seed in 0..40 {
            let state = small_state(seed);
            let bytes = encode_image(&meta(seed), state.snapshot_view()).unwrap();
            let image = read_image(&bytes[..]).unwrap();
            assert_eq!(image.meta, meta(seed), "seed {seed}");
            assert_eq!(image.state, state, "seed {seed}");
            assert_eq!(image.state.bound(), state.bound(), "derived index rebuilt");
            // The same bytes through the in-memory path, announced meta checked.
            assert_eq!(decode_image(&bytes, &meta(seed)).unwrap().state, state);
            assert!(decode_image(&bytes, &meta(seed + 1)).is_err());
        }
    }

    /// A few small processes: every record kind, a few kilobytes.
    const SMALL: FleetShape = FleetShape {
        composition_bytes: 40,
        resources: 2,
        jobs: 3,
        drift: 2,
    };

    #[test]
    fn every_truncation_is_an_error() {
        let state = fleet_state(3, SMALL, 7);
        let bytes = encode_image(&meta(9), state).unwrap();
        for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            match read_image(&bytes[..cut]) {
                Err(SnapFormatError::Truncated { offset, .. }) => {
                    assert!(offset <= cut as u64, "cut {cut}: offset {offset}")
                }
                Err(SnapFormatError::NotSnapshot) if cut < MAGIC.len() => {}
                other => panic!("cut at {cut} of {}: {other:?}", bytes.len()),
            }
        }
    }

    #[test]
    fn every_damaged_byte_is_an_error() {
        let state = fleet_state(3, SMALL, 8);
        let bytes = encode_image(&meta(9), state).unwrap();
        for at in (0..bytes.len()).step_by(3) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x41;
            assert!(read_image(&bad[..]).is_err(), "byte {at} flipped");
        }
        let mut extra = bytes;
        extra.push(0);
        assert!(matches!(
            read_image(&extra[..]),
            Err(SnapFormatError::Bad { .. })
        ));
    }

    /// A state whose audit chain spans several chunks.
    fn audited_state() -> CanonState {
        let mut state = fleet_state(3, SMALL, 11);
        let n = 2 * snap_audit::CHUNK_RECORDS as u64 + 5;
        state.audit = snap_audit::varied_chain(state.group, n);
        state
    }

    #[test]
    fn the_audit_chain_streams_in_chunks_and_reads_back_whole() {
        let state = audited_state();
        let bytes = encode_image(&meta(9), state.clone()).unwrap();
        let image = read_image(&bytes[..]).unwrap();
        assert_eq!(image.state, state);
        let held = state.audit.records.len() as u64;
        assert_eq!(image.state.audit.verify(state.group), Ok(held));
        // Read back, it writes the same bytes.
        assert_eq!(encode_image(&meta(9), image.state).unwrap(), bytes);
        // No record is the chain whole: the biggest is one chunk.
        let chain_cbor = codec::encode(&state.audit.records).unwrap().len();
        let largest = frames(&bytes).iter().map(|f| f.1).max().unwrap_or(0);
        assert!(largest * 4 < chain_cbor);
    }

    #[test]
    fn a_cut_or_damaged_audit_chunk_is_an_error() {
        let bytes = encode_image(&meta(9), audited_state()).unwrap();
        for cut in (0..bytes.len()).step_by(997) {
            assert!(read_image(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in (0..bytes.len()).step_by(1009) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x41;
            assert!(read_image(&bad[..]).is_err(), "byte {at} flipped");
        }
    }

    /// Writing for older releases, the chain stays inside `Rest`: no
    /// `Audit` record, and it reads back whole.
    #[test]
    fn for_older_releases_the_chain_stays_in_rest() {
        let state = audited_state();
        let mut bytes = Vec::new();
        write_image_as(&mut bytes, &meta(9), state.clone(), false).unwrap();
        let audit_chunks = |b: &[u8]| frames(b).iter().filter(|f| f.0 == KIND_AUDIT).count();
        assert_eq!(audit_chunks(&bytes), 0);
        assert_eq!(read_image(&bytes[..]).unwrap().state, state);
        let chunked = encode_image(&meta(9), state).unwrap();
        assert_eq!(audit_chunks(&chunked), 3);
    }

    /// The kind and payload length of each record of a streamed image.
    fn frames(bytes: &[u8]) -> Vec<(u8, usize)> {
        let (mut at, mut frames) = (MAGIC.len(), Vec::new());
        while at < bytes.len() {
            let len = [bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]];
            let len = u32::from_le_bytes(len) as usize;
            frames.push((bytes[at], len));
            at += 9 + len;
        }
        frames
    }

    /// A streamed snapshot of the release before audit chunks: no count in
    /// its head, the chain whole in `Rest`.
    #[test]
    fn streamed_images_with_the_chain_in_rest_still_read() {
        #[derive(Serialize)]
        struct HeadBefore {
            meta: SnapshotMeta,
            group: GroupId,
            processes: u64,
        }
        let mut state = audited_state();
        let whole = state.clone();
        let processes = std::mem::take(&mut state.processes);
        let mut w = RecordWriter {
            out: Vec::new(),
            bytes: 0,
        };
        w.raw(MAGIC).unwrap();
        let head = HeadBefore {
            meta: meta(9),
            group: state.group,
            processes: processes.len() as u64,
        };
        w.record(KIND_HEAD, &head).unwrap();
        w.record(KIND_REST, &state).unwrap();
        for p in processes.values() {
            w.record(KIND_PROCESS, &**p).unwrap();
        }
        let end = End {
            processes: processes.len() as u64,
            bytes: w.bytes,
        };
        w.record(KIND_END, &end).unwrap();
        let image = read_image(&w.out[..]).unwrap();
        assert_eq!(image.state, whole);
    }

    #[test]
    fn old_whole_state_images_still_decode() {
        let state = small_state(5);
        let old = codec::encode(&state).unwrap();
        assert!(is_old_image(&old));
        let image = decode_image(&old, &meta(4)).unwrap();
        assert_eq!(image.state, state);
        assert_eq!(image.meta, meta(4));
    }
}
