//! The import conformance case both clouds must pass: a network made by
//! hand (raw EC2 calls, no ownership tag) is adopted by a declaration that
//! matches it, with no create call, then enforced (its drift healed); an
//! ambiguous match and another process's resources are refused, naming
//! the candidates and the owner; an import followed by a kill deletes what
//! it adopted, and one followed by a release leaves it in place. A volume
//! is adopted by its Name tag within its zone, not a namesake elsewhere.

use std::collections::BTreeSet;

use canon_cloud::import::{find, ImportFailure};
use canon_cloud::Cloud;
use canon_model::import::{adoption_requests, ImportError, Lookup};
use canon_model::*;

use super::conformance::{passes, req};
use super::*;

/// The ids of a hand-made network: a VPC named `name`, a subnet, a group
/// `web` letting in SSH, an internet gateway attached.
struct HandMade {
    vpc: String,
    subnet: String,
    group: String,
    gateway: String,
}

/// Executes one raw call (no ownership tag) and returns what it made.
async fn raw(cloud: &dyn Cloud, action: Action) -> String {
    let maker = LogicalId::new(Fid::random(), "by-hand");
    let o = cloud
        .execute(&req(maker, action), &ctx("by-hand"))
        .await
        .expect("a raw call");
    o.cloud_id.unwrap_or_default()
}

fn id(s: &str) -> CloudRef {
    CloudRef::Id(s.to_string())
}

async fn hand_made(cloud: &dyn Cloud, block: &str, name: &str) -> HandMade {
    let vpc = raw(
        cloud,
        Action::CreateVpc {
            cidr_block: cidr(block),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: tags(&[("Name", name)]),
        },
    )
    .await;
    let subnet_block = block.replace(".0.0/16", ".1.0/24");
    let subnet = raw(
        cloud,
        Action::CreateSubnet {
            vpc: id(&vpc),
            cidr_block: cidr(&subnet_block),
            availability_zone: "us-west-2a".into(),
            ipv6_cidr_block: None,
            tags: Tags::new(),
        },
    )
    .await;
    let group = raw(
        cloud,
        Action::CreateSecurityGroup {
            vpc: id(&vpc),
            group_name: "web".into(),
            description: "web".into(),
            tags: Tags::new(),
        },
    )
    .await;
    let ssh: Rule<CloudRef> = demo::web_rule(22);
    raw(
        cloud,
        Action::AuthorizeSecurityGroupIngress {
            group: id(&group),
            rules: [ssh].into(),
        },
    )
    .await;
    let gateway = raw(cloud, Action::CreateInternetGateway { tags: Tags::new() }).await;
    raw(
        cloud,
        Action::AttachInternetGateway {
            internet_gateway: id(&gateway),
            vpc: id(&vpc),
        },
    )
    .await;
    HandMade {
        vpc,
        subnet,
        group,
        gateway,
    }
}

/// The declaration that describes a hand-made network, except that its
/// group lets in HTTP, not SSH.
fn declared(fid: Fid, block: &str, name: &str) -> DesiredState {
    let vpc = Ref::Managed(LogicalId::new(fid, "vpc"));
    demo::declaration(
        fid,
        [
            (
                "vpc",
                Spec::Vpc(VpcSpec {
                    cidr_block: cidr(block),
                    instance_tenancy: Tenancy::Default,
                    enable_dns_support: true,
                    enable_dns_hostnames: false,
                    ipv6: false,
                    ipv6_cidr_block: None,
                    dhcp_options: None,
                    tags: tags(&[("Name", name)]),
                }),
            ),
            (
                "subnet",
                Spec::Subnet(SubnetSpec {
                    vpc: vpc.clone(),
                    cidr_block: cidr(&block.replace(".0.0/16", ".1.0/24")),
                    availability_zone: "us-west-2a".into(),
                    map_public_ip_on_launch: false,
                    ipv6_index: None,
                    ipv6_cidr_block: None,
                    tags: Tags::new(),
                }),
            ),
            (
                "web",
                Spec::SecurityGroup(demo::web_group(vpc.clone(), "web", &[80])),
            ),
            (
                "gateway",
                Spec::InternetGateway(InternetGatewaySpec {
                    vpc: Some(vpc),
                    tags: Tags::new(),
                }),
            ),
        ],
    )
    .expect("declaration")
}

/// Imports `declared`: finds, tags, then enforces; asserts no create.
async fn import(cloud: &dyn Cloud, declared: &DesiredState, job: &str) -> Bindings {
    let found = find(cloud, ACCOUNT, declared).await.expect("import found");
    assert!(
        found.plan.created.is_empty(),
        "{job}: {:?}",
        found.plan.created
    );
    let mut b = Bindings::new();
    let observed = cloud.observe(&scope()).await.expect("observe");
    let tags = adoption_requests(declared, &found.plan.mapping(), &observed, &b);
    assert_eq!(tags.len(), declared.resources.len());
    for t in &tags {
        cloud
            .execute(t, &ctx(&format!("{job}-adopt")))
            .await
            .expect("adopting tag");
    }
    let done = passes(cloud, declared.fid, Some(declared), &mut b, job).await;
    let creates: Vec<&str> = done
        .iter()
        .flatten()
        .copied()
        .filter(|t| t.starts_with("Create") && *t != "CreateTags")
        .collect();
    assert!(creates.is_empty(), "{job}: an import created {creates:?}");
    b
}

fn group_ports(observed: &ObservedState, group: &str) -> BTreeSet<i32> {
    match &observed.get(group).expect("group observed").spec {
        Spec::SecurityGroup(g) => g.ingress.iter().map(|r| r.from_port).collect(),
        other => panic!("{other:?}"),
    }
}

pub async fn import_suite(cloud: &dyn Cloud) {
    // Adopted with no create, then enforced.
    let made = hand_made(cloud, "10.20.0.0/16", "brown").await;
    let fid = Fid::random();
    let mine = declared(fid, "10.20.0.0/16", "brown");
    let found = find(cloud, ACCOUNT, &mine).await.expect("found");
    let adopted: BTreeSet<&str> = found
        .plan
        .adopted
        .iter()
        .map(|a| a.cloud_id.as_str())
        .collect();
    let expected: BTreeSet<&str> = [&made.vpc, &made.subnet, &made.group, &made.gateway]
        .into_iter()
        .map(String::as_str)
        .collect();
    assert_eq!(adopted, expected);
    let b = import(cloud, &mine, "import").await;
    let observed = cloud.observe(&scope()).await.expect("observe");
    let owned: BTreeSet<&str> = observed
        .owned_by(fid)
        .map(|r| r.cloud_id.as_str())
        .collect();
    assert_eq!(owned, expected);
    assert_eq!(group_ports(&observed, &made.group), [80].into(), "enforced");

    // Another process may not take them.
    let err = find(
        cloud,
        ACCOUNT,
        &declared(Fid::random(), "10.20.0.0/16", "brown"),
    )
    .await
    .expect_err("owned by the first");
    match err {
        ImportFailure::Refused(reasons) => assert!(
            reasons.contains(&ImportError::Owned {
                resource: "vpc".into(),
                cloud_id: made.vpc.clone(),
                owner: fid,
            }),
            "{reasons:?}"
        ),
        other => panic!("{other}"),
    }

    // A kill deletes what was imported.
    let mut b = b;
    passes(cloud, fid, None, &mut b, "kill").await;
    let after = cloud.observe(&scope()).await.expect("observe");
    assert_eq!(after.owned_by(fid).count(), 0);
    let gone = cloud
        .candidates(&scope(), ResourceKind::Vpc, &Lookup::Id(made.vpc.clone()))
        .await
        .expect("candidates");
    assert!(gone.is_empty(), "the imported VPC was deleted: {gone:?}");

    // Two candidates: refused, naming both; nothing tagged.
    let one = hand_made(cloud, "10.30.0.0/16", "twin").await;
    let two = raw(
        cloud,
        Action::CreateVpc {
            cidr_block: cidr("10.30.0.0/16"),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: tags(&[("Name", "twin")]),
        },
    )
    .await;
    let err = find(
        cloud,
        ACCOUNT,
        &declared(Fid::random(), "10.30.0.0/16", "twin"),
    )
    .await
    .expect_err("ambiguous");
    let mut both = vec![one.vpc.clone(), two.clone()];
    both.sort();
    match &err {
        ImportFailure::Refused(reasons) => assert_eq!(
            reasons[0],
            ImportError::Ambiguous {
                resource: "vpc".into(),
                candidates: both.clone(),
            }
        ),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&both.join(" and ")), "{err}");
    let untouched = cloud.observe(&scope()).await.expect("observe");
    assert!(untouched.get(&one.vpc).is_none() && untouched.get(&two).is_none());

    // An import then a release: untagged, not deleted.
    let kept = hand_made(cloud, "10.40.0.0/16", "kept").await;
    let fid = Fid::random();
    let theirs = declared(fid, "10.40.0.0/16", "kept");
    import(cloud, &theirs, "import-2").await;
    let observed = cloud.observe(&scope()).await.expect("observe");
    let released = canon_model::release::release_plan(fid, &observed);
    assert_eq!(released.requests.len(), 4);
    let mut none = Bindings::new();
    apply(cloud, &released, &mut none, &ctx("release"))
        .await
        .expect("release");
    let after = cloud.observe(&scope()).await.expect("observe");
    assert_eq!(after.owned_by(fid).count(), 0);
    let still = cloud
        .candidates(&scope(), ResourceKind::Vpc, &Lookup::Id(kept.vpc.clone()))
        .await
        .expect("candidates");
    assert_eq!(still.len(), 1, "released, not deleted");
    assert!(still[0].owner().is_none());

    volume_import(cloud).await;
}

/// A volume is recognised by its Name tag within its zone: the hand-made
/// one of the declared zone is adopted (and grown to the declared size, in
/// place), the same-named one of another zone is left alone, and a kill
/// deletes only the adopted one.
async fn volume_import(cloud: &dyn Cloud) {
    let made = |zone: &str| Action::CreateVolume {
        availability_zone: zone.into(),
        size_gib: 20,
        volume_type: "gp3".into(),
        iops: None,
        encrypted: false,
        tags: tags(&[("Name", "ledger")]),
    };
    let here = raw(cloud, made("us-west-2a")).await;
    let elsewhere = raw(cloud, made("us-west-2b")).await;
    let fid = Fid::random();
    let mine = demo::declaration(
        fid,
        [(
            "ledger",
            Spec::Volume(VolumeSpec {
                availability_zone: "us-west-2a".into(),
                size_gib: 30,
                volume_type: "gp3".into(),
                iops: None,
                encrypted: false,
                attachment: None,
                tags: tags(&[("Name", "ledger")]),
            }),
        )],
    )
    .expect("declaration");
    let found = find(cloud, ACCOUNT, &mine).await.expect("found");
    let adopted: Vec<&str> = found
        .plan
        .adopted
        .iter()
        .map(|a| a.cloud_id.as_str())
        .collect();
    assert_eq!(adopted, [here.as_str()], "the volume of the declared zone");
    let mut b = import(cloud, &mine, "import-volume").await;
    let observed = cloud.observe(&scope()).await.expect("observe");
    match &observed.get(&here).expect("the adopted volume").spec {
        Spec::Volume(v) => assert_eq!(v.size_gib, 30, "grown in place"),
        other => panic!("{other:?}"),
    }
    assert!(
        observed.get(&elsewhere).is_none(),
        "the other zone's is not ours"
    );

    passes(cloud, fid, None, &mut b, "kill-volume").await;
    let left = |id: &str| {
        let id = id.to_string();
        async move {
            cloud
                .candidates(&scope(), ResourceKind::Volume, &Lookup::Id(id))
                .await
                .expect("candidates")
                .len()
        }
    };
    assert_eq!(left(&here).await, 0, "the adopted volume was deleted");
    assert_eq!(left(&elsewhere).await, 1, "the other zone's stays");
}
