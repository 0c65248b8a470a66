//! Requests: one cloud API call each, typed, with the JSON shape the CLI's
//! dry-run prints (`guid`, `params`, `region`, `request_type`).
//!
//! A request may refer to a resource that an earlier request of the same plan
//! creates; such references are [`CloudRef::Pending`] until the executor
//! [resolves](Request::resolve) them with the bindings made so far.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{Ipv4Cidr, LogicalId, Peer, Protocol, Region, ResourceKind, Rule, Tags, Tenancy};

/// A reference inside a request: a known cloud id, or the logical id of a
/// resource this plan creates before the request runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CloudRef {
    Id(String),
    Pending(LogicalId),
}

impl CloudRef {
    /// The cloud id, if known.
    pub fn id(&self) -> Option<&str> {
        match self {
            CloudRef::Id(id) => Some(id),
            CloudRef::Pending(_) => None,
        }
    }

    fn to_json(&self) -> Value {
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
        tags: Tags,
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
    CreateSubnet {
        vpc: CloudRef,
        cidr_block: Ipv4Cidr,
        availability_zone: String,
        tags: Tags,
    },
    ModifySubnetAttribute {
        subnet: CloudRef,
        map_public_ip_on_launch: bool,
    },
    DeleteSubnet {
        subnet: CloudRef,
    },
    CreateRouteTable {
        vpc: CloudRef,
        tags: Tags,
    },
    CreateRoute {
        route_table: CloudRef,
        destination: Ipv4Cidr,
        gateway: CloudRef,
    },
    ReplaceRoute {
        route_table: CloudRef,
        destination: Ipv4Cidr,
        gateway: CloudRef,
    },
    DeleteRoute {
        route_table: CloudRef,
        destination: Ipv4Cidr,
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
    TerminateInstances {
        instance: CloudRef,
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
            Action::DeleteVpc { .. } => "aws.ec2.delete_vpc",
            Action::CreateInternetGateway { .. } => "aws.ec2.create_internet_gateway",
            Action::AttachInternetGateway { .. } => "aws.ec2.attach_internet_gateway",
            Action::DetachInternetGateway { .. } => "aws.ec2.detach_internet_gateway",
            Action::DeleteInternetGateway { .. } => "aws.ec2.delete_internet_gateway",
            Action::CreateSubnet { .. } => "aws.ec2.create_subnet",
            Action::ModifySubnetAttribute { .. } => "aws.ec2.modify_subnet_attribute",
            Action::DeleteSubnet { .. } => "aws.ec2.delete_subnet",
            Action::CreateRouteTable { .. } => "aws.ec2.create_route_table",
            Action::CreateRoute { .. } => "aws.ec2.create_route",
            Action::ReplaceRoute { .. } => "aws.ec2.replace_route",
            Action::DeleteRoute { .. } => "aws.ec2.delete_route",
            Action::AssociateRouteTable { .. } => "aws.ec2.associate_route_table",
            Action::DisassociateRouteTable { .. } => "aws.ec2.disassociate_route_table",
            Action::DeleteRouteTable { .. } => "aws.ec2.delete_route_table",
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
            Action::ModifyInstanceSecurityGroups { .. } => "aws.ec2.modify_instance_attribute",
            Action::TerminateInstances { .. } => "aws.ec2.terminate_instances",
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
            Action::CreateSubnet { .. } => ResourceKind::Subnet,
            Action::CreateRouteTable { .. } => ResourceKind::RouteTable,
            Action::CreateSecurityGroup { .. } => ResourceKind::SecurityGroup,
            Action::RunInstances { .. } => ResourceKind::Instance,
            _ => return None,
        })
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
            | Action::DeleteSubnet { subnet: r }
            | Action::DeleteRouteTable { route_table: r }
            | Action::DeleteSecurityGroup { group: r }
            | Action::TerminateInstances { instance: r } => Some(r),
            _ => None,
        }
    }

    /// Every reference in the action, mutable, for resolution.
    fn refs_mut(&mut self) -> Vec<&mut CloudRef> {
        match self {
            Action::CreateDhcpOptions { .. }
            | Action::CreateVpc { .. }
            | Action::CreateInternetGateway { .. }
            | Action::DisassociateRouteTable { .. } => vec![],
            Action::DeleteDhcpOptions { dhcp_options } => vec![dhcp_options],
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                let mut v = vec![vpc];
                v.extend(dhcp_options.as_mut());
                v
            }
            Action::ModifyVpcAttribute { vpc, .. } | Action::DeleteVpc { vpc } => vec![vpc],
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            }
            | Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => vec![internet_gateway, vpc],
            Action::DeleteInternetGateway { internet_gateway } => vec![internet_gateway],
            Action::CreateSubnet { vpc, .. } | Action::CreateRouteTable { vpc, .. } => vec![vpc],
            Action::ModifySubnetAttribute { subnet, .. } | Action::DeleteSubnet { subnet } => {
                vec![subnet]
            }
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
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => vec![route_table, subnet],
            Action::CreateSecurityGroup { vpc, .. } => vec![vpc],
            Action::AuthorizeSecurityGroupIngress { group, .. }
            | Action::RevokeSecurityGroupIngress { group, .. }
            | Action::AuthorizeSecurityGroupEgress { group, .. }
            | Action::RevokeSecurityGroupEgress { group, .. }
            | Action::DeleteSecurityGroup { group } => vec![group],
            Action::RunInstances { subnet, .. } => vec![subnet],
            Action::ModifyInstanceSecurityGroups { instance, .. }
            | Action::TerminateInstances { instance } => vec![instance],
            Action::CreateTags { resource, .. } | Action::DeleteTags { resource, .. } => {
                vec![resource]
            }
        }
    }

    /// The sets of references that live inside sets (rule peers, instance
    /// groups); resolved by rebuilding the set.
    fn ref_sets_mut(
        &mut self,
    ) -> (
        Option<&mut BTreeSet<Rule<CloudRef>>>,
        Option<&mut BTreeSet<CloudRef>>,
    ) {
        match self {
            Action::AuthorizeSecurityGroupIngress { rules, .. }
            | Action::RevokeSecurityGroupIngress { rules, .. }
            | Action::AuthorizeSecurityGroupEgress { rules, .. }
            | Action::RevokeSecurityGroupEgress { rules, .. } => (Some(rules), None),
            Action::RunInstances {
                security_groups, ..
            }
            | Action::ModifyInstanceSecurityGroups {
                security_groups, ..
            } => (None, Some(security_groups)),
            _ => (None, None),
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
        if let Some(groups) = groups {
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

    /// The parameters in EC2's own names.
    pub fn params(&self) -> Value {
        let mut p = Map::new();
        let mut put = |k: &str, v: Value| {
            p.insert(k.to_string(), v);
        };
        match &self.action {
            Action::CreateDhcpOptions {
                domain_name,
                domain_name_servers,
                ntp_servers,
                tags,
            } => {
                let mut conf = Vec::new();
                if let Some(d) = domain_name {
                    conf.push(json!({"Key": "domain-name", "Values": [d]}));
                }
                if !domain_name_servers.is_empty() {
                    conf.push(json!({"Key": "domain-name-servers", "Values": domain_name_servers}));
                }
                if !ntp_servers.is_empty() {
                    conf.push(json!({"Key": "ntp-servers", "Values": ntp_servers}));
                }
                put("DhcpConfigurations", Value::Array(conf));
                put_tags(&mut put, tags);
            }
            Action::DeleteDhcpOptions { dhcp_options } => {
                put("DhcpOptionsId", dhcp_options.to_json())
            }
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                put(
                    "DhcpOptionsId",
                    dhcp_options
                        .as_ref()
                        .map(CloudRef::to_json)
                        .unwrap_or_else(|| Value::String("default".into())),
                );
                put("VpcId", vpc.to_json());
            }
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tags,
            } => {
                put("CidrBlock", json!(cidr_block.to_string()));
                put("InstanceTenancy", json!(instance_tenancy.as_str()));
                put_tags(&mut put, tags);
            }
            Action::ModifyVpcAttribute {
                vpc,
                attribute,
                value,
            } => {
                let name = match attribute {
                    VpcAttribute::EnableDnsSupport => "EnableDnsSupport",
                    VpcAttribute::EnableDnsHostnames => "EnableDnsHostnames",
                };
                put(name, json!({ "Value": value }));
                put("VpcId", vpc.to_json());
            }
            Action::DeleteVpc { vpc } => put("VpcId", vpc.to_json()),
            Action::CreateInternetGateway { tags } => put_tags(&mut put, tags),
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            }
            | Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                put("InternetGatewayId", internet_gateway.to_json());
                put("VpcId", vpc.to_json());
            }
            Action::DeleteInternetGateway { internet_gateway } => {
                put("InternetGatewayId", internet_gateway.to_json())
            }
            Action::CreateSubnet {
                vpc,
                cidr_block,
                availability_zone,
                tags,
            } => {
                put("AvailabilityZone", json!(availability_zone));
                put("CidrBlock", json!(cidr_block.to_string()));
                put("VpcId", vpc.to_json());
                put_tags(&mut put, tags);
            }
            Action::ModifySubnetAttribute {
                subnet,
                map_public_ip_on_launch,
            } => {
                put(
                    "MapPublicIpOnLaunch",
                    json!({ "Value": map_public_ip_on_launch }),
                );
                put("SubnetId", subnet.to_json());
            }
            Action::DeleteSubnet { subnet } => put("SubnetId", subnet.to_json()),
            Action::CreateRouteTable { vpc, tags } => {
                put("VpcId", vpc.to_json());
                put_tags(&mut put, tags);
            }
            Action::CreateRoute {
                route_table,
                destination,
                gateway,
            }
            | Action::ReplaceRoute {
                route_table,
                destination,
                gateway,
            } => {
                put("DestinationCidrBlock", json!(destination.to_string()));
                put("GatewayId", gateway.to_json());
                put("RouteTableId", route_table.to_json());
            }
            Action::DeleteRoute {
                route_table,
                destination,
            } => {
                put("DestinationCidrBlock", json!(destination.to_string()));
                put("RouteTableId", route_table.to_json());
            }
            Action::AssociateRouteTable {
                route_table,
                subnet,
            } => {
                put("RouteTableId", route_table.to_json());
                put("SubnetId", subnet.to_json());
            }
            Action::DisassociateRouteTable { association_id } => {
                put("AssociationId", json!(association_id))
            }
            Action::DeleteRouteTable { route_table } => put("RouteTableId", route_table.to_json()),
            Action::CreateSecurityGroup {
                vpc,
                group_name,
                description,
                tags,
            } => {
                put("Description", json!(description));
                put("GroupName", json!(group_name));
                put("VpcId", vpc.to_json());
                put_tags(&mut put, tags);
            }
            Action::AuthorizeSecurityGroupIngress { group, rules }
            | Action::RevokeSecurityGroupIngress { group, rules }
            | Action::AuthorizeSecurityGroupEgress { group, rules }
            | Action::RevokeSecurityGroupEgress { group, rules } => {
                put("GroupId", group.to_json());
                put("IpPermissions", ip_permissions(rules));
            }
            Action::DeleteSecurityGroup { group } => put("GroupId", group.to_json()),
            Action::RunInstances {
                image_id,
                instance_type,
                subnet,
                security_groups,
                key_name,
                user_data,
                tags,
            } => {
                put("ImageId", json!(image_id));
                put("InstanceType", json!(instance_type));
                if let Some(k) = key_name {
                    put("KeyName", json!(k));
                }
                put("MaxCount", json!(1));
                put("MinCount", json!(1));
                put(
                    "SecurityGroupIds",
                    Value::Array(security_groups.iter().map(CloudRef::to_json).collect()),
                );
                put("SubnetId", subnet.to_json());
                if let Some(u) = user_data {
                    put("UserData", json!(u));
                }
                put_tags(&mut put, tags);
            }
            Action::ModifyInstanceSecurityGroups {
                instance,
                security_groups,
            } => {
                put(
                    "Groups",
                    Value::Array(security_groups.iter().map(CloudRef::to_json).collect()),
                );
                put("InstanceId", instance.to_json());
            }
            Action::TerminateInstances { instance } => {
                put("InstanceIds", Value::Array(vec![instance.to_json()]))
            }
            Action::CreateTags { resource, tags } => {
                put("Resources", Value::Array(vec![resource.to_json()]));
                put("Tags", tags_json(tags));
            }
            Action::DeleteTags { resource, keys } => {
                put("Resources", Value::Array(vec![resource.to_json()]));
                put(
                    "Tags",
                    Value::Array(keys.iter().map(|k| json!({ "Key": k })).collect()),
                );
            }
        }
        Value::Object(p)
    }
}

fn tags_json(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

fn put_tags(put: &mut impl FnMut(&str, Value), tags: &Tags) {
    if !tags.is_empty() {
        put("Tags", tags_json(tags));
    }
}

/// Rules grouped the way EC2 groups them: one `IpPermission` per protocol and
/// port range, with its IPv4 and IPv6 ranges, prefix lists and group pairs.
pub fn ip_permissions(rules: &BTreeSet<Rule<CloudRef>>) -> Value {
    /// The peers of one protocol and port range, keyed by EC2's field name
    /// (`IpRanges`, `Ipv6Ranges`, `PrefixListIds`, `UserIdGroupPairs`).
    type Peers = BTreeMap<&'static str, Vec<Value>>;
    let mut grouped: BTreeMap<(Protocol, i32, i32), Peers> = BTreeMap::new();
    for r in rules {
        let entry = grouped
            .entry((r.protocol, r.from_port, r.to_port))
            .or_default();
        let (field, peer) = match &r.peer {
            Peer::Cidr(c) => ("IpRanges", json!({ "CidrIp": c.to_string() })),
            Peer::Ipv6Cidr(c) => ("Ipv6Ranges", json!({ "CidrIpv6": c.to_string() })),
            Peer::PrefixList(p) => ("PrefixListIds", json!({ "PrefixListId": p })),
            Peer::Group(g) => ("UserIdGroupPairs", json!({ "GroupId": g.to_json() })),
        };
        entry.entry(field).or_default().push(peer);
    }
    Value::Array(
        grouped
            .into_iter()
            .map(|((proto, from, to), peers)| {
                // A `Map` keeps its keys sorted, as the golden files expect.
                let mut perm = Map::new();
                if proto.has_ports() {
                    perm.insert("FromPort".into(), json!(from));
                    perm.insert("ToPort".into(), json!(to));
                }
                perm.insert("IpProtocol".into(), json!(proto.ec2_name()));
                for (field, list) in peers {
                    perm.insert(field.into(), Value::Array(list));
                }
                Value::Object(perm)
            })
            .collect(),
    )
}

/// A request refers to a resource that has no cloud id yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request refers to {0}, which has not been created")]
pub struct Unresolved(pub LogicalId);
