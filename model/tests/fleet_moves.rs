//! A fleet whose subnet is replaced moves to the new one as its rollout
//! rules allow, and the old subnet is deleted only once no instance is
//! left in it (EC2 refuses `DeleteSubnet` while one is, so a plan that
//! deletes it earlier fails at every pass). Where the new subnet cannot
//! coexist with the old one (the same range in another zone), every
//! member goes at once: nothing else can make room.
//!
//! Applied against the reference EC2 interpreter (`support::reference`),
//! which refuses what EC2 refuses.

mod support;

use canon_model::{
    plan, Bindings, DesiredState, Fid, FleetMember, HealthCheck, InstanceSpec, Ipv4Cidr, LogicalId,
    Ref, Region, Resource, Spec, SubnetSpec, Tenancy, VpcSpec,
};
use support::reference::{check_converged, RefCloud};

fn fid() -> Fid {
    "5b0e1f0a-7c1d-4a8e-9f57-3a2d1c0b9e8f".parse().unwrap()
}

fn lid(name: &str) -> LogicalId {
    LogicalId::new(fid(), name)
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

/// A VPC, one subnet (`range`, `zone`) and a fleet of `count` members in
/// it that may surge by `surge` or go down by `unavailable`.
fn declared(range: &str, zone: &str, count: u32, surge: u32, unavailable: u32) -> DesiredState {
    let mut d = DesiredState::empty(fid());
    let mut put = |name: &str, spec: Spec<Ref>| {
        d.insert(Resource {
            id: lid(name),
            name: name.into(),
            region: Region::new("us-west-2"),
            spec,
        })
        .unwrap();
    };
    put(
        "vpc",
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: false,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags: Default::default(),
        }),
    );
    put(
        "subnet",
        Spec::Subnet(SubnetSpec {
            vpc: Ref::Managed(lid("vpc")),
            cidr_block: cidr(range),
            availability_zone: zone.into(),
            map_public_ip_on_launch: false,
            ipv6_index: None,
            ipv6_cidr_block: None,
            tags: Default::default(),
        }),
    );
    for index in 0..count {
        put(
            &format!("web.instances[{index}]"),
            Spec::Instance(InstanceSpec {
                image_id: "ami-1".into(),
                instance_type: "t3.micro".into(),
                subnet: Ref::Managed(lid("subnet")),
                key_name: None,
                user_data: None,
                security_groups: Default::default(),
                tags: Default::default(),
                max_age_secs: None,
                fleet: Some(FleetMember {
                    fleet: "web".into(),
                    index,
                    count,
                    max_surge: surge,
                    max_unavailable: unavailable,
                    health_check: HealthCheck::Ec2Status,
                    health_grace_secs: 300,
                }),
                source_dest_check: true,
            }),
        );
    }
    d
}

/// Plans and applies passes until the plan is empty; every pass must
/// apply. Returns how many passes it took.
fn converge(cloud: &mut RefCloud, d: &DesiredState, bindings: &mut Bindings) -> usize {
    for pass in 1..=50 {
        let p = plan(d, &cloud.state, bindings);
        if p.is_empty() {
            check_converged(d, &cloud.state, bindings).unwrap();
            return pass - 1;
        }
        cloud
            .apply_plan(&p, bindings)
            .unwrap_or_else(|e| panic!("pass {pass}: {e}\nplan: {p:#?}"));
    }
    panic!("no convergence in 50 passes");
}

fn subnets(cloud: &RefCloud) -> usize {
    cloud
        .state
        .iter()
        .filter(|r| matches!(r.spec, Spec::Subnet(_)))
        .count()
}

#[test]
fn a_fleet_moves_to_a_new_range_member_by_member() {
    for (count, surge, unavailable) in [(4, 1, 0), (4, 0, 1), (5, 2, 0), (3, 0, 2)] {
        let mut cloud = RefCloud::new();
        let mut b = Bindings::new();
        converge(
            &mut cloud,
            &declared("10.0.1.0/24", "us-west-2a", count, surge, unavailable),
            &mut b,
        );
        let moved = declared("10.0.2.0/24", "us-west-2a", count, surge, unavailable);
        let mut passes = 0;
        // Pass by pass, so the old subnet's life can be watched.
        loop {
            let p = plan(&moved, &cloud.state, &b);
            if p.is_empty() {
                break;
            }
            cloud.apply_plan(&p, &mut b).unwrap_or_else(|e| {
                panic!("count {count} surge {surge} unavailable {unavailable}, pass {passes}: {e}")
            });
            passes += 1;
            assert!(passes < 50, "no convergence");
        }
        check_converged(&moved, &cloud.state, &b).unwrap();
        assert_eq!(subnets(&cloud), 1, "the old subnet is gone");
        let per_pass = surge.max(unavailable);
        assert!(
            passes as u32 >= count.div_ceil(per_pass),
            "the fleet moved in {passes} passes: faster than {per_pass} members a pass allow"
        );
    }
}

#[test]
fn a_fleet_whose_range_moves_zone_goes_at_once() {
    let mut cloud = RefCloud::new();
    let mut b = Bindings::new();
    converge(
        &mut cloud,
        &declared("10.0.1.0/24", "us-west-2a", 4, 1, 0),
        &mut b,
    );
    let moved = declared("10.0.1.0/24", "us-west-2b", 4, 1, 0);
    let passes = converge(&mut cloud, &moved, &mut b);
    assert_eq!(
        passes, 1,
        "the same range cannot be in two subnets: one pass"
    );
    assert_eq!(subnets(&cloud), 1);
}
