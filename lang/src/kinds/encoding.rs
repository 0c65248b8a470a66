//! What every kind's protobuf encoding shares, written once: tags and CIDR
//! blocks. Decoding checks every field; a problem is a message that the
//! caller places at the resource's path.

use canon_model::{Ipv4Cidr, Tags};
use canon_proto::canon::composition::v1 as pb;

pub(super) fn tags_to_proto(t: &Tags) -> Vec<pb::Tag> {
    t.iter()
        .map(|(k, v)| pb::Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

pub(super) fn tags_from_proto(t: Vec<pb::Tag>) -> Tags {
    t.into_iter().map(|t| (t.key, t.value)).collect()
}

/// A CIDR block written as text.
pub(super) fn cidr_from_proto(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse::<Ipv4Cidr>().map_err(|e| e.to_string())
}
