//! VPC peering connections (`Canon.AWS.EC2.VpcPeeringConnection`):
//! lowering, which refuses what EC2 refuses (a VPC peered with itself,
//! VPCs in two regions, overlapping IPv4 blocks of two declared VPCs),
//! and encoding. The declaration always wants the connection accepted.

use canon_model::{Ipv4Cidr, Spec, VpcPeeringConnectionSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of_vpc, resource_id, vpc_region, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "VpcPeeringConnection";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let (vpc, peer) = (l.field("vpc"), l.field("peerVpc"));
    let (vpc_path, peer_path) = (l.path_of(&vpc)?, l.path_of(&peer)?);
    if resource_id(&vpc) == resource_id(&peer) {
        l.error(format!(
            "Invalid VpcPeeringConnection: vpc and peerVpc are the same VPC ({vpc_path}); \
             a VPC cannot be peered with itself: give peerVpc another VPC"
        ));
    } else if vpc_region(&vpc) != vpc_region(&peer) {
        l.error(format!(
            "Invalid VpcPeeringConnection: vpc {vpc_path} and peerVpc {peer_path} are in \
             different regions; Canon peers VPCs of one region: give peerVpc a VPC of {}",
            region_of_vpc(&vpc)
        ));
    } else if let (Some(a), Some(b)) = (declared_block(&vpc), declared_block(&peer)) {
        if a.overlaps(b) {
            l.error(format!(
                "Invalid VpcPeeringConnection: the blocks of vpc {vpc_path} ({a}) and \
                 peerVpc {peer_path} ({b}) overlap, and EC2 refuses to peer them: \
                 give one of them a cidrBlock that does not overlap the other's"
            ));
        }
    }
    let spec = VpcPeeringConnectionSpec {
        vpc: vpc_path,
        peer_vpc: peer_path,
        accepted: true,
        tags: l.tags(),
    };
    Some((region_of_vpc(&vpc), Spec::VpcPeeringConnection(spec)))
}

/// The IPv4 block of a declared VPC (`None` for one named by id, whose
/// block the composition does not know).
fn declared_block(vpc: &Value<'_>) -> Option<Ipv4Cidr> {
    if !matches!(vpc.field("externalId"), Some(Value::None) | None) {
        return None;
    }
    vpc.field("cidrBlock")?.as_str()?.parse().ok()
}

pub(super) fn to_proto(s: &VpcPeeringConnectionSpec<String>) -> pb::VpcPeeringConnection {
    pb::VpcPeeringConnection {
        vpc: s.vpc.clone(),
        peer_vpc: s.peer_vpc.clone(),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(
    s: pb::VpcPeeringConnection,
) -> Result<VpcPeeringConnectionSpec<String>, String> {
    Ok(VpcPeeringConnectionSpec {
        vpc: s.vpc,
        peer_vpc: s.peer_vpc,
        accepted: true,
        tags: tags_from_proto(s.tags),
    })
}
