//! VPC peering connections in the planner: requested and accepted in one
//! plan, routes through one waiting until it is active, a connection the
//! cloud shows unaccepted accepted again, a deleted one made again, and
//! the declarations EC2 refuses (a VPC peered with itself, overlapping
//! blocks) refused by `DesiredState::validate`.

mod support;

use canon_model::{
    plan, plan_kill, Action, Bindings, DesiredState, Fid, IpCidr, LogicalId, Ref, Route,
    RouteTableSpec, Spec, StateError, Tags, VpcPeeringConnectionSpec,
};
use support::reference::{check_converged, RefCloud};

fn fid() -> Fid {
    "7b0c5a8e-2f41-4d6b-9c3e-5a1f0e7d2c94".parse().unwrap()
}

fn l(path: &str) -> LogicalId {
    LogicalId::new(fid(), path)
}

fn add(d: &mut DesiredState, path: &str, spec: Spec<Ref>) {
    support::declare(d, fid(), path, spec);
}

fn peering(vpc: &str, peer: &str) -> Spec<Ref> {
    Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
        vpc: Ref::Managed(l(vpc)),
        peer_vpc: Ref::Managed(l(peer)),
        accepted: true,
        tags: [("Name".to_string(), "a-to-b".to_string())].into(),
    })
}

/// Two VPCs, peered, and a route in the first's table to the second's
/// block through the connection.
fn declared(a: &str, b: &str) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    add(&mut d, "a", support::plain_vpc(a));
    add(&mut d, "b", support::plain_vpc(b));
    add(&mut d, "pcx", peering("a", "b"));
    add(
        &mut d,
        "a.rt",
        Spec::RouteTable(RouteTableSpec {
            interfaces: Default::default(),
            vpc: Ref::Managed(l("a")),
            routes: [Route {
                destination: IpCidr::V4(b.parse().unwrap()),
                target: Ref::Managed(l("pcx")),
            }]
            .into(),
            associations: Default::default(),
            tags: Tags::new(),
        }),
    );
    d
}

fn types(p: &canon_model::Plan) -> Vec<&'static str> {
    p.requests.iter().map(|r| r.request_type()).collect()
}

#[test]
fn a_peering_is_requested_and_accepted_and_its_route_waits_until_it_is_active() {
    let d = declared("10.0.0.0/16", "10.1.0.0/16");
    d.validate().unwrap();
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let p = plan(&d, &cloud.state, &b);
    let t = types(&p);
    let create = t
        .iter()
        .position(|x| *x == "aws.ec2.create_vpc_peering_connection");
    let accept = t
        .iter()
        .position(|x| *x == "aws.ec2.accept_vpc_peering_connection");
    assert!(create.is_some() && create < accept, "{t:?}");
    assert!(!t.contains(&"aws.ec2.create_route"), "{t:?}");
    assert_eq!(p.waiting.len(), 1, "{:?}", p.waiting);
    assert_eq!(p.waiting[0].on, l("pcx"));
    cloud.apply_plan(&p, &mut b).unwrap();
    cloud.settle();
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.create_route"]);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert!(plan(&d, &cloud.state, &b).is_empty());

    // A kill deletes the table (and its route) before the connection,
    // and the connection before its VPCs.
    let k = plan_kill(fid(), &cloud.state, &b);
    let t = types(&k);
    let pos = |x: &str| t.iter().position(|y| *y == x).unwrap();
    assert!(pos("aws.ec2.delete_route_table") < pos("aws.ec2.delete_vpc_peering_connection"));
    assert!(pos("aws.ec2.delete_vpc_peering_connection") < pos("aws.ec2.delete_vpc"));
    cloud.apply_plan(&k, &mut b).unwrap();
    assert_eq!(cloud.state.owned_by(fid()).count(), 0);
}

#[test]
fn an_unaccepted_peering_is_accepted_and_a_deleted_one_made_again() {
    let d = declared("10.0.0.0/16", "10.1.0.0/16");
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    for _ in 0..2 {
        let p = plan(&d, &cloud.state, &b);
        cloud.apply_plan(&p, &mut b).unwrap();
        cloud.settle();
    }
    check_converged(&d, &cloud.state, &b).unwrap();
    let pcx = b.cloud_id(&l("pcx")).unwrap().to_string();

    // Seen waiting for acceptance (as after a crash between the two
    // calls): accepted in place, a difference in its status.
    let mut o = cloud.state.get(&pcx).unwrap().clone();
    if let Spec::VpcPeeringConnection(s) = &mut o.spec {
        s.accepted = false;
    }
    o.pending = true;
    cloud.state.insert(o);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.accept_vpc_peering_connection"]);
    assert!(p.differences.iter().any(|x| x.property == "status"
        && x.declared.as_deref() == Some("active")
        && x.observed.as_deref() == Some("pending-acceptance")));
    cloud.apply_plan(&p, &mut b).unwrap();
    cloud.settle();
    assert!(plan(&d, &cloud.state, &b).is_empty());

    // Deleted by hand (its route left a black hole): a new connection,
    // and the route through it once it is active.
    cloud.state.remove(&pcx);
    let p = plan(&d, &cloud.state, &b);
    let t = types(&p);
    assert!(
        t.contains(&"aws.ec2.create_vpc_peering_connection"),
        "{t:?}"
    );
    assert!(
        t.contains(&"aws.ec2.accept_vpc_peering_connection"),
        "{t:?}"
    );
    cloud.apply_plan(&p, &mut b).unwrap();
    cloud.settle();
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.replace_route"]);
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    assert_ne!(b.cloud_id(&l("pcx")).unwrap(), pcx);
}

#[test]
fn changed_tags_are_healed_and_a_new_peer_is_a_new_connection() {
    let d = declared("10.0.0.0/16", "10.1.0.0/16");
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    for _ in 0..2 {
        let p = plan(&d, &cloud.state, &b);
        cloud.apply_plan(&p, &mut b).unwrap();
        cloud.settle();
    }
    let pcx = b.cloud_id(&l("pcx")).unwrap().to_string();
    let mut o = cloud.state.get(&pcx).unwrap().clone();
    o.spec
        .tags_mut()
        .insert("Name".into(), "changed-by-hand".into());
    cloud.state.insert(o);
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.create_tags"]);

    let mut moved = declared("10.0.0.0/16", "10.1.0.0/16");
    add(&mut moved, "c", support::plain_vpc("10.2.0.0/16"));
    moved.resources.get_mut(&l("pcx")).unwrap().spec = peering("a", "c");
    let p = plan(&moved, &cloud.state, &b);
    let t = types(&p);
    assert!(
        t.contains(&"aws.ec2.create_vpc_peering_connection"),
        "{t:?}"
    );
    assert!(
        t.contains(&"aws.ec2.delete_vpc_peering_connection"),
        "{t:?}"
    );
}

#[test]
fn a_vpc_peered_with_itself_is_refused() {
    let mut d = declared("10.0.0.0/16", "10.1.0.0/16");
    d.resources.get_mut(&l("pcx")).unwrap().spec = peering("a", "a");
    assert!(
        matches!(d.validate(), Err(StateError::SelfPeering { id }) if id == l("pcx")),
        "{:?}",
        d.validate()
    );
}

#[test]
fn overlapping_blocks_are_refused_naming_both() {
    let d = declared("10.0.0.0/16", "10.0.128.0/17");
    let err = d.validate().unwrap_err();
    assert!(
        matches!(&err, StateError::PeeringOverlap { id, .. } if *id == l("pcx")),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("10.0.0.0/16") && text.contains("10.0.128.0/17"),
        "{text}"
    );
}

#[test]
fn dry_run_params_name_ec2s_parameters() {
    let d = declared("10.0.0.0/16", "10.1.0.0/16");
    let p = plan(&d, &RefCloud::new().state, &Bindings::new());
    let create = p
        .requests
        .iter()
        .find(|r| matches!(r.action, Action::CreateVpcPeeringConnection { .. }))
        .unwrap();
    let params = create.params();
    assert!(
        params.get("VpcId").is_some() && params.get("PeerVpcId").is_some(),
        "{params}"
    );
}
