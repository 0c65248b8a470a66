//! The canonical serialisation of a compiled composition: the protobuf
//! message `canon.composition.v1.CompiledComposition`. Encoding is
//! deterministic (sorted resources, ordered sets and maps), and decoding
//! checks every field, so `decode(encode(c)) == c`. Each kind's spec is
//! written and read by its file under `kinds/`.

use canon_model::Region;
use canon_proto::canon::composition::v1 as pb;
use prost::Message;

use crate::kinds;
use crate::{Compiled, CompiledResource};

/// Layout version written into every message.
pub const FORMAT_VERSION: u32 = 1;

/// Why bytes are not a valid compiled composition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Protobuf(String),
    Version(u32),
    Field { path: String, problem: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Protobuf(e) => write!(f, "not a compiled composition: {e}"),
            DecodeError::Version(v) => {
                write!(f, "unsupported compiled composition format version {v}")
            }
            DecodeError::Field { path, problem } => write!(f, "resource {path}: {problem}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Compiled {
    /// The protobuf message.
    pub fn to_proto(&self) -> pb::CompiledComposition {
        pb::CompiledComposition {
            format_version: FORMAT_VERSION,
            source_hash: self.source_hash.clone(),
            resources: self.resources.iter().map(resource_to_proto).collect(),
        }
    }

    /// Canonical bytes: the same sources always give the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    pub fn from_proto(m: pb::CompiledComposition) -> Result<Compiled, DecodeError> {
        if m.format_version != FORMAT_VERSION {
            return Err(DecodeError::Version(m.format_version));
        }
        let mut resources = Vec::with_capacity(m.resources.len());
        for r in m.resources {
            resources.push(resource_from_proto(r)?);
        }
        resources.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Compiled {
            resources,
            source_hash: m.source_hash,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Compiled, DecodeError> {
        let m = pb::CompiledComposition::decode(bytes)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        Compiled::from_proto(m)
    }
}

fn resource_to_proto(r: &CompiledResource) -> pb::Resource {
    pb::Resource {
        path: r.path.clone(),
        region: r.region.to_string(),
        spec: Some(kinds::to_proto(&r.spec)),
        import_id: r.import_id.clone(),
    }
}

fn resource_from_proto(r: pb::Resource) -> Result<CompiledResource, DecodeError> {
    let bad = |problem: String| DecodeError::Field {
        path: r.path.clone(),
        problem,
    };
    let spec = match r.spec {
        None => return Err(bad("resource without a spec".into())),
        Some(s) => kinds::from_proto(s).map_err(bad)?,
    };
    Ok(CompiledResource {
        path: r.path,
        region: Region::new(r.region),
        spec,
        import_id: r.import_id,
    })
}
