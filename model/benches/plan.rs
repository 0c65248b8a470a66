//! Planner throughput: plan every process of a fleet against one shared
//! observation, with 1% of resources drifted. Ten resources per process; the
//! fleet has 10k, 100k and 1M resources, to show the planner is linear.
//! Two fleets: `plan_fleet`, the demo's kinds (VPC, gateway, subnets, route
//! table, groups; drift: a rogue rule), and `plan_mixed_fleet`, the kinds
//! issue #17 added (Elastic IP, NAT gateway, network ACL, an instance a
//! route goes through, an EBS volume; drift: a rogue ACL entry).

use std::collections::BTreeSet;
use std::hint::black_box;

use canon_model::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Fleet {
    processes: Vec<(DesiredState, Bindings)>,
    observed: ObservedState,
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().expect("bench cidr")
}

/// Declares `spec` at `path` (in us-west-2) in `d`; its id.
fn declare(d: &mut DesiredState, path: &str, spec: DesiredSpec) -> LogicalId {
    let id = LogicalId::new(d.fid, path);
    d.insert(Resource {
        id,
        name: path.into(),
        region: Region::new("us-west-2"),
        spec,
    })
    .expect("unique");
    id
}

/// A Name tag.
fn tags(name: &str) -> Tags {
    [("Name".to_string(), name.to_string())].into()
}

/// The VPC every process of both fleets declares.
fn vpc_spec() -> DesiredSpec {
    Spec::Vpc(VpcSpec {
        cidr_block: cidr("10.0.0.0/16"),
        instance_tenancy: Tenancy::Default,
        enable_dns_support: true,
        enable_dns_hostnames: true,
        ipv6: false,
        ipv6_cidr_block: None,
        dhcp_options: None,
        tags: tags("net"),
    })
}

/// One process: VPC, gateway, four subnets, route table, three groups.
fn process(n: u64, fleet_observed: &mut ObservedState, drift: bool) -> (DesiredState, Bindings) {
    let fid = Fid(uuid::Uuid::from_u128(u128::from(n) + 1));
    let mut d = DesiredState::empty(fid);
    let mut b = Bindings::new();
    let mut add = |path: &str, spec: DesiredSpec| declare(&mut d, path, spec);
    let vpc = add("vpc", vpc_spec());
    let igw = add(
        "igw",
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: Some(Ref::Managed(vpc)),
            tags: tags("igw"),
        }),
    );
    let mut subnets = BTreeSet::new();
    for i in 0..4 {
        subnets.insert(Ref::Managed(add(
            &format!("subnet{i}"),
            Spec::Subnet(SubnetSpec {
                vpc: Ref::Managed(vpc),
                cidr_block: cidr(&format!("10.0.{i}.0/24")),
                availability_zone: "us-west-2a".into(),
                map_public_ip_on_launch: true,
                ipv6_index: None,
                ipv6_cidr_block: None,
                tags: tags("subnet"),
            }),
        )));
    }
    add(
        "rt",
        Spec::RouteTable(RouteTableSpec {
            interfaces: Default::default(),
            vpc: Ref::Managed(vpc),
            routes: [Route {
                destination: canon_model::IpCidr::V4(Ipv4Cidr::ANY),
                target: Ref::Managed(igw),
            }]
            .into(),
            associations: subnets.into(),
            tags: tags("rt"),
        }),
    );
    for g in 0..3 {
        let mut group = demo::web_group(Ref::Managed(vpc), format!("sg{g}"), &[80, 443]);
        group.tags = tags("sg");
        add(&format!("sg{g}"), Spec::SecurityGroup(group));
    }
    observe_as_built(&d, &mut b, n, fleet_observed, |spec, name| {
        if let Spec::SecurityGroup(g) = spec {
            if drift && name == "sg0" {
                g.ingress
                    .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
            }
        }
    });
    (d, b)
}

/// Binds every resource of `d` to a cloud id and adds to `observed` the
/// cloud as it would be after a run: same specs, cloud ids, tags, and the
/// association ids route tables and ACLs show; `drift` changes a spec.
fn observe_as_built(
    d: &DesiredState,
    b: &mut Bindings,
    n: u64,
    fleet_observed: &mut ObservedState,
    drift: impl Fn(&mut ObservedSpec, &str),
) {
    for r in d.resources.values() {
        b.bind(
            r.id,
            format!("{}-{n:x}-{:x}", r.kind().name(), r.id.path.as_u128() as u32),
        );
    }
    for r in d.resources.values() {
        let mut spec = r.spec.map_refs(|x| match x {
            Ref::Managed(l) => b.cloud_id(l).unwrap_or_default().to_string(),
            Ref::External(c) => c.clone(),
        });
        spec.tags_mut()
            .insert(OWNERSHIP_TAG.into(), r.id.to_string());
        drift(&mut spec, &r.name);
        let mut o = ObservedResource {
            cloud_id: b.cloud_id(&r.id).unwrap_or_default().to_string(),
            region: r.region.clone(),
            spec,
            association_ids: Default::default(),
            pending: false,
            life: None,
        };
        match &o.spec {
            Spec::RouteTable(t) => {
                o.association_ids = t
                    .associations
                    .iter()
                    .map(|s| (s.clone(), format!("rtbassoc-{s}")))
                    .collect();
            }
            Spec::NetworkAcl(a) => {
                o.association_ids = a
                    .associations
                    .iter()
                    .map(|s| (s.clone(), format!("aclassoc-{s}")))
                    .collect();
            }
            _ => {}
        }
        fleet_observed.insert(o);
    }
}

/// One process of the newer kinds, `demo::mixed_network` (the heal
/// bench's mixed fleet is made of the same): a VPC and its internet
/// gateway, a public and a private subnet, an Elastic IP held by a NAT
/// gateway in the public subnet, the private subnet's route table
/// (0.0.0.0/0 through the NAT gateway, a partner range through an
/// instance), its network ACL, the instance, and an EBS volume attached
/// to it.
fn mixed_process(
    n: u64,
    fleet_observed: &mut ObservedState,
    drift: bool,
) -> (DesiredState, Bindings) {
    let fid = Fid(uuid::Uuid::from_u128(u128::from(n) + 1 + (1 << 64)));
    let d = demo::mixed_network(fid).expect("the mixed network is valid");
    let mut b = Bindings::new();
    observe_as_built(&d, &mut b, n, fleet_observed, |spec, _| {
        if let (Spec::NetworkAcl(a), true) = (spec, drift) {
            let mut rogue = demo::vpc_acl_entry(false, 1, AclAction::Allow);
            rogue.range = IpCidr::V4(Ipv4Cidr::ANY);
            a.entries.insert(rogue);
        }
    });
    (d, b)
}

/// A fleet of `resources` resources, ten a process, one in a hundred
/// drifted (every tenth process has one), made by `process`.
fn fleet(
    resources: u64,
    process: fn(u64, &mut ObservedState, bool) -> (DesiredState, Bindings),
) -> Fleet {
    let mut observed = ObservedState::new();
    let processes = (0..resources / 10)
        .map(|n| process(n, &mut observed, n % 10 == 0))
        .collect();
    Fleet {
        processes,
        observed,
    }
}

fn plan_fleet(c: &mut Criterion) {
    plan_group(c, "plan_fleet", process, &[10_000, 100_000, 1_000_000]);
}

fn plan_mixed_fleet(c: &mut Criterion) {
    plan_group(c, "plan_mixed_fleet", mixed_process, &[10_000, 100_000]);
}

/// Plans every process of fleets of each size of `sizes`, made by
/// `process`; each plan heals its one drifted resource with one request.
fn plan_group(
    c: &mut Criterion,
    name: &str,
    process: fn(u64, &mut ObservedState, bool) -> (DesiredState, Bindings),
    sizes: &[u64],
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for &resources in sizes {
        let f = fleet(resources, process);
        group.throughput(Throughput::Elements(resources));
        group.bench_with_input(BenchmarkId::from_parameter(resources), &f, |bench, f| {
            bench.iter(|| {
                let mut requests = 0;
                for (d, b) in &f.processes {
                    requests += plan(d, &f.observed, b).requests.len();
                }
                assert_eq!(requests as u64, resources / 100);
                black_box(requests)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, plan_fleet, plan_mixed_fleet);
criterion_main!(benches);
