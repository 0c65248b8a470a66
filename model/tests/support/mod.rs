//! Test support: a reference interpreter of EC2 semantics over
//! `ObservedState`, and generators of random declarations and drift.

#![allow(dead_code)]

pub mod gen;
pub mod reference;

use canon_model::{
    DesiredState, Fid, LogicalId, Ref, Region, Resource, Spec, Tags, Tenancy, VpcSpec,
};

/// Declares `spec` at `path` of process `fid`, in us-west-2.
pub fn declare(d: &mut DesiredState, fid: Fid, path: &str, spec: Spec<Ref>) {
    d.insert(Resource {
        id: LogicalId::new(fid, path),
        name: path.into(),
        region: Region::new("us-west-2"),
        spec,
    })
    .expect("a valid declaration");
}

/// A VPC of `block` with EC2's defaults and no tags.
pub fn plain_vpc(block: &str) -> Spec<Ref> {
    Spec::Vpc(VpcSpec {
        cidr_block: block.parse().expect("a CIDR block"),
        instance_tenancy: Tenancy::Default,
        enable_dns_support: true,
        enable_dns_hostnames: false,
        ipv6: false,
        ipv6_cidr_block: None,
        dhcp_options: None,
        tags: Tags::new(),
    })
}
