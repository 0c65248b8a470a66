//! The properties of each resource kind.
//!
//! Specs are generic over how they refer to other resources: a declared
//! resource refers by [`Ref`] (a logical id, or the cloud id of something
//! Canon does not manage); an observed one by the cloud id the cloud reports.
//! Translating observed references through the bindings gives both the same
//! shape, so the planner can compare them with `==`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sorted_vec::{SortedVecMap, SortedVecSet};
use crate::{AclEntry, FleetMember, IpCidr, Ipv4Cidr, Ipv6Cidr, LogicalId, Protocol, ResourceKind};

/// Tags as the cloud keeps them: a map from key to value.
pub type Tags = SortedVecMap<String, String>;

/// A declared reference to another resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Ref {
    /// A resource declared in the same process.
    Managed(LogicalId),
    /// A resource Canon does not manage, by its cloud id (e.g. a shared VPC,
    /// or a group named in a rule a rogue operator added).
    External(String),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Managed(id) => write!(f, "{id}"),
            Ref::External(id) => f.write_str(id),
        }
    }
}

/// An AWS region code, e.g. `us-west-2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Region(pub String);

impl Region {
    pub fn new(code: impl Into<String>) -> Self {
        Region(code.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The properties of a resource of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub enum Spec<R> {
    DhcpOptions(DhcpOptionsSpec),
    Vpc(VpcSpec<R>),
    InternetGateway(InternetGatewaySpec<R>),
    EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec<R>),
    ElasticIp(ElasticIpSpec),
    Subnet(SubnetSpec<R>),
    NatGateway(NatGatewaySpec<R>),
    VpcPeeringConnection(VpcPeeringConnectionSpec<R>),
    RouteTable(RouteTableSpec<R>),
    VpcEndpoint(VpcEndpointSpec<R>),
    NetworkAcl(NetworkAclSpec<R>),
    SecurityGroup(SecurityGroupSpec<R>),
    Instance(InstanceSpec<R>),
    Volume(VolumeSpec<R>),
}

/// Declared specs refer by [`Ref`].
pub type DesiredSpec = Spec<Ref>;
/// Observed specs refer by cloud id.
pub type ObservedSpec = Spec<String>;

impl<R> Spec<R> {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Spec::DhcpOptions(_) => ResourceKind::DhcpOptions,
            Spec::Vpc(_) => ResourceKind::Vpc,
            Spec::InternetGateway(_) => ResourceKind::InternetGateway,
            Spec::EgressOnlyInternetGateway(_) => ResourceKind::EgressOnlyInternetGateway,
            Spec::ElasticIp(_) => ResourceKind::ElasticIp,
            Spec::Subnet(_) => ResourceKind::Subnet,
            Spec::NatGateway(_) => ResourceKind::NatGateway,
            Spec::VpcPeeringConnection(_) => ResourceKind::VpcPeeringConnection,
            Spec::RouteTable(_) => ResourceKind::RouteTable,
            Spec::VpcEndpoint(_) => ResourceKind::VpcEndpoint,
            Spec::NetworkAcl(_) => ResourceKind::NetworkAcl,
            Spec::SecurityGroup(_) => ResourceKind::SecurityGroup,
            Spec::Instance(_) => ResourceKind::Instance,
            Spec::Volume(_) => ResourceKind::Volume,
        }
    }

    pub fn tags(&self) -> &Tags {
        match self {
            Spec::DhcpOptions(s) => &s.tags,
            Spec::Vpc(s) => &s.tags,
            Spec::InternetGateway(s) => &s.tags,
            Spec::EgressOnlyInternetGateway(s) => &s.tags,
            Spec::ElasticIp(s) => &s.tags,
            Spec::Subnet(s) => &s.tags,
            Spec::NatGateway(s) => &s.tags,
            Spec::VpcPeeringConnection(s) => &s.tags,
            Spec::RouteTable(s) => &s.tags,
            Spec::VpcEndpoint(s) => &s.tags,
            Spec::NetworkAcl(s) => &s.tags,
            Spec::SecurityGroup(s) => &s.tags,
            Spec::Instance(s) => &s.tags,
            Spec::Volume(s) => &s.tags,
        }
    }

    pub fn tags_mut(&mut self) -> &mut Tags {
        match self {
            Spec::DhcpOptions(s) => &mut s.tags,
            Spec::Vpc(s) => &mut s.tags,
            Spec::InternetGateway(s) => &mut s.tags,
            Spec::EgressOnlyInternetGateway(s) => &mut s.tags,
            Spec::ElasticIp(s) => &mut s.tags,
            Spec::Subnet(s) => &mut s.tags,
            Spec::NatGateway(s) => &mut s.tags,
            Spec::VpcPeeringConnection(s) => &mut s.tags,
            Spec::RouteTable(s) => &mut s.tags,
            Spec::VpcEndpoint(s) => &mut s.tags,
            Spec::NetworkAcl(s) => &mut s.tags,
            Spec::SecurityGroup(s) => &mut s.tags,
            Spec::Instance(s) => &mut s.tags,
            Spec::Volume(s) => &mut s.tags,
        }
    }

    /// Every resource this one refers to.
    pub fn references(&self) -> Vec<&R> {
        match self {
            Spec::DhcpOptions(_) | Spec::ElasticIp(_) => vec![],
            Spec::Vpc(s) => s.dhcp_options.iter().collect(),
            Spec::InternetGateway(s) => s.vpc.iter().collect(),
            Spec::EgressOnlyInternetGateway(s) => vec![&s.vpc],
            Spec::Subnet(s) => vec![&s.vpc],
            Spec::NatGateway(s) => {
                let mut refs = vec![&s.subnet];
                refs.extend(s.allocation.iter());
                refs
            }
            Spec::VpcPeeringConnection(s) => vec![&s.vpc, &s.peer_vpc],
            Spec::RouteTable(s) => {
                let mut refs = vec![&s.vpc];
                refs.extend(s.routes.iter().map(|r| &r.target));
                refs.extend(s.associations.iter());
                refs
            }
            Spec::VpcEndpoint(s) => {
                let mut refs = vec![&s.vpc];
                refs.extend(s.route_tables.iter());
                refs.extend(s.subnets.iter());
                refs.extend(s.security_groups.iter());
                refs
            }
            Spec::NetworkAcl(s) => {
                let mut refs = vec![&s.vpc];
                refs.extend(s.associations.iter());
                refs
            }
            Spec::SecurityGroup(s) => {
                let mut refs = vec![&s.vpc];
                refs.extend(
                    s.ingress
                        .iter()
                        .chain(&s.egress)
                        .filter_map(|r| match &r.peer {
                            Peer::Group(g) => Some(g),
                            Peer::Cidr(_) | Peer::Ipv6Cidr(_) | Peer::PrefixList(_) => None,
                        }),
                );
                refs
            }
            Spec::Instance(s) => {
                let mut refs = vec![&s.subnet];
                refs.extend(s.security_groups.iter());
                refs
            }
            Spec::Volume(s) => s.attachment.iter().map(|a| &a.instance).collect(),
        }
    }

    /// The same spec with every reference mapped by `f`.
    pub fn map_refs<S: Ord, F: FnMut(&R) -> S>(&self, mut f: F) -> Spec<S> {
        match self {
            Spec::DhcpOptions(s) => Spec::DhcpOptions(s.clone()),
            Spec::ElasticIp(s) => Spec::ElasticIp(s.clone()),
            Spec::Vpc(s) => Spec::Vpc(VpcSpec {
                cidr_block: s.cidr_block,
                instance_tenancy: s.instance_tenancy,
                enable_dns_support: s.enable_dns_support,
                enable_dns_hostnames: s.enable_dns_hostnames,
                ipv6: s.ipv6,
                ipv6_cidr_block: s.ipv6_cidr_block,
                dhcp_options: s.dhcp_options.as_ref().map(&mut f),
                tags: s.tags.clone(),
            }),
            Spec::InternetGateway(s) => Spec::InternetGateway(InternetGatewaySpec {
                vpc: s.vpc.as_ref().map(&mut f),
                tags: s.tags.clone(),
            }),
            Spec::EgressOnlyInternetGateway(s) => {
                Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                    vpc: f(&s.vpc),
                    tags: s.tags.clone(),
                })
            }
            Spec::Subnet(s) => Spec::Subnet(SubnetSpec {
                vpc: f(&s.vpc),
                cidr_block: s.cidr_block,
                availability_zone: s.availability_zone.clone(),
                map_public_ip_on_launch: s.map_public_ip_on_launch,
                ipv6_index: s.ipv6_index,
                ipv6_cidr_block: s.ipv6_cidr_block,
                tags: s.tags.clone(),
            }),
            Spec::NatGateway(s) => Spec::NatGateway(NatGatewaySpec {
                subnet: f(&s.subnet),
                allocation: s.allocation.as_ref().map(&mut f),
                tags: s.tags.clone(),
            }),
            Spec::VpcPeeringConnection(s) => Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
                vpc: f(&s.vpc),
                peer_vpc: f(&s.peer_vpc),
                accepted: s.accepted,
                tags: s.tags.clone(),
            }),
            Spec::RouteTable(s) => Spec::RouteTable(RouteTableSpec {
                vpc: f(&s.vpc),
                routes: s
                    .routes
                    .iter()
                    .map(|r| Route {
                        destination: r.destination,
                        target: f(&r.target),
                    })
                    .collect(),
                associations: s.associations.iter().map(&mut f).collect(),
                interfaces: s.interfaces.iter().map(|(d, i)| (*d, f(i))).collect(),
                tags: s.tags.clone(),
            }),
            Spec::VpcEndpoint(s) => Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: f(&s.vpc),
                service: s.service,
                endpoint_type: s.endpoint_type,
                route_tables: s.route_tables.iter().map(&mut f).collect(),
                subnets: s.subnets.iter().map(&mut f).collect(),
                security_groups: s.security_groups.iter().map(&mut f).collect(),
                private_dns: s.private_dns,
                policy: s.policy.clone(),
                tags: s.tags.clone(),
            }),
            Spec::NetworkAcl(s) => Spec::NetworkAcl(NetworkAclSpec {
                vpc: f(&s.vpc),
                entries: s.entries.clone(),
                associations: s.associations.iter().map(&mut f).collect(),
                tags: s.tags.clone(),
            }),
            Spec::SecurityGroup(s) => {
                let mut rules = |set: &SortedVecSet<Rule<R>>| -> SortedVecSet<Rule<S>> {
                    set.iter().map(|r| r.map_peer(&mut f)).collect()
                };
                let ingress = rules(&s.ingress);
                let egress = rules(&s.egress);
                Spec::SecurityGroup(SecurityGroupSpec {
                    vpc: f(&s.vpc),
                    group_name: s.group_name.clone(),
                    description: s.description.clone(),
                    ingress,
                    egress,
                    tags: s.tags.clone(),
                })
            }
            Spec::Instance(s) => Spec::Instance(InstanceSpec {
                image_id: s.image_id.clone(),
                instance_type: s.instance_type.clone(),
                subnet: f(&s.subnet),
                key_name: s.key_name.clone(),
                user_data: s.user_data.clone(),
                security_groups: s.security_groups.iter().map(&mut f).collect(),
                tags: s.tags.clone(),
                max_age_secs: s.max_age_secs,
                fleet: s.fleet.clone(),
                source_dest_check: s.source_dest_check,
            }),
            Spec::Volume(s) => Spec::Volume(VolumeSpec {
                availability_zone: s.availability_zone.clone(),
                size_gib: s.size_gib,
                volume_type: s.volume_type.clone(),
                iops: s.iops,
                encrypted: s.encrypted,
                attachment: s.attachment.as_ref().map(|a| VolumeAttachment {
                    instance: f(&a.instance),
                    device: a.device.clone(),
                }),
                tags: s.tags.clone(),
            }),
        }
    }
}

/// A DHCP options set. Immutable in EC2 except for its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpOptionsSpec {
    pub domain_name: Option<String>,
    pub domain_name_servers: Vec<String>,
    pub ntp_servers: Vec<String>,
    pub tags: Tags,
}

/// How instances in a VPC are placed on hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tenancy {
    Default,
    Dedicated,
}

impl Tenancy {
    pub fn as_str(self) -> &'static str {
        match self {
            Tenancy::Default => "default",
            Tenancy::Dedicated => "dedicated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcSpec<R> {
    pub cidr_block: Ipv4Cidr,
    pub instance_tenancy: Tenancy,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    /// Whether the VPC has an Amazon-provided IPv6 block (a `/56`): declared
    /// wanted or not; observed true while one is associated (or being
    /// associated).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
    /// The Amazon-provided `/56` itself, as observed (EC2 picks it; always
    /// `None` when declared). Subnets number their `/64`s inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr_block: Option<Ipv6Cidr>,
    /// The associated DHCP options. `None` leaves the association unmanaged
    /// (whatever set the VPC has, usually the region's default, is kept).
    pub dhcp_options: Option<R>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetGatewaySpec<R> {
    /// The VPC it is attached to, if any.
    pub vpc: Option<R>,
    pub tags: Tags,
}

/// An egress-only internet gateway: IPv6 traffic out of its VPC to the
/// Internet, and only the answers back in. It belongs to one VPC for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressOnlyInternetGatewaySpec<R> {
    pub vpc: R,
    pub tags: Tags,
}

/// An Elastic IP address in the VPC domain (the only domain EC2 still
/// offers). Nothing about it is declared but its tags; its public address
/// is EC2's choice, and its association belongs to whatever uses it (a NAT
/// gateway), not to the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElasticIpSpec {
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec<R> {
    pub vpc: R,
    pub cidr_block: Ipv4Cidr,
    /// Full zone name, e.g. `us-west-2a`.
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
    /// Declared: which `/64` of its VPC's Amazon-provided `/56` the subnet
    /// takes (0–255), if any. The block is known only once the VPC has its
    /// `/56`, so the planner computes it then. Never set when observed: the
    /// planner reads the index off `ipv6_cidr_block` and the VPC's block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_index: Option<u8>,
    /// Observed: the subnet's associated IPv6 `/64` (always `None` when
    /// declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr_block: Option<Ipv6Cidr>,
    pub tags: Tags,
}

/// A NAT gateway in a subnet: public, holding the Elastic IP `allocation`
/// (its subnet routed to an internet gateway), or private (`None`). Its
/// subnet and address are fixed; only its tags change in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGatewaySpec<R> {
    pub subnet: R,
    pub allocation: Option<R>,
    pub tags: Tags,
}

/// A VPC peering connection between two VPCs of one account and region:
/// `vpc` asks (the requester), `peer_vpc` accepts. Both VPCs are fixed (new
/// ones are a new connection); only its tags change in place. A new
/// connection is `pending-acceptance` until accepted; the declaration
/// always wants it accepted, and one the cloud shows unaccepted is
/// accepted again. A deleted, rejected or expired connection is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcPeeringConnectionSpec<R> {
    pub vpc: R,
    pub peer_vpc: R,
    /// Whether the accepter has accepted it (declared `true`; observed
    /// `false` while `pending-acceptance`).
    pub accepted: bool,
    pub tags: Tags,
}

/// A route: traffic for `destination` goes to `target` (an internet
/// gateway or a NAT gateway).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route<R> {
    /// An IPv4 or an IPv6 block.
    pub destination: IpCidr,
    pub target: R,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub struct RouteTableSpec<R> {
    pub vpc: R,
    /// Routes other than the VPC's implicit `local` route.
    pub routes: SortedVecSet<Route<R>>,
    /// Subnets explicitly associated with this table.
    pub associations: SortedVecSet<R>,
    /// Observed only (declarations leave it empty): for a route whose
    /// target EC2 names as an instance, the network interface it names
    /// beside it, by destination. A route made through an interface that
    /// is attached to an instance reads back as the instance, so a
    /// declared interface target matches either.
    #[serde(default, skip_serializing_if = "SortedVecMap::is_empty")]
    pub interfaces: SortedVecMap<IpCidr, R>,
    pub tags: Tags,
}

/// A VPC endpoint to one of the region's AWS services.
///
/// A gateway endpoint (S3, DynamoDB): traffic from the subnets of
/// `route_tables` to the service goes through it (EC2 adds a route to the
/// service's prefix list, via the endpoint, to each table; those routes
/// belong to the endpoint, not to the table's declared routes).
///
/// An interface endpoint: EC2 puts a network interface of the endpoint in
/// each of `subnets` (at most one per availability zone), guarded by
/// `security_groups`; with `private_dns` the service's public name
/// resolves to those interfaces inside the VPC (which needs the VPC's DNS
/// support and hostnames).
///
/// The VPC, the type and the service are fixed (new ones are a new
/// endpoint); route tables, subnets, groups, private DNS, the policy and
/// the tags change in place. `policy` is a JSON policy document, compared
/// as parsed JSON (EC2 gives it back reformatted); none is EC2's
/// full-access default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub struct VpcEndpointSpec<R> {
    pub vpc: R,
    pub service: EndpointService,
    #[serde(default)]
    pub endpoint_type: EndpointType,
    /// Route tables of the same VPC (gateway endpoints).
    pub route_tables: SortedVecSet<R>,
    /// Subnets of the same VPC, at most one per zone (interface endpoints).
    #[serde(default)]
    pub subnets: SortedVecSet<R>,
    /// Security groups of the same VPC (interface endpoints); none leaves
    /// the endpoint to the VPC's default group, which EC2 gives it.
    #[serde(default)]
    pub security_groups: SortedVecSet<R>,
    /// Private DNS names for the service (interface endpoints).
    #[serde(default)]
    pub private_dns: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub tags: Tags,
}

/// How an endpoint reaches its service: routes in route tables
/// (gateway) or network interfaces in subnets (interface).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EndpointType {
    #[default]
    Gateway,
    Interface,
}

impl EndpointType {
    /// EC2's name of the type (`VpcEndpointType`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::Gateway => "Gateway",
            EndpointType::Interface => "Interface",
        }
    }
}

impl fmt::Display for EndpointType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AWS services an endpoint reaches: S3 and DynamoDB by gateway (S3
/// also by interface), the rest by interface. Every one of them exists in
/// every commercial region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EndpointService {
    #[serde(rename = "s3")]
    S3,
    #[serde(rename = "dynamodb")]
    DynamoDb,
    #[serde(rename = "ec2")]
    Ec2,
    #[serde(rename = "sts")]
    Sts,
    #[serde(rename = "ssm")]
    Ssm,
    #[serde(rename = "ssmmessages")]
    SsmMessages,
    #[serde(rename = "ec2messages")]
    Ec2Messages,
    #[serde(rename = "logs")]
    Logs,
    #[serde(rename = "kms")]
    Kms,
    #[serde(rename = "secretsmanager")]
    SecretsManager,
    #[serde(rename = "ecr.api")]
    EcrApi,
    #[serde(rename = "ecr.dkr")]
    EcrDkr,
    #[serde(rename = "sqs")]
    Sqs,
    #[serde(rename = "sns")]
    Sns,
    #[serde(rename = "monitoring")]
    Monitoring,
    #[serde(rename = "execute-api")]
    ExecuteApi,
}

impl EndpointService {
    /// Every service, in the order of the composition's enum.
    pub const ALL: [EndpointService; 16] = [
        EndpointService::S3,
        EndpointService::DynamoDb,
        EndpointService::Ec2,
        EndpointService::Sts,
        EndpointService::Ssm,
        EndpointService::SsmMessages,
        EndpointService::Ec2Messages,
        EndpointService::Logs,
        EndpointService::Kms,
        EndpointService::SecretsManager,
        EndpointService::EcrApi,
        EndpointService::EcrDkr,
        EndpointService::Sqs,
        EndpointService::Sns,
        EndpointService::Monitoring,
        EndpointService::ExecuteApi,
    ];

    /// The last part of EC2's service name (`s3`, `ecr.api`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointService::S3 => "s3",
            EndpointService::DynamoDb => "dynamodb",
            EndpointService::Ec2 => "ec2",
            EndpointService::Sts => "sts",
            EndpointService::Ssm => "ssm",
            EndpointService::SsmMessages => "ssmmessages",
            EndpointService::Ec2Messages => "ec2messages",
            EndpointService::Logs => "logs",
            EndpointService::Kms => "kms",
            EndpointService::SecretsManager => "secretsmanager",
            EndpointService::EcrApi => "ecr.api",
            EndpointService::EcrDkr => "ecr.dkr",
            EndpointService::Sqs => "sqs",
            EndpointService::Sns => "sns",
            EndpointService::Monitoring => "monitoring",
            EndpointService::ExecuteApi => "execute-api",
        }
    }

    /// Whether EC2 offers the service by endpoints of type `t`.
    pub fn offers(self, t: EndpointType) -> bool {
        match t {
            EndpointType::Gateway => {
                matches!(self, EndpointService::S3 | EndpointService::DynamoDb)
            }
            EndpointType::Interface => self != EndpointService::DynamoDb,
        }
    }

    /// EC2's name of the service in `region` (`com.amazonaws.us-west-2.s3`).
    pub fn service_name(self, region: &Region) -> String {
        format!("com.amazonaws.{region}.{}", self.as_str())
    }

    /// The service EC2's name `name` gives, if it is a service of
    /// `region` this table knows.
    pub fn from_service_name(name: &str, region: &Region) -> Option<EndpointService> {
        let rest = name
            .strip_prefix("com.amazonaws.")?
            .strip_prefix(region.as_str())?
            .strip_prefix('.')?;
        EndpointService::ALL
            .into_iter()
            .find(|s| s.as_str() == rest)
    }
}

impl fmt::Display for EndpointService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route's target is, as EC2 asks for it: each kind of next hop has
/// its own parameter of `CreateRoute` and `ReplaceRoute`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hop {
    /// An internet gateway (`GatewayId`).
    #[default]
    InternetGateway,
    /// A NAT gateway (`NatGatewayId`).
    NatGateway,
    /// An egress-only internet gateway (`EgressOnlyInternetGatewayId`),
    /// for IPv6 destinations.
    EgressOnlyInternetGateway,
    /// An instance (`InstanceId`) of the table's VPC, such as a NAT or
    /// firewall instance: EC2 sends the traffic to its primary network
    /// interface. It ranks after route tables, so a route to one made in
    /// the same plan waits for it.
    Instance,
    /// A VPC peering connection (`VpcPeeringConnectionId`) one end of
    /// which is the table's VPC; a route to one waits until it is active.
    VpcPeeringConnection,
    /// A network interface (`NetworkInterfaceId`) Canon does not manage,
    /// such as a firewall appliance's; EC2 checks that it is in the
    /// table's VPC.
    NetworkInterface,
}

impl Hop {
    /// The hop a target of `kind` is.
    pub fn of_kind(kind: ResourceKind) -> Hop {
        match kind {
            ResourceKind::NatGateway => Hop::NatGateway,
            ResourceKind::EgressOnlyInternetGateway => Hop::EgressOnlyInternetGateway,
            ResourceKind::Instance => Hop::Instance,
            ResourceKind::VpcPeeringConnection => Hop::VpcPeeringConnection,
            _ => Hop::InternetGateway,
        }
    }

    /// The hop a cloud id names, by EC2's id prefixes (`nat-…`,
    /// `eigw-…`, `i-…`, `pcx-…`, `eni-…`), for targets Canon does not
    /// manage.
    pub fn of_id(id: &str) -> Hop {
        if id.starts_with("nat-") {
            Hop::NatGateway
        } else if id.starts_with("eigw-") {
            Hop::EgressOnlyInternetGateway
        } else if id.starts_with("i-") {
            Hop::Instance
        } else if id.starts_with("pcx-") {
            Hop::VpcPeeringConnection
        } else if id.starts_with("eni-") {
            Hop::NetworkInterface
        } else {
            Hop::InternetGateway
        }
    }

    /// EC2's parameter for a target of this kind.
    pub fn param(self) -> &'static str {
        match self {
            Hop::InternetGateway => "GatewayId",
            Hop::NatGateway => "NatGatewayId",
            Hop::EgressOnlyInternetGateway => "EgressOnlyInternetGatewayId",
            Hop::Instance => "InstanceId",
            Hop::VpcPeeringConnection => "VpcPeeringConnectionId",
            Hop::NetworkInterface => "NetworkInterfaceId",
        }
    }

    /// The family this hop takes (`"IPv4"`, `"IPv6"`) if `destination` is
    /// not of it: a NAT gateway carries IPv4, an egress-only internet
    /// gateway IPv6, an internet gateway and an instance both.
    pub fn refuses(self, destination: &IpCidr) -> Option<&'static str> {
        match (self, destination) {
            (Hop::NatGateway, IpCidr::V6(_)) => Some("IPv4"),
            (Hop::EgressOnlyInternetGateway, IpCidr::V4(_)) => Some("IPv6"),
            _ => None,
        }
    }
}

/// A network ACL of a VPC: its numbered entries (both directions; a set,
/// so an entry added by hand is drift) and the subnets it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub struct NetworkAclSpec<R> {
    pub vpc: R,
    pub entries: SortedVecSet<AclEntry>,
    /// Subnets explicitly associated with this ACL.
    pub associations: SortedVecSet<R>,
    pub tags: Tags,
}

/// Where a rule lets traffic come from (ingress) or go to (egress).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Peer<R> {
    Cidr(Ipv4Cidr),
    Group(R),
    /// An IPv6 range (`::/0`). Declarations rarely use it, but a rogue
    /// IPv6 rule must be seen to be healed.
    Ipv6Cidr(Ipv6Cidr),
    /// A managed prefix list (`pl-…`), by id.
    PrefixList(String),
}

/// One security-group rule: one protocol, one port range, one peer. EC2 groups
/// rules by protocol and ports with several peers; Canon keeps them flat so
/// that a group's rules are a set and drift is a set difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule<R> {
    pub protocol: Protocol,
    /// First port (or ICMP type); `-1` when the protocol has no ports.
    pub from_port: i32,
    /// Last port (or ICMP code); `-1` when the protocol has no ports.
    pub to_port: i32,
    pub peer: Peer<R>,
}

impl<R> Rule<R> {
    /// A rule in canonical form: protocols without ports get `-1`/`-1`.
    pub fn new(protocol: Protocol, from_port: i32, to_port: i32, peer: Peer<R>) -> Self {
        let (from_port, to_port) = if protocol.has_ports() {
            (from_port, to_port)
        } else {
            (-1, -1)
        };
        Rule {
            protocol,
            from_port,
            to_port,
            peer,
        }
    }

    /// The same rule with its peer group mapped by `f`.
    pub fn map_peer<S, F: FnMut(&R) -> S>(&self, mut f: F) -> Rule<S> {
        match self.try_map_peer(|g| Ok::<S, std::convert::Infallible>(f(g))) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// The same rule with its peer group mapped by `f`, which may fail.
    pub fn try_map_peer<S, E, F: FnMut(&R) -> Result<S, E>>(&self, mut f: F) -> Result<Rule<S>, E> {
        Ok(Rule {
            protocol: self.protocol,
            from_port: self.from_port,
            to_port: self.to_port,
            peer: match &self.peer {
                Peer::Cidr(c) => Peer::Cidr(*c),
                Peer::Group(g) => Peer::Group(f(g)?),
                Peer::Ipv6Cidr(c) => Peer::Ipv6Cidr(*c),
                Peer::PrefixList(p) => Peer::PrefixList(p.clone()),
            },
        })
    }

    /// EC2's default egress rule of a new group: all traffic to anywhere.
    pub fn allow_all_egress() -> Self {
        Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
    }
}

impl<R: fmt::Display> fmt::Display for Rule<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::All => f.write_str("all traffic")?,
            p if self.from_port == self.to_port => {
                write!(f, "{} {}", p.ec2_name(), self.from_port)?
            }
            p => write!(f, "{} {}-{}", p.ec2_name(), self.from_port, self.to_port)?,
        }
        match &self.peer {
            Peer::Cidr(c) => write!(f, " {c}"),
            Peer::Group(g) => write!(f, " group {g}"),
            Peer::Ipv6Cidr(c) => write!(f, " {c}"),
            Peer::PrefixList(p) => write!(f, " prefix list {p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub struct SecurityGroupSpec<R> {
    pub vpc: R,
    pub group_name: String,
    pub description: String,
    pub ingress: SortedVecSet<Rule<R>>,
    /// Declared egress; a composition that says `None` gets EC2's default
    /// (all traffic to 0.0.0.0/0) from the compiler.
    pub egress: SortedVecSet<Rule<R>>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "R: Serialize", deserialize = "R: Deserialize<'de> + Ord"))]
pub struct InstanceSpec<R> {
    pub image_id: String,
    pub instance_type: String,
    pub subnet: R,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub security_groups: SortedVecSet<R>,
    pub tags: Tags,
    /// Replace the instance once it is this old (seconds; declared only,
    /// never observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
    /// The fleet it belongs to, if a `Fleet` declared it (declared only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetMember>,
    /// EC2's source/destination check: on (EC2's default) drops traffic
    /// not addressed to or from the instance; off lets it forward (a NAT
    /// or firewall instance, a route's target).
    #[serde(default = "source_dest_check_default")]
    pub source_dest_check: bool,
}

/// EC2's default for an instance's source/destination check: on.
fn source_dest_check_default() -> bool {
    true
}

/// An EBS volume in one availability zone, and the instance it is attached
/// to, if any. Its zone and encryption are fixed; its size grows in place
/// (EC2 cannot shrink a volume, so a smaller size is a new volume), its
/// type and IOPS change in place, and its attachment is ended and made
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec<R> {
    /// Full zone name, e.g. `us-west-2a`.
    pub availability_zone: String,
    pub size_gib: u32,
    /// EC2's volume type: `gp3`, `gp2`, `io1`, `io2`, `st1`, `sc1` or
    /// `standard`.
    pub volume_type: String,
    /// Provisioned IOPS; `None` leaves them to EC2's default for the type
    /// (and does not enforce what the cloud shows).
    pub iops: Option<u32>,
    pub encrypted: bool,
    pub attachment: Option<VolumeAttachment<R>>,
    pub tags: Tags,
}

/// A volume's attachment: the instance and the device name it is exposed
/// as (`/dev/sdf`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VolumeAttachment<R> {
    pub instance: R,
    pub device: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ipv4Cidr, Ipv6Cidr};

    #[test]
    fn each_hop_carries_its_families() {
        let (v4, v6) = (IpCidr::V4(Ipv4Cidr::ANY), IpCidr::V6(Ipv6Cidr::ANY));
        let refused = |hop: Hop| (hop.refuses(&v4), hop.refuses(&v6));
        assert_eq!(refused(Hop::InternetGateway), (None, None));
        assert_eq!(refused(Hop::NatGateway), (None, Some("IPv4")));
        assert_eq!(
            refused(Hop::EgressOnlyInternetGateway),
            (Some("IPv6"), None)
        );
    }
}
