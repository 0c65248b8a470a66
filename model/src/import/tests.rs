use super::*;
use crate::demo::{self, REGION};
use crate::{RouteTableSpec, SubnetSpec, Tags, Tenancy, VpcSpec};

fn name(n: &str) -> Tags {
    [(NAME_TAG.to_string(), n.to_string())]
        .into_iter()
        .collect()
}

fn vpc_spec<R>(cidr: &str, n: &str) -> Spec<R> {
    Spec::Vpc(VpcSpec {
        cidr_block: cidr.parse().unwrap(),
        instance_tenancy: Tenancy::Default,
        enable_dns_support: true,
        enable_dns_hostnames: false,
        ipv6: false,
        ipv6_cidr_block: None,
        dhcp_options: None,
        tags: name(n),
    })
}

fn subnet_spec<R>(vpc: R, cidr: &str) -> Spec<R> {
    Spec::Subnet(SubnetSpec {
        vpc,
        cidr_block: cidr.parse().unwrap(),
        availability_zone: "us-west-2a".into(),
        map_public_ip_on_launch: false,
        ipv6_index: None,
        ipv6_cidr_block: None,
        tags: Tags::new(),
    })
}

/// A VPC, a subnet and a group in it, and a route table (Name `rt` if
/// `named`).
fn declared(fid: Fid, named: bool) -> DesiredState {
    let vpc = Ref::Managed(LogicalId::new(fid, "vpc"));
    demo::declaration(
        fid,
        [
            ("vpc", vpc_spec("10.0.0.0/16", "net")),
            ("subnet", subnet_spec(vpc.clone(), "10.0.1.0/24")),
            (
                "web",
                Spec::SecurityGroup(demo::web_group(vpc.clone(), "web", &[80])),
            ),
            (
                "rt",
                Spec::RouteTable(RouteTableSpec {
                    interfaces: Default::default(),
                    vpc,
                    routes: Default::default(),
                    associations: Default::default(),
                    tags: if named { name("rt") } else { Tags::new() },
                }),
            ),
        ],
    )
    .unwrap()
}

fn seen(cloud_id: &str, spec: Spec<String>) -> ObservedResource {
    ObservedResource {
        cloud_id: cloud_id.into(),
        region: Region::new(REGION),
        spec,
        association_ids: Default::default(),
        pending: false,
        life: None,
    }
}

fn owned(mut o: ObservedResource, owner: LogicalId) -> ObservedResource {
    o.spec
        .tags_mut()
        .insert(OWNERSHIP_TAG.to_string(), owner.to_string());
    o
}

/// A hand-made network: vpc-1 (10.0.0.0/16, "net") with subnet-1, group
/// sg-1 "web" and route table rtb-1 "rt"; vpc-2 another range.
fn cloud() -> Vec<ObservedResource> {
    vec![
        seen("vpc-1", vpc_spec("10.0.0.0/16", "net")),
        seen("vpc-2", vpc_spec("10.9.0.0/16", "net")),
        seen("subnet-1", subnet_spec("vpc-1".into(), "10.0.1.0/24")),
        seen("subnet-2", subnet_spec("vpc-2".into(), "10.0.1.0/24")),
        seen(
            "sg-1",
            Spec::SecurityGroup(demo::web_group("vpc-1".to_string(), "web", &[22])),
        ),
        seen(
            "rtb-1",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: "vpc-1".into(),
                routes: Default::default(),
                associations: Default::default(),
                tags: name("rt"),
            }),
        ),
    ]
}

/// The import as the cloud-side driver runs it, against `cloud`.
fn import(desired: &DesiredState, cloud: &[ObservedResource]) -> Result<ImportPlan, ImportError> {
    let mut plan = ImportPlan::default();
    let mut adopted = BTreeMap::new();
    for d in in_order(desired) {
        let chosen = match lookup(desired, d, &adopted)? {
            Some(l) => {
                let answer: Vec<ObservedResource> = cloud
                    .iter()
                    .filter(|o| o.kind() == d.kind() && l.admits(o))
                    .cloned()
                    .collect();
                choose(desired.fid, d, &l, &adopted, &answer)?.cloned()
            }
            None => None,
        };
        record(&mut plan, &mut adopted, d, chosen.as_ref())?;
    }
    Ok(plan)
}

#[test]
fn a_hand_made_network_is_matched_by_its_identifying_properties() {
    let fid = Fid::random();
    let desired = declared(fid, true);
    let plan = import(&desired, &cloud()).unwrap();
    let ids: Vec<&str> = plan.adopted.iter().map(|a| a.cloud_id.as_str()).collect();
    assert_eq!(ids, vec!["vpc-1", "subnet-1", "rtb-1", "sg-1"]);
    assert!(plan.created.is_empty());
    let rows = plan.to_json();
    assert_eq!(rows[0]["resource"], "vpc");
    assert_eq!(rows[0]["adopts"], "vpc-1");
}

#[test]
fn what_matches_nothing_is_created_and_so_is_what_is_inside_it() {
    let fid = Fid::random();
    let desired = declared(fid, true);
    let cloud: Vec<ObservedResource> = cloud()
        .into_iter()
        .filter(|o| o.cloud_id != "vpc-1")
        .collect();
    let plan = import(&desired, &cloud).unwrap();
    assert!(plan.adopted.is_empty());
    assert_eq!(plan.created.len(), 4);
    assert_eq!(plan.to_json()[0]["created"], true);
}

#[test]
fn two_candidates_refuse_the_import_naming_both() {
    let fid = Fid::random();
    let mut cloud = cloud();
    cloud.push(seen("vpc-0", vpc_spec("10.0.0.0/16", "net")));
    let err = import(&declared(fid, true), &cloud).unwrap_err();
    assert_eq!(
        err,
        ImportError::Ambiguous {
            resource: "vpc".into(),
            candidates: vec!["vpc-0".into(), "vpc-1".into()],
        }
    );
    assert!(err.to_string().contains("vpc-0 and vpc-1"), "{err}");
}

#[test]
fn another_processs_resource_is_refused_naming_its_owner() {
    let (fid, other) = (Fid::random(), Fid::random());
    let mut cloud = cloud();
    cloud[4] = owned(cloud[4].clone(), LogicalId::new(other, "web"));
    let err = import(&declared(fid, true), &cloud).unwrap_err();
    assert_eq!(
        err,
        ImportError::Owned {
            resource: "web".into(),
            cloud_id: "sg-1".into(),
            owner: other,
        }
    );
    // Its own tag (a pass after a crash mid-adoption) is no obstacle.
    let mut cloud = self::cloud();
    cloud[4] = owned(cloud[4].clone(), LogicalId::new(fid, "web"));
    assert_eq!(
        import(&declared(fid, true), &cloud).unwrap().adopted.len(),
        4
    );
}

#[test]
fn an_import_id_names_the_resource_and_must_exist() {
    let fid = Fid::random();
    let mut desired = declared(fid, true);
    let vpc = LogicalId::new(fid, "vpc");
    desired.import_ids.insert(vpc, "vpc-2".into());
    let plan = import(&desired, &cloud()).unwrap();
    let ids: Vec<&str> = plan.adopted.iter().map(|a| a.cloud_id.as_str()).collect();
    // The subnet is then looked for in vpc-2; the group and table are not there.
    assert_eq!(ids, vec!["vpc-2", "subnet-2"]);
    desired.import_ids.insert(vpc, "vpc-9".into());
    assert!(matches!(
        import(&desired, &cloud()),
        Err(ImportError::NotFound { cloud_id, .. }) if cloud_id == "vpc-9"
    ));
}

#[test]
fn a_kind_without_identity_says_so() {
    let err = import(&declared(Fid::random(), false), &cloud()).unwrap_err();
    assert!(matches!(err, ImportError::NoIdentity { ref resource, .. } if resource == "rt"));
    assert!(err.to_string().contains("importId"), "{err}");
}

#[test]
fn one_cloud_resource_is_not_adopted_twice() {
    let fid = Fid::random();
    let mut desired = declared(fid, true);
    desired
        .import_ids
        .insert(LogicalId::new(fid, "web"), "sg-1".into());
    desired
        .import_ids
        .insert(LogicalId::new(fid, "vpc"), "vpc-1".into());
    let mut both = desired.clone();
    let mut second = both.resources[&LogicalId::new(fid, "web")].clone();
    second.id = LogicalId::new(fid, "web2");
    second.name = "web2".into();
    both.resources.insert(second.id, second.clone());
    both.import_ids.insert(second.id, "sg-1".into());
    assert!(matches!(
        import(&both, &cloud()),
        Err(ImportError::Twice { cloud_id, .. }) if cloud_id == "sg-1"
    ));
}

#[test]
fn adoption_tags_what_is_neither_bound_nor_tagged_yet() {
    let fid = Fid::random();
    let desired = declared(fid, true);
    let plan = import(&desired, &cloud()).unwrap();
    let imports = plan.mapping();
    let mut observed = ObservedState::new();
    let requests = adoption_requests(&desired, &imports, &observed, &Bindings::new());
    assert_eq!(requests.len(), 4);
    match &requests[0].action {
        Action::CreateTags { resource, tags } => {
            assert!(resource.id().is_some());
            assert_eq!(tags.len(), 1);
            assert!(tags.contains_key(OWNERSHIP_TAG));
        }
        other => panic!("adoption only tags: {other:?}"),
    }
    // Tagged (the leader died before recording) or bound: nothing to do.
    let vpc = LogicalId::new(fid, "vpc");
    observed.insert(owned(cloud()[0].clone(), vpc));
    let mut bindings = Bindings::new();
    bindings.bind(LogicalId::new(fid, "web"), "sg-1");
    let rest = adoption_requests(&desired, &imports, &observed, &bindings);
    let targets: Vec<String> = rest.iter().map(|r| r.target.to_string()).collect();
    assert_eq!(rest.len(), 2, "{targets:?}");
    assert!(!rest.iter().any(|r| r.target == vpc));
}

#[test]
fn a_resource_another_process_tagged_after_the_import_was_accepted_is_named() {
    let fid = Fid::random();
    let desired = declared(fid, true);
    let imports = import(&desired, &cloud()).unwrap().mapping();
    let mut observed = ObservedState::new();
    assert!(taken_since(&desired, &imports, &observed, &Bindings::new()).is_empty());
    // Our own tag (written by this process's RUN job) is not a conflict.
    let vpc = LogicalId::new(fid, "vpc");
    observed.insert(owned(cloud()[0].clone(), vpc));
    assert!(taken_since(&desired, &imports, &observed, &Bindings::new()).is_empty());
    // Another process's tag is, named by the declaration and the owner.
    let rival = Fid::random();
    observed.insert(owned(cloud()[0].clone(), LogicalId::new(rival, "vpc")));
    let taken = taken_since(&desired, &imports, &observed, &Bindings::new());
    assert_eq!(
        taken,
        vec![ImportError::Owned {
            resource: desired.resources[&vpc].name.clone(),
            cloud_id: cloud()[0].cloud_id.clone(),
            owner: rival,
        }]
    );
    // Once bound, the resource is the process's: another tag on it is drift.
    let mut bindings = Bindings::new();
    bindings.bind(vpc, cloud()[0].cloud_id.clone());
    assert!(taken_since(&desired, &imports, &observed, &bindings).is_empty());
}

#[test]
fn a_dry_run_plans_against_the_adopted_resources() {
    let fid = Fid::random();
    let desired = declared(fid, true);
    let cloud = cloud();
    let plan = import(&desired, &cloud).unwrap();
    let pairs: Vec<(Adoption, ObservedResource)> = plan
        .adopted
        .iter()
        .map(|a| {
            let o = cloud.iter().find(|o| o.cloud_id == a.cloud_id).unwrap();
            (a.clone(), o.clone())
        })
        .collect();
    let observed = as_adopted(&ObservedState::new(), &pairs);
    let planned = crate::plan(&desired, &observed, &Bindings::new());
    // Nothing is created; the group's port 22 becomes port 80.
    assert!(planned
        .requests
        .iter()
        .all(|r| r.action.creates().is_none()));
    assert!(planned
        .requests
        .iter()
        .any(|r| r.action.changes().and_then(CloudRef::id) == Some("sg-1")));
    assert_eq!(planned.adoptions.len(), 4);
}
