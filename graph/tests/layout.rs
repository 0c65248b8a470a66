//! The layout over random declarations: siblings never overlap and children
//! stay inside their parents, whatever the mix of VPCs, zones, subnets,
//! instances, groups and gateways.

use std::collections::BTreeSet;

use canon_graph::{layout, Graph};
use canon_model::{
    DesiredState, Fid, InstanceSpec, InternetGatewaySpec, Ipv4Cidr, LogicalId, Peer, Protocol, Ref,
    Region, Resource, Route, RouteTableSpec, Rule, SecurityGroupSpec, Spec, SubnetSpec, Tenancy,
    VpcSpec,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Shape {
    vpcs: Vec<VpcShape>,
}

#[derive(Debug, Clone)]
struct VpcShape {
    region: usize,
    gateway: bool,
    subnets: Vec<(usize, bool, usize)>, // zone, public, instances
    groups: usize,
    name_len: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    let vpc = (
        0usize..2,
        any::<bool>(),
        prop::collection::vec((0usize..4, any::<bool>(), 0usize..5), 0..7),
        0usize..5,
        1usize..60,
    )
        .prop_map(|(region, gateway, subnets, groups, name_len)| VpcShape {
            region,
            gateway,
            subnets,
            groups,
            name_len,
        });
    prop::collection::vec(vpc, 0..4).prop_map(|vpcs| Shape { vpcs })
}

fn cidr(a: u8, b: u8, prefix: u8) -> Ipv4Cidr {
    Ipv4Cidr::new([10, a, b, 0].into(), prefix).expect("cidr")
}

fn tags(name: String) -> canon_model::Tags {
    canon_model::Tags::from([("Name".to_string(), name)])
}

fn build(shape: &Shape) -> DesiredState {
    let fid: Fid = "00000000-0000-4000-8000-000000000002".parse().expect("fid");
    let mut d = DesiredState::empty(fid);
    let mut add = |path: String, region: usize, spec: Spec<Ref>| {
        let id = LogicalId::new(fid, &path);
        d.insert(Resource {
            id,
            name: path,
            region: Region::new(["us-west-2", "eu-west-1"][region]),
            spec,
        })
        .expect("insert");
        Ref::Managed(id)
    };
    for (v, s) in shape.vpcs.iter().enumerate() {
        let vpc = add(
            format!("vpc{v}"),
            s.region,
            Spec::Vpc(VpcSpec {
                cidr_block: cidr(v as u8, 0, 16),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: true,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: tags("v".repeat(s.name_len)),
            }),
        );
        let igw = s.gateway.then(|| {
            add(
                format!("igw{v}"),
                s.region,
                Spec::InternetGateway(InternetGatewaySpec {
                    vpc: Some(vpc.clone()),
                    tags: tags(format!("gateway-{v}")),
                }),
            )
        });
        let mut groups: Vec<Ref> = Vec::new();
        for g in 0..s.groups {
            let peer = if g % 2 == 0 {
                Peer::Cidr(Ipv4Cidr::ANY)
            } else {
                Peer::Group(groups[0].clone())
            };
            groups.push(add(
                format!("sg{v}-{g}"),
                s.region,
                Spec::SecurityGroup(SecurityGroupSpec {
                    vpc: vpc.clone(),
                    group_name: format!("group-{v}-{g}"),
                    description: "d".into(),
                    ingress: canon_model::SortedVecSet::from([Rule::new(
                        Protocol::Tcp,
                        80 + g as i32,
                        80 + g as i32,
                        peer,
                    )]),
                    egress: canon_model::SortedVecSet::from([Rule::allow_all_egress()]),
                    tags: tags(format!("group-{v}-{g}")),
                }),
            ));
        }
        let mut public = BTreeSet::new();
        for (i, (zone, is_public, instances)) in s.subnets.iter().enumerate() {
            let subnet = add(
                format!("subnet{v}-{i}"),
                s.region,
                Spec::Subnet(SubnetSpec {
                    vpc: vpc.clone(),
                    cidr_block: cidr(v as u8, i as u8, 24),
                    availability_zone: format!("us-west-2{}", ['a', 'b', 'c', 'd'][*zone]),
                    map_public_ip_on_launch: *is_public,
                    ipv6_index: None,
                    ipv6_cidr_block: None,
                    tags: tags(format!("subnet-{v}-{i}")),
                }),
            );
            if *is_public {
                public.insert(subnet.clone());
            }
            for n in 0..*instances {
                add(
                    format!("i{v}-{i}-{n}"),
                    s.region,
                    Spec::Instance(InstanceSpec {
                        image_id: "ami-1".into(),
                        instance_type: if n % 3 == 0 { "t3.micro" } else { "t3.large" }.into(),
                        subnet: subnet.clone(),
                        key_name: None,
                        user_data: None,
                        security_groups: groups.iter().take(n % 3).cloned().collect(),
                        tags: tags(format!("web-{n}")),
                        max_age_secs: None,
                        fleet: None,
                        source_dest_check: true,
                    }),
                );
            }
        }
        if let Some(igw) = igw {
            add(
                format!("rt{v}"),
                s.region,
                Spec::RouteTable(RouteTableSpec {
                    interfaces: Default::default(),
                    vpc: vpc.clone(),
                    routes: canon_model::SortedVecSet::from([Route {
                        destination: canon_model::IpCidr::V4(Ipv4Cidr::ANY),
                        target: igw,
                    }]),
                    associations: public.into(),
                    tags: tags(format!("public-{v}")),
                }),
            );
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn siblings_never_overlap_and_children_stay_inside(shape in shape()) {
        let graph = Graph::from_desired(&build(&shape));
        let l = layout(&graph);
        let canvas = canon_graph::Rect { x: 0, y: 0, w: l.width, h: l.height };
        for n in &graph.nodes {
            let r = l.boxes[&n.id];
            prop_assert!(r.w > 0 && r.h > 0, "{} has no area", n.id);
            let parent = match &n.parent {
                Some(p) => l.boxes[p],
                None => canvas,
            };
            prop_assert!(parent.contains(&r), "{} {:?} is outside its parent {:?}", n.id, r, parent);
        }
        for (i, a) in graph.nodes.iter().enumerate() {
            for b in &graph.nodes[i + 1..] {
                if a.parent == b.parent {
                    let (ra, rb) = (l.boxes[&a.id], l.boxes[&b.id]);
                    prop_assert!(!ra.overlaps(&rb), "siblings {} {:?} and {} {:?} overlap", a.id, ra, b.id, rb);
                }
            }
        }
    }
}
