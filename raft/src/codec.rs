//! The one place that turns replicated values into bytes and back: log
//! entries, snapshots, votes and RPC payloads.
//!
//! Encoding is CBOR (self-describing, so fields can be added without breaking
//! old data) behind a one-byte format tag, so that a later release can change
//! the encoding and still read what older nodes wrote. Tag 2 is the compact
//! format of log entries and AppendEntries ([`crate::entry_codec`]), whose
//! decoders read both.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Format tag of CBOR-encoded values.
const FORMAT_CBOR_V1: u8 = 1;

/// A value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value (no format tag)")]
    Empty,
    #[error("unknown format tag {0} (written by a newer release?)")]
    UnknownFormat(u8),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encodes `value` with the current format.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_CBOR_V1);
    ciborium::into_writer(value, &mut out).map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a value written by [`encode`] (of this or an older release).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (tag, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match *tag {
        FORMAT_CBOR_V1 => {
            let mut reader = body;
            let value: T = ciborium::from_reader(&mut reader)
                .map_err(|e| CodecError::Decode(e.to_string()))?;
            if !reader.is_empty() {
                return Err(CodecError::Decode(format!(
                    "{} trailing bytes",
                    reader.len()
                )));
            }
            Ok(value)
        }
        other => Err(CodecError::UnknownFormat(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = (1u64, "x".to_string(), vec![1u8, 2, 3]);
        let bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), v);
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode::<u64>(&[9, 1]),
            Err(CodecError::UnknownFormat(9))
        ));
        let mut truncated = bytes.clone();
        truncated.truncate(bytes.len() - 2);
        assert!(decode::<(u64, String, Vec<u8>)>(&truncated).is_err());
        let mut extra = bytes;
        extra.push(0);
        assert!(decode::<(u64, String, Vec<u8>)>(&extra).is_err());
    }
}
