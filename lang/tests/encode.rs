//! The protobuf form of a compiled composition is canonical and lossless.

use std::path::Path;

use canon_lang::{compile_file, compile_str, Compiled, MapLoader, Options};

fn compile(name: &str) -> Compiled {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compositions")
        .join(name);
    compile_file(&p, Options::default())
        .expect("read")
        .compiled
        .expect("compiles")
}

#[test]
fn encoding_round_trips_and_is_deterministic() {
    for name in ["VPC-sam.lw", "VPC-sam-ssh.lw", "Staging.lw"] {
        let c = compile(name);
        let bytes = c.encode();
        assert_eq!(
            bytes,
            compile(name).encode(),
            "{name}: same sources, same bytes"
        );
        let back = Compiled::decode(&bytes).expect("decodes");
        assert_eq!(back, c, "{name}");
        assert_eq!(back.encode(), bytes);
    }
}

#[test]
fn different_sources_encode_differently() {
    assert_ne!(
        compile("VPC-sam.lw").encode(),
        compile("VPC-sam-ssh.lw").encode()
    );
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    assert!(Compiled::decode(&[0xff, 0xff, 0xff]).is_err());
    let mut m = compile("VPC-sam.lw").to_proto();
    m.format_version = 99;
    assert!(Compiled::from_proto(m).is_err());
    let mut m = compile("VPC-sam.lw").to_proto();
    let mut changed = false;
    for r in &mut m.resources {
        if let Some(canon_proto::canon::composition::v1::resource::Spec::Vpc(v)) = r.spec.as_mut() {
            v.cidr_block = "nope".into();
            changed = true;
        }
    }
    assert!(changed);
    assert!(Compiled::from_proto(m).is_err());
}

#[test]
fn ipv6_and_prefix_list_peers_round_trip_and_bad_ranges_are_refused() {
    use canon_proto::canon::composition::v1::{resource::Spec, rule::Peer, Rule};
    let with_peer = |peer: Peer| {
        let mut m = compile("VPC-sam.lw").to_proto();
        let mut changed = false;
        for r in &mut m.resources {
            if let Some(Spec::SecurityGroup(g)) = r.spec.as_mut() {
                g.ingress.push(Rule {
                    protocol: "tcp".into(),
                    from_port: 22,
                    to_port: 22,
                    peer: Some(peer.clone()),
                });
                changed = true;
            }
        }
        assert!(changed);
        m
    };
    for peer in [
        Peer::Ipv6Cidr("2001:db8::/32".into()),
        Peer::PrefixList("pl-0123".into()),
    ] {
        let c = Compiled::from_proto(with_peer(peer.clone())).expect("decodes");
        assert_ne!(c, compile("VPC-sam.lw"), "{peer:?} kept");
        let back = Compiled::decode(&c.encode()).expect("round trip");
        assert_eq!(back, c, "{peer:?}");
    }
    let bad = Compiled::from_proto(with_peer(Peer::Ipv6Cidr("2001:db8::1/32".into())));
    assert!(bad.is_err());
}

/// Every kind, with the fields the demo compositions leave at their
/// defaults (DHCP options, dedicated tenancy, ICMP and group peers, an
/// instance's key and user data).
const EVERY_KIND: &str = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {
  cidrBlock: "10.9.0.0/16",
  region: AWS.Eu-west-1,
  instanceTenancy: EC2.DedicatedTenancy,
  enableDnsHostnames: True,
  ipv6: True,
  dhcpOptions: EC2.DhcpOptions.new {
    region: AWS.Eu-west-1,
    domainName: "corp.example",
    ntpServers: ["10.9.0.2"],
    tags: [AWS.tag('Name', 'dhcp')],
  },
}
igw: EC2.InternetGateway.new {vpc: vpc}
eigw: EC2.EgressOnlyInternetGateway.new {vpc: vpc, tags: [AWS.tag('Name', 'out')]}
address: EC2.ElasticIp.new {region: AWS.Eu-west-1, tags: [AWS.tag('Name', 'nat')]}
subnet: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.9.1.0/24", availabilityZone: AWS.B, mapPublicIpOnLaunch: True, ipv6Index: 3}
routes: EC2.RouteTable.new {
  vpc: vpc,
  routes: [
    EC2.Route({destinationCidrBlock: "0.0.0.0/0", gateway: igw}),
    EC2.Route({destinationIpv6CidrBlock: "2001:db8::/32", gateway: igw}),
    EC2.Route.egressOnly(eigw),
    EC2.Route.peering("10.8.0.0/16", link),
  ],
  associations: [subnet],
}
other: EC2.Vpc.new {cidrBlock: "10.8.0.0/16", region: AWS.Eu-west-1}
link: EC2.VpcPeeringConnection.new {vpc: vpc, peerVpc: other, tags: [AWS.tag('Name', 'link')]}
s3: EC2.VpcEndpoint.new {vpc: vpc, service: EC2.S3, routeTables: [routes], tags: [AWS.tag('Name', 's3')], policy: "{\"Statement\": [{\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"s3:*\", \"Resource\": \"*\"}]}"}
dynamo: EC2.VpcEndpoint.dynamodb(vpc, [])
ecr: EC2.VpcEndpoint.new {vpc: vpc, service: EC2.EcrApi, endpointType: EC2.Interface, subnets: [subnet], securityGroups: [peer], privateDns: True, tags: [AWS.tag('Name', 'ecr')]}
logs: EC2.VpcEndpoint.new {vpc: vpc, service: EC2.ExecuteApi, endpointType: EC2.Interface, subnets: [subnet], privateDns: False}
nat: EC2.NatGateway.new {subnet: subnet, elasticIp: address, tags: [AWS.tag('Name', 'nat')]}
inner: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.9.2.0/24", availabilityZone: AWS.B}
innerNat: EC2.NatGateway.new {subnet: inner}
innerRoutes: EC2.RouteTable.new {
  vpc: vpc,
  routes: [EC2.Route.nat(nat), EC2.Route({destinationCidrBlock: "172.16.0.0/12", natGateway: innerNat})],
  associations: [inner],
}
acl: EC2.NetworkAcl.new {
  vpc: vpc,
  ingress: [
    EC2.NetworkAclEntry.allowTcp(100, 443, 443, "0.0.0.0/0"),
    EC2.NetworkAclEntry.new {ruleNumber: 110, protocol: "icmpv6", icmpType: 128, icmpCode: 0, ipv6CidrBlock: "::/0"},
    EC2.NetworkAclEntry.new {ruleNumber: 120, protocol: "icmp", icmpType: 8, cidrBlock: "10.9.0.0/16"},
    EC2.NetworkAclEntry.denyAll(200, "192.168.0.0/16"),
  ],
  egress: [EC2.NetworkAclEntry.allowAll(100, "0.0.0.0/0"), EC2.NetworkAclEntry.new {ruleNumber: 110, protocol: "udp", fromPort: 53, toPort: 53, cidrBlock: "10.9.0.2/32", ruleAction: EC2.Deny}],
  associations: [subnet, inner],
  tags: [AWS.tag('Name', 'web')],
}
peer: EC2.SecurityGroup.new {vpc: vpc, description: "peer"}
sg: EC2.SecurityGroup.new {
  vpc: vpc,
  description: "every rule shape",
  groupName: "named",
  ipPermissions: [
    EC2.IpPermission.new {ipProtocol: "icmp", fromPort: 8, toPort: -1, target: EC2.Target.all},
    EC2.tcp(5432, EC2.Target.securityGroup(peer)),
    EC2.IpPermission.new {ipProtocol: "-1", target: EC2.Target.cidr("10.9.0.0/16")},
  ],
  ipPermissionsEgress: [EC2.udp(53, EC2.Target.cidr("10.9.0.2/32"))],
}
box: EC2.Instance.new {
  imageId: "ami-0123456789abcdef0",
  subnet: subnet,
  instanceType: EC2.T3-small,
  keyName: "ops",
  userData: "echo hello",
  securityGroups: [sg, peer],
  tags: [AWS.tag('Role', 'db')],
  maxAge: "6h",
}
data: EC2.Volume.new {
  region: AWS.Eu-west-1,
  availabilityZone: AWS.B,
  size: 200,
  volumeType: EC2.Io2,
  iops: 4000,
  encrypted: True,
  attachment: EC2.Volume.attachedTo(box, "/dev/sdf"),
  tags: [AWS.tag('Name', 'data')],
}
scratch: EC2.Volume.new {region: AWS.Eu-west-1, availabilityZone: AWS.C, size: 8}
"#;

#[test]
fn every_kind_and_field_round_trips() {
    let out = compile_str(
        "every-kind.lw",
        EVERY_KIND,
        &MapLoader::default(),
        Options::default(),
    );
    assert!(!out.has_errors(), "{}", out.render());
    let c = out.compiled.expect("compiles");
    let kinds: std::collections::BTreeSet<_> = c.resources.iter().map(|r| r.spec.kind()).collect();
    assert_eq!(kinds.len(), 14, "every kind: {kinds:?}");
    let max_age = c.resources.iter().find_map(|r| match &r.spec {
        canon_model::Spec::Instance(i) => Some(i.max_age_secs),
        _ => None,
    });
    assert_eq!(max_age, Some(Some(6 * 3600)), "maxAge lowers to seconds");
    let bytes = c.encode();
    let back = Compiled::decode(&bytes).expect("decodes");
    assert_eq!(back, c);
    assert_eq!(back.encode(), bytes);
}

#[test]
fn a_fleet_lowers_to_staggered_members_that_round_trip() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ok_fleet.lw"),
    )
    .unwrap();
    let out = compile_str("fleet.lw", &src, &MapLoader::default(), Options::default());
    assert!(!out.has_errors(), "{}", out.render());
    let c = out.compiled.expect("compiles");
    let mut members: Vec<canon_model::FleetMember> = c
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            canon_model::Spec::Instance(i) => {
                assert_eq!(i.max_age_secs, Some(60));
                i.fleet.clone()
            }
            _ => None,
        })
        .collect();
    members.sort_by_key(|m| m.index);
    assert_eq!(members.len(), 4);
    for (i, m) in members.iter().enumerate() {
        assert_eq!((m.index as usize, m.count), (i, 4));
        assert_eq!((m.max_surge, m.max_unavailable), (0, 4));
        assert_eq!(m.health_check, canon_model::HealthCheck::None);
        assert_eq!(m.health_grace_secs, 120);
        assert_eq!(m.fleet, "web");
    }
    let bytes = c.encode();
    assert_eq!(Compiled::decode(&bytes).expect("decodes"), c);
}

#[test]
fn a_tcp_health_check_lowers_with_its_port_and_round_trips() {
    let src = "import Canon.AWS.EC2 as EC2
import Canon.AWS.Pattern.Fleet as Fleet
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-east-1}
a: EC2.Subnet.new {vpc: vpc, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A}
web: Fleet.new {name: \"web\", image: \"ami-0abcdef1234567890\", subnets: [a], count: 2, maxAge: \"6h\", healthCheck: EC2.Tcp(8080), healthGrace: \"90s\"}
";
    let out = compile_str("tcp.lw", src, &MapLoader::default(), Options::default());
    assert!(!out.has_errors(), "{}", out.render());
    let c = out.compiled.expect("compiles");
    let checks: Vec<(canon_model::HealthCheck, u64)> = c
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            canon_model::Spec::Instance(i) => i
                .fleet
                .as_ref()
                .map(|m| (m.health_check, m.health_grace_secs)),
            _ => None,
        })
        .collect();
    assert_eq!(
        checks,
        vec![(canon_model::HealthCheck::Tcp { port: 8080 }, 90); 2]
    );
    let bytes = c.encode();
    assert_eq!(Compiled::decode(&bytes).expect("decodes"), c);
}

#[test]
fn a_raw_fleet_member_with_a_port_out_of_range_is_refused_at_lowering() {
    let src = "import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-east-1}
a: EC2.Subnet.new {vpc: vpc, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A}
box: EC2.Instance.new {
  imageId: \"ami-0abcdef1234567890\",
  subnet: a,
  fleet: EC2.FleetMember({fleet: \"web\", index: 0, count: 1, maxSurge: 1, maxUnavailable: 0, healthCheck: EC2.Tcp(70000), healthGrace: \"5m\"}),
}
";
    let out = compile_str("raw.lw", src, &MapLoader::default(), Options::default());
    assert!(out.has_errors(), "{}", out.render());
    assert!(
        out.render()
            .contains("a fleet's healthCheck Tcp port must be from 1 to 65535"),
        "{}",
        out.render()
    );
}

#[test]
fn a_forwarding_instance_lowers_with_its_check_off_and_round_trips() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ok_route_instance.lw"),
    )
    .unwrap();
    let out = compile_str("route.lw", &src, &MapLoader::default(), Options::default());
    assert!(!out.has_errors(), "{}", out.render());
    let c = out.compiled.expect("compiles");
    let check = |c: &Compiled| {
        c.resources
            .iter()
            .find_map(|r| match &r.spec {
                canon_model::Spec::Instance(i) => Some(i.source_dest_check),
                _ => None,
            })
            .expect("the firewall")
    };
    assert!(!check(&c), "sourceDestCheck: False lowers as off");
    let back = Compiled::decode(&c.encode()).expect("decodes");
    assert!(!check(&back), "and stays off through the wire");
    assert_eq!(back, c);
    // Declared without it: on, EC2's default.
    let on = src.replace(", sourceDestCheck: False", "");
    let out = compile_str("route.lw", &on, &MapLoader::default(), Options::default());
    let c = out.compiled.expect("compiles");
    assert!(check(&c));
    assert!(check(&Compiled::decode(&c.encode()).expect("decodes")));
}
