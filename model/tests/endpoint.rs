//! Gateway VPC endpoints in the planner: made with their route tables in
//! one request, after the tables, a table taken off by hand put back with
//! one `ModifyVpcEndpoint`, tables declared and no longer declared changed
//! in one request, a deleted endpoint made again, a new service a new
//! endpoint, a kill deleting the endpoint before its tables and VPC, and a
//! route table of another VPC refused by `DesiredState::validate`.

mod support;

use std::collections::BTreeSet;

use canon_model::{
    plan, plan_kill, Action, Bindings, DesiredState, EndpointService, Fid, LogicalId, Ref, Region,
    RouteTableSpec, Spec, StateError, Tags, VpcEndpointSpec,
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
        routes: BTreeSet::new(),
        associations: BTreeSet::new(),
        tags: Tags::new(),
    })
}

fn endpoint(vpc: &str, service: EndpointService, tables: &[&str]) -> Spec<Ref> {
    Spec::VpcEndpoint(VpcEndpointSpec {
        vpc: Ref::Managed(l(vpc)),
        service,
        route_tables: tables.iter().map(|t| Ref::Managed(l(t))).collect(),
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
        EndpointService::from_service_name("com.amazonaws.eu-west-1.sqs", &r),
        None
    );
}
