//! Generators: random declarations (from a seed, so proptest can shrink the
//! seed and the size) and random drift — the changes a rogue operator makes.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    AclAction, AclEntry, DesiredState, DhcpOptionsSpec, EgressOnlyInternetGatewaySpec,
    ElasticIpSpec, EndpointService, EndpointType, Fid, InstanceSpec, InternetGatewaySpec, IpCidr,
    Ipv4Cidr, Ipv6Cidr, LogicalId, NatGatewaySpec, NetworkAclSpec, ObservedState, Peer, Protocol,
    Ref, Region, Resource, Route, RouteTableSpec, Rule, SecurityGroupSpec, Spec, SubnetSpec, Tags,
    Tenancy, VolumeAttachment, VolumeSpec, VpcEndpointSpec, VpcPeeringConnectionSpec, VpcSpec,
    ICMPV6,
};

/// A small deterministic RNG (xorshift64*), so a seed is a whole test case.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().expect("test cidr")
}

fn name_tag(rng: &mut Rng, base: &str) -> Tags {
    let mut t = Tags::new();
    if rng.chance(70) {
        t.insert("Name".into(), format!("{base}-{}", rng.below(2)));
    }
    if rng.chance(30) {
        t.insert("Environment".into(), rng.pick(&["dev", "prod"]).to_string());
    }
    t
}

/// A random, valid declaration for process `fid`. Paths come from a small
/// pool, so two declarations of one process share many resources — some
/// equal, some changed in place, some needing replacement.
pub fn desired(fid: Fid, seed: u64, size: u64) -> DesiredState {
    let mut rng = Rng::new(seed);
    let region = Region::new("us-west-2");
    let mut d = DesiredState::empty(fid);
    let add = |d: &mut DesiredState, path: String, spec: Spec<Ref>| -> LogicalId {
        let id = LogicalId::new(fid, &path);
        d.insert(Resource {
            id,
            name: path,
            region: region.clone(),
            spec,
        })
        .expect("generator makes unique paths");
        id
    };

    let dhcp = rng.chance(40).then(|| {
        add(
            &mut d,
            "dhcp".into(),
            Spec::DhcpOptions(DhcpOptionsSpec {
                domain_name: Some(rng.pick(&["a.example", "b.example"]).to_string()),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
                ntp_servers: vec![],
                tags: Tags::new(),
            }),
        )
    });

    // Addresses first: a public NAT gateway takes one no other holds.
    let mut free_addresses: Vec<LogicalId> = (0..rng.below(1 + size.min(2)))
        .map(|a| {
            let tags = name_tag(&mut rng, "eip");
            add(
                &mut d,
                format!("eip{a}"),
                Spec::ElasticIp(ElasticIpSpec { tags }),
            )
        })
        .collect();

    let n_vpc = 1 + rng.below(1 + size.min(2));
    for v in 0..n_vpc {
        let second = v * 10 + rng.below(2);
        let support = rng.chance(80);
        let vpc = add(
            &mut d,
            format!("vpc{v}"),
            Spec::Vpc(VpcSpec {
                cidr_block: cidr(&format!("10.{second}.0.0/16")),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: support,
                enable_dns_hostnames: support && rng.chance(50),
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: dhcp.filter(|_| rng.chance(60)).map(Ref::Managed),
                tags: name_tag(&mut rng, "net"),
            }),
        );

        let mut subnets = Vec::new();
        let mut zones = Vec::new();
        for j in 0..rng.below(1 + size.min(3)) {
            let third = j * 4 + if rng.chance(20) { 0 } else { rng.below(2) };
            let prefix = if third % 2 == 0 && rng.chance(25) {
                23
            } else {
                24
            };
            let zone = rng.pick(&ZONES).to_string();
            subnets.push(add(
                &mut d,
                format!("vpc{v}.subnet{j}"),
                Spec::Subnet(SubnetSpec {
                    vpc: Ref::Managed(vpc),
                    cidr_block: cidr(&format!("10.{second}.{third}.0/{prefix}")),
                    availability_zone: zone.clone(),
                    map_public_ip_on_launch: rng.chance(50),
                    ipv6_index: None,
                    ipv6_cidr_block: None,
                    tags: name_tag(&mut rng, "subnet"),
                }),
            ));
            zones.push(zone);
        }

        let igw = rng.chance(60).then(|| {
            let attached = rng.chance(85);
            (
                add(
                    &mut d,
                    format!("vpc{v}.igw"),
                    Spec::InternetGateway(InternetGatewaySpec {
                        vpc: attached.then_some(Ref::Managed(vpc)),
                        tags: name_tag(&mut rng, "igw"),
                    }),
                ),
                attached,
            )
        });

        // IPv6 out of the VPC, through an egress-only gateway.
        let eigw = rng.chance(30).then(|| {
            add(
                &mut d,
                format!("vpc{v}.eigw"),
                Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                    vpc: Ref::Managed(vpc),
                    tags: name_tag(&mut rng, "eigw"),
                }),
            )
        });

        // A NAT gateway: public (holding a free address) only where the
        // VPC's internet gateway is attached, else private.
        let nat = (!subnets.is_empty() && rng.chance(50)).then(|| {
            let attached = matches!(igw, Some((_, true)));
            let allocation = (attached && !free_addresses.is_empty() && rng.chance(70))
                .then(|| free_addresses.remove(rng.below(free_addresses.len() as u64) as usize))
                .map(Ref::Managed);
            add(
                &mut d,
                format!("vpc{v}.nat"),
                Spec::NatGateway(NatGatewaySpec {
                    subnet: Ref::Managed(*rng.pick(&subnets)),
                    allocation,
                    tags: name_tag(&mut rng, "nat"),
                }),
            )
        });

        if rng.chance(60) {
            let mut routes = BTreeSet::new();
            if let Some((g, true)) = igw {
                if rng.chance(80) {
                    routes.insert(Route {
                        destination: IpCidr::V4(Ipv4Cidr::ANY),
                        target: Ref::Managed(g),
                    });
                }
                if rng.chance(30) {
                    let destination = if rng.chance(50) {
                        IpCidr::V4(cidr("192.168.0.0/16"))
                    } else {
                        IpCidr::V6("2001:db8::/32".parse().expect("test block"))
                    };
                    routes.insert(Route {
                        destination,
                        target: Ref::Managed(g),
                    });
                }
            }
            if let Some(e) = eigw.filter(|_| rng.chance(80)) {
                routes.insert(Route {
                    destination: IpCidr::V6(Ipv6Cidr::ANY),
                    target: Ref::Managed(e),
                });
            }
            if let Some(n) = nat.filter(|_| rng.chance(70)) {
                let any = IpCidr::V4(Ipv4Cidr::ANY);
                let destination = if routes.iter().any(|r| r.destination == any) {
                    IpCidr::V4(cidr("172.16.0.0/12"))
                } else {
                    any
                };
                routes.insert(Route {
                    destination,
                    target: Ref::Managed(n),
                });
            }
            let associations = subnets
                .iter()
                .filter(|_| rng.chance(60))
                .map(|s| Ref::Managed(*s))
                .collect();
            add(
                &mut d,
                format!("vpc{v}.rt"),
                Spec::RouteTable(RouteTableSpec {
                    interfaces: Default::default(),
                    vpc: Ref::Managed(vpc),
                    routes: routes.into(),
                    associations,
                    tags: name_tag(&mut rng, "rt"),
                }),
            );
        }

        // Up to two network ACLs; each subnet in at most one of them.
        let n_acl = if subnets.is_empty() { 0 } else { rng.below(3) };
        let holder: Vec<u64> = subnets.iter().map(|_| rng.below(n_acl + 1)).collect();
        for k in 0..n_acl {
            let associations = subnets
                .iter()
                .zip(&holder)
                .filter(|(_, h)| **h == k + 1)
                .map(|(s, _)| Ref::Managed(*s))
                .collect();
            add(
                &mut d,
                format!("vpc{v}.acl{k}"),
                Spec::NetworkAcl(NetworkAclSpec {
                    vpc: Ref::Managed(vpc),
                    entries: acl_entries(&mut rng).into(),
                    associations,
                    tags: name_tag(&mut rng, "acl"),
                }),
            );
        }

        let n_sg = rng.below(1 + size.min(3));
        let sg_ids: Vec<LogicalId> = (0..n_sg)
            .map(|k| LogicalId::new(fid, &format!("vpc{v}.sg{k}")))
            .collect();
        let candidates: [Rule<Ref>; 5] = [
            Rule::new(Protocol::Tcp, 80, 80, Peer::Cidr(Ipv4Cidr::ANY)),
            Rule::new(Protocol::Tcp, 443, 443, Peer::Cidr(Ipv4Cidr::ANY)),
            Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(cidr("10.0.0.0/8"))),
            Rule::new(Protocol::Udp, 53, 53, Peer::Cidr(cidr("10.0.0.0/8"))),
            Rule::new(Protocol::Icmp, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)),
        ];
        for k in 0..n_sg {
            let mut ingress: BTreeSet<Rule<Ref>> = candidates
                .iter()
                .filter(|_| rng.chance(40))
                .cloned()
                .collect();
            if !sg_ids.is_empty() && rng.chance(40) {
                let peer = *rng.pick(&sg_ids);
                ingress.insert(Rule::new(
                    Protocol::Tcp,
                    5432,
                    5432,
                    Peer::Group(Ref::Managed(peer)),
                ));
            }
            let egress = if rng.chance(60) {
                [Rule::allow_all_egress()].into_iter().collect()
            } else {
                [Rule::new(
                    Protocol::Tcp,
                    443,
                    443,
                    Peer::Cidr(Ipv4Cidr::ANY),
                )]
                .into_iter()
                .filter(|_| rng.chance(70))
                .collect()
            };
            add(
                &mut d,
                format!("vpc{v}.sg{k}"),
                Spec::SecurityGroup(SecurityGroupSpec {
                    vpc: Ref::Managed(vpc),
                    group_name: rng.pick(&["web", "web", "db"]).to_string() + &k.to_string(),
                    description: rng.pick(&["Allow web", "Allow web", "Other"]).to_string(),
                    ingress: ingress.into(),
                    egress,
                    tags: name_tag(&mut rng, "sg"),
                }),
            );
        }

        let mut instances: Vec<(LogicalId, String)> = Vec::new();
        if !subnets.is_empty() && !sg_ids.is_empty() {
            for m in 0..rng.below(1 + size.min(2)) {
                let mut groups: BTreeSet<Ref> = sg_ids
                    .iter()
                    .filter(|_| rng.chance(50))
                    .map(|g| Ref::Managed(*g))
                    .collect();
                if groups.is_empty() {
                    groups.insert(Ref::Managed(sg_ids[0]));
                }
                let at = rng.below(subnets.len() as u64) as usize;
                let instance = add(
                    &mut d,
                    format!("vpc{v}.i{m}"),
                    Spec::Instance(InstanceSpec {
                        image_id: rng.pick(&["ami-1", "ami-1", "ami-2"]).to_string(),
                        instance_type: "t3.micro".into(),
                        subnet: Ref::Managed(subnets[at]),
                        key_name: None,
                        user_data: None,
                        security_groups: groups.into(),
                        tags: name_tag(&mut rng, "i"),
                        max_age_secs: None,
                        fleet: None,
                        // From the seed, not the stream: each seed still
                        // makes the network it made before this property.
                        source_dest_check: !(seed + m).is_multiple_of(3),
                    }),
                );
                instances.push((instance, zones[at].clone()));
            }
        }
        // Volumes draw from their own stream, so that every seed still
        // makes the network it made before volumes existed.
        let mut vrng = Rng::new(seed ^ 0x5EED_B0B0 ^ v);
        for n in 0..vrng.below(1 + size.min(2)) {
            let spec = volume(&mut vrng, &instances, n);
            add(&mut d, format!("vpc{v}.vol{n}"), Spec::Volume(spec));
        }
        // A route through an instance (which ranks after the table, so
        // the route waits for it) draws from a stream of its own as well.
        let mut irng = Rng::new(seed ^ 0x157A_CE00 ^ v);
        if let Some((instance, _)) = instances.first().filter(|_| irng.chance(50)) {
            route_through(
                &mut d,
                LogicalId::new(fid, &format!("vpc{v}.rt")),
                *instance,
            );
        }
    }
    peer(&mut d, fid, seed, n_vpc, &region);
    endpoints(&mut d, fid, seed, n_vpc, &region);
    ipv6(&mut d, seed);
    d.validate().expect("generator makes valid declarations");
    d
}

/// Maybe peers the first two VPCs (their blocks never overlap), with a
/// route to the other's block through the connection in each VPC's table
/// that exists; from a stream of its own, so that every seed still makes
/// the network it made before peering connections existed.
fn peer(d: &mut DesiredState, fid: Fid, seed: u64, n_vpc: u64, region: &Region) {
    let mut prng = Rng::new(seed ^ 0x9EE2_1209);
    if n_vpc < 2 || !prng.chance(60) {
        return;
    }
    let l = |p: &str| LogicalId::new(fid, p);
    let block = |d: &DesiredState, v: &str| match d.resources.get(&l(v)).map(|r| &r.spec) {
        Some(Spec::Vpc(s)) => Some(s.cidr_block),
        _ => None,
    };
    let (Some(a), Some(b)) = (block(d, "vpc0"), block(d, "vpc1")) else {
        return;
    };
    let pcx = l("pcx01");
    let tags = name_tag(&mut prng, "pcx");
    d.insert(Resource {
        id: pcx,
        name: "pcx01".into(),
        region: region.clone(),
        spec: Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
            vpc: Ref::Managed(l("vpc0")),
            peer_vpc: Ref::Managed(l("vpc1")),
            accepted: true,
            tags,
        }),
    })
    .expect("generator makes unique paths");
    for (table, to) in [("vpc0.rt", b), ("vpc1.rt", a)] {
        if !prng.chance(80) {
            continue;
        }
        if let Some(Spec::RouteTable(t)) = d.resources.get_mut(&l(table)).map(|r| &mut r.spec) {
            t.routes.insert(Route {
                destination: IpCidr::V4(to),
                target: Ref::Managed(pcx),
            });
        }
    }
}

/// Maybe a gateway endpoint (S3 or DynamoDB) in each VPC, routed from the
/// VPC's table if it has one; from a stream of its own, so that every seed
/// still makes the network it made before endpoints existed.
fn endpoints(d: &mut DesiredState, fid: Fid, seed: u64, n_vpc: u64, region: &Region) {
    let mut erng = Rng::new(seed ^ 0x0E4D_9017);
    for v in 0..n_vpc {
        let vpc = LogicalId::new(fid, &format!("vpc{v}"));
        if !d.resources.contains_key(&vpc) || !erng.chance(40) {
            continue;
        }
        let table = LogicalId::new(fid, &format!("vpc{v}.rt"));
        let mut route_tables = BTreeSet::new();
        if d.resources.contains_key(&table) && erng.chance(80) {
            route_tables.insert(Ref::Managed(table));
        }
        let service = *erng.pick(&[EndpointService::S3, EndpointService::DynamoDb]);
        let path = format!("vpc{v}.vpce");
        let tags = name_tag(&mut erng, "vpce");
        let policy = erng.chance(30).then(|| POLICY.to_string());
        d.insert(Resource {
            id: LogicalId::new(fid, &path),
            name: path,
            region: region.clone(),
            spec: Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: Ref::Managed(vpc),
                service,
                endpoint_type: EndpointType::Gateway,
                route_tables: route_tables.into(),
                subnets: Default::default(),
                security_groups: Default::default(),
                private_dns: false,
                policy,
                tags,
            }),
        })
        .expect("generator makes unique paths");
    }
    for v in 0..n_vpc {
        interface_endpoint(d, fid, &mut erng, v, region);
    }
}

/// Maybe gives VPCs an Amazon-provided `/56`, and some of their subnets
/// distinct `/64`s of it (numbers from a small pool, so that updates move
/// a number from one subnet to another); from a stream of its own, so
/// that every seed still makes the network it made before IPv6 existed.
fn ipv6(d: &mut DesiredState, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x1B76_0056);
    let vpcs: Vec<LogicalId> = d
        .resources
        .values()
        .filter(|r| matches!(r.spec, Spec::Vpc(_)))
        .map(|r| r.id)
        .collect();
    for vpc in vpcs {
        if !rng.chance(40) {
            continue;
        }
        if let Some(Spec::Vpc(v)) = d.resources.get_mut(&vpc).map(|r| &mut r.spec) {
            v.ipv6 = true;
        }
        let mut free: Vec<u8> = vec![0, 1, 2, 255];
        for r in d.resources.values_mut() {
            match &mut r.spec {
                Spec::Subnet(s)
                    if s.vpc == Ref::Managed(vpc) && rng.chance(70) && !free.is_empty() =>
                {
                    let at = rng.below(free.len() as u64) as usize;
                    s.ipv6_index = Some(free.remove(at));
                }
                _ => {}
            }
        }
    }
}

/// Maybe an interface endpoint in VPC `v`: in its first subnet of each
/// zone, guarded by its first group if it has one (else the VPC's
/// default), with private DNS only where the VPC has DNS hostnames.
fn interface_endpoint(d: &mut DesiredState, fid: Fid, erng: &mut Rng, v: u64, region: &Region) {
    let vpc = LogicalId::new(fid, &format!("vpc{v}"));
    let Some(Spec::Vpc(vs)) = d.resources.get(&vpc).map(|r| &r.spec) else {
        return;
    };
    let dns = vs.enable_dns_support && vs.enable_dns_hostnames;
    if !erng.chance(40) {
        return;
    }
    let mut zones = BTreeSet::new();
    let mut subnets = BTreeSet::new();
    for j in 0..4 {
        let s = LogicalId::new(fid, &format!("vpc{v}.subnet{j}"));
        if let Some(Spec::Subnet(sub)) = d.resources.get(&s).map(|r| &r.spec) {
            if zones.insert(sub.availability_zone.clone()) {
                subnets.insert(Ref::Managed(s));
            }
        }
    }
    if subnets.is_empty() {
        return;
    }
    let sg = LogicalId::new(fid, &format!("vpc{v}.sg0"));
    let security_groups = if d.resources.contains_key(&sg) {
        [Ref::Managed(sg)].into()
    } else {
        BTreeSet::new()
    };
    let service = *erng.pick(&[
        EndpointService::Sts,
        EndpointService::Ssm,
        EndpointService::EcrApi,
        EndpointService::S3,
    ]);
    let policy = erng.chance(30).then(|| POLICY.to_string());
    let path = format!("vpc{v}.ivpce");
    d.insert(Resource {
        id: LogicalId::new(fid, &path),
        name: path,
        region: region.clone(),
        spec: Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: Ref::Managed(vpc),
            service,
            endpoint_type: EndpointType::Interface,
            route_tables: Default::default(),
            subnets: subnets.into(),
            security_groups: security_groups.into(),
            private_dns: dns && erng.chance(70),
            policy,
            tags: Tags::new(),
        }),
    })
    .expect("generator makes unique paths");
}

/// A policy an endpoint may declare (not EC2's default).
const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}"#;

const ZONES: [&str; 2] = ["us-west-2a", "us-west-2b"];

/// Adds a route to 198.51.100.0/24 through `instance` to route table
/// `table`, if the VPC has one.
fn route_through(d: &mut DesiredState, table: LogicalId, instance: LogicalId) {
    if let Some(Spec::RouteTable(t)) = d.resources.get_mut(&table).map(|r| &mut r.spec) {
        t.routes.insert(Route {
            destination: IpCidr::V4(cidr("198.51.100.0/24")),
            target: Ref::Managed(instance),
        });
    }
}

/// The `n`th volume of a VPC: attached (on its own device) to one of
/// `instances`, in that instance's zone, or on its own in either zone;
/// each type with the IOPS it may declare.
fn volume(rng: &mut Rng, instances: &[(LogicalId, String)], n: u64) -> VolumeSpec<Ref> {
    let attached_to =
        (!instances.is_empty() && rng.chance(70)).then(|| rng.pick(instances).clone());
    let availability_zone = match &attached_to {
        Some((_, zone)) => zone.clone(),
        None => rng.pick(&ZONES).to_string(),
    };
    let volume_type = rng.pick(&["gp3", "gp3", "gp2", "io1"]).to_string();
    let iops = match volume_type.as_str() {
        "io1" => Some(*rng.pick(&[100, 400])),
        "gp3" if rng.chance(50) => Some(*rng.pick(&[3000, 4000])),
        _ => None,
    };
    VolumeSpec {
        availability_zone,
        size_gib: *rng.pick(&[8, 20, 100]),
        volume_type,
        iops,
        encrypted: rng.chance(50),
        attachment: attached_to.map(|(instance, _)| VolumeAttachment {
            instance: Ref::Managed(instance),
            device: format!("/dev/sd{}", (b'f' + n as u8) as char),
        }),
        tags: name_tag(rng, "vol"),
    }
}

/// Some of a pool of entries: both directions, allow and deny, TCP, UDP,
/// ICMP over IPv6, all traffic; two numbers and two ports vary, so an
/// update replaces entries as well as adding and deleting them.
fn acl_entries(rng: &mut Rng) -> BTreeSet<AclEntry> {
    let any = IpCidr::V4(Ipv4Cidr::ANY);
    let web = *rng.pick(&[443, 80]);
    let candidates = [
        AclEntry::new(false, 100, Protocol::Tcp, AclAction::Allow, any, (web, web)),
        AclEntry::new(
            false,
            110,
            Protocol::Tcp,
            AclAction::Allow,
            any,
            (1024, 65535),
        ),
        AclEntry::new(
            false,
            *rng.pick(&[120, 121]),
            Protocol::All,
            AclAction::Deny,
            IpCidr::V4(cidr("10.99.0.0/16")),
            (-1, -1),
        ),
        AclEntry::new(
            false,
            130,
            ICMPV6,
            AclAction::Allow,
            IpCidr::V6(Ipv6Cidr::ANY),
            (128, 0),
        ),
        AclEntry::new(true, 100, Protocol::All, AclAction::Allow, any, (-1, -1)),
        AclEntry::new(true, 200, Protocol::Udp, AclAction::Deny, any, (53, 53)),
    ];
    candidates.into_iter().filter(|_| rng.chance(60)).collect()
}

/// Applies up to `n` rogue changes to resources owned by `fid`; returns
/// whether the cloud ends up different in what a declaration says (two
/// changes may cancel out: a subnet given back to the default ACL and
/// moved in again has the same ACL, under a new association id).
pub fn drift(cloud: &mut super::reference::RefCloud, fid: Fid, seed: u64, n: u64) -> bool {
    let specs = |cloud: &super::reference::RefCloud| -> BTreeMap<String, Spec<String>> {
        cloud
            .state
            .iter()
            .map(|r| (r.cloud_id.clone(), r.spec.clone()))
            .collect()
    };
    let before = specs(cloud);
    drift_steps(cloud, fid, seed, n);
    specs(cloud) != before
}

fn drift_steps(cloud: &mut super::reference::RefCloud, fid: Fid, seed: u64, n: u64) -> usize {
    let mut rng = Rng::new(seed ^ 0xD21F7);
    let mut vrng = Rng::new(seed ^ 0x0B0B_D21F);
    let mut applied = 0;
    for _ in 0..n {
        applied += drift_a_volume(cloud, fid, &mut vrng);
        // Volumes drift from their own stream (above), so that a seed
        // drifts the rest as it did before volumes existed.
        let owned: Vec<String> = cloud
            .state
            .owned_by(fid)
            .filter(|o| !matches!(o.spec, Spec::Volume(_)))
            .map(|o| o.cloud_id.clone())
            .collect();
        if owned.is_empty() {
            return applied;
        }
        let target = rng.pick(&owned).clone();
        let Some(mut r) = cloud.state.get(&target).cloned() else {
            continue;
        };
        let before = r.clone();
        match (&mut r.spec, rng.below(4)) {
            (Spec::SecurityGroup(g), 0) => {
                g.ingress
                    .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
            }
            (Spec::SecurityGroup(g), 1) => {
                // The same hole over IPv6, or through a prefix list.
                let peer = if rng.below(2) == 0 {
                    Peer::Ipv6Cidr(Ipv6Cidr::ANY)
                } else {
                    Peer::PrefixList("pl-rogue".into())
                };
                g.ingress.insert(Rule::new(Protocol::Tcp, 22, 22, peer));
            }
            (Spec::SecurityGroup(g), 2) => {
                g.egress.clear();
            }
            (Spec::Subnet(s), 0) => s.map_public_ip_on_launch = !s.map_public_ip_on_launch,
            (Spec::Subnet(_), 1) => {
                let in_use = cloud.state.iter().any(|x| match &x.spec {
                    Spec::Instance(i) => i.subnet == target,
                    Spec::NatGateway(n) => n.subnet == target,
                    _ => false,
                });
                if !in_use {
                    // Deleting a subnet removes its route-table and
                    // network ACL associations too.
                    let tables: Vec<_> = cloud
                        .state
                        .iter()
                        .filter(|t| t.association_ids.contains_key(&target))
                        .map(|t| t.cloud_id.clone())
                        .collect();
                    for t in tables {
                        if let Some(mut tr) = cloud.state.get(&t).cloned() {
                            tr.association_ids.remove(&target);
                            match &mut tr.spec {
                                Spec::RouteTable(rt) => {
                                    rt.associations.remove(&target);
                                }
                                Spec::NetworkAcl(a) => {
                                    a.associations.remove(&target);
                                }
                                _ => {}
                            }
                            cloud.state.insert(tr);
                        }
                    }
                    cloud.state.remove(&target);
                    applied += 1;
                }
                continue;
            }
            (Spec::Vpc(v), 0) => {
                v.enable_dns_hostnames = false;
            }
            // A console user takes a subnet's IPv6 /64 away.
            (Spec::Subnet(s), 2) if s.ipv6_cidr_block.is_some() => {
                s.ipv6_cidr_block = None;
                r.association_ids.remove(canon_model::IPV6_ASSOCIATION);
            }
            (Spec::InternetGateway(g), 0) => {
                g.vpc = None;
            }
            (Spec::RouteTable(t), 0) => {
                t.routes.clear();
            }
            // A console user takes the route tables off an endpoint.
            // A console user takes the route tables, subnets and groups
            // off an endpoint, and resets its policy.
            (Spec::VpcEndpoint(e), 0) => {
                e.route_tables.clear();
                if let Some(first) = e.subnets.iter().next().cloned() {
                    e.subnets = [first].into();
                }
                e.security_groups.clear();
                e.policy = None;
            }
            // A console user opens everything, or changes an entry, or
            // gives the subnets back to the VPC's default ACL.
            (Spec::NetworkAcl(a), 0) => {
                a.entries.insert(AclEntry::new(
                    false,
                    99,
                    Protocol::All,
                    AclAction::Allow,
                    IpCidr::V4(Ipv4Cidr::ANY),
                    (-1, -1),
                ));
            }
            (Spec::NetworkAcl(a), 1) => {
                if let Some(first) = a.entries.iter().next().cloned() {
                    a.entries.remove(&first);
                    let mut changed = first.clone();
                    changed.action = match first.action {
                        AclAction::Allow => AclAction::Deny,
                        AclAction::Deny => AclAction::Allow,
                    };
                    a.entries.insert(changed);
                }
            }
            (Spec::NetworkAcl(a), 2) => {
                a.associations.clear();
                r.association_ids.clear();
            }
            (Spec::Instance(i), 1) => i.source_dest_check = !i.source_dest_check,
            (Spec::NetworkAcl(a), 3) => {
                // A subnet of the VPC moved here from wherever it was.
                let vpc = a.vpc.clone();
                let Some(s) = cloud
                    .state
                    .iter()
                    .find(|x| {
                        matches!(&x.spec, Spec::Subnet(s) if s.vpc == vpc)
                            && !a.associations.contains(&x.cloud_id)
                    })
                    .map(|x| x.cloud_id.clone())
                else {
                    continue;
                };
                take_subnet(cloud, &s);
                a.associations.insert(s.clone());
                r.association_ids
                    .insert(s, format!("aclassoc-rogue{applied}"));
            }
            // A released address (EC2 refuses while a NAT gateway holds
            // it), a deleted NAT gateway, egress-only gateway or peering
            // connection (its routes left black holes), or a terminated
            // instance.
            (Spec::ElasticIp(_), 0) if cloud.nat_holding(&target).is_some() => continue,
            (Spec::ElasticIp(_), 0)
            | (Spec::NatGateway(_), 0)
            | (Spec::EgressOnlyInternetGateway(_), 0)
            | (Spec::VpcPeeringConnection(_), 0)
            | (Spec::VpcEndpoint(_), 1) => {
                cloud.state.remove(&target);
                applied += 1;
                continue;
            }
            (Spec::Instance(_), 0) => {
                // Terminating an instance detaches its volumes.
                cloud.state.remove(&target);
                cloud.detach_volumes_of(&target);
                applied += 1;
                continue;
            }
            (spec, _) => {
                let tags = spec.tags_mut();
                if rng.chance(50) {
                    tags.insert("Name".into(), "changed-by-hand".into());
                } else {
                    tags.insert("rogue".into(), "yes".into());
                }
            }
        }
        if r != before {
            cloud.state.insert(r);
            applied += 1;
        }
    }
    applied
}

/// Maybe one change to one of the process's volumes, as a console user
/// makes: a detach, a new type, a new tag. Returns how many it made.
fn drift_a_volume(cloud: &mut super::reference::RefCloud, fid: Fid, rng: &mut Rng) -> usize {
    let volumes: Vec<String> = cloud
        .state
        .owned_by(fid)
        .filter(|o| matches!(o.spec, Spec::Volume(_)))
        .map(|o| o.cloud_id.clone())
        .collect();
    if volumes.is_empty() || !rng.chance(30) {
        return 0;
    }
    let target = rng.pick(&volumes).clone();
    let Some(mut r) = cloud.state.get(&target).cloned() else {
        return 0;
    };
    let before = r.clone();
    if let Spec::Volume(v) = &mut r.spec {
        match rng.below(3) {
            0 => v.attachment = None,
            1 => v.volume_type = "standard".into(),
            _ => {
                v.tags.insert("rogue".into(), "yes".into());
            }
        }
    }
    if r == before {
        return 0;
    }
    cloud.state.insert(r);
    1
}

/// Takes subnet `s` out of whichever network ACL holds it.
fn take_subnet(cloud: &mut super::reference::RefCloud, s: &str) {
    let holders: Vec<_> = cloud
        .state
        .iter()
        .filter(|x| matches!(&x.spec, Spec::NetworkAcl(a) if a.associations.contains(s)))
        .cloned()
        .collect();
    for mut h in holders {
        if let Spec::NetworkAcl(a) = &mut h.spec {
            a.associations.remove(s);
        }
        h.association_ids.remove(s);
        cloud.state.insert(h);
    }
}

/// Associates every address `fid` owns that no NAT gateway holds with a
/// network interface (as an operator would); returns how many.
pub fn associate_addresses(cloud: &mut super::reference::RefCloud, fid: Fid) -> usize {
    let addresses: Vec<_> = cloud
        .state
        .owned_by(fid)
        .filter(|o| matches!(o.spec, Spec::ElasticIp(_)))
        .filter(|o| cloud.nat_holding(&o.cloud_id).is_none())
        .cloned()
        .collect();
    for (n, mut a) in addresses.iter().cloned().enumerate() {
        a.association_ids
            .insert(format!("eni-{n:08x}"), format!("eipassoc-{n:08x}"));
        cloud.state.insert(a);
    }
    addresses.len()
}

/// Adds resources Canon does not own (another process's and untagged ones).
pub fn foreign(
    cloud: &mut super::reference::RefCloud,
) -> BTreeMap<String, canon_model::ObservedResource> {
    let other = LogicalId::new(Fid(uuid::Uuid::from_u128(7)), "their-vpc");
    let mut tags = Tags::new();
    tags.insert(canon_model::OWNERSHIP_TAG.into(), other.to_string());
    cloud.add(
        "vpc-foreign1".into(),
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("172.16.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: false,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags,
        }),
    );
    cloud.add(
        "vpc-untagged".into(),
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("172.31.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: false,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags: Tags::new(),
        }),
    );
    let snapshot: ObservedState = cloud
        .state
        .iter()
        .filter(|r| r.cloud_id.contains("foreign") || r.cloud_id.contains("untagged"))
        .cloned()
        .collect();
    snapshot
        .iter()
        .map(|r| (r.cloud_id.clone(), r.clone()))
        .collect()
}
