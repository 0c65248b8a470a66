//! The WAL's record format, apart from any file: what one append writes
//! and what recovery reads back.
//!
//! `crc32 u32 LE | len u32 LE | group u64 LE | kind u8 | payload (len bytes)`,
//! the CRC over everything after it. Segments are zero-filled ahead, so a
//! zero `len` is where the written part of a segment ends; a CRC that does
//! not match is a torn (or damaged) record.

/// Bytes before a record's payload.
pub(crate) const HEADER_BYTES: usize = 17;

/// An entry of a group's log: the payload is the entry in
/// [`crate::entry_codec`]'s format (it carries its own log id).
pub(crate) const KIND_ENTRY: u8 = 1;
/// A group's log was cut: the payload is the first index removed (u64 LE).
pub(crate) const KIND_TRUNCATE: u8 = 2;

/// Appends the record of `payload` to `out`; its length in bytes.
pub(crate) fn encode(group: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let len = u32::try_from(payload.len()).ok()?;
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&group.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    Some(out.len() - start)
}

/// What lies at some offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    Record {
        group: u64,
        kind: u8,
        payload: &'a [u8],
        /// Header and payload.
        total_bytes: usize,
    },
    /// A zero length: nothing was written from here on.
    End,
    /// Not a whole, intact record: why.
    Bad(String),
}

/// Reads the record at the start of `buf` (the rest of a segment).
pub(crate) fn parse(buf: &[u8]) -> Parsed<'_> {
    if buf.len() < HEADER_BYTES {
        return if buf.iter().all(|b| *b == 0) {
            Parsed::End
        } else {
            Parsed::Bad("record header cut short".to_string())
        };
    }
    let u32_at = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let crc = u32_at(0);
    let len = u32_at(4) as usize;
    if len == 0 {
        return Parsed::End;
    }
    let Some(total_bytes) = HEADER_BYTES.checked_add(len).filter(|t| *t <= buf.len()) else {
        return Parsed::Bad(format!("record of {len} bytes runs past the segment's end"));
    };
    if crc32fast::hash(&buf[4..total_bytes]) != crc {
        return Parsed::Bad("checksum mismatch".to_string());
    }
    let mut group = [0u8; 8];
    group.copy_from_slice(&buf[8..16]);
    let kind = buf[16];
    if kind != KIND_ENTRY && kind != KIND_TRUNCATE {
        return Parsed::Bad(format!("unknown record kind {kind}"));
    }
    Parsed::Record {
        group: u64::from_le_bytes(group),
        kind,
        payload: &buf[HEADER_BYTES..total_bytes],
        total_bytes,
    }
}

/// The first index a Truncate record removes.
pub(crate) fn truncate_from(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        let n = encode(7, KIND_ENTRY, b"hello", &mut buf).unwrap();
        assert_eq!(n, HEADER_BYTES + 5);
        buf.extend_from_slice(&[0; 40]);
        match parse(&buf) {
            Parsed::Record {
                group,
                kind,
                payload,
                total_bytes,
            } => {
                assert_eq!(
                    (group, kind, payload, total_bytes),
                    (7, KIND_ENTRY, &b"hello"[..], n)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&buf[n..]), Parsed::End);
        let mut torn = buf.clone();
        torn[HEADER_BYTES + 2] ^= 1;
        assert!(matches!(parse(&torn), Parsed::Bad(_)));
        assert!(matches!(parse(&buf[..n - 1]), Parsed::Bad(_)));
        assert!(matches!(parse(&[1, 0, 0]), Parsed::Bad(_)));
        assert_eq!(parse(&[0, 0, 0]), Parsed::End);
    }
}
