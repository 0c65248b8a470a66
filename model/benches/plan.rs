//! Planner throughput: plan every process of a fleet against one shared
//! observation, with 1% of resources drifted. Ten resources per process; the
//! fleet has 10k, 100k and 1M resources, to show the planner is linear.

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

/// One process: VPC, gateway, four subnets, route table, three groups.
fn process(n: u64, fleet_observed: &mut ObservedState, drift: bool) -> (DesiredState, Bindings) {
    let fid = Fid(uuid::Uuid::from_u128(u128::from(n) + 1));
    let mut d = DesiredState::empty(fid);
    let mut b = Bindings::new();
    let region = Region::new("us-west-2");
    let mut add = |path: &str, spec: DesiredSpec| -> LogicalId {
        let id = LogicalId::new(fid, path);
        d.insert(Resource {
            id,
            name: path.into(),
            region: region.clone(),
            spec,
        })
        .expect("unique");
        id
    };
    let tags = |name: &str| -> Tags { [("Name".to_string(), name.to_string())].into() };
    let vpc = add(
        "vpc",
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: true,
            dhcp_options: None,
            tags: tags("net"),
        }),
    );
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
                tags: tags("subnet"),
            }),
        )));
    }
    add(
        "rt",
        Spec::RouteTable(RouteTableSpec {
            vpc: Ref::Managed(vpc),
            routes: [Route {
                destination: canon_model::IpCidr::V4(Ipv4Cidr::ANY),
                target: Ref::Managed(igw),
            }]
            .into(),
            associations: subnets,
            tags: tags("rt"),
        }),
    );
    for g in 0..3 {
        let mut group = demo::web_group(Ref::Managed(vpc), format!("sg{g}"), &[80, 443]);
        group.tags = tags("sg");
        add(&format!("sg{g}"), Spec::SecurityGroup(group));
    }
    // The cloud as it would be after a run: same specs, cloud ids, tags.
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
        if let Spec::SecurityGroup(g) = &mut spec {
            if drift && r.name == "sg0" {
                g.ingress
                    .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
            }
        }
        let mut o = ObservedResource {
            cloud_id: b.cloud_id(&r.id).unwrap_or_default().to_string(),
            region: r.region.clone(),
            spec,
            association_ids: Default::default(),
            pending: false,
            life: None,
        };
        if let Spec::RouteTable(t) = &o.spec {
            o.association_ids = t
                .associations
                .iter()
                .map(|s| (s.clone(), format!("rtbassoc-{s}")))
                .collect();
        }
        fleet_observed.insert(o);
    }
    (d, b)
}

fn fleet(resources: u64) -> Fleet {
    let mut observed = ObservedState::new();
    let processes = (0..resources / 10)
        // One drifted resource in a hundred: every tenth process has one.
        .map(|n| process(n, &mut observed, n % 10 == 0))
        .collect();
    Fleet {
        processes,
        observed,
    }
}

fn plan_fleet(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_fleet");
    group.sample_size(10);
    for resources in [10_000u64, 100_000, 1_000_000] {
        let f = fleet(resources);
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

criterion_group!(benches, plan_fleet);
criterion_main!(benches);
