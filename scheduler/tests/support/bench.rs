//! What the scheduler's benchmarks share: their settings from the
//! environment, a runtime like a node's, and how they summarise samples.
//! A benchmark prints one JSON object; these keep the binaries to what
//! each one measures.

use std::future::Future;
use std::str::FromStr;

use canon_model::*;

/// The setting `name` from the environment, or `default` when it is unset
/// or does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the benchmark `body` on a two-worker runtime (a node's, on these
/// two-core machines). `cargo bench` passes `--bench`; nothing else to
/// parse.
pub fn block_on<F: Future<Output = ()>>(body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(body);
}

/// The `p`th percentile (0–100) of the ascending `sorted`, nearest rank;
/// zero when there are no samples.
pub fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// `x` to two decimals, as the JSON reports it.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Process `fid` as the creation benchmarks declare it: a VPC as EC2
/// makes it by default, a subnet in it (`subnet`), and `groups` web groups
/// in it admitting `ports` — nothing a create leaves to a later call, so
/// the creates are the whole plan.
pub fn vpc_with_groups(fid: Fid, subnet: bool, groups: usize, ports: &[i32]) -> DesiredState {
    let vpc = Ref::Managed(LogicalId::new(fid, "vpc"));
    let mut specs = vec![(
        "vpc".to_string(),
        Spec::Vpc(VpcSpec {
            cidr_block: "10.0.0.0/16".parse().expect("cidr"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: false,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags: Tags::new(),
        }),
    )];
    if subnet {
        specs.push((
            "subnet".to_string(),
            Spec::Subnet(SubnetSpec {
                vpc: vpc.clone(),
                cidr_block: "10.0.1.0/24".parse().expect("cidr"),
                availability_zone: "us-west-2a".into(),
                map_public_ip_on_launch: false,
                ipv6_index: None,
                ipv6_cidr_block: None,
                tags: Tags::new(),
            }),
        ));
    }
    for g in 0..groups {
        specs.push((
            format!("sg{g}"),
            Spec::SecurityGroup(demo::web_group(vpc.clone(), format!("sg{g}"), ports)),
        ));
    }
    demo::declaration(fid, specs).expect("a valid process")
}
