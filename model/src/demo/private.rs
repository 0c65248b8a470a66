//! A network with private subnets behind NAT gateways, built in Rust: the
//! fixture the NAT gateway tests of every crate share (the cloud adapters'
//! conformance suite, the scheduler's waiting for a `pending` gateway).

use crate::{
    DesiredState, ElasticIpSpec, Fid, InternetGatewaySpec, IpCidr, Ipv4Cidr, LogicalId,
    NatGatewaySpec, Ref, Route, RouteTableSpec, Spec, StateError, SubnetSpec, Tags, Tenancy,
    VpcSpec,
};

fn cidr(s: &str) -> Ipv4Cidr {
    // Only the literals below, which are valid.
    s.parse().unwrap_or(Ipv4Cidr::ANY)
}

fn name(n: &str) -> Tags {
    [("Name".to_string(), n.to_string())].into()
}

/// A network with NAT gateways, for process `fid`: a VPC with an internet
/// gateway, a public subnet (routed to it) holding a public NAT gateway
/// and its address, and a private subnet holding a private NAT gateway,
/// whose route table sends 0.0.0.0/0 through the public gateway and
/// 172.16.0.0/12 through the private one.
pub fn nat_network(fid: Fid) -> Result<DesiredState, StateError> {
    let l = |p: &str| LogicalId::new(fid, p);
    let m = |p: &str| Ref::Managed(l(p));
    let route = |dest: &str, target: &str| Route {
        destination: IpCidr::V4(cidr(dest)),
        target: m(target),
    };
    let subnet = |block: &str| {
        Spec::Subnet(SubnetSpec {
            vpc: m("net.vpc"),
            cidr_block: cidr(block),
            availability_zone: "us-west-2a".into(),
            map_public_ip_on_launch: false,
            ipv6_index: None,
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let specs = [
        (
            "net.vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.20.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: name("net"),
            }),
        ),
        (
            "net.igw",
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: Some(m("net.vpc")),
                tags: Tags::new(),
            }),
        ),
        ("net.public", subnet("10.20.1.0/24")),
        ("net.private", subnet("10.20.2.0/24")),
        (
            "net.natAddress",
            Spec::ElasticIp(ElasticIpSpec { tags: name("nat") }),
        ),
        (
            "net.nat",
            Spec::NatGateway(NatGatewaySpec {
                subnet: m("net.public"),
                allocation: Some(m("net.natAddress")),
                tags: name("nat"),
            }),
        ),
        (
            "net.privateNat",
            Spec::NatGateway(NatGatewaySpec {
                subnet: m("net.private"),
                allocation: None,
                tags: Tags::new(),
            }),
        ),
        (
            "net.publicRoutes",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: m("net.vpc"),
                routes: [route("0.0.0.0/0", "net.igw")].into_iter().collect(),
                associations: [m("net.public")].into_iter().collect(),
                tags: Tags::new(),
            }),
        ),
        (
            "net.privateRoutes",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: m("net.vpc"),
                routes: [
                    route("0.0.0.0/0", "net.nat"),
                    route("172.16.0.0/12", "net.privateNat"),
                ]
                .into_iter()
                .collect(),
                associations: [m("net.private")].into_iter().collect(),
                tags: Tags::new(),
            }),
        ),
    ];
    super::declaration(fid, specs)
}
