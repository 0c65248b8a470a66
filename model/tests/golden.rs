//! Golden tests of the dry-run JSON for the demo's plans: killing a
//! two-subnet network, and the update that adds one SSH ingress rule.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite the files after an intended change.

mod support;

use std::collections::BTreeSet;

use canon_model::*;
use support::reference::RefCloud;

fn fid() -> Fid {
    "9b567e78-2b5b-48ba-8c80-0667674df4c6".parse().unwrap()
}

/// The demo's network, with SSH after the update.
fn demo(ssh: bool) -> DesiredState {
    demo::DemoNetwork::default()
        .with_ssh(ssh)
        .build(fid())
        .unwrap()
}

fn check_golden(name: &str, value: &serde_json::Value) {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert_eq!(text, want, "{name} differs from {path}");
}

fn running() -> (RefCloud, Bindings) {
    let mut cloud = RefCloud::new();
    let mut b = Bindings::new();
    let p = plan(&demo(false), &cloud.state, &b);
    cloud.apply_plan(&p, &mut b).unwrap();
    (cloud, b)
}

#[test]
fn run_of_the_demo_network() {
    let p = plan(&demo(false), &ObservedState::new(), &Bindings::new());
    check_golden("run_demo_network", &p.to_json());
}

#[test]
fn kill_of_the_demo_network() {
    let (cloud, b) = running();
    let p = plan_kill(fid(), &cloud.state, &b);
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(
        types,
        [
            "aws.ec2.delete_security_group",
            "aws.ec2.disassociate_route_table",
            "aws.ec2.disassociate_route_table",
            "aws.ec2.delete_route_table",
            "aws.ec2.delete_subnet",
            "aws.ec2.delete_subnet",
            "aws.ec2.detach_internet_gateway",
            "aws.ec2.delete_internet_gateway",
            "aws.ec2.delete_vpc",
            "aws.ec2.delete_dhcp_options",
        ]
    );
    check_golden("kill_demo_network", &p.to_json());
}

#[test]
fn update_adding_ssh_is_one_authorize() {
    let (cloud, b) = running();
    let p = plan(&demo(true), &cloud.state, &b);
    assert_eq!(p.requests.len(), 1);
    assert_eq!(
        p.requests[0].request_type(),
        "aws.ec2.authorize_security_group_ingress"
    );
    assert!(p.requests[0].guid().ends_with(".rules"));
    check_golden("update_add_ssh", &p.to_json());
}

#[test]
fn a_deleted_route_names_its_target_by_name_and_cloud_id() {
    let (mut cloud, b) = running();
    let table = LogicalId::new(fid(), "dev-network.publicRouteTable");
    let igw = LogicalId::new(fid(), "dev-network.igw");
    let rtb = b.cloud_id(&table).unwrap().to_string();
    let mut r = cloud.state.get(&rtb).unwrap().clone();
    if let Spec::RouteTable(t) = &mut r.spec {
        t.routes.clear();
    }
    cloud.state.insert(r);
    let p = plan(&demo(false), &cloud.state, &b);
    assert_eq!(p.differences.len(), 1, "{:?}", p.differences);
    let d = &p.differences[0];
    assert_eq!(d.property, "routes.0.0.0.0/0");
    let shown = format!("dev-network.igw ({})", b.cloud_id(&igw).unwrap());
    assert_eq!(d.declared.as_deref(), Some(shown.as_str()));
    assert_eq!(d.observed, None);
}

/// The plan for the running demo after a rogue operator added `peer`
/// (all traffic) to Sam's group, and that group's cloud id.
fn plan_after_rogue_rule(peer: Peer<String>) -> (Plan, String) {
    let (mut cloud, b) = running();
    let sg = b
        .cloud_id(&LogicalId::new(fid(), "dev-sam-sg"))
        .unwrap()
        .to_string();
    let mut r = cloud.state.get(&sg).unwrap().clone();
    if let Spec::SecurityGroup(g) = &mut r.spec {
        g.ingress.insert(Rule::new(Protocol::All, -1, -1, peer));
    }
    cloud.state.insert(r);
    (plan(&demo(false), &cloud.state, &b), sg)
}

#[test]
fn rogue_all_traffic_rule_is_one_revoke_and_one_difference() {
    let (p, sg) = plan_after_rogue_rule(Peer::Cidr(Ipv4Cidr::ANY));
    assert_eq!(p.differences.len(), 1);
    let d = &p.differences[0];
    assert_eq!(d.property, "ingress");
    assert_eq!(d.declared, None);
    assert_eq!(d.observed.as_deref(), Some("all traffic 0.0.0.0/0"));
    assert_eq!(d.cloud_id.as_deref(), Some(sg.as_str()));
    check_golden("heal_rogue_rule", &p.to_json());
}

#[test]
fn rogue_ipv6_rule_is_revoked_with_its_ipv6_range() {
    let (p, _) = plan_after_rogue_rule(Peer::Ipv6Cidr(Ipv6Cidr::ANY));
    assert_eq!(p.differences.len(), 1);
    assert_eq!(
        p.differences[0].observed.as_deref(),
        Some("all traffic ::/0")
    );
    assert_eq!(p.requests.len(), 1);
    check_golden("heal_rogue_ipv6_rule", &p.to_json());
}

/// One request of every action, as the dry-run prints it: the parameters
/// in EC2's names, pending references as `{"Ref": …}`, optional fields
/// present and absent, rules grouped by protocol and ports.
#[test]
fn every_action_in_the_dry_run() {
    let l = |path: &str| LogicalId::new(fid(), path);
    let id = |s: &str| CloudRef::Id(s.into());
    let pending = |path: &str| CloudRef::Pending(l(path));
    let tags: Tags = [("Name".to_string(), "web".to_string())].into();
    let cidr = |s: &str| -> Ipv4Cidr { s.parse().unwrap() };
    let rules: std::collections::BTreeSet<Rule<CloudRef>> = [
        Rule::new(Protocol::Tcp, 80, 80, Peer::Cidr(Ipv4Cidr::ANY)),
        Rule::new(Protocol::Tcp, 80, 80, Peer::Ipv6Cidr(Ipv6Cidr::ANY)),
        Rule::new(Protocol::Tcp, 22, 22, Peer::Group(pending("admin"))),
        Rule::new(Protocol::All, -1, -1, Peer::PrefixList("pl-1".into())),
        Rule::new(Protocol::Udp, 53, 53, Peer::Group(id("sg-2"))),
    ]
    .into();
    let groups: std::collections::BTreeSet<CloudRef> = [id("sg-1"), pending("web")].into();
    let actions = vec![
        Action::CreateDhcpOptions {
            domain_name: Some("example.internal".into()),
            domain_name_servers: vec!["AmazonProvidedDNS".into()],
            ntp_servers: vec!["169.254.169.123".into()],
            tags: tags.clone(),
        },
        Action::CreateDhcpOptions {
            domain_name: None,
            domain_name_servers: vec![],
            ntp_servers: vec![],
            tags: Tags::new(),
        },
        Action::DeleteDhcpOptions {
            dhcp_options: id("dopt-1"),
        },
        Action::AssociateDhcpOptions {
            vpc: pending("vpc"),
            dhcp_options: Some(pending("dopt")),
        },
        Action::AssociateDhcpOptions {
            vpc: id("vpc-1"),
            dhcp_options: None,
        },
        Action::CreateVpc {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Dedicated,
            amazon_provided_ipv6_cidr_block: false,
            tags: tags.clone(),
        },
        Action::CreateVpc {
            cidr_block: cidr("10.1.0.0/16"),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: true,
            tags: Tags::new(),
        },
        Action::AssociateVpcCidrBlock { vpc: id("vpc-1") },
        Action::DisassociateVpcCidrBlock {
            association_id: "vpc-cidr-assoc-1".into(),
        },
        Action::ModifyVpcAttribute {
            vpc: pending("vpc"),
            attribute: VpcAttribute::EnableDnsSupport,
            value: false,
        },
        Action::ModifyVpcAttribute {
            vpc: id("vpc-1"),
            attribute: VpcAttribute::EnableDnsHostnames,
            value: true,
        },
        Action::DeleteVpc { vpc: id("vpc-1") },
        Action::CreateInternetGateway { tags: Tags::new() },
        Action::AttachInternetGateway {
            internet_gateway: pending("igw"),
            vpc: id("vpc-1"),
        },
        Action::DetachInternetGateway {
            internet_gateway: id("igw-1"),
            vpc: id("vpc-1"),
        },
        Action::DeleteInternetGateway {
            internet_gateway: id("igw-1"),
        },
        Action::AllocateAddress { tags: tags.clone() },
        Action::DisassociateAddress {
            association_id: "eipassoc-1".into(),
        },
        Action::ReleaseAddress {
            allocation: id("eipalloc-1"),
        },
        Action::CreateSubnet {
            vpc: pending("vpc"),
            cidr_block: cidr("10.0.1.0/24"),
            availability_zone: "us-west-2a".into(),
            ipv6_cidr_block: None,
            tags: tags.clone(),
        },
        Action::CreateSubnet {
            vpc: id("vpc-1"),
            cidr_block: cidr("10.0.2.0/24"),
            availability_zone: "us-west-2b".into(),
            ipv6_cidr_block: Some("2600:1f14:abc:de02::/64".parse().unwrap()),
            tags: Tags::new(),
        },
        Action::AssociateSubnetCidrBlock {
            subnet: id("subnet-1"),
            ipv6_cidr_block: "2600:1f14:abc:de03::/64".parse().unwrap(),
        },
        Action::DisassociateSubnetCidrBlock {
            association_id: "subnet-cidr-assoc-1".into(),
        },
        Action::ModifySubnetAttribute {
            subnet: id("subnet-1"),
            map_public_ip_on_launch: true,
        },
        Action::DeleteSubnet {
            subnet: id("subnet-1"),
        },
        Action::CreateNatGateway {
            subnet: pending("public-subnet"),
            allocation: Some(pending("nat-address")),
            tags: tags.clone(),
        },
        Action::CreateNatGateway {
            subnet: id("subnet-2"),
            allocation: None,
            tags: tags.clone(),
        },
        Action::DeleteNatGateway {
            nat_gateway: id("nat-1"),
        },
        Action::CreateEgressOnlyInternetGateway {
            vpc: pending("vpc"),
            tags: tags.clone(),
        },
        Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway: id("eigw-1"),
        },
        Action::CreateVpcPeeringConnection {
            vpc: pending("vpc"),
            peer_vpc: id("vpc-2"),
            tags: tags.clone(),
        },
        Action::AcceptVpcPeeringConnection {
            vpc_peering_connection: pending("pcx"),
        },
        Action::DeleteVpcPeeringConnection {
            vpc_peering_connection: id("pcx-1"),
        },
        Action::CreateRouteTable {
            vpc: id("vpc-1"),
            tags: tags.clone(),
        },
        Action::CreateVpcEndpoint {
            vpc: pending("vpc"),
            service: EndpointService::S3,
            endpoint_type: EndpointType::Gateway,
            route_tables: [pending("rtb"), id("rtb-2")].into_iter().collect(),
            subnets: BTreeSet::new(),
            security_groups: BTreeSet::new(),
            private_dns: false,
            policy: None,
            tags: tags.clone(),
        },
        Action::ModifyVpcEndpoint {
            vpc_endpoint: id("vpce-1"),
            add_route_tables: [pending("rtb")].into_iter().collect(),
            remove_route_tables: ["rtb-2".to_string()].into_iter().collect(),
            add_subnets: BTreeSet::new(),
            remove_subnets: BTreeSet::new(),
            add_security_groups: BTreeSet::new(),
            remove_security_groups: BTreeSet::new(),
            private_dns: None,
            policy: None,
            reset_policy: false,
        },
        Action::CreateVpcEndpoint {
            vpc: pending("vpc"),
            service: EndpointService::Ssm,
            endpoint_type: EndpointType::Interface,
            route_tables: BTreeSet::new(),
            subnets: [pending("subnet"), id("subnet-2")].into_iter().collect(),
            security_groups: [pending("sg")].into_iter().collect(),
            private_dns: true,
            policy: Some(r#"{"Statement":[{"Action":"ssm:*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#.to_string()),
            tags: tags.clone(),
        },
        Action::ModifyVpcEndpoint {
            vpc_endpoint: id("vpce-2"),
            add_route_tables: BTreeSet::new(),
            remove_route_tables: BTreeSet::new(),
            add_subnets: [pending("subnet")].into_iter().collect(),
            remove_subnets: ["subnet-2".to_string()].into_iter().collect(),
            add_security_groups: [id("sg-2")].into_iter().collect(),
            remove_security_groups: ["sg-1".to_string()].into_iter().collect(),
            private_dns: Some(false),
            policy: None,
            reset_policy: true,
        },
        Action::DeleteVpcEndpoint {
            vpc_endpoint: id("vpce-1"),
        },
        Action::CreateRoute {
            route_table: pending("rtb"),
            destination: IpCidr::V4(Ipv4Cidr::ANY),
            gateway: pending("igw"),
            hop: Hop::InternetGateway,
        },
        Action::CreateRoute {
            route_table: pending("private-rtb"),
            destination: IpCidr::V4(Ipv4Cidr::ANY),
            gateway: pending("nat"),
            hop: Hop::NatGateway,
        },
        Action::ReplaceRoute {
            route_table: id("rtb-1"),
            destination: IpCidr::V4(cidr("10.1.0.0/16")),
            gateway: id("igw-2"),
            hop: Hop::InternetGateway,
        },
        Action::CreateRoute {
            route_table: pending("rtb"),
            destination: IpCidr::V6(Ipv6Cidr::ANY),
            gateway: pending("eigw"),
            hop: Hop::EgressOnlyInternetGateway,
        },
        Action::ReplaceRoute {
            route_table: id("rtb-1"),
            destination: IpCidr::V4(cidr("10.2.0.0/16")),
            gateway: id("i-1"),
            hop: Hop::Instance,
        },
        Action::CreateRoute {
            route_table: pending("rtb"),
            destination: IpCidr::V4(cidr("10.1.0.0/16")),
            gateway: pending("pcx"),
            hop: Hop::VpcPeeringConnection,
        },
        Action::DeleteRoute {
            route_table: id("rtb-1"),
            destination: IpCidr::V6(Ipv6Cidr::ANY),
        },
        Action::DeleteRoute {
            route_table: id("rtb-1"),
            destination: IpCidr::V4(Ipv4Cidr::ANY),
        },
        Action::AssociateRouteTable {
            route_table: pending("rtb"),
            subnet: id("subnet-1"),
        },
        Action::DisassociateRouteTable {
            association_id: "rtbassoc-1".into(),
        },
        Action::DeleteRouteTable {
            route_table: id("rtb-1"),
        },
        Action::CreateNetworkAcl {
            vpc: pending("vpc"),
            tags: tags.clone(),
        },
        Action::CreateNetworkAclEntry {
            network_acl: pending("acl"),
            entry: AclEntry::new(
                false,
                100,
                Protocol::Tcp,
                AclAction::Allow,
                IpCidr::V4(Ipv4Cidr::ANY),
                (443, 443),
            ),
        },
        Action::ReplaceNetworkAclEntry {
            network_acl: id("acl-1"),
            entry: AclEntry::new(
                true,
                200,
                Protocol::Icmp,
                AclAction::Deny,
                IpCidr::V6(Ipv6Cidr::ANY),
                (8, -1),
            ),
        },
        Action::DeleteNetworkAclEntry {
            network_acl: id("acl-1"),
            egress: true,
            rule_number: 300,
        },
        Action::ReplaceNetworkAclAssociation {
            subnet: pending("subnet"),
            network_acl: Some(pending("acl")),
        },
        Action::ReplaceNetworkAclAssociation {
            subnet: id("subnet-1"),
            network_acl: None,
        },
        Action::DeleteNetworkAcl {
            network_acl: id("acl-1"),
        },
        Action::CreateSecurityGroup {
            vpc: pending("vpc"),
            group_name: "web".into(),
            description: "Allow http".into(),
            tags: tags.clone(),
        },
        Action::AuthorizeSecurityGroupIngress {
            group: pending("web"),
            rules: rules.clone(),
        },
        Action::RevokeSecurityGroupIngress {
            group: id("sg-1"),
            rules: rules.clone(),
        },
        Action::AuthorizeSecurityGroupEgress {
            group: id("sg-1"),
            rules: rules.clone(),
        },
        Action::RevokeSecurityGroupEgress {
            group: id("sg-1"),
            rules,
        },
        Action::DeleteSecurityGroup { group: id("sg-1") },
        Action::RunInstances {
            image_id: "ami-1".into(),
            instance_type: "t3.micro".into(),
            subnet: pending("subnet"),
            security_groups: groups.clone(),
            key_name: Some("sam".into()),
            user_data: Some("#!/bin/sh".into()),
            tags: tags.clone(),
        },
        Action::RunInstances {
            image_id: "ami-1".into(),
            instance_type: "t3.micro".into(),
            subnet: id("subnet-1"),
            security_groups: Default::default(),
            key_name: None,
            user_data: None,
            tags: Tags::new(),
        },
        Action::ModifyInstanceSecurityGroups {
            instance: id("i-1"),
            security_groups: groups,
        },
        Action::ModifyInstanceSourceDestCheck {
            instance: id("i-1"),
            enabled: false,
        },
        Action::TerminateInstances {
            instance: id("i-1"),
        },
        Action::CreateVolume {
            availability_zone: "us-west-2a".into(),
            size_gib: 100,
            volume_type: "io1".into(),
            iops: Some(400),
            encrypted: true,
            tags: tags.clone(),
        },
        Action::CreateVolume {
            availability_zone: "us-west-2b".into(),
            size_gib: 8,
            volume_type: "gp3".into(),
            iops: None,
            encrypted: false,
            tags: Tags::new(),
        },
        Action::ModifyVolume {
            volume: id("vol-1"),
            size_gib: 200,
            volume_type: "gp3".into(),
            iops: Some(4000),
        },
        Action::AttachVolume {
            volume: pending("data"),
            instance: id("i-1"),
            device: "/dev/sdf".into(),
        },
        Action::DetachVolume {
            volume: id("vol-1"),
            instance: id("i-1"),
        },
        Action::DeleteVolume {
            volume: id("vol-1"),
        },
        Action::CreateTags {
            resource: pending("vpc"),
            tags,
        },
        Action::DeleteTags {
            resource: id("vpc-1"),
            keys: ["Name".to_string(), "Owner".to_string()].into(),
        },
    ];
    let requests: Vec<serde_json::Value> = actions
        .into_iter()
        .map(|action| {
            Request {
                target: l("target"),
                part: None,
                region: Region::new("us-west-2"),
                action,
            }
            .to_json()
        })
        .collect();
    check_golden("every_action", &serde_json::Value::Array(requests));
}
