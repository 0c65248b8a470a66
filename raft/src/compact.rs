//! The byte primitives of Canon's compact binary formats (log entries and
//! AppendEntries in [`crate::entry_codec`], the audit chain in a snapshot):
//! LEB128 varints, length-prefixed bytes and text, and a reader that checks
//! every read against the bytes left, so damaged input is an error, never a
//! panic or a huge allocation.

use canon_trust::audit::Channel;

use crate::codec::CodecError;

pub(crate) fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

/// How a command came ([`Channel`]), as one byte: the log's door context
/// and the snapshot's audit records write it alike.
pub(crate) fn channel_byte(c: Channel) -> u8 {
    match c {
        Channel::Grpc => 0,
        Channel::Sqs => 1,
    }
}

pub(crate) fn bad(detail: String) -> CodecError {
    CodecError::Decode(detail)
}

/// Reads the compact format from a slice; every read checks its bounds.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(bad(format!(
                "cut short: {n} bytes wanted, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(bad(format!("bad boolean {other}"))),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(bad("varint overflows 64 bits".into()));
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("varint longer than 10 bytes".into()))
    }

    /// A count of items that each take at least one byte: never more than
    /// the bytes left. (An item may take more room in memory than its byte:
    /// reserve for `count` items only where that stays small, or cap it.)
    pub(crate) fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.rest.len() => Ok(n),
            _ => Err(bad(format!(
                "count {n} exceeds the {} bytes left",
                self.rest.len()
            ))),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| bad(format!("length {n} too large")))?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, CodecError> {
        let raw = self.bytes()?;
        std::str::from_utf8(raw).map_err(|e| bad(format!("text is not UTF-8: {e}")))
    }

    /// A byte [`channel_byte`] wrote.
    pub(crate) fn channel(&mut self) -> Result<Channel, CodecError> {
        match self.byte()? {
            0 => Ok(Channel::Grpc),
            1 => Ok(Channel::Sqs),
            other => Err(bad(format!("unknown channel {other}"))),
        }
    }

    pub(crate) fn finish(&self) -> Result<(), CodecError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(bad(format!("{} trailing bytes", self.rest.len())))
        }
    }
}
