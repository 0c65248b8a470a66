//! Conversions between SDK types and Canon's model and rule types.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType,
    Tag, TagSpecification, UserIdGroupPair,
};
use canon_model::{IpCidr, Ipv4Cidr, ResourceKind, Tags, OWNERSHIP_TAG};

use super::missing;
use crate::error::BAD_RESPONSE;
use crate::rules::Permission;
use crate::CloudError;

/// The filter that selects resources carrying the ownership tag.
pub fn owned_filter() -> Filter {
    Filter::builder()
        .name("tag-key")
        .values(OWNERSHIP_TAG)
        .build()
}

/// The filter that selects resources whose ownership tag is one of
/// `owners` (EC2 takes up to 200 values in one filter).
pub fn owners_filter(owners: &[String]) -> Filter {
    Filter::builder()
        .name(format!("tag:{OWNERSHIP_TAG}"))
        .set_values(Some(owners.to_vec()))
        .build()
}

/// The pair (owner, `id`) of a resource whose ownership tag names one of
/// `owners`: what a look-up before creates found (the tag is checked here
/// again, for the describes moto does not filter).
pub fn owned_pair(tags: &[Tag], owners: &[String], id: Option<&str>) -> Option<(String, String)> {
    let owner = tags
        .iter()
        .find(|t| t.key() == Some(OWNERSHIP_TAG))
        .and_then(|t| t.value())?;
    owners
        .iter()
        .any(|o| o == owner)
        .then(|| Some((owner.to_string(), id?.to_string())))
        .flatten()
}

/// Whether `tags` hold the ownership tag (naming `owner`, if given): what
/// a describe filtered by it shows on EC2, checked again for the describes
/// moto does not filter.
pub fn carries(tags: &[Tag], owner: Option<&str>) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(OWNERSHIP_TAG) && owner.is_none_or(|o| t.value() == Some(o)))
}

/// A boolean attribute value.
pub fn bool_attr(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

/// A CIDR block EC2 answered (`what` names the field for errors).
pub fn cidr(s: Option<&str>, what: &str) -> Result<Ipv4Cidr, CloudError> {
    s.ok_or_else(|| missing(what))?
        .parse()
        .map_err(|e| CloudError::terminal(BAD_RESPONSE, format!("{what}: {e}")))
}

/// A block as EC2's pairs of parameters take it (`CidrBlock` and
/// `Ipv6CidrBlock`, `DestinationCidrBlock` and `DestinationIpv6CidrBlock`):
/// (IPv4, IPv6), the one of its family set.
pub fn by_family(block: &IpCidr) -> (Option<String>, Option<String>) {
    match block {
        IpCidr::V4(c) => (Some(c.to_string()), None),
        IpCidr::V6(c) => (None, Some(c.to_string())),
    }
}

pub fn tags_from(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub fn tags_to(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn resource_type(kind: ResourceKind) -> ResourceType {
    match kind {
        ResourceKind::DhcpOptions => ResourceType::DhcpOptions,
        ResourceKind::Vpc => ResourceType::Vpc,
        ResourceKind::InternetGateway => ResourceType::InternetGateway,
        ResourceKind::EgressOnlyInternetGateway => ResourceType::EgressOnlyInternetGateway,
        ResourceKind::ElasticIp => ResourceType::ElasticIp,
        ResourceKind::Subnet => ResourceType::Subnet,
        ResourceKind::NatGateway => ResourceType::Natgateway,
        ResourceKind::VpcPeeringConnection => ResourceType::VpcPeeringConnection,
        ResourceKind::RouteTable => ResourceType::RouteTable,
        ResourceKind::VpcEndpoint => ResourceType::VpcEndpoint,
        ResourceKind::NetworkAcl => ResourceType::NetworkAcl,
        ResourceKind::SecurityGroup => ResourceType::SecurityGroup,
        ResourceKind::Instance => ResourceType::Instance,
        ResourceKind::Volume => ResourceType::Volume,
    }
}

/// `TagSpecifications` for a create of `kind`, so tags and resource appear
/// together (none if there are no tags).
pub fn tag_specs(kind: ResourceKind, tags: &Tags) -> Option<Vec<TagSpecification>> {
    if tags.is_empty() {
        return None;
    }
    Some(vec![TagSpecification::builder()
        .resource_type(resource_type(kind))
        .set_tags(Some(tags_to(tags)))
        .build()])
}

pub fn permission_from(p: &IpPermission) -> Permission {
    Permission {
        ip_protocol: p.ip_protocol().unwrap_or("-1").to_string(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        cidrs: p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip().map(String::from))
            .collect(),
        groups: p
            .user_id_group_pairs()
            .iter()
            .filter_map(|g| g.group_id().map(String::from))
            .collect(),
        ipv6_cidrs: p
            .ipv6_ranges()
            .iter()
            .filter_map(|r| r.cidr_ipv6().map(String::from))
            .collect(),
        prefix_lists: p
            .prefix_list_ids()
            .iter()
            .filter_map(|r| r.prefix_list_id().map(String::from))
            .collect(),
    }
}

pub fn permission_to(p: &Permission) -> IpPermission {
    let ranges: Vec<IpRange> = p
        .cidrs
        .iter()
        .map(|c| IpRange::builder().cidr_ip(c).build())
        .collect();
    let groups: Vec<UserIdGroupPair> = p
        .groups
        .iter()
        .map(|g| UserIdGroupPair::builder().group_id(g).build())
        .collect();
    let ipv6: Vec<Ipv6Range> = p
        .ipv6_cidrs
        .iter()
        .map(|c| Ipv6Range::builder().cidr_ipv6(c).build())
        .collect();
    let lists: Vec<PrefixListId> = p
        .prefix_lists
        .iter()
        .map(|l| PrefixListId::builder().prefix_list_id(l).build())
        .collect();
    IpPermission::builder()
        .ip_protocol(&p.ip_protocol)
        .set_from_port(p.from_port)
        .set_to_port(p.to_port)
        .set_ip_ranges((!ranges.is_empty()).then_some(ranges))
        .set_ipv6_ranges((!ipv6.is_empty()).then_some(ipv6))
        .set_prefix_list_ids((!lists.is_empty()).then_some(lists))
        .set_user_id_group_pairs((!groups.is_empty()).then_some(groups))
        .build()
}
