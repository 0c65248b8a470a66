//! The resource kinds Canon manages, their dependency rank and the
//! mutability of each of their properties.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of EC2 resource Canon manages, in dependency order: a kind may
/// only reference kinds that come before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    DhcpOptions,
    Vpc,
    InternetGateway,
    Subnet,
    RouteTable,
    SecurityGroup,
    Instance,
}

impl ResourceKind {
    /// Every kind, in dependency order (creates go this way, deletes the other).
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::DhcpOptions,
        ResourceKind::Vpc,
        ResourceKind::InternetGateway,
        ResourceKind::Subnet,
        ResourceKind::RouteTable,
        ResourceKind::SecurityGroup,
        ResourceKind::Instance,
    ];

    /// Position in dependency order.
    pub fn rank(self) -> usize {
        self as usize
    }

    /// The EC2 noun, as used in request types and messages.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::DhcpOptions => "dhcp_options",
            ResourceKind::Vpc => "vpc",
            ResourceKind::InternetGateway => "internet_gateway",
            ResourceKind::Subnet => "subnet",
            ResourceKind::RouteTable => "route_table",
            ResourceKind::SecurityGroup => "security_group",
            ResourceKind::Instance => "instance",
        }
    }

    /// The properties of this kind and how each may change.
    pub fn properties(self) -> &'static [(&'static str, Mutability)] {
        use Mutability::{Mutable, Replace};
        match self {
            ResourceKind::DhcpOptions => &[
                ("domainName", Replace),
                ("domainNameServers", Replace),
                ("ntpServers", Replace),
                ("tags", Mutable),
            ],
            ResourceKind::Vpc => &[
                ("cidrBlock", Replace),
                ("instanceTenancy", Replace),
                ("enableDnsSupport", Mutable),
                ("enableDnsHostnames", Mutable),
                ("dhcpOptions", Mutable),
                ("tags", Mutable),
            ],
            ResourceKind::InternetGateway => &[("vpc", Mutable), ("tags", Mutable)],
            ResourceKind::Subnet => &[
                ("vpc", Replace),
                ("cidrBlock", Replace),
                ("availabilityZone", Replace),
                ("mapPublicIpOnLaunch", Mutable),
                ("tags", Mutable),
            ],
            ResourceKind::RouteTable => &[
                ("vpc", Replace),
                ("routes", Mutable),
                ("associations", Mutable),
                ("tags", Mutable),
            ],
            ResourceKind::SecurityGroup => &[
                ("vpc", Replace),
                ("groupName", Replace),
                ("description", Replace),
                ("ingress", Mutable),
                ("egress", Mutable),
                ("tags", Mutable),
            ],
            ResourceKind::Instance => &[
                ("imageId", Replace),
                ("instanceType", Replace),
                ("subnet", Replace),
                ("keyName", Replace),
                ("userData", Replace),
                ("securityGroups", Mutable),
                ("tags", Mutable),
            ],
        }
    }

    /// How `property` of this kind may change; properties not in the table
    /// (there should be none) are treated as replacement-required, the safe
    /// choice.
    pub fn mutability(self, property: &str) -> Mutability {
        self.properties()
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, m)| *m)
            .unwrap_or(Mutability::Replace)
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
