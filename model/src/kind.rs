//! The resource kinds Canon manages, their dependency rank, and whether a
//! property changes in place. Each kind's table of properties is in its
//! module under `kinds/` (`ResourceKind::properties`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of EC2 resource Canon manages, in dependency order: a kind may
/// only reference kinds that come before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    DhcpOptions,
    Vpc,
    InternetGateway,
    EgressOnlyInternetGateway,
    ElasticIp,
    Subnet,
    NatGateway,
    VpcPeeringConnection,
    RouteTable,
    NetworkAcl,
    SecurityGroup,
    VpcEndpoint,
    Instance,
    Volume,
}

impl ResourceKind {
    /// Every kind, in dependency order (creates go this way, deletes the other).
    pub const ALL: [ResourceKind; 14] = [
        ResourceKind::DhcpOptions,
        ResourceKind::Vpc,
        ResourceKind::InternetGateway,
        ResourceKind::EgressOnlyInternetGateway,
        ResourceKind::ElasticIp,
        ResourceKind::Subnet,
        ResourceKind::NatGateway,
        ResourceKind::VpcPeeringConnection,
        ResourceKind::RouteTable,
        ResourceKind::NetworkAcl,
        ResourceKind::SecurityGroup,
        ResourceKind::VpcEndpoint,
        ResourceKind::Instance,
        ResourceKind::Volume,
    ];

    /// Position in dependency order.
    pub fn rank(self) -> usize {
        self as usize
    }

    /// Whether a resource of this kind may refer to one of kind `to` that
    /// does not rank before it: a security group to another group (rules
    /// name groups both ways), and a route table to an instance a route
    /// goes through (its create comes after the table's: the route waits
    /// for it, `Draft::not_ready`, and a kill terminates the instance
    /// first, leaving the route to be deleted with its table).
    pub fn may_refer_forward(self, to: ResourceKind) -> bool {
        matches!(
            (self, to),
            (ResourceKind::SecurityGroup, ResourceKind::SecurityGroup)
                | (ResourceKind::RouteTable, ResourceKind::Instance)
        )
    }

    /// Whether a new resource of this kind exists before it can be used
    /// (a NAT gateway is `pending` for a minute or more; a VPC peering
    /// connection is `pending-acceptance` until accepted, and
    /// `provisioning` briefly after): what needs it waits until the cloud
    /// shows it ready (`active` for a connection).
    pub fn starts_pending(self) -> bool {
        matches!(
            self,
            ResourceKind::NatGateway | ResourceKind::VpcPeeringConnection
        )
    }

    /// The prefix of the cloud ids EC2 gives resources of this kind
    /// (`vpc` in `vpc-3e9e5e59`): an id the composition names
    /// (`importId`, `external`) must start with it and a dash.
    pub fn id_prefix(self) -> &'static str {
        match self {
            ResourceKind::DhcpOptions => "dopt",
            ResourceKind::Vpc => "vpc",
            ResourceKind::InternetGateway => "igw",
            ResourceKind::EgressOnlyInternetGateway => "eigw",
            ResourceKind::ElasticIp => "eipalloc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::NatGateway => "nat",
            ResourceKind::VpcPeeringConnection => "pcx",
            ResourceKind::RouteTable => "rtb",
            ResourceKind::VpcEndpoint => "vpce",
            ResourceKind::NetworkAcl => "acl",
            ResourceKind::SecurityGroup => "sg",
            ResourceKind::Instance => "i",
            ResourceKind::Volume => "vol",
        }
    }

    /// Whether `cloud_id` is shaped like an id of this kind: its prefix, a
    /// dash, then one or more letters and digits.
    pub fn is_cloud_id(self, cloud_id: &str) -> bool {
        cloud_id
            .strip_prefix(self.id_prefix())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|tail| !tail.is_empty() && tail.chars().all(|c| c.is_ascii_alphanumeric()))
    }

    /// The kind whose ids look like `cloud_id`, if any.
    pub fn of_cloud_id(cloud_id: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.is_cloud_id(cloud_id))
    }

    /// The EC2 noun, as used in request types and messages.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::DhcpOptions => "dhcp_options",
            ResourceKind::Vpc => "vpc",
            ResourceKind::InternetGateway => "internet_gateway",
            ResourceKind::EgressOnlyInternetGateway => "egress_only_internet_gateway",
            ResourceKind::ElasticIp => "elastic_ip",
            ResourceKind::Subnet => "subnet",
            ResourceKind::NatGateway => "nat_gateway",
            ResourceKind::VpcPeeringConnection => "vpc_peering_connection",
            ResourceKind::RouteTable => "route_table",
            ResourceKind::VpcEndpoint => "vpc_endpoint",
            ResourceKind::NetworkAcl => "network_acl",
            ResourceKind::SecurityGroup => "security_group",
            ResourceKind::Instance => "instance",
            ResourceKind::Volume => "volume",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a property can be changed on the live resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mutability {
    /// Changed in place by an API call.
    Mutable,
    /// A change means a new resource replaces the old one.
    Replace,
}
