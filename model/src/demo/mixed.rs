//! A process that uses the kinds issue #17 added, built in Rust: the unit
//! of the planner and heal benchmarks' "mixed" fleets, so both measure the
//! same network. Ten resources: a VPC with an internet gateway, a public
//! and a private subnet, a public NAT gateway with its Elastic IP, an
//! instance in the private subnet with an EBS volume attached, the private
//! subnet's route table (0.0.0.0/0 through the NAT gateway, 198.51.100.0/24
//! through the instance) and a network ACL on the private subnet.

use super::{declaration, REGION};
use crate::sorted_vec::SortedVecSet;
use crate::{
    AclAction, AclEntry, DesiredSpec, DesiredState, ElasticIpSpec, Fid, InstanceSpec,
    InternetGatewaySpec, IpCidr, Ipv4Cidr, LogicalId, NatGatewaySpec, NetworkAclSpec, Protocol,
    Ref, Route, RouteTableSpec, Spec, StateError, SubnetSpec, Tags, Tenancy, VolumeAttachment,
    VolumeSpec, VpcSpec,
};

/// The paths of [`mixed_network`]'s resources, in declaration order.
pub const MIXED_PATHS: [&str; 10] = [
    "vpc",
    "igw",
    "public",
    "private",
    "eip",
    "nat",
    "server",
    "data",
    "private-rt",
    "acl",
];

fn cidr(s: &str) -> Ipv4Cidr {
    // Only the literals below, which are valid.
    s.parse().unwrap_or(Ipv4Cidr::ANY)
}

fn name(n: &str) -> Tags {
    [("Name".to_string(), n.to_string())].into()
}

/// The network ACL entry of [`mixed_network`]: all traffic within the VPC,
/// in (`egress` false) or out, as rule `rule_number`.
pub fn vpc_acl_entry(egress: bool, rule_number: u16, action: AclAction) -> AclEntry {
    AclEntry {
        egress,
        rule_number,
        protocol: Protocol::All,
        action,
        range: IpCidr::V4(cidr("10.0.0.0/16")),
        from_port: -1,
        to_port: -1,
    }
}

/// The mixed network of process `fid` (see the module's doc), in
/// [`REGION`]'s zone `a`.
pub fn mixed_network(fid: Fid) -> Result<DesiredState, StateError> {
    let m = |p: &str| Ref::Managed(LogicalId::new(fid, p));
    let zone = format!("{REGION}a");
    let subnet = |i: u8| {
        Spec::Subnet(SubnetSpec {
            vpc: m("vpc"),
            cidr_block: cidr(&format!("10.0.{i}.0/24")),
            availability_zone: zone.clone(),
            map_public_ip_on_launch: i == 0,
            ipv6_index: None,
            ipv6_cidr_block: None,
            tags: name("subnet"),
        })
    };
    let specs: [DesiredSpec; 10] = [
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: true,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags: name("net"),
        }),
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: Some(m("vpc")),
            tags: name("igw"),
        }),
        subnet(0),
        subnet(1),
        Spec::ElasticIp(ElasticIpSpec { tags: name("eip") }),
        Spec::NatGateway(NatGatewaySpec {
            subnet: m("public"),
            allocation: Some(m("eip")),
            tags: name("nat"),
        }),
        Spec::Instance(InstanceSpec {
            image_id: "ami-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            subnet: m("private"),
            key_name: None,
            user_data: None,
            security_groups: SortedVecSet::new(),
            tags: name("server"),
            max_age_secs: None,
            fleet: None,
            source_dest_check: true,
        }),
        Spec::Volume(VolumeSpec {
            availability_zone: zone.clone(),
            size_gib: 100,
            volume_type: "gp3".into(),
            iops: None,
            encrypted: true,
            attachment: Some(VolumeAttachment {
                instance: m("server"),
                device: "/dev/sdf".into(),
            }),
            tags: name("data"),
        }),
        Spec::RouteTable(RouteTableSpec {
            interfaces: Default::default(),
            vpc: m("vpc"),
            routes: [
                Route {
                    destination: IpCidr::V4(Ipv4Cidr::ANY),
                    target: m("nat"),
                },
                Route {
                    destination: IpCidr::V4(cidr("198.51.100.0/24")),
                    target: m("server"),
                },
            ]
            .into(),
            associations: [m("private")].into(),
            tags: name("private"),
        }),
        Spec::NetworkAcl(NetworkAclSpec {
            vpc: m("vpc"),
            entries: [
                vpc_acl_entry(false, 100, AclAction::Allow),
                vpc_acl_entry(true, 100, AclAction::Allow),
            ]
            .into(),
            associations: [m("private")].into(),
            tags: name("acl"),
        }),
    ];
    declaration(fid, MIXED_PATHS.into_iter().zip(specs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mixed_network_is_valid_and_has_ten_kinds_of_issue_17_and_before() {
        let d = mixed_network(Fid::random()).expect("valid");
        assert_eq!(d.resources.len(), MIXED_PATHS.len());
        let kinds: std::collections::BTreeSet<_> = d.resources.values().map(|r| r.kind()).collect();
        assert_eq!(kinds.len(), 9, "{kinds:?}");
    }
}
