//! Elastic IP addresses (`Canon.AWS.EC2.ElasticIp`): lowering and encoding.
//! An address has a region and tags; EC2 picks the address itself.

use canon_model::{ElasticIpSpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of, Lowered, Lowering};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "ElasticIp";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let spec = ElasticIpSpec { tags: l.tags() };
    Some((region_of(&l.field("region")), Spec::ElasticIp(spec)))
}

pub(super) fn to_proto(s: &ElasticIpSpec) -> pb::ElasticIp {
    pb::ElasticIp {
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::ElasticIp) -> Result<ElasticIpSpec, String> {
    Ok(ElasticIpSpec {
        tags: tags_from_proto(s.tags),
    })
}
