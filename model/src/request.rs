//! Requests: one cloud API call each, typed, with the JSON shape the CLI's
//! dry-run prints (`guid`, `params`, `region`, `request_type`). Each kind
//! writes the `params` of its own actions (`kinds/<kind>.rs`).
//!
//! A request may refer to a resource that an earlier request of the same plan
//! creates; such references are [`CloudRef::Pending`] until the executor
//! [resolves](Request::resolve) them with the bindings made so far.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{
    AclEntry, EndpointService, EndpointType, Hop, IpCidr, Ipv4Cidr, Ipv6Cidr, LogicalId, Region,
    ResourceKind, Rule, Tags, Tenancy,
};

/// A reference inside a request: a known cloud id, or the logical id of a
/// resource this plan creates before the request runs.
///
/// It is written as `{"Id": …}` or `{"Pending": …}`, and a bare string
/// also reads as a known id, so that a request a person writes (`canon
/// dev rogue ec2 … --param route_table=rtb-1`) needs no wrapping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CloudRef {
    Id(String),
    Pending(LogicalId),
}

impl<'de> Deserialize<'de> for CloudRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CloudRefVisitor)
    }
}

/// Reads a [`CloudRef`] in its written form or as a bare id.
struct CloudRefVisitor;

impl<'de> serde::de::Visitor<'de> for CloudRefVisitor {
    type Value = CloudRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a cloud id ("rtb-…"), {"Id": …} or {"Pending": …}"#)
    }

    fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<CloudRef, E> {
        Ok(CloudRef::Id(id.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, id: String) -> Result<CloudRef, E> {
        Ok(CloudRef::Id(id))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CloudRef, A::Error> {
        use serde::de::Error;
        let key: String = map
            .next_key()?
            .ok_or_else(|| A::Error::custom("an empty reference"))?;
        let r = match key.as_str() {
            "Id" => CloudRef::Id(map.next_value()?),
            "Pending" => CloudRef::Pending(map.next_value()?),
            other => return Err(A::Error::unknown_variant(other, &["Id", "Pending"])),
        };
        if map.next_key::<String>()?.is_some() {
            return Err(A::Error::custom("a reference with more than one key"));
        }
        Ok(r)
    }
}

impl CloudRef {
    /// The cloud id, if known.
    pub fn id(&self) -> Option<&str> {
        match self {
            CloudRef::Id(id) => Some(id),
            CloudRef::Pending(_) => None,
        }
    }

    /// The reference as the dry-run shows it: the id, or `{"Ref": logical id}`.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            CloudRef::Id(id) => Value::String(id.clone()),
            CloudRef::Pending(l) => json!({ "Ref": l.to_string() }),
        }
    }
}

impl fmt::Display for CloudRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudRef::Id(id) => f.write_str(id),
            CloudRef::Pending(l) => write!(f, "(to be created: {l})"),
        }
    }
}

/// A boolean VPC attribute (EC2 changes one per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VpcAttribute {
    EnableDnsSupport,
    EnableDnsHostnames,
}

/// What a request does, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateDhcpOptions {
        domain_name: Option<String>,
        domain_name_servers: Vec<String>,
        ntp_servers: Vec<String>,
        tags: Tags,
    },
    DeleteDhcpOptions {
        dhcp_options: CloudRef,
    },
    /// `dhcp_options: None` associates the region's default set.
    AssociateDhcpOptions {
        vpc: CloudRef,
        dhcp_options: Option<CloudRef>,
    },
    CreateVpc {
        cidr_block: Ipv4Cidr,
        instance_tenancy: Tenancy,
        /// Ask EC2 for an Amazon-provided IPv6 `/56` as well.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        amazon_provided_ipv6_cidr_block: bool,
        tags: Tags,
    },
    /// Gives an existing VPC an Amazon-provided IPv6 `/56`.
    AssociateVpcCidrBlock {
        vpc: CloudRef,
    },
    /// Takes a VPC's IPv6 block away, by its association id.
    DisassociateVpcCidrBlock {
        association_id: String,
    },
    ModifyVpcAttribute {
        vpc: CloudRef,
        attribute: VpcAttribute,
        value: bool,
    },
    DeleteVpc {
        vpc: CloudRef,
    },
    CreateInternetGateway {
        tags: Tags,
    },
    AttachInternetGateway {
        internet_gateway: CloudRef,
        vpc: CloudRef,
    },
    DetachInternetGateway {
        internet_gateway: CloudRef,
        vpc: CloudRef,
    },
    DeleteInternetGateway {
        internet_gateway: CloudRef,
    },
    CreateEgressOnlyInternetGateway {
        vpc: CloudRef,
        tags: Tags,
    },
    DeleteEgressOnlyInternetGateway {
        egress_only_internet_gateway: CloudRef,
    },
    /// An Elastic IP address in the VPC domain.
    AllocateAddress {
        tags: Tags,
    },
    /// Ends an address's association (with an instance or a network
    /// interface), by its association id (`eipassoc-…`).
    DisassociateAddress {
        association_id: String,
    },
    ReleaseAddress {
        allocation: CloudRef,
    },
    CreateSubnet {
        vpc: CloudRef,
        cidr_block: Ipv4Cidr,
        availability_zone: String,
        /// A `/64` of the VPC's IPv6 `/56`, when it is known at planning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ipv6_cidr_block: Option<Ipv6Cidr>,
        tags: Tags,
    },
    /// Gives an existing subnet a `/64` of its VPC's IPv6 `/56`.
    AssociateSubnetCidrBlock {
        subnet: CloudRef,
        ipv6_cidr_block: Ipv6Cidr,
    },
    /// Takes a subnet's IPv6 `/64` away, by its association id.
    DisassociateSubnetCidrBlock {
        association_id: String,
    },
    ModifySubnetAttribute {
        subnet: CloudRef,
        map_public_ip_on_launch: bool,
    },
    DeleteSubnet {
        subnet: CloudRef,
    },
    /// A NAT gateway: public with the address `allocation`, or private.
    CreateNatGateway {
        subnet: CloudRef,
        allocation: Option<CloudRef>,
        tags: Tags,
    },
    DeleteNatGateway {
        nat_gateway: CloudRef,
    },
    /// A peering connection from `vpc` (the requester) to `peer_vpc` (the
    /// accepter), in this account and region; it waits for acceptance.
    CreateVpcPeeringConnection {
        vpc: CloudRef,
        peer_vpc: CloudRef,
        tags: Tags,
    },
    AcceptVpcPeeringConnection {
        vpc_peering_connection: CloudRef,
    },
    DeleteVpcPeeringConnection {
        vpc_peering_connection: CloudRef,
    },
    CreateRouteTable {
        vpc: CloudRef,
        tags: Tags,
    },
    /// A route through `gateway`, an internet or NAT gateway as `hop` says
    /// (requests recorded before NAT gateways existed read as internet).
    CreateRoute {
        route_table: CloudRef,
        destination: IpCidr,
        gateway: CloudRef,
        #[serde(default)]
        hop: Hop,
    },
    ReplaceRoute {
        route_table: CloudRef,
        destination: IpCidr,
        gateway: CloudRef,
        #[serde(default)]
        hop: Hop,
    },
    DeleteRoute {
        route_table: CloudRef,
        destination: IpCidr,
    },
    AssociateRouteTable {
        route_table: CloudRef,
        subnet: CloudRef,
    },
    DisassociateRouteTable {
        association_id: String,
    },
    DeleteRouteTable {
        route_table: CloudRef,
    },
    /// An endpoint in `vpc` to the region's `service`: a gateway routed
    /// from `route_tables`, or an interface in `subnets` guarded by
    /// `security_groups`, with `policy` if one is declared.
    CreateVpcEndpoint {
        vpc: CloudRef,
        service: EndpointService,
        #[serde(default)]
        endpoint_type: EndpointType,
        route_tables: BTreeSet<CloudRef>,
        #[serde(default)]
        subnets: BTreeSet<CloudRef>,
        #[serde(default)]
        security_groups: BTreeSet<CloudRef>,
        #[serde(default)]
        private_dns: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        tags: Tags,
    },
    /// Adds route tables, subnets and groups to an endpoint and removes
    /// others (by cloud id: only those it is observed with are removed),
    /// turns private DNS on or off, and sets its policy or resets it to
    /// the default, all in one call.
    ModifyVpcEndpoint {
        vpc_endpoint: CloudRef,
        add_route_tables: BTreeSet<CloudRef>,
        remove_route_tables: BTreeSet<String>,
        #[serde(default)]
        add_subnets: BTreeSet<CloudRef>,
        #[serde(default)]
        remove_subnets: BTreeSet<String>,
        #[serde(default)]
        add_security_groups: BTreeSet<CloudRef>,
        #[serde(default)]
        remove_security_groups: BTreeSet<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_dns: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        #[serde(default)]
        reset_policy: bool,
    },
    /// `DeleteVpcEndpoints` of one endpoint.
    DeleteVpcEndpoint {
        vpc_endpoint: CloudRef,
    },
    CreateNetworkAcl {
        vpc: CloudRef,
        tags: Tags,
    },
    CreateNetworkAclEntry {
        network_acl: CloudRef,
        entry: AclEntry,
    },
    /// Replaces the entry of the same direction and number.
    ReplaceNetworkAclEntry {
        network_acl: CloudRef,
        entry: AclEntry,
    },
    DeleteNetworkAclEntry {
        network_acl: CloudRef,
        egress: bool,
        rule_number: u16,
    },
    /// Moves a subnet into `network_acl`, or (`None`) back to its VPC's
    /// default ACL; EC2 names the subnet's current association, which the
    /// cloud adapter looks up.
    ReplaceNetworkAclAssociation {
        subnet: CloudRef,
        network_acl: Option<CloudRef>,
    },
    DeleteNetworkAcl {
        network_acl: CloudRef,
    },
    CreateSecurityGroup {
        vpc: CloudRef,
        group_name: String,
        description: String,
        tags: Tags,
    },
    AuthorizeSecurityGroupIngress {
        group: CloudRef,
        rules: BTreeSet<Rule<CloudRef>>,
    },
    RevokeSecurityGroupIngress {
        group: CloudRef,
        rules: BTreeSet<Rule<CloudRef>>,
    },
    AuthorizeSecurityGroupEgress {
        group: CloudRef,
        rules: BTreeSet<Rule<CloudRef>>,
    },
    RevokeSecurityGroupEgress {
        group: CloudRef,
        rules: BTreeSet<Rule<CloudRef>>,
    },
    DeleteSecurityGroup {
        group: CloudRef,
    },
    RunInstances {
        image_id: String,
        instance_type: String,
        subnet: CloudRef,
        security_groups: BTreeSet<CloudRef>,
        key_name: Option<String>,
        user_data: Option<String>,
        tags: Tags,
    },
    /// Replaces the instance's whole set of groups.
    ModifyInstanceSecurityGroups {
        instance: CloudRef,
        security_groups: BTreeSet<CloudRef>,
    },
    /// Turns the instance's source/destination check on or off (off for
    /// an instance that forwards traffic: a NAT or firewall instance).
    ModifyInstanceSourceDestCheck {
        instance: CloudRef,
        enabled: bool,
    },
    TerminateInstances {
        instance: CloudRef,
    },
    /// An EBS volume; `iops` only when declared (EC2 picks the type's
    /// default otherwise).
    CreateVolume {
        availability_zone: String,
        size_gib: u32,
        volume_type: String,
        iops: Option<u32>,
        encrypted: bool,
        tags: Tags,
    },
    /// Grows a volume or changes its type or IOPS, in place.
    ModifyVolume {
        volume: CloudRef,
        size_gib: u32,
        volume_type: String,
        iops: Option<u32>,
    },
    AttachVolume {
        volume: CloudRef,
        instance: CloudRef,
        device: String,
    },
    /// Ends the volume's attachment to `instance`.
    DetachVolume {
        volume: CloudRef,
        instance: CloudRef,
    },
    DeleteVolume {
        volume: CloudRef,
    },
    CreateTags {
        resource: CloudRef,
        tags: Tags,
    },
    DeleteTags {
        resource: CloudRef,
        keys: BTreeSet<String>,
    },
}

impl Action {
    /// The request type as the dry-run names it (`aws.ec2.create_vpc`).
    pub fn request_type(&self) -> &'static str {
        match self {
            Action::CreateDhcpOptions { .. } => "aws.ec2.create_dhcp_options",
            Action::DeleteDhcpOptions { .. } => "aws.ec2.delete_dhcp_options",
            Action::AssociateDhcpOptions { .. } => "aws.ec2.associate_dhcp_options",
            Action::CreateVpc { .. } => "aws.ec2.create_vpc",
            Action::ModifyVpcAttribute { .. } => "aws.ec2.modify_vpc_attribute",
            Action::AssociateVpcCidrBlock { .. } => "aws.ec2.associate_vpc_cidr_block",
            Action::DisassociateVpcCidrBlock { .. } => "aws.ec2.disassociate_vpc_cidr_block",
            Action::DeleteVpc { .. } => "aws.ec2.delete_vpc",
            Action::CreateInternetGateway { .. } => "aws.ec2.create_internet_gateway",
            Action::AttachInternetGateway { .. } => "aws.ec2.attach_internet_gateway",
            Action::DetachInternetGateway { .. } => "aws.ec2.detach_internet_gateway",
            Action::DeleteInternetGateway { .. } => "aws.ec2.delete_internet_gateway",
            Action::CreateEgressOnlyInternetGateway { .. } => {
                "aws.ec2.create_egress_only_internet_gateway"
            }
            Action::DeleteEgressOnlyInternetGateway { .. } => {
                "aws.ec2.delete_egress_only_internet_gateway"
            }
            Action::AllocateAddress { .. } => "aws.ec2.allocate_address",
            Action::DisassociateAddress { .. } => "aws.ec2.disassociate_address",
            Action::ReleaseAddress { .. } => "aws.ec2.release_address",
            Action::CreateSubnet { .. } => "aws.ec2.create_subnet",
            Action::ModifySubnetAttribute { .. } => "aws.ec2.modify_subnet_attribute",
            Action::AssociateSubnetCidrBlock { .. } => "aws.ec2.associate_subnet_cidr_block",
            Action::DisassociateSubnetCidrBlock { .. } => "aws.ec2.disassociate_subnet_cidr_block",
            Action::DeleteSubnet { .. } => "aws.ec2.delete_subnet",
            Action::CreateNatGateway { .. } => "aws.ec2.create_nat_gateway",
            Action::DeleteNatGateway { .. } => "aws.ec2.delete_nat_gateway",
            Action::CreateVpcPeeringConnection { .. } => "aws.ec2.create_vpc_peering_connection",
            Action::AcceptVpcPeeringConnection { .. } => "aws.ec2.accept_vpc_peering_connection",
            Action::DeleteVpcPeeringConnection { .. } => "aws.ec2.delete_vpc_peering_connection",
            Action::CreateRouteTable { .. } => "aws.ec2.create_route_table",
            Action::CreateRoute { .. } => "aws.ec2.create_route",
            Action::ReplaceRoute { .. } => "aws.ec2.replace_route",
            Action::DeleteRoute { .. } => "aws.ec2.delete_route",
            Action::AssociateRouteTable { .. } => "aws.ec2.associate_route_table",
            Action::DisassociateRouteTable { .. } => "aws.ec2.disassociate_route_table",
            Action::DeleteRouteTable { .. } => "aws.ec2.delete_route_table",
            Action::CreateVpcEndpoint { .. } => "aws.ec2.create_vpc_endpoint",
            Action::ModifyVpcEndpoint { .. } => "aws.ec2.modify_vpc_endpoint",
            Action::DeleteVpcEndpoint { .. } => "aws.ec2.delete_vpc_endpoints",
            Action::CreateNetworkAcl { .. } => "aws.ec2.create_network_acl",
            Action::CreateNetworkAclEntry { .. } => "aws.ec2.create_network_acl_entry",
            Action::ReplaceNetworkAclEntry { .. } => "aws.ec2.replace_network_acl_entry",
            Action::DeleteNetworkAclEntry { .. } => "aws.ec2.delete_network_acl_entry",
            Action::ReplaceNetworkAclAssociation { .. } => {
                "aws.ec2.replace_network_acl_association"
            }
            Action::DeleteNetworkAcl { .. } => "aws.ec2.delete_network_acl",
            Action::CreateSecurityGroup { .. } => "aws.ec2.create_security_group",
            Action::AuthorizeSecurityGroupIngress { .. } => {
                "aws.ec2.authorize_security_group_ingress"
            }
            Action::RevokeSecurityGroupIngress { .. } => "aws.ec2.revoke_security_group_ingress",
            Action::AuthorizeSecurityGroupEgress { .. } => {
                "aws.ec2.authorize_security_group_egress"
            }
            Action::RevokeSecurityGroupEgress { .. } => "aws.ec2.revoke_security_group_egress",
            Action::DeleteSecurityGroup { .. } => "aws.ec2.delete_security_group",
            Action::RunInstances { .. } => "aws.ec2.run_instances",
            Action::ModifyInstanceSecurityGroups { .. }
            | Action::ModifyInstanceSourceDestCheck { .. } => "aws.ec2.modify_instance_attribute",
            Action::TerminateInstances { .. } => "aws.ec2.terminate_instances",
            Action::CreateVolume { .. } => "aws.ec2.create_volume",
            Action::ModifyVolume { .. } => "aws.ec2.modify_volume",
            Action::AttachVolume { .. } => "aws.ec2.attach_volume",
            Action::DetachVolume { .. } => "aws.ec2.detach_volume",
            Action::DeleteVolume { .. } => "aws.ec2.delete_volume",
            Action::CreateTags { .. } => "aws.ec2.create_tags",
            Action::DeleteTags { .. } => "aws.ec2.delete_tags",
        }
    }

    /// The kind of resource this action creates, if it is a create.
    pub fn creates(&self) -> Option<ResourceKind> {
        Some(match self {
            Action::CreateDhcpOptions { .. } => ResourceKind::DhcpOptions,
            Action::CreateVpc { .. } => ResourceKind::Vpc,
            Action::CreateInternetGateway { .. } => ResourceKind::InternetGateway,
            Action::CreateEgressOnlyInternetGateway { .. } => {
                ResourceKind::EgressOnlyInternetGateway
            }
            Action::AllocateAddress { .. } => ResourceKind::ElasticIp,
            Action::CreateSubnet { .. } => ResourceKind::Subnet,
            Action::CreateNatGateway { .. } => ResourceKind::NatGateway,
            Action::CreateVpcPeeringConnection { .. } => ResourceKind::VpcPeeringConnection,
            Action::CreateRouteTable { .. } => ResourceKind::RouteTable,
            Action::CreateVpcEndpoint { .. } => ResourceKind::VpcEndpoint,
            Action::CreateNetworkAcl { .. } => ResourceKind::NetworkAcl,
            Action::CreateSecurityGroup { .. } => ResourceKind::SecurityGroup,
            Action::RunInstances { .. } => ResourceKind::Instance,
            Action::CreateVolume { .. } => ResourceKind::Volume,
            _ => return None,
        })
    }

    /// The kind of resource whose properties the action creates, changes or
    /// deletes (`AssociateDhcpOptions` changes a VPC's, rule changes a
    /// group's); `None` for the tag requests, which serve every kind.
    pub fn resource_kind(&self) -> Option<ResourceKind> {
        use ResourceKind::*;
        Some(match self {
            Action::CreateDhcpOptions { .. } | Action::DeleteDhcpOptions { .. } => DhcpOptions,
            Action::CreateVpc { .. }
            | Action::ModifyVpcAttribute { .. }
            | Action::AssociateDhcpOptions { .. }
            | Action::AssociateVpcCidrBlock { .. }
            | Action::DisassociateVpcCidrBlock { .. }
            | Action::DeleteVpc { .. } => Vpc,
            Action::CreateInternetGateway { .. }
            | Action::AttachInternetGateway { .. }
            | Action::DetachInternetGateway { .. }
            | Action::DeleteInternetGateway { .. } => InternetGateway,
            Action::CreateEgressOnlyInternetGateway { .. }
            | Action::DeleteEgressOnlyInternetGateway { .. } => EgressOnlyInternetGateway,
            Action::AllocateAddress { .. }
            | Action::DisassociateAddress { .. }
            | Action::ReleaseAddress { .. } => ElasticIp,
            Action::CreateSubnet { .. }
            | Action::ModifySubnetAttribute { .. }
            | Action::AssociateSubnetCidrBlock { .. }
            | Action::DisassociateSubnetCidrBlock { .. }
            | Action::DeleteSubnet { .. } => Subnet,
            Action::CreateNatGateway { .. } | Action::DeleteNatGateway { .. } => NatGateway,
            Action::CreateVpcPeeringConnection { .. }
            | Action::AcceptVpcPeeringConnection { .. }
            | Action::DeleteVpcPeeringConnection { .. } => VpcPeeringConnection,
            Action::CreateRouteTable { .. }
            | Action::CreateRoute { .. }
            | Action::ReplaceRoute { .. }
            | Action::DeleteRoute { .. }
            | Action::AssociateRouteTable { .. }
            | Action::DisassociateRouteTable { .. }
            | Action::DeleteRouteTable { .. } => RouteTable,
            Action::CreateVpcEndpoint { .. }
            | Action::ModifyVpcEndpoint { .. }
            | Action::DeleteVpcEndpoint { .. } => VpcEndpoint,
            Action::CreateNetworkAcl { .. }
            | Action::CreateNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclEntry { .. }
            | Action::DeleteNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclAssociation { .. }
            | Action::DeleteNetworkAcl { .. } => NetworkAcl,
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeSecurityGroupIngress { .. }
            | Action::RevokeSecurityGroupIngress { .. }
            | Action::AuthorizeSecurityGroupEgress { .. }
            | Action::RevokeSecurityGroupEgress { .. }
            | Action::DeleteSecurityGroup { .. } => SecurityGroup,
            Action::RunInstances { .. }
            | Action::ModifyInstanceSecurityGroups { .. }
            | Action::ModifyInstanceSourceDestCheck { .. }
            | Action::TerminateInstances { .. } => Instance,
            Action::CreateVolume { .. }
            | Action::ModifyVolume { .. }
            | Action::AttachVolume { .. }
            | Action::DetachVolume { .. }
            | Action::DeleteVolume { .. } => Volume,
            Action::CreateTags { .. } | Action::DeleteTags { .. } => return None,
        })
    }

    /// The existing resource whose own properties this action changes,
    /// tags or deletes; `None` for creates and for calls that end an
    /// association by its id. An association belongs to what it attaches
    /// (a route table's subnets, an ACL's, an internet gateway's VPC), so
    /// the subnet or VPC named there is not what changes.
    pub fn changes(&self) -> Option<&CloudRef> {
        match self {
            Action::AssociateDhcpOptions { vpc: r, .. }
            | Action::ModifyVpcAttribute { vpc: r, .. }
            | Action::AttachInternetGateway {
                internet_gateway: r,
                ..
            }
            | Action::DetachInternetGateway {
                internet_gateway: r,
                ..
            }
            | Action::ModifySubnetAttribute { subnet: r, .. }
            | Action::AssociateVpcCidrBlock { vpc: r }
            | Action::AssociateSubnetCidrBlock { subnet: r, .. }
            | Action::ModifyVpcEndpoint {
                vpc_endpoint: r, ..
            }
            | Action::AcceptVpcPeeringConnection {
                vpc_peering_connection: r,
            }
            | Action::CreateRoute { route_table: r, .. }
            | Action::ReplaceRoute { route_table: r, .. }
            | Action::DeleteRoute { route_table: r, .. }
            | Action::AssociateRouteTable { route_table: r, .. }
            | Action::CreateNetworkAclEntry { network_acl: r, .. }
            | Action::ReplaceNetworkAclEntry { network_acl: r, .. }
            | Action::DeleteNetworkAclEntry { network_acl: r, .. }
            | Action::ReplaceNetworkAclAssociation {
                network_acl: Some(r),
                ..
            }
            | Action::AuthorizeSecurityGroupIngress { group: r, .. }
            | Action::RevokeSecurityGroupIngress { group: r, .. }
            | Action::AuthorizeSecurityGroupEgress { group: r, .. }
            | Action::RevokeSecurityGroupEgress { group: r, .. }
            | Action::ModifyInstanceSecurityGroups { instance: r, .. }
            | Action::ModifyInstanceSourceDestCheck { instance: r, .. }
            | Action::ModifyVolume { volume: r, .. }
            | Action::AttachVolume { volume: r, .. }
            | Action::DetachVolume { volume: r, .. }
            | Action::CreateTags { resource: r, .. }
            | Action::DeleteTags { resource: r, .. } => Some(r),
            other => other.deletes(),
        }
    }

    /// True for the requests that delete a resource.
    pub fn is_delete(&self) -> bool {
        self.deletes().is_some()
    }

    /// The resource this action deletes, if it is a delete.
    pub fn deletes(&self) -> Option<&CloudRef> {
        match self {
            Action::DeleteDhcpOptions { dhcp_options: r }
            | Action::DeleteVpc { vpc: r }
            | Action::DeleteInternetGateway {
                internet_gateway: r,
            }
            | Action::DeleteEgressOnlyInternetGateway {
                egress_only_internet_gateway: r,
            }
            | Action::ReleaseAddress { allocation: r }
            | Action::DeleteSubnet { subnet: r }
            | Action::DeleteNatGateway { nat_gateway: r }
            | Action::DeleteVpcPeeringConnection {
                vpc_peering_connection: r,
            }
            | Action::DeleteRouteTable { route_table: r }
            | Action::DeleteVpcEndpoint { vpc_endpoint: r }
            | Action::DeleteNetworkAcl { network_acl: r }
            | Action::DeleteSecurityGroup { group: r }
            | Action::TerminateInstances { instance: r }
            | Action::DeleteVolume { volume: r } => Some(r),
            _ => None,
        }
    }

    /// Every reference in the action, mutable, for resolution.
    fn refs_mut(&mut self) -> Vec<&mut CloudRef> {
        match self {
            Action::CreateDhcpOptions { .. }
            | Action::CreateVpc { .. }
            | Action::CreateInternetGateway { .. }
            | Action::CreateVolume { .. }
            | Action::AllocateAddress { .. }
            | Action::DisassociateAddress { .. }
            | Action::DisassociateVpcCidrBlock { .. }
            | Action::DisassociateSubnetCidrBlock { .. }
            | Action::DisassociateRouteTable { .. } => vec![],
            Action::ReleaseAddress { allocation } => vec![allocation],
            Action::DeleteDhcpOptions { dhcp_options } => vec![dhcp_options],
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                let mut v = vec![vpc];
                v.extend(dhcp_options.as_mut());
                v
            }
            Action::ModifyVpcAttribute { vpc, .. }
            | Action::AssociateVpcCidrBlock { vpc }
            | Action::DeleteVpc { vpc } => vec![vpc],
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            }
            | Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => vec![internet_gateway, vpc],
            Action::DeleteInternetGateway { internet_gateway } => vec![internet_gateway],
            Action::CreateSubnet { vpc, .. }
            | Action::CreateRouteTable { vpc, .. }
            | Action::CreateEgressOnlyInternetGateway { vpc, .. } => vec![vpc],
            Action::DeleteEgressOnlyInternetGateway {
                egress_only_internet_gateway,
            } => vec![egress_only_internet_gateway],
            Action::ModifySubnetAttribute { subnet, .. }
            | Action::AssociateSubnetCidrBlock { subnet, .. }
            | Action::DeleteSubnet { subnet } => vec![subnet],
            Action::CreateNatGateway {
                subnet, allocation, ..
            } => {
                let mut v = vec![subnet];
                v.extend(allocation.as_mut());
                v
            }
            Action::DeleteNatGateway { nat_gateway } => vec![nat_gateway],
            Action::CreateVpcPeeringConnection { vpc, peer_vpc, .. } => vec![vpc, peer_vpc],
            Action::AcceptVpcPeeringConnection {
                vpc_peering_connection,
            }
            | Action::DeleteVpcPeeringConnection {
                vpc_peering_connection,
            } => vec![vpc_peering_connection],
            Action::CreateRoute {
                route_table,
                gateway,
                ..
            }
            | Action::ReplaceRoute {
                route_table,
                gateway,
                ..
            } => vec![route_table, gateway],
            Action::DeleteRoute { route_table, .. } | Action::DeleteRouteTable { route_table } => {
                vec![route_table]
            }
            Action::CreateVpcEndpoint { vpc, .. } => vec![vpc],
            Action::ModifyVpcEndpoint { vpc_endpoint, .. }
            | Action::DeleteVpcEndpoint { vpc_endpoint } => vec![vpc_endpoint],
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => vec![route_table, subnet],
            Action::CreateSecurityGroup { vpc, .. } | Action::CreateNetworkAcl { vpc, .. } => {
                vec![vpc]
            }
            Action::CreateNetworkAclEntry { network_acl, .. }
            | Action::ReplaceNetworkAclEntry { network_acl, .. }
            | Action::DeleteNetworkAclEntry { network_acl, .. }
            | Action::DeleteNetworkAcl { network_acl } => vec![network_acl],
            Action::ReplaceNetworkAclAssociation {
                subnet,
                network_acl,
            } => {
                let mut v = vec![subnet];
                v.extend(network_acl.as_mut());
                v
            }
            Action::AuthorizeSecurityGroupIngress { group, .. }
            | Action::RevokeSecurityGroupIngress { group, .. }
            | Action::AuthorizeSecurityGroupEgress { group, .. }
            | Action::RevokeSecurityGroupEgress { group, .. }
            | Action::DeleteSecurityGroup { group } => vec![group],
            Action::RunInstances { subnet, .. } => vec![subnet],
            Action::ModifyInstanceSecurityGroups { instance, .. }
            | Action::ModifyInstanceSourceDestCheck { instance, .. }
            | Action::TerminateInstances { instance } => vec![instance],
            Action::ModifyVolume { volume, .. } | Action::DeleteVolume { volume } => vec![volume],
            Action::AttachVolume {
                volume, instance, ..
            }
            | Action::DetachVolume { volume, instance } => vec![volume, instance],
            Action::CreateTags { resource, .. } | Action::DeleteTags { resource, .. } => {
                vec![resource]
            }
        }
    }

    /// The sets of references that live inside sets (rule peers, instance
    /// groups, endpoint route tables); resolved by rebuilding the set.
    fn ref_sets_mut(
        &mut self,
    ) -> (
        Option<&mut BTreeSet<Rule<CloudRef>>>,
        Vec<&mut BTreeSet<CloudRef>>,
    ) {
        match self {
            Action::AuthorizeSecurityGroupIngress { rules, .. }
            | Action::RevokeSecurityGroupIngress { rules, .. }
            | Action::AuthorizeSecurityGroupEgress { rules, .. }
            | Action::RevokeSecurityGroupEgress { rules, .. } => (Some(rules), vec![]),
            Action::RunInstances {
                security_groups, ..
            }
            | Action::ModifyInstanceSecurityGroups {
                security_groups, ..
            } => (None, vec![security_groups]),
            Action::CreateVpcEndpoint {
                route_tables,
                subnets,
                security_groups,
                ..
            } => (None, vec![route_tables, subnets, security_groups]),
            Action::ModifyVpcEndpoint {
                add_route_tables,
                add_subnets,
                add_security_groups,
                ..
            } => (
                None,
                vec![add_route_tables, add_subnets, add_security_groups],
            ),
            _ => (None, vec![]),
        }
    }
}

/// One cloud API call of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The logical resource this request serves.
    pub target: LogicalId,
    /// A suffix naming the part of the resource it touches (`rules`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub region: Region,
    pub action: Action,
}

impl Request {
    /// The id the dry-run shows: the logical id, plus `.part` if any.
    pub fn guid(&self) -> String {
        match &self.part {
            Some(p) => format!("{}.{}", self.target, p),
            None => self.target.to_string(),
        }
    }

    pub fn request_type(&self) -> &'static str {
        self.action.request_type()
    }

    /// The same request with every pending reference replaced by the cloud
    /// id `lookup` gives; fails on the first reference it cannot resolve.
    pub fn resolve<F>(&self, lookup: F) -> Result<Request, Unresolved>
    where
        F: Fn(&LogicalId) -> Option<String>,
    {
        let resolve_one = |r: &CloudRef| -> Result<CloudRef, Unresolved> {
            match r {
                CloudRef::Id(_) => Ok(r.clone()),
                CloudRef::Pending(l) => lookup(l).map(CloudRef::Id).ok_or(Unresolved(*l)),
            }
        };
        let mut out = self.clone();
        for r in out.action.refs_mut() {
            *r = resolve_one(r)?;
        }
        let (rules, groups) = out.action.ref_sets_mut();
        if let Some(rules) = rules {
            let resolved = rules
                .iter()
                .map(|rule| rule.try_map_peer(&resolve_one))
                .collect::<Result<BTreeSet<_>, Unresolved>>()?;
            *rules = resolved;
        }
        for groups in groups {
            *groups = groups
                .iter()
                .map(resolve_one)
                .collect::<Result<BTreeSet<_>, Unresolved>>()?;
        }
        Ok(out)
    }

    /// The request as the dry-run prints it.
    pub fn to_json(&self) -> Value {
        json!({
            "guid": self.guid(),
            "params": self.params(),
            "region": self.region.as_str(),
            "request_type": self.request_type(),
        })
    }
}

/// A request refers to a resource that has no cloud id yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request refers to {0}, which has not been created")]
pub struct Unresolved(pub LogicalId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fid;

    #[test]
    fn a_reference_reads_back_as_written_and_a_bare_id_reads_as_known() {
        let pending = CloudRef::Pending(LogicalId::new(Fid::random(), "web"));
        for r in [CloudRef::Id("rtb-1".into()), pending] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(
                serde_json::from_str::<CloudRef>(&json).unwrap(),
                r,
                "{json}"
            );
        }
        let bare: CloudRef = serde_json::from_str("\"subnet-9\"").unwrap();
        assert_eq!(bare, CloudRef::Id("subnet-9".into()));
        let action: Action = serde_json::from_value(json!({
            "action": "delete_route",
            "route_table": "rtb-1",
            "destination": "0.0.0.0/0",
        }))
        .unwrap();
        assert!(
            matches!(action, Action::DeleteRoute { route_table: CloudRef::Id(ref r), .. } if r == "rtb-1")
        );
        for bad in [
            json!(7),
            json!({}),
            json!({"Ref": "x"}),
            json!({"Id": "a", "Pending": "b"}),
        ] {
            assert!(
                serde_json::from_value::<CloudRef>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
