//! Opening the WAL: every segment read in order to rebuild the index.
//!
//! In the newest segment, the first zero length or torn record is where
//! the log ends (a crash cut an unacknowledged write); the rest of that
//! segment is zero-filled and fsynced before anything is appended, else a
//! stale record after a shorter new one could be replayed at the next
//! open. In any older segment (fsynced whole before the next one was
//! begun) a bad record is damage: [`StoreError::Corrupt`] naming file and
//! offset, never a silent loss. So is a segment shorter than the size it
//! was made with (a file cut short; [`super::sizes`] keeps each size).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{self, Loc, SegmentHighs};
use super::record::{self, Parsed};
use super::sizes::{SegmentSizes, LEGACY_SEGMENT_BYTES};
use super::{segment, Inner, SegInfo};
use crate::store::StoreError;

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, group: Option<u64>, offset: usize, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        tree: group.map_or_else(|| "wal".to_string(), |g| format!("g{g}.log")),
        key: format!("offset {offset}"),
        detail: detail.to_string(),
    }
}

/// Reads the WAL of `dir` (made if missing, with a first segment of
/// `segment_bytes`).
pub(super) fn recover(dir: &Path, segment_bytes: u64) -> Result<Inner, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let segs = segment::list(dir).map_err(|e| io(dir, e))?;
    let Some(&(first_seq, _)) = segs.first() else {
        // Sizes first: a segment is never there without its size.
        let sizes = SegmentSizes::new(1, segment_bytes);
        sizes
            .save(dir)
            .map_err(|e| io(&SegmentSizes::path(dir), e))?;
        return new_wal(first_segment(dir, segment_bytes)?, segment_bytes);
    };
    let sizes_path = SegmentSizes::path(dir);
    let stored = SegmentSizes::load(dir).map_err(|detail| corrupt(&sizes_path, None, 0, detail))?;
    let legacy = stored.is_none();
    let mut sizes = stored.unwrap_or_else(|| SegmentSizes::new(first_seq, LEGACY_SEGMENT_BYTES));
    let mut inner = Inner::default();
    let last = segs.len() - 1;
    for (i, (seq, path)) in segs.into_iter().enumerate() {
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let made_with = sizes.made_with(seq);
        if (bytes.len() as u64) < made_with {
            // Segments are made whole and never shrink: this one was cut.
            return Err(corrupt(
                &path,
                None,
                bytes.len(),
                format!("the segment is cut short (made with {made_with} bytes)"),
            ));
        }
        let mut highs = SegmentHighs::new();
        let end = scan(&bytes, seq, &path, i == last, &mut inner, &mut highs)?;
        let seg = opened(path, bytes.len() as u64, highs)?;
        if i == last {
            zero_tail(&seg.file, &bytes, end).map_err(|e| io(&seg.path, e))?;
            inner.tail_seq = seq;
            inner.tail_offset = end as u64;
        }
        inner.segments.insert(seq, seg);
    }
    // The segments made from here on have this log's size now.
    let changed = sizes.made_from(inner.tail_seq + 1, segment_bytes);
    if changed || legacy {
        sizes.save(dir).map_err(|e| io(&sizes_path, e))?;
    }
    Ok(inner)
}

/// A new WAL: its first segment, just made of zeros, is not read back (a
/// segment is [`super::SEGMENT_BYTES`] by default: reading it would cost
/// every new node that much memory and copying for nothing).
fn new_wal(path: PathBuf, segment_bytes: u64) -> Result<Inner, StoreError> {
    let mut inner = Inner {
        tail_seq: 1,
        ..Inner::default()
    };
    inner
        .segments
        .insert(1, opened(path, segment_bytes, SegmentHighs::new())?);
    Ok(inner)
}

/// A segment's file, opened to read and append, with what its scan found.
fn opened(path: PathBuf, bytes: u64, highs: SegmentHighs) -> Result<SegInfo, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    Ok(SegInfo {
        path,
        file: Arc::new(file),
        bytes,
        highs,
    })
}

/// The first segment of a new WAL, made whole before it is named.
fn first_segment(dir: &Path, segment_bytes: u64) -> Result<PathBuf, StoreError> {
    let tmp = dir.join(segment::spare_name());
    segment::zero_filled(&tmp, segment_bytes, segment::Fill::AtOnce).map_err(|e| io(&tmp, e))?;
    let path = segment::take_spare(dir, &tmp, 1).map_err(|e| io(&tmp, e))?;
    segment::sync_dir(dir).map_err(|e| io(dir, e))?;
    Ok(path)
}

/// Applies the records of one segment to the index; where they end.
fn scan(
    bytes: &[u8],
    seq: u64,
    path: &Path,
    is_tail: bool,
    inner: &mut Inner,
    highs: &mut SegmentHighs,
) -> Result<usize, StoreError> {
    let mut offset = 0usize;
    loop {
        match record::parse(&bytes[offset..]) {
            Parsed::Record {
                group,
                kind,
                payload,
                total_bytes,
            } => {
                apply(inner, highs, seq, offset, group, kind, payload)
                    .map_err(|detail| corrupt(path, Some(group), offset, detail))?;
                offset += total_bytes;
            }
            Parsed::End if is_tail || bytes[offset..].iter().all(|b| *b == 0) => return Ok(offset),
            Parsed::End => {
                return Err(corrupt(
                    path,
                    None,
                    offset,
                    "data after the end of the records",
                ))
            }
            Parsed::Bad(_) if is_tail => return Ok(offset),
            Parsed::Bad(detail) => return Err(corrupt(path, None, offset, detail)),
        }
    }
}

/// One intact record, applied: an entry replaces its index and what
/// follows (as in Raft), a Truncate record cuts.
fn apply(
    inner: &mut Inner,
    highs: &mut SegmentHighs,
    seq: u64,
    offset: usize,
    group: u64,
    kind: u8,
    payload: &[u8],
) -> Result<(), String> {
    let log = inner.groups.entry(group).or_default();
    if kind == record::KIND_TRUNCATE {
        let from = record::truncate_from(payload).ok_or("a Truncate record not of 8 bytes")?;
        log.truncate(from);
        return Ok(());
    }
    let entry = crate::entry_codec::decode_entry(payload).map_err(|e| e.to_string())?;
    let index = entry.log_id.index;
    log.put(Loc {
        seq,
        offset: offset as u64,
        payload_bytes: u32::try_from(payload.len()).map_err(|e| e.to_string())?,
        log_id: entry.log_id,
    });
    index::note_high(highs, group, index);
    Ok(())
}

/// Zeros whatever follows the end of the records in the newest segment
/// (a torn record, or garbage), fsynced before anything is appended.
fn zero_tail(file: &std::fs::File, bytes: &[u8], end: usize) -> std::io::Result<()> {
    let Some(last_nonzero) = bytes[end..].iter().rposition(|b| *b != 0) else {
        return Ok(());
    };
    let zeros = vec![0u8; last_nonzero + 1];
    segment::write_at(file, &zeros, end as u64)?;
    file.sync_data()
}
