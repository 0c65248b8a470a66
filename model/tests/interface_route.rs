//! Routes through a network interface Canon does not manage in the
//! planner. EC2 shows a route made through an interface that is attached
//! to an instance as going to the instance, with the interface beside it:
//! either counts as the declared route, so a converged table plans
//! nothing; a missing route is made with `NetworkInterfaceId`; one
//! through something else is replaced.

mod support;

use canon_model::{
    plan, Action, Bindings, DesiredState, Fid, Hop, IpCidr, LogicalId, ObservedResource,
    ObservedState, Ref, Region, Route, RouteTableSpec, Spec, Tags, OWNERSHIP_TAG,
};

fn fid() -> Fid {
    "5c2f6e1a-9b3d-4f7e-8a21-0d4c6b8e2f13".parse().unwrap()
}

fn l(path: &str) -> LogicalId {
    LogicalId::new(fid(), path)
}

const ENI: &str = "eni-0a1b2c3d4e5f60718";
const INSTANCE: &str = "i-0fedcba9876543210";

fn partner() -> IpCidr {
    IpCidr::V4("192.0.2.0/24".parse().unwrap())
}

/// A VPC and a table routing the partner range through [`ENI`].
fn declared() -> DesiredState {
    let mut d = DesiredState::empty(fid());
    support::declare(&mut d, fid(), "vpc", support::plain_vpc("10.0.0.0/16"));
    let table = Spec::RouteTable(RouteTableSpec {
        vpc: Ref::Managed(l("vpc")),
        routes: [Route {
            destination: partner(),
            target: Ref::External(ENI.into()),
        }]
        .into(),
        associations: Default::default(),
        interfaces: Default::default(),
        tags: Tags::new(),
    });
    support::declare(&mut d, fid(), "rt", table);
    d
}

/// The cloud holding `d` as built, the table's routes as `routes` (target,
/// interface beside it).
fn cloud(d: &DesiredState, routes: &[(&str, Option<&str>)]) -> (ObservedState, Bindings) {
    let mut b = Bindings::new();
    b.bind(l("vpc"), "vpc-0123456789abcdef0");
    b.bind(l("rt"), "rtb-0123456789abcdef0");
    let mut observed = ObservedState::new();
    for r in d.resources.values() {
        let mut spec = r.spec.map_refs(|x| match x {
            Ref::Managed(id) => b.cloud_id(id).unwrap_or_default().to_string(),
            Ref::External(c) => c.clone(),
        });
        if let Spec::RouteTable(t) = &mut spec {
            t.routes = routes
                .iter()
                .map(|(target, _)| Route {
                    destination: partner(),
                    target: target.to_string(),
                })
                .collect();
            t.interfaces = routes
                .iter()
                .filter_map(|(_, eni)| Some((partner(), eni.as_ref()?.to_string())))
                .collect();
        }
        spec.tags_mut()
            .insert(OWNERSHIP_TAG.into(), r.id.to_string());
        observed.insert(ObservedResource {
            cloud_id: b.cloud_id(&r.id).unwrap().to_string(),
            region: Region::new("us-west-2"),
            spec,
            association_ids: Default::default(),
            pending: false,
            life: None,
        });
    }
    (observed, b)
}

#[test]
fn a_route_read_back_as_the_interface_or_as_its_instance_is_the_declared_one() {
    let d = declared();
    d.validate().unwrap();
    for shown in [(ENI, None), (INSTANCE, Some(ENI))] {
        let (observed, b) = cloud(&d, &[shown]);
        let p = plan(&d, &observed, &b);
        assert!(p.is_empty(), "{shown:?}: {:#}", p.to_json());
    }
}

#[test]
fn a_missing_route_is_made_through_the_interface() {
    let d = declared();
    let (observed, b) = cloud(&d, &[]);
    let p = plan(&d, &observed, &b);
    let actions: Vec<&Action> = p.requests.iter().map(|r| &r.action).collect();
    match actions.as_slice() {
        [Action::CreateRoute {
            destination,
            gateway,
            hop,
            ..
        }] => {
            assert_eq!(*destination, partner());
            assert_eq!(gateway.to_string(), ENI);
            assert_eq!(*hop, Hop::NetworkInterface);
            assert_eq!(hop.param(), "NetworkInterfaceId");
        }
        other => panic!("one CreateRoute: {other:?}"),
    }
}

#[test]
fn a_route_through_another_instance_or_interface_is_replaced() {
    let d = declared();
    for shown in [
        ("i-0aaaaaaaaaaaaaaaa", Some("eni-0bbbbbbbbbbbbbbbb")),
        ("eni-0cccccccccccccccc", None),
    ] {
        let (observed, b) = cloud(&d, &[shown]);
        let p = plan(&d, &observed, &b);
        let replaced = p.requests.iter().any(|r| {
            matches!(&r.action, Action::ReplaceRoute { gateway, hop: Hop::NetworkInterface, .. }
                if gateway.to_string() == ENI)
        });
        assert!(replaced, "{shown:?}: {:#}", p.to_json());
        assert_eq!(p.requests.len(), 1, "{:#}", p.to_json());
    }
}
