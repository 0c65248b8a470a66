//! Egress-only internet gateways (`Canon.AWS.EC2.EgressOnlyInternetGateway`):
//! lowering (in its VPC's region) and encoding.

use canon_model::{EgressOnlyInternetGatewaySpec, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of_vpc, Lowered, Lowering};

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "EgressOnlyInternetGateway";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let spec = EgressOnlyInternetGatewaySpec {
        vpc: l.path_of(&vpc)?,
        tags: l.tags(),
    };
    Some((region_of_vpc(&vpc), Spec::EgressOnlyInternetGateway(spec)))
}

pub(super) fn to_proto(s: &EgressOnlyInternetGatewaySpec<String>) -> pb::EgressOnlyInternetGateway {
    pb::EgressOnlyInternetGateway {
        vpc: s.vpc.clone(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(
    s: pb::EgressOnlyInternetGateway,
) -> Result<EgressOnlyInternetGatewaySpec<String>, String> {
    Ok(EgressOnlyInternetGatewaySpec {
        vpc: s.vpc,
        tags: tags_from_proto(s.tags),
    })
}
