//! VPC IPv6 in the planner: a VPC created with an Amazon-provided `/56`
//! and its subnets' `/64`s taken once the block is known (a later pass), a
//! `/56` added to and taken from a kept VPC in place (its subnets' `/64`s
//! given back first), a `/64` a rogue operator took away put back, and a
//! subnet moved to another number.

mod support;

use canon_model::{
    plan, plan_kill, Action, Bindings, DesiredState, Fid, LogicalId, Ref, Spec, SubnetSpec, Tags,
    IPV6_ASSOCIATION,
};
use support::reference::{check_converged, RefCloud};

fn fid() -> Fid {
    "5d1e6a3c-8b2f-4e7a-9c10-2f6b3d4e5a71".parse().unwrap()
}

fn l(path: &str) -> LogicalId {
    LogicalId::new(fid(), path)
}

fn subnet(cidr: &str, ipv6_index: Option<u8>) -> Spec<Ref> {
    Spec::Subnet(SubnetSpec {
        vpc: Ref::Managed(l("vpc")),
        cidr_block: cidr.parse().unwrap(),
        availability_zone: "us-west-2a".into(),
        map_public_ip_on_launch: false,
        ipv6_index,
        ipv6_cidr_block: None,
        tags: Tags::new(),
    })
}

/// A VPC (with IPv6 or not) and two subnets with the given `/64` numbers.
fn declared(ipv6: bool, a: Option<u8>, b: Option<u8>) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    let mut vpc = support::plain_vpc("10.0.0.0/16");
    if let Spec::Vpc(v) = &mut vpc {
        v.ipv6 = ipv6;
    }
    support::declare(&mut d, fid(), "vpc", vpc);
    support::declare(&mut d, fid(), "a", subnet("10.0.1.0/24", a));
    support::declare(&mut d, fid(), "b", subnet("10.0.2.0/24", b));
    d
}

fn types(p: &canon_model::Plan) -> Vec<&'static str> {
    p.requests.iter().map(|r| r.request_type()).collect()
}

/// Plans and applies until nothing waits (at most three passes), then
/// checks convergence and that planning again finds nothing.
fn converge(d: &DesiredState, cloud: &mut RefCloud, b: &mut Bindings) {
    for _ in 0..3 {
        let p = plan(d, &cloud.state, b);
        cloud.apply_plan(&p, b).unwrap();
        cloud.settle();
        if p.waiting.is_empty() {
            break;
        }
    }
    check_converged(d, &cloud.state, b).unwrap();
    let again = plan(d, &cloud.state, b);
    assert!(
        again.is_empty() && again.differences.is_empty(),
        "{:?}",
        again.to_json()
    );
}

fn observed_subnet(cloud: &RefCloud, b: &Bindings, path: &str) -> SubnetSpec<String> {
    let cid = b.cloud_id(&l(path)).unwrap();
    match &cloud.state.get(cid).unwrap().spec {
        Spec::Subnet(s) => s.clone(),
        other => panic!("{other:?}"),
    }
}

fn vpc_block(cloud: &RefCloud, b: &Bindings) -> canon_model::Ipv6Cidr {
    let cid = b.cloud_id(&l("vpc")).unwrap();
    match &cloud.state.get(cid).unwrap().spec {
        Spec::Vpc(v) => v.ipv6_cidr_block.expect("the VPC has its /56"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_ipv6_vpc_is_made_with_its_56_and_its_subnets_take_their_64s_next_pass() {
    let d = declared(true, Some(0), Some(7));
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    let p = plan(&d, &cloud.state, &b);
    let create_vpc = p
        .requests
        .iter()
        .find(|r| matches!(r.action, Action::CreateVpc { .. }))
        .unwrap();
    assert!(matches!(
        create_vpc.action,
        Action::CreateVpc {
            amazon_provided_ipv6_cidr_block: true,
            ..
        }
    ));
    // The /56 is EC2's pick: the subnets are made without their /64s and
    // wait for it.
    assert!(p.requests.iter().all(|r| !matches!(
        r.action,
        Action::CreateSubnet {
            ipv6_cidr_block: Some(_),
            ..
        }
    )));
    assert_eq!(p.waiting.len(), 2, "{:?}", p.waiting);
    assert!(p.waiting.iter().all(|w| w.on == l("vpc")));
    cloud.apply_plan(&p, &mut b).unwrap();
    let p = plan(&d, &cloud.state, &b);
    assert_eq!(
        types(&p),
        [
            "aws.ec2.associate_subnet_cidr_block",
            "aws.ec2.associate_subnet_cidr_block"
        ]
    );
    assert!(p.waiting.is_empty());
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
    let block = vpc_block(&cloud, &b);
    assert_eq!(
        observed_subnet(&cloud, &b, "b").ipv6_cidr_block,
        block.subnet64(7)
    );
    assert!(plan(&d, &cloud.state, &b).is_empty());
}

#[test]
fn a_subnet_of_a_vpc_that_has_its_56_is_created_with_its_64() {
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converge(&declared(true, Some(1), None), &mut cloud, &mut b);
    let mut d = declared(true, Some(1), None);
    support::declare(&mut d, fid(), "c", subnet("10.0.3.0/24", Some(2)));
    let p = plan(&d, &cloud.state, &b);
    let want = vpc_block(&cloud, &b).subnet64(2);
    assert!(
        p.requests.iter().any(|r| matches!(
            &r.action,
            Action::CreateSubnet { ipv6_cidr_block, .. } if *ipv6_cidr_block == want
        )),
        "{:?}",
        p.to_json()
    );
    assert!(p.waiting.is_empty());
    cloud.apply_plan(&p, &mut b).unwrap();
    check_converged(&d, &cloud.state, &b).unwrap();
}

#[test]
fn ipv6_is_added_to_a_kept_vpc_and_taken_away_again_in_place() {
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converge(&declared(false, None, None), &mut cloud, &mut b);
    let vpc_id = b.cloud_id(&l("vpc")).unwrap().to_string();

    // On: the VPC is kept, its /56 associated, then the subnets' /64s.
    let on = declared(true, Some(3), None);
    let p = plan(&on, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.associate_vpc_cidr_block"]);
    assert!(p.differences.iter().any(|x| x.property == "ipv6"));
    converge(&on, &mut cloud, &mut b);
    assert_eq!(b.cloud_id(&l("vpc")).unwrap(), vpc_id, "kept, not replaced");

    // Off: the subnet gives its /64 back before the VPC lets its /56 go.
    let off = declared(false, None, None);
    let p = plan(&off, &cloud.state, &b);
    assert_eq!(
        types(&p),
        [
            "aws.ec2.disassociate_subnet_cidr_block",
            "aws.ec2.disassociate_vpc_cidr_block"
        ]
    );
    converge(&off, &mut cloud, &mut b);
    assert_eq!(b.cloud_id(&l("vpc")).unwrap(), vpc_id, "kept, not replaced");
    let vpc = cloud.state.get(&vpc_id).unwrap();
    assert!(!vpc.association_ids.contains_key(IPV6_ASSOCIATION));

    // And on again: a fresh /56.
    converge(&declared(true, None, Some(9)), &mut cloud, &mut b);
}

#[test]
fn a_64_taken_away_by_hand_is_put_back_and_a_renumbered_subnet_moves() {
    let d = declared(true, Some(4), Some(5));
    let (mut cloud, mut b) = (RefCloud::new(), Bindings::new());
    converge(&d, &mut cloud, &mut b);
    let cid = b.cloud_id(&l("a")).unwrap().to_string();
    let mut r = cloud.state.get(&cid).unwrap().clone();
    if let Spec::Subnet(s) = &mut r.spec {
        s.ipv6_cidr_block = None;
    }
    r.association_ids.remove(IPV6_ASSOCIATION);
    cloud.state.insert(r);

    let p = plan(&d, &cloud.state, &b);
    assert_eq!(types(&p), ["aws.ec2.associate_subnet_cidr_block"]);
    let drift: Vec<_> = p.differences.iter().map(|x| x.property.as_str()).collect();
    assert_eq!(drift, ["ipv6Index"]);
    converge(&d, &mut cloud, &mut b);

    // Renumbered: the old /64 goes before the new one comes (a subnet
    // holds one), and the subnet is kept.
    let moved = declared(true, Some(6), Some(5));
    let p = plan(&moved, &cloud.state, &b);
    assert_eq!(
        types(&p),
        [
            "aws.ec2.disassociate_subnet_cidr_block",
            "aws.ec2.associate_subnet_cidr_block"
        ]
    );
    converge(&moved, &mut cloud, &mut b);
    assert_eq!(b.cloud_id(&l("a")).unwrap(), cid);

    // Two subnets swap numbers: each gives its /64 back before either
    // takes the other's.
    let swapped = declared(true, Some(5), Some(6));
    converge(&swapped, &mut cloud, &mut b);

    let k = plan_kill(fid(), &cloud.state, &b);
    cloud.apply_plan(&k, &mut b).unwrap();
    assert_eq!(cloud.state.owned_by(fid()).count(), 0);
}
