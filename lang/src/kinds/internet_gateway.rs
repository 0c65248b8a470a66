//! Internet gateways (`Canon.AWS.EC2.InternetGateway`): lowering and
//! encoding. A gateway's region is its own or its VPC's, and they agree.

use canon_model::{InternetGatewaySpec, Region, Spec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of, vpc_region, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "InternetGateway";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let vpc = l.field("vpc");
    let region = region(l, &vpc)?;
    let spec = InternetGatewaySpec {
        vpc: l.path_of(&vpc),
        tags: l.tags(),
    };
    Some((region, Spec::InternetGateway(spec)))
}

/// The gateway's own region or its VPC's; both given must agree.
fn region(l: &mut Lowering<'_, '_>, vpc: &Value<'_>) -> Option<Region> {
    let own = match l.field("region") {
        Value::None => None,
        reg => Some(region_of(&reg)),
    };
    match (own, vpc_region(vpc)) {
        (Some(a), Some(b)) if a != b => {
            l.error(format!(
                "Invalid InternetGateway: its region {a} differs from its VPC's region {b}"
            ));
            None
        }
        (Some(a), _) => Some(a),
        (None, Some(b)) => Some(b),
        (None, None) => {
            l.error("Invalid InternetGateway: give it a vpc or a region".into());
            None
        }
    }
}

pub(super) fn to_proto(s: &InternetGatewaySpec<String>) -> pb::InternetGateway {
    pb::InternetGateway {
        vpc: s.vpc.clone(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::InternetGateway) -> Result<InternetGatewaySpec<String>, String> {
    Ok(InternetGatewaySpec {
        vpc: s.vpc,
        tags: tags_from_proto(s.tags),
    })
}
