//! What one observed resource costs in an observation (issue #19, memory
//! per node): every node holds its scope's latest observation, every
//! resource Canon owns there, so at 100,000 processes of ten resources a
//! node holds a million of them. Live heap bytes are counted by a global
//! allocator that wraps the system's (this test binary's own).

use canon_model::live_heap::{live_bytes, CountingAllocator};
use std::collections::BTreeMap;

use canon_model::{
    Fid, Ipv4Cidr, LogicalId, ObservedResource, ObservedState, Peer, Protocol, Region, Rule,
    SecurityGroupSpec, Spec, Tags, OWNERSHIP_TAG,
};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A security group as a describe shows the scale bench's: https in,
/// all out, the ownership tag of one of `fid`'s resources.
fn group(i: usize, fid: Fid) -> ObservedResource {
    let owner = LogicalId::new(fid, &format!("groups[{i}]"));
    let tags = Tags::from([(OWNERSHIP_TAG.to_string(), owner.to_string())]);
    ObservedResource {
        cloud_id: format!("sg-{i:08x}"),
        region: Region::new("us-west-2"),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: "vpc-3e9e5e59".to_string(),
            group_name: format!("canon-{i}"),
            description: "bench group".to_string(),
            ingress: [Rule::new(
                Protocol::Tcp,
                443,
                443,
                Peer::Cidr(Ipv4Cidr::ANY),
            )]
            .into(),
            egress: [Rule::allow_all_egress()].into(),
            tags,
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: None,
    }
}

/// The bytes an observation holds a resource by, beyond the resource's
/// own allocations (its spec's strings, rule sets and tags), when the
/// resources arrive as a describe pages them: in cloud id order.
#[test]
fn an_observation_holds_a_resource_in_little_more_than_its_own_bytes() {
    let n = 20_000;
    let before = live_bytes();
    // Ten resources a process, as the scale bench's.
    let fids: Vec<Fid> = (0..n / 10).map(|_| Fid::random()).collect();
    let resources: Vec<ObservedResource> = (0..n).map(|i| group(i, fids[i / 10])).collect();
    // What the resources own on the heap (strings, rule sets, tags), not
    // the vector's slots they sit in here.
    let own =
        live_bytes() - before - resources.capacity() * std::mem::size_of::<ObservedResource>();
    let mut observed = ObservedState::new();
    for r in resources {
        observed.insert(r);
    }
    let held = live_bytes() - before - own;
    let per_resource = held / n;
    eprintln!(
        "a resource owns {} bytes; an observation holds it by {per_resource} more",
        own / n
    );
    assert_eq!(observed.len(), n);
    // The map's slot (key, pointer), the key's copy, and the owner index.
    assert!(
        per_resource <= 560,
        "{per_resource} bytes a resource: the map's slots hold whole resources"
    );
    // Its spec's rule sets and tags hold one entry each: sorted vectors of
    // exactly that, not B-tree leaves of eleven slots (2,682 bytes in all
    // with those, 874 without: debug build, 2026-12-06).
    let total = own / n + per_resource;
    assert!(
        total <= 1_100,
        "a security group costs {total} bytes in an observation: its sets and tags hold empty slots"
    );
}
