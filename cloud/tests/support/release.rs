//! The release conformance case both clouds must pass: `canon release`
//! removes the ownership tag from every resource a process owns, one
//! `DeleteTags` each (`canon_model::release_plan`), and deletes nothing:
//! afterwards no observation shows them as the process's, and each one is
//! still there for another process to take (here: tagged for a new owner,
//! as an import would, and observed as that owner's).

use std::collections::BTreeSet;

use canon_cloud::Cloud;
use canon_model::*;

use super::conformance::{passes, req};
use super::*;

/// Builds `declared`, releases it, and asserts the cloud then shows none
/// of its resources as the process's and every one of them still there.
async fn build_and_release(cloud: &dyn Cloud, declared: &DesiredState, job: &str) {
    let fid = declared.fid;
    let mut b = Bindings::new();
    passes(cloud, fid, Some(declared), &mut b, job).await;
    let observed = cloud.observe(&scope()).await.expect("observe");
    let owned: BTreeSet<String> = observed.owned_by(fid).map(|r| r.cloud_id.clone()).collect();
    assert_eq!(owned.len(), declared.resources.len(), "{job}: built");

    let released = release_plan(fid, &observed);
    assert_eq!(released.requests.len(), owned.len());
    assert!(released.requests.iter().all(|r| !r.action.is_delete()));
    apply(cloud, &released, &mut b, &ctx(&format!("{job}-release")))
        .await
        .unwrap_or_else(|e| panic!("{job}: release: {e}"));

    let after = cloud.observe(&scope()).await.expect("observe");
    assert_eq!(after.owned_by(fid).count(), 0, "{job}: still tagged");
    assert!(release_plan(fid, &after).is_empty());

    // Nothing was deleted: each is there to be taken by another process.
    let other = Fid::random();
    for id in &owned {
        let owner = LogicalId::new(other, id);
        let action = Action::CreateTags {
            resource: CloudRef::Id(id.clone()),
            tags: [(OWNERSHIP_TAG.to_string(), owner.to_string())].into(),
        };
        cloud
            .execute(&req(owner, action), &ctx(&format!("{job}-import")))
            .await
            .unwrap_or_else(|e| panic!("{job}: {id} is gone after the release: {e}"));
    }
    let taken: BTreeSet<String> = cloud
        .observe(&scope())
        .await
        .expect("observe")
        .owned_by(other)
        .map(|r| r.cloud_id.clone())
        .collect();
    assert_eq!(
        taken, owned,
        "{job}: every released resource is still there"
    );
}

/// Release of a network of every common kind: the NAT network (VPC,
/// internet gateway, subnets, an address, NAT gateways, route tables) and
/// the demo (its security group among them).
pub async fn release_suite(cloud: &dyn Cloud) {
    let nat = demo::nat_network(Fid::random()).expect("the NAT network");
    build_and_release(cloud, &nat, "nat").await;
    build_and_release(cloud, &super::demo(Fid::random(), false), "demo").await;
}
