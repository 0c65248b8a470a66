//! Gateway VPC endpoints in the planner: made with their route tables in
//! one request, after the tables, a table taken off by hand put back with
//! one `ModifyVpcEndpoint`, tables declared and no longer declared changed
//! in one request, a deleted endpoint made again, a new service a new
//! endpoint, a kill deleting the endpoint before its tables and VPC, and a
//! route table of another VPC refused by `DesiredState::validate`.
//!
//! Interface endpoints: made with their subnets, groups, private DNS and
//! policy in one request (after the groups they name); a subnet and a
//! group taken off by hand put back with exactly one modify; the policy
//! changed and reset in place; a reformatted policy is no drift; and
//! what EC2 refuses (two subnets of one zone, private DNS without the
//! VPC's DNS, a subnet of another VPC, a gateway service as an
//! interface, a table routing one service from two gateways) refused by
//! `DesiredState::validate`.

mod support;

use canon_model::{
    plan, plan_kill, Action, Bindings, DesiredState, EndpointService, EndpointType, Fid, LogicalId,
    Ref, Region, RouteTableSpec, SecurityGroupSpec, Spec, StateError, SubnetSpec, Tags,
    VpcEndpointSpec, VpcSpec,
};
use support::reference::{check_converged, RefCloud};

fn fid() -> Fid {
    "3e8d1f52-6a0b-4c7e-9f14-2b5d8a6c0e31".parse().unwrap()
}

fn l(path: &str) -> LogicalId {
    LogicalId::new(fid(), path)
}

fn add(d: &mut DesiredState, path: &str, spec: Spec<Ref>) {
    support::declare(d, fid(), path, spec);
}

fn table(vpc: &str) -> Spec<Ref> {
    Spec::RouteTable(RouteTableSpec {
        interfaces: Default::default(),
        vpc: Ref::Managed(l(vpc)),
        routes: Default::default(),
        associations: Default::default(),
        tags: Tags::new(),
    })
}

fn endpoint(vpc: &str, service: EndpointService, tables: &[&str]) -> Spec<Ref> {
    Spec::VpcEndpoint(VpcEndpointSpec {
        vpc: Ref::Managed(l(vpc)),
        service,
        endpoint_type: EndpointType::Gateway,
        route_tables: tables.iter().map(|t| Ref::Managed(l(t))).collect(),
        subnets: Default::default(),
        security_groups: Default::default(),
        private_dns: false,
        policy: None,
        tags: [("Name".to_string(), "s3".to_string())].into(),
    })
}

/// A VPC with two tables and an endpoint to `service` routed from
/// `tables`.
fn declared(service: EndpointService, tables: &[&str]) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    add(&mut d, "a", support::plain_vpc("10.0.0.0/16"));
    add(&mut d, "a.rt1", table("a"));
    add(&mut d, "a.rt2", table("a"));
    add(&mut d, "a.vpce", endpoint("a", service, tables));
    d
}

fn types(p: &canon_model::Plan) -> Vec<&'static str> {
    p.requests.iter().map(|r| r.request_type()).collect()
}

fn converged(d: &DesiredState, cloud: &mut RefCloud, b: &mut Bindings) {
    let p = plan(d, &cloud.state, b);
    cloud.apply_plan(&p, b).unwrap();
    check_converged(d, &cloud.state, b).unwrap();
    assert!(plan(d, &cloud.state, b).is_empty());
}

#[test]
fn an_endpoint_is_made_after_its_tables_and_killed_before_them() {
    let d = declared(EndpointService::S3, &["a.rt1", "a.rt2"]);
    d.validate().unwrap();
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let p = plan(&d, &cloud.state, &b);
    let t = types(&p);
    let pos = |x: &str| t.iter().rposition(|y| *y == x).unwrap();
    assert!(pos("aws.ec2.create_route_table") < pos("aws.ec2.create_vpc_endpoint"));
    let create = p
        .requests
        .iter()
        .find(|r| r.request_type() == "aws.ec2.create_vpc_endpoint")
        .unwrap();
    assert_eq!(
        create.params()["ServiceName"],
        "com.amazonaws.us-west-2.s3",
        "{}",
        create.params()
    );
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert!(plan(&d, &cloud.state, &b).is_empty());

    let k = plan_kill(fid(), &cloud.state, &b);
    let t = types(&k);
    let pos = |x: &str| t.iter().position(|y| *y == x).unwrap();
    assert!(pos("aws.ec2.delete_vpc_endpoints") < pos("aws.ec2.delete_route_table"));
    assert!(pos("aws.ec2.delete_vpc_endpoints") < pos("aws.ec2.delete_vpc"));
    cloud.apply_plan(&k, &mut b).unwrap();
    assert_eq!(cloud.state.owned_by(fid()).count(), 0);
}

#[test]
fn a_table_taken_off_is_put_back_and_a_deleted_endpoint_made_again() {
    let d = declared(EndpointService::S3, &["a.rt1", "a.rt2"]);
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converged(&d, &mut cloud, &mut b);
    let e = b.cloud_id(&l("a.vpce")).unwrap().to_string();
    let rt2 = b.cloud_id(&l("a.rt2")).unwrap().to_string();

    // A console user takes rt2 off the endpoint: one modify adds it.
    let mut o = cloud.state.get(&e).unwrap().clone();
    if let Spec::VpcEndpoint(s) = &mut o.spec {
        s.route_tables.remove(&rt2);
    }
    cloud.state.insert(o);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    match &p.requests[0].action {
        Action::ModifyVpcEndpoint {
            add_route_tables,
            remove_route_tables,
            ..
        } => {
            assert_eq!(add_route_tables.len(), 1);
            assert!(remove_route_tables.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(p
        .differences
        .iter()
        .any(|x| x.property == "routeTables" && x.observed.is_none()));
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();

    // Deleted by hand: made again.
    cloud.state.remove(&e);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.create_vpc_endpoint"]);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
}

#[test]
fn tables_change_in_place_and_a_new_service_is_a_new_endpoint() {
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converged(
        &declared(EndpointService::S3, &["a.rt1"]),
        &mut cloud,
        &mut b,
    );
    let e = b.cloud_id(&l("a.vpce")).unwrap().to_string();

    // rt1 out, rt2 in: one request, the endpoint kept.
    let d = declared(EndpointService::S3, &["a.rt2"]);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert_eq!(b.cloud_id(&l("a.vpce")), Some(e.as_str()));

    // DynamoDB instead of S3: a new endpoint.
    let d = declared(EndpointService::DynamoDb, &["a.rt2"]);
    let p = plan(&d, &cloud.state, &b);
    let t = types(&p);
    assert!(t.contains(&"aws.ec2.create_vpc_endpoint"), "{t:?}");
    assert!(t.contains(&"aws.ec2.delete_vpc_endpoints"), "{t:?}");
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert_ne!(b.cloud_id(&l("a.vpce")), Some(e.as_str()));
}

#[test]
fn a_route_table_of_another_vpc_is_refused() {
    let mut d = declared(EndpointService::S3, &["a.rt1", "b.rt"]);
    add(&mut d, "b", support::plain_vpc("10.1.0.0/16"));
    add(&mut d, "b.rt", table("b"));
    match d.validate() {
        Err(StateError::EndpointRouteTableOtherVpc {
            id, route_table, ..
        }) => {
            assert_eq!(id, l("a.vpce"));
            assert_eq!(route_table, l("b.rt"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_service_names_of_a_region() {
    let r = Region::new("eu-west-1");
    assert_eq!(
        EndpointService::DynamoDb.service_name(&r),
        "com.amazonaws.eu-west-1.dynamodb"
    );
    for s in [EndpointService::S3, EndpointService::DynamoDb] {
        assert_eq!(
            EndpointService::from_service_name(&s.service_name(&r), &r),
            Some(s)
        );
    }
    let other = Region::new("us-east-1");
    assert_eq!(
        EndpointService::from_service_name("com.amazonaws.eu-west-1.s3", &other),
        None
    );
    assert_eq!(
        EndpointService::from_service_name("com.amazonaws.eu-west-1.sagemaker.api", &r),
        None
    );
    assert_eq!(
        EndpointService::from_service_name("com.amazonaws.eu-west-1.ecr.dkr", &r),
        Some(EndpointService::EcrDkr)
    );
    for s in EndpointService::ALL {
        assert_eq!(
            EndpointService::from_service_name(&s.service_name(&r), &r),
            Some(s)
        );
    }
    assert!(EndpointService::S3.offers(EndpointType::Interface));
    assert!(!EndpointService::Sqs.offers(EndpointType::Gateway));
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ssm:*","Resource":"*"}]}"#;

/// The same document as EC2 gives it back: its own spacing, keys in
/// another order.
const POLICY_REFORMATTED: &str = r#"{
  "Statement" : [ {
    "Resource" : "*", "Action" : "ssm:*", "Principal" : "*", "Effect" : "Allow"
  } ],
  "Version" : "2012-10-17"
}"#;

fn dns_vpc() -> Spec<Ref> {
    Spec::Vpc(VpcSpec {
        ipv6: false,
        ipv6_cidr_block: None,
        cidr_block: "10.0.0.0/16".parse().unwrap(),
        instance_tenancy: canon_model::Tenancy::Default,
        enable_dns_support: true,
        enable_dns_hostnames: true,
        dhcp_options: None,
        tags: Tags::new(),
    })
}

fn subnet(vpc: &str, block: &str, zone: &str) -> Spec<Ref> {
    Spec::Subnet(SubnetSpec {
        ipv6_index: None,
        ipv6_cidr_block: None,
        vpc: Ref::Managed(l(vpc)),
        cidr_block: block.parse().unwrap(),
        availability_zone: zone.into(),
        map_public_ip_on_launch: false,
        tags: Tags::new(),
    })
}

fn group(vpc: &str, name: &str) -> Spec<Ref> {
    Spec::SecurityGroup(SecurityGroupSpec {
        vpc: Ref::Managed(l(vpc)),
        group_name: name.into(),
        description: name.into(),
        ingress: Default::default(),
        egress: Default::default(),
        tags: Tags::new(),
    })
}

fn interface(subnets: &[&str], groups: &[&str], policy: Option<&str>) -> Spec<Ref> {
    Spec::VpcEndpoint(VpcEndpointSpec {
        vpc: Ref::Managed(l("a")),
        service: EndpointService::Ssm,
        endpoint_type: EndpointType::Interface,
        route_tables: Default::default(),
        subnets: subnets.iter().map(|t| Ref::Managed(l(t))).collect(),
        security_groups: groups.iter().map(|t| Ref::Managed(l(t))).collect(),
        private_dns: true,
        policy: policy.map(str::to_string),
        tags: Tags::new(),
    })
}

/// A VPC with DNS, subnets in zones a, b and a, two groups, and an SSM
/// interface endpoint in `subnets` with `groups`.
fn with_interface(subnets: &[&str], groups: &[&str], policy: Option<&str>) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    add(&mut d, "a", dns_vpc());
    add(&mut d, "a.s1", subnet("a", "10.0.1.0/24", "us-west-2a"));
    add(&mut d, "a.s2", subnet("a", "10.0.2.0/24", "us-west-2b"));
    add(&mut d, "a.s3", subnet("a", "10.0.3.0/24", "us-west-2a"));
    add(&mut d, "a.sg1", group("a", "sg1"));
    add(&mut d, "a.sg2", group("a", "sg2"));
    add(&mut d, "a.ssm", interface(subnets, groups, policy));
    d
}

#[test]
fn an_interface_endpoint_is_made_after_its_subnets_and_groups() {
    let d = with_interface(&["a.s1", "a.s2"], &["a.sg1"], Some(POLICY));
    d.validate().unwrap();
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let p = plan(&d, &cloud.state, &b);
    let t = types(&p);
    let pos = |x: &str| t.iter().rposition(|y| *y == x).unwrap();
    assert!(pos("aws.ec2.create_security_group") < pos("aws.ec2.create_vpc_endpoint"));
    assert!(pos("aws.ec2.create_subnet") < pos("aws.ec2.create_vpc_endpoint"));
    let create = p
        .requests
        .iter()
        .find(|r| r.request_type() == "aws.ec2.create_vpc_endpoint")
        .unwrap();
    let params = create.params();
    assert_eq!(params["VpcEndpointType"], "Interface", "{params}");
    assert_eq!(params["ServiceName"], "com.amazonaws.us-west-2.ssm");
    assert_eq!(params["SubnetIds"].as_array().unwrap().len(), 2);
    assert_eq!(params["SecurityGroupIds"].as_array().unwrap().len(), 1);
    assert_eq!(params["PrivateDnsEnabled"], true);
    assert!(params.get("RouteTableIds").is_none());
    let sent: serde_json::Value =
        serde_json::from_str(params["PolicyDocument"].as_str().unwrap()).unwrap();
    let declared: serde_json::Value = serde_json::from_str(POLICY).unwrap();
    assert_eq!(sent, declared);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert!(plan(&d, &cloud.state, &b).is_empty());

    let k = plan_kill(fid(), &cloud.state, &b);
    let t = types(&k);
    let pos = |x: &str| t.iter().position(|y| *y == x).unwrap();
    assert!(pos("aws.ec2.delete_vpc_endpoints") < pos("aws.ec2.delete_subnet"));
    assert!(pos("aws.ec2.delete_vpc_endpoints") < pos("aws.ec2.delete_security_group"));
    cloud.apply_plan(&k, &mut b).unwrap();
    assert_eq!(cloud.state.owned_by(fid()).count(), 0);
}

#[test]
fn a_subnet_and_a_group_taken_off_are_put_back_with_one_modify() {
    let d = with_interface(&["a.s1", "a.s2"], &["a.sg1", "a.sg2"], None);
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converged(&d, &mut cloud, &mut b);
    let e = b.cloud_id(&l("a.ssm")).unwrap().to_string();
    let s2 = b.cloud_id(&l("a.s2")).unwrap().to_string();
    let sg2 = b.cloud_id(&l("a.sg2")).unwrap().to_string();

    let mut o = cloud.state.get(&e).unwrap().clone();
    if let Spec::VpcEndpoint(s) = &mut o.spec {
        s.subnets.remove(&s2);
        s.security_groups.remove(&sg2);
        s.private_dns = false;
    }
    cloud.state.insert(o);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    match &p.requests[0].action {
        Action::ModifyVpcEndpoint {
            add_subnets,
            add_security_groups,
            remove_subnets,
            remove_security_groups,
            private_dns,
            ..
        } => {
            assert_eq!(add_subnets.len(), 1);
            assert_eq!(add_security_groups.len(), 1);
            assert!(remove_subnets.is_empty() && remove_security_groups.is_empty());
            assert_eq!(*private_dns, Some(true));
        }
        other => panic!("{other:?}"),
    }
    for property in ["subnets", "securityGroups", "privateDns"] {
        assert!(
            p.differences.iter().any(|x| x.property == property),
            "{property}: {:?}",
            p.differences
        );
    }
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert!(plan(&d, &cloud.state, &b).is_empty());

    // A subnet swapped for another (of another zone) and a group dropped
    // in the declaration: still one modify, the endpoint kept.
    let d = with_interface(&["a.s3", "a.s2"], &["a.sg2"], None);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert_eq!(b.cloud_id(&l("a.ssm")), Some(e.as_str()));
}

#[test]
fn the_policy_changes_in_place_and_is_compared_as_json() {
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let d = with_interface(&["a.s1"], &["a.sg1"], None);
    converged(&d, &mut cloud, &mut b);
    let e = b.cloud_id(&l("a.ssm")).unwrap().to_string();

    // A policy declared: set in place.
    let d = with_interface(&["a.s1"], &["a.sg1"], Some(POLICY));
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    assert!(p.requests[0].params().get("PolicyDocument").is_some());
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();

    // EC2 shows it reformatted: no drift, nothing to do.
    let mut o = cloud.state.get(&e).unwrap().clone();
    if let Spec::VpcEndpoint(s) = &mut o.spec {
        s.policy = Some(POLICY_REFORMATTED.to_string());
    }
    cloud.state.insert(o);
    let p = plan(&d, &cloud.state, &b);
    assert!(p.is_empty(), "{:?}", p.requests);

    // The policy removed from the declaration: reset to the default.
    let d = with_interface(&["a.s1"], &["a.sg1"], None);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.modify_vpc_endpoint"]);
    assert_eq!(p.requests[0].params()["ResetPolicy"], true);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();

    // EC2 shows its full-access default when none is set: no drift.
    let mut o = cloud.state.get(&e).unwrap().clone();
    if let Spec::VpcEndpoint(s) = &mut o.spec {
        s.policy = Some(
            r#"{"Statement":[{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}]}"#
                .to_string(),
        );
    }
    cloud.state.insert(o);
    assert!(plan(&d, &cloud.state, &b).is_empty());
}

#[test]
fn what_ec2_refuses_of_an_interface_endpoint_is_refused() {
    let d = with_interface(&["a.s1", "a.s3"], &["a.sg1"], None);
    match d.validate() {
        Err(StateError::EndpointSubnetsSameZone { zone, .. }) => assert_eq!(zone, "us-west-2a"),
        other => panic!("{other:?}"),
    }

    let mut d = with_interface(&["a.s1"], &["a.sg1"], None);
    add(&mut d, "a2", support::plain_vpc("10.0.0.0/16"));
    let mut e = d.resources[&l("a.ssm")].clone();
    if let Spec::VpcEndpoint(s) = &mut e.spec {
        s.vpc = Ref::Managed(l("a2"));
        s.subnets.clear();
        s.security_groups.clear();
    }
    d.resources.insert(e.id, e.clone());
    match d.validate() {
        Err(StateError::EndpointPrivateDnsWithoutVpcDns { vpc, .. }) => assert_eq!(vpc, l("a2")),
        other => panic!("{other:?}"),
    }
    if let Spec::VpcEndpoint(s) = &mut e.spec {
        s.private_dns = false;
        s.subnets.insert(Ref::Managed(l("a.s1")));
    }
    d.resources.insert(e.id, e.clone());
    match d.validate() {
        Err(StateError::EndpointSubnetOtherVpc { member, .. }) => assert_eq!(member, l("a.s1")),
        other => panic!("{other:?}"),
    }

    let mut d = with_interface(&["a.s1"], &["a.sg1"], None);
    if let Some(Spec::VpcEndpoint(s)) = d.resources.get_mut(&l("a.ssm")).map(|r| &mut r.spec) {
        s.service = EndpointService::DynamoDb;
    }
    assert!(matches!(
        d.validate(),
        Err(StateError::EndpointServiceType { .. })
    ));
}

#[test]
fn two_gateways_of_one_service_on_one_table_are_refused() {
    let mut d = declared(EndpointService::S3, &["a.rt1"]);
    add(
        &mut d,
        "a.vpce2",
        endpoint("a", EndpointService::S3, &["a.rt2", "a.rt1"]),
    );
    match d.validate() {
        Err(StateError::EndpointTableTwice { route_table, .. }) => {
            assert_eq!(route_table, l("a.rt1"))
        }
        other => panic!("{other:?}"),
    }
    // Another service on the same table is fine.
    let mut d = declared(EndpointService::S3, &["a.rt1"]);
    add(
        &mut d,
        "a.vpce2",
        endpoint("a", EndpointService::DynamoDb, &["a.rt1"]),
    );
    d.validate().unwrap();
}

/// A subnet or group an interface endpoint uses cannot be deleted while
/// the endpoint has it (EC2's `DependencyViolation`): one replaced, or no
/// longer declared, is taken off the endpoint before it goes; one that
/// must go before its replacement is made (the same block in another
/// zone) takes the endpoint with it, and both are made again.
#[test]
fn a_subnet_or_group_going_is_taken_off_the_endpoint_first() {
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let d = with_interface(&["a.s1", "a.s2"], &["a.sg1", "a.sg2"], None);
    converged(&d, &mut cloud, &mut b);
    // s2 and sg2 no longer declared at all.
    let mut d2 = with_interface(&["a.s1"], &["a.sg1"], None);
    d2.resources.remove(&l("a.s2"));
    d2.resources.remove(&l("a.sg2"));
    converged(&d2, &mut cloud, &mut b);
    // s1 replaced (a new block): the endpoint moves to the new subnet.
    let mut d3 = with_interface(&["a.s1"], &["a.sg1"], None);
    d3.resources.remove(&l("a.s2"));
    d3.resources.remove(&l("a.sg2"));
    if let Some(Spec::Subnet(s)) = d3.resources.get_mut(&l("a.s1")).map(|r| &mut r.spec) {
        s.cidr_block = "10.0.9.0/24".parse().unwrap();
    }
    converged(&d3, &mut cloud, &mut b);
    // s1 replaced in place of itself (another zone, the same block: the
    // old one must go before the new one is made).
    let mut d4 = d3.clone();
    if let Some(Spec::Subnet(s)) = d4.resources.get_mut(&l("a.s1")).map(|r| &mut r.spec) {
        s.availability_zone = "us-west-2c".into();
    }
    converged(&d4, &mut cloud, &mut b);
}
