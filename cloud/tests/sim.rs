//! SimCloud's own behaviour: EC2 semantics and codes beyond the conformance
//! suite, client tokens, faults, determinism, the mutation log, the rogue
//! API, and the observation-cost test. Also covers the moto gaps (client
//! tokens, pagination) that the AWS adapter's tests cannot.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use canon_cloud::sim::{Caller, Clock, Faults, ManualClock};
use canon_cloud::{Cloud, ErrorClass, ExecContext, RetryPolicy, SimCloud};
use canon_model::plan::plan;
use canon_model::*;
use support::conformance::req;
use support::*;

fn id(s: &str) -> CloudRef {
    CloudRef::Id(s.to_string())
}

fn owned(l: LogicalId) -> Tags {
    tags(&[(OWNERSHIP_TAG, &l.to_string())])
}

fn is_ec2_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| h.len() == 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn create_vpc(cloud: &dyn Cloud, l: LogicalId, block: &str, ctx: &ExecContext) -> String {
    cloud
        .execute(
            &req(
                l,
                Action::CreateVpc {
                    cidr_block: cidr(block),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned(l),
                },
            ),
            ctx,
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap()
}

/// Builds the demo and returns the cloud, its bindings and the fid.
async fn running(sim: &SimCloud) -> Bindings {
    let mut b = Bindings::new();
    let (_, p) = observe_and_plan(sim, fid(), Some(&demo(fid(), false)), &b).await;
    apply(sim, &p, &mut b, &ctx("run")).await.unwrap();
    b
}

#[tokio::test]
async fn ids_default_egress_and_main_route_table() {
    let sim = SimCloud::new(7);
    let b = running(&sim).await;
    for (l, c) in b.iter() {
        let prefix = match demo(fid(), false).resources[l].kind() {
            ResourceKind::DhcpOptions => "dopt",
            ResourceKind::Vpc => "vpc",
            ResourceKind::InternetGateway => "igw",
            ResourceKind::EgressOnlyInternetGateway => "eigw",
            ResourceKind::ElasticIp => "eipalloc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::NatGateway => "nat",
            ResourceKind::VpcPeeringConnection => "pcx",
            ResourceKind::RouteTable => "rtb",
            ResourceKind::VpcEndpoint => "vpce",
            ResourceKind::NetworkAcl => "acl",
            ResourceKind::SecurityGroup => "sg",
            ResourceKind::Instance => "i",
            ResourceKind::Volume => "vol",
        };
        assert!(is_ec2_id(c, prefix), "{c} is not a {prefix} id");
    }
    let vpc = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.vpc"))
        .unwrap();
    let (main, default_sg) = sim.vpc_defaults(&scope(), vpc).unwrap();
    // The main route table and default group exist but are not owned, so
    // observation leaves them out.
    let obs = sim.observe(&scope()).await.unwrap();
    assert!(obs.get(&main).is_none() && obs.get(&default_sg).is_none());
    let main = sim.describe(&scope(), &main).unwrap();
    assert!(matches!(main.spec, Spec::RouteTable(ref t) if t.routes.is_empty() && t.vpc == vpc));
    // A new group gets EC2's default egress rule.
    let g = sim
        .execute(
            &req(
                LogicalId::new(fid(), "extra"),
                Action::CreateSecurityGroup {
                    vpc: id(vpc),
                    group_name: "extra".into(),
                    description: "x".into(),
                    tags: Tags::new(),
                },
            ),
            &ctx("x"),
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    match sim.describe(&scope(), &g).unwrap().spec {
        Spec::SecurityGroup(s) => {
            assert_eq!(s.egress, [Rule::allow_all_egress()].into_iter().collect());
            assert!(s.ingress.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // Deleting the main route table or default group is refused.
    let e = sim
        .rogue(
            &scope(),
            &Action::DeleteRouteTable {
                route_table: id(&main.cloud_id),
            },
        )
        .unwrap_err();
    assert_eq!(e.code, "DependencyViolation");
    let e = sim
        .rogue(
            &scope(),
            &Action::DeleteSecurityGroup {
                group: id(&default_sg),
            },
        )
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("CannotDelete", ErrorClass::Terminal)
    );
    // The default network ACL allows all traffic both ways (entries 100;
    // EC2's own 32767 entries are not shown), holds every subnet of the
    // VPC, is not observed, and is not deleted.
    let acl = sim.default_acl(&scope(), vpc).unwrap();
    assert!(is_ec2_id(&acl, "acl"), "{acl}");
    assert!(obs.get(&acl).is_none());
    let Spec::NetworkAcl(a) = sim.describe(&scope(), &acl).unwrap().spec else {
        panic!("not an ACL")
    };
    let numbers: Vec<_> = a.entries.iter().map(|e| e.property()).collect();
    assert_eq!(numbers, ["ingress.100", "egress.100"]);
    assert!(a
        .entries
        .iter()
        .all(|e| e.to_string() == "allow all traffic 0.0.0.0/0"));
    let subnets = obs
        .iter()
        .filter(|r| matches!(&r.spec, Spec::Subnet(s) if s.vpc == vpc))
        .count();
    assert_eq!(a.associations.len(), subnets);
    let e = sim
        .rogue(
            &scope(),
            &Action::DeleteNetworkAcl {
                network_acl: id(&acl),
            },
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterValue");
}

#[tokio::test]
async fn ec2_validation_and_dependency_errors() {
    let sim = SimCloud::new(8);
    let b = running(&sim).await;
    let s = scope();
    let cid = |p: &str| b.cloud_id(&LogicalId::new(fid(), p)).unwrap().to_string();
    let code = |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| r.unwrap_err().code;
    let vpc = cid("dev-network.vpc");
    let igw = cid("dev-network.igw");
    let rtb = cid("dev-network.publicRouteTable");
    let sg = cid("dev-sam-sg");
    let dopt = cid("dev-network.dhcpOptions");
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::DeleteInternetGateway {
                internet_gateway: id(&igw)
            }
        )),
        "DependencyViolation"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::DeleteRouteTable {
                route_table: id(&rtb)
            }
        )),
        "DependencyViolation"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::DeleteDhcpOptions {
                dhcp_options: id(&dopt)
            }
        )),
        "DependencyViolation"
    );
    assert_eq!(
        code(sim.rogue(&s, &Action::DeleteVpc { vpc: id(&vpc) })),
        "DependencyViolation"
    );
    // A group referenced by another group's rule cannot go.
    let other = sim
        .rogue(
            &s,
            &Action::CreateSecurityGroup {
                vpc: id(&vpc),
                group_name: "app".into(),
                description: "app".into(),
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    sim.rogue_authorize_ingress(
        &s,
        &other,
        Rule::new(Protocol::Tcp, 5432, 5432, Peer::Group(sg.clone())),
    )
    .unwrap();
    assert_eq!(
        code(sim.rogue(&s, &Action::DeleteSecurityGroup { group: id(&sg) })),
        "DependencyViolation"
    );
    // Duplicate rule, raw: EC2 refuses the whole call.
    let e = sim
        .rogue_authorize_ingress(
            &s,
            &sg,
            Rule::new(Protocol::Tcp, 80, 80, Peer::Cidr(Ipv4Cidr::ANY)),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidPermission.Duplicate");
    // Names and ranges.
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::CreateSecurityGroup {
                vpc: id(&vpc),
                group_name: "dev-sam-sg".into(),
                description: "again".into(),
                tags: Tags::new(),
            }
        )),
        "InvalidGroup.Duplicate"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::CreateSubnet {
                vpc: id(&vpc),
                cidr_block: cidr("10.0.9.0/24"),
                availability_zone: "eu-west-1a".into(),
                ipv6_cidr_block: None,
                tags: Tags::new(),
            }
        )),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::CreateVpc {
                cidr_block: cidr("10.0.0.0/29"),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: Tags::new(),
            }
        )),
        "InvalidVpc.Range"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::AttachInternetGateway {
                internet_gateway: id(&igw),
                vpc: id("vpc-00000000000000000")
            }
        )),
        "InvalidVpcID.NotFound"
    );
    assert_eq!(
        code(sim.rogue(
            &s,
            &Action::CreateTags {
                resource: id(&vpc),
                tags: tags(&[("aws:reserved", "x")]),
            }
        )),
        "InvalidParameterValue"
    );
}

#[tokio::test]
async fn client_tokens_make_reruns_idempotent() {
    // moto ignores ClientToken; this covers it.
    let sim = SimCloud::new(9);
    let b = running(&sim).await;
    let vpc = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.vpc"))
        .unwrap()
        .to_string();
    let subnet = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.publicSubnets[0]"))
        .unwrap()
        .to_string();
    let l = LogicalId::new(fid(), "private-rt");
    let rt = req(
        l,
        Action::CreateRouteTable {
            vpc: id(&vpc),
            tags: owned(l),
        },
    );
    sim.api_calls().reset();
    let first = sim.execute(&rt, &ctx("job-7")).await.unwrap();
    let replay = sim.execute(&rt, &ctx("job-7")).await.unwrap();
    assert!(!first.already_done && replay.already_done);
    assert_eq!(first.cloud_id, replay.cloud_id);
    // The route-table path does no ownership look-up: the token does it.
    assert_eq!(sim.api_calls().get("DescribeRouteTables"), 0);

    let li = LogicalId::new(fid(), "box");
    let run = |image: &str| {
        req(
            li,
            Action::RunInstances {
                image_id: image.into(),
                instance_type: "t3.micro".into(),
                subnet: id(&subnet),
                security_groups: BTreeSet::new(),
                key_name: None,
                user_data: Some("#!/bin/sh\necho hi".into()),
                tags: owned(li),
            },
        )
    };
    let a = sim
        .execute(&run("ami-0123456789abcdef0"), &ctx("job-8"))
        .await
        .unwrap();
    let again = sim
        .execute(&run("ami-0123456789abcdef0"), &ctx("job-8"))
        .await
        .unwrap();
    assert_eq!(a.cloud_id, again.cloud_id);
    assert!(again.already_done);
    // Same token, different parameters.
    let e = sim
        .execute(&run("ami-0fedcba9876543210"), &ctx("job-8"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("IdempotentParameterMismatch", ErrorClass::Terminal)
    );
    let instances = sim
        .all_owned(&scope())
        .into_iter()
        .filter(|r| r.kind() == ResourceKind::Instance)
        .count();
    assert_eq!(instances, 1);
    // User data is observed as it was given.
    let obs = sim.observe(&scope()).await.unwrap();
    match &obs.get(a.cloud_id.as_deref().unwrap()).unwrap().spec {
        Spec::Instance(i) => assert_eq!(i.user_data.as_deref(), Some("#!/bin/sh\necho hi")),
        other => panic!("{other:?}"),
    }
    let e = sim
        .execute(&run("not-an-ami"), &ctx("job-9"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidAMIID.Malformed");
}

#[tokio::test]
async fn eventual_consistency_hides_new_resources_until_the_delay_passes() {
    let clock = ManualClock::default();
    let sim = SimCloud::with_clock(10, Arc::new(clock.clone()));
    sim.set_faults(Faults {
        visibility_delay: Duration::from_secs(2),
        ..Faults::none()
    });
    let l = LogicalId::new(fid(), "dev-network.vpc");
    let vpc = create_vpc(&sim, l, "10.0.0.0/16", &ctx("a")).await;
    assert!(sim.observe(&scope()).await.unwrap().get(&vpc).is_none());
    // A re-run inside the window cannot see the first VPC: the look-up by
    // ownership tag is only as good as EC2's consistency (documented limit;
    // the planner adopts and deletes the spare on the next tick).
    let dup = create_vpc(&sim, l, "10.0.0.0/16", &ctx("b")).await;
    assert_ne!(dup, vpc);
    assert_eq!(
        sim.duplicate_owners(&scope()),
        vec![(l, vec![vpc.clone(), dup.clone()])]
            .into_iter()
            .map(|(l, mut ids)| {
                ids.sort();
                (l, ids)
            })
            .collect::<Vec<_>>()
    );
    clock.advance_ms(2_000);
    let obs = sim.observe(&scope()).await.unwrap();
    assert!(obs.get(&vpc).is_some() && obs.get(&dup).is_some());
    // After the window, a re-run finds it.
    let again = sim
        .execute(
            &req(
                l,
                Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned(l),
                },
            ),
            &ctx("c"),
        )
        .await
        .unwrap();
    assert!(again.already_done);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_with_backoff_and_counted() {
    let sim = SimCloud::new(11);
    sim.set_retry(RetryPolicy {
        max_attempts: 8,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
    });
    sim.set_faults(Faults {
        throttle_rate: 0.5,
        latency: Duration::from_millis(20),
        ..Faults::none()
    });
    let start = tokio::time::Instant::now();
    let obs = sim.observe(&scope()).await.unwrap();
    assert!(obs.is_empty());
    let calls = sim.api_calls().describes();
    assert!(
        calls > ResourceKind::ALL.len() as u64,
        "some calls were throttled and retried: {calls}"
    );
    assert!(start.elapsed() >= Duration::from_millis(20 * calls));
    // Every call throttled: the error surfaces as retryable after the
    // attempts run out.
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::none()
    });
    sim.api_calls().reset();
    let e = sim.observe(&scope()).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("RequestLimitExceeded", ErrorClass::Retryable)
    );
    assert_eq!(sim.api_calls().get("DescribeDhcpOptions"), 8);
    // Scripted failures hit exactly the named call.
    sim.set_faults(Faults::none());
    sim.set_retry(RetryPolicy::none());
    sim.fail_next("CreateVpc", "UnauthorizedOperation");
    let l = LogicalId::new(fid(), "v");
    let e = sim
        .execute(
            &req(
                l,
                Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned(l),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("UnauthorizedOperation", ErrorClass::Terminal)
    );
}

#[tokio::test(start_paused = true)]
async fn a_seed_replays_exactly() {
    async fn run(seed: u64) -> (Vec<String>, u64, Vec<canon_cloud::sim::Mutation>) {
        let sim = SimCloud::new(seed);
        sim.set_faults(Faults {
            throttle_rate: 0.2,
            error_rate: 0.1,
            ..Faults::none()
        });
        let b = running(&sim).await;
        let ids = b.iter().map(|(_, c)| c.to_string()).collect();
        (ids, sim.api_calls().total(), sim.mutations())
    }
    let a = run(42).await;
    let b = run(42).await;
    assert_eq!(a, b);
    let c = run(43).await;
    assert_ne!(a.0, c.0);
}

#[tokio::test]
async fn the_mutation_log_names_callers_and_catches_late_writers() {
    let sim = SimCloud::new(12);
    let fid = fid();
    let l = LogicalId::new(fid, "dev-network.vpc");
    let leader1 = ExecContext::new(ACCOUNT, "job-1", 1, 5);
    let leader2 = ExecContext::new(ACCOUNT, "job-1", 2, 6);
    let vpc = create_vpc(&sim, l, "10.0.0.0/16", &leader1).await;
    let attr = |v| {
        req(
            l,
            Action::ModifyVpcAttribute {
                vpc: id(&vpc),
                attribute: VpcAttribute::EnableDnsHostnames,
                value: v,
            },
        )
    };
    sim.execute(&attr(true), &leader2).await.unwrap();
    assert!(sim.writer_violations().is_empty());
    sim.rogue_set_tag(&scope(), &vpc, "Name", "hand-edited")
        .unwrap();
    // The deposed leader of term 5 writes late.
    sim.execute(&attr(false), &leader1).await.unwrap();
    let log = sim.mutations();
    assert_eq!(log.len(), 4);
    assert_eq!(
        log[0].caller,
        Caller::Conductor {
            node_id: 1,
            term: 5,
            job_id: "job-1".into()
        }
    );
    assert_eq!(log[2].caller, Caller::Rogue);
    assert_eq!(log[0].fid(), Some(fid));
    let v = sim.writer_violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("term 5"), "{}", v[0]);
}

#[tokio::test]
async fn rogue_changes_show_as_drift_and_heal_in_one_pass() {
    let sim = SimCloud::new(13);
    let mut b = running(&sim).await;
    let s = scope();
    let cid = |b: &Bindings, p: &str| b.cloud_id(&LogicalId::new(fid(), p)).unwrap().to_string();
    let declared = demo(fid(), false);
    // Detach the gateway, delete a subnet, change a tag, add a rule.
    sim.rogue_detach_gateway(&s, &cid(&b, "dev-network.igw"))
        .unwrap();
    sim.rogue_delete_subnet(&s, &cid(&b, "dev-network.publicSubnets[1]"))
        .unwrap();
    sim.rogue_set_tag(&s, &cid(&b, "dev-network.vpc"), "Name", "rogue")
        .unwrap();
    sim.rogue_authorize_ingress(&s, &cid(&b, "dev-sam-sg"), all_traffic())
        .unwrap();
    let (_, p) = observe_and_plan(&sim, fid(), Some(&declared), &b).await;
    let props: BTreeSet<&str> = p.differences.iter().map(|d| d.property.as_str()).collect();
    assert!(props.contains("ingress"), "{props:?}");
    assert!(p.differences.len() >= 4, "{:#?}", p.differences);
    apply(&sim, &p, &mut b, &ctx("tick")).await.unwrap();
    let (obs, p) = observe_and_plan(&sim, fid(), Some(&declared), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());
    assert_eq!(observed_group(&obs, &b, fid()).ingress, rules(&[80, 443]));
    // Every mutation of the heal came from the conductor.
    assert!(sim.writer_violations().is_empty());
}

#[tokio::test]
async fn pagination_and_observation_cost_for_10000_groups_in_1000_processes() {
    // moto returns every group on one page; this covers pagination.
    let sim = SimCloud::new(14);
    let s = scope();
    let processes = 1000;
    let groups_per = 10;
    for p in 0..processes {
        let fid = Fid(uuid_from(p));
        let lv = LogicalId::new(fid, "vpc");
        let vpc = sim
            .rogue(
                &s,
                &Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned(lv),
                },
            )
            .unwrap()
            .cloud_id
            .unwrap();
        let ls = LogicalId::new(fid, "subnet");
        sim.rogue(
            &s,
            &Action::CreateSubnet {
                vpc: id(&vpc),
                cidr_block: cidr("10.0.1.0/24"),
                availability_zone: "us-west-2a".into(),
                ipv6_cidr_block: None,
                tags: owned(ls),
            },
        )
        .unwrap();
        for g in 0..groups_per {
            let lg = LogicalId::new(fid, &format!("sg{g}"));
            sim.rogue(
                &s,
                &Action::CreateSecurityGroup {
                    vpc: id(&vpc),
                    group_name: format!("sg{g}"),
                    description: "web".into(),
                    tags: owned(lg),
                },
            )
            .unwrap();
        }
    }
    sim.api_calls().reset();
    let obs = sim.observe(&s).await.unwrap();
    assert_eq!(obs.len(), processes * (2 + groups_per));
    let calls = sim.api_calls();
    assert_eq!(calls.get("DescribeSecurityGroups"), 10, "⌈10000/1000⌉");
    assert_eq!(calls.get("DescribeVpcs"), 1);
    assert_eq!(calls.get("DescribeSubnets"), 1);
    // Ten pages of groups, one describe for each other kind.
    assert_eq!(
        calls.describes(),
        10 + ResourceKind::ALL.len() as u64 - 1,
        "{:?}",
        calls.snapshot()
    );
    println!(
        "observation of {} resources ({} groups in {processes} processes): {} describe calls {:?}; per-resource describes would need {}",
        obs.len(),
        processes * groups_per,
        calls.describes(),
        calls.snapshot(),
        obs.len()
    );
    // Each process's share is found by the owner index.
    let one = Fid(uuid_from(17));
    assert_eq!(obs.owned_by(one).count(), 2 + groups_per);
    // Looked at by id (a poked process), that share costs one describe
    // per kind it holds, and shows just as the whole observation does.
    let ids: std::collections::BTreeSet<String> =
        obs.owned_by(one).map(|r| r.cloud_id.clone()).collect();
    sim.api_calls().reset();
    let own = sim.observe_ids(&s, &ids).await.unwrap();
    assert_eq!(
        sim.api_calls().describes(),
        3,
        "{:?}",
        sim.api_calls().snapshot()
    );
    let mut whole: Vec<_> = obs.owned_by(one).cloned().collect();
    whole.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
    let mut own: Vec<_> = own.iter().cloned().collect();
    own.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
    assert_eq!(own, whole);
    let _ = plan;
}

fn uuid_from(n: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x1234_0000_0000_4000_8000_0000_0000_0000 | n as u128)
}

/// Launches the instance `box` into the demo network `b` binds: its
/// logical id and instance id.
async fn launch_box(sim: &SimCloud, b: &Bindings) -> (LogicalId, String) {
    let sg = b.cloud_id(&sg_id(fid())).unwrap().to_string();
    let subnet = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.publicSubnets[0]"))
        .unwrap()
        .to_string();
    let li = LogicalId::new(fid(), "box");
    let i = sim
        .execute(
            &req(
                li,
                Action::RunInstances {
                    image_id: "ami-0123456789abcdef0".into(),
                    instance_type: "t3.micro".into(),
                    subnet: id(&subnet),
                    security_groups: [id(&sg)].into_iter().collect(),
                    key_name: None,
                    user_data: None,
                    tags: owned(li),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    (li, i)
}

/// An instance lives as EC2's do: pending for the boot delay, running
/// with its checks initializing for the check delay, then ok; impaired or
/// stopped (stopping for the shutdown delay, then stopped) only by a rogue
/// operator, whose changes the mutation log names.
#[tokio::test]
async fn an_instance_boots_passes_its_checks_and_is_impaired_or_stopped_by_hand() {
    let clock = ManualClock::default();
    let sim = SimCloud::with_clock(16, Arc::new(clock.clone()));
    let b = running(&sim).await;
    sim.set_faults(Faults {
        instance_boot_delay: Duration::from_secs(10),
        status_check_delay: Duration::from_secs(20),
        shutdown_delay: Duration::from_secs(5),
        ..Faults::none()
    });
    let launched_at = clock.now_ms();
    let (_, i) = launch_box(&sim, &b).await;
    let life = |sim: &SimCloud| sim.describe(&scope(), &i).unwrap().life.unwrap();
    let seen = |sim: &SimCloud| (life(sim).state, life(sim).health);
    assert_eq!(life(&sim).launched_at, launched_at);
    assert_eq!(seen(&sim), (InstanceState::Pending, Health::Unknown));
    clock.advance_ms(10_000);
    assert_eq!(seen(&sim), (InstanceState::Running, Health::Initializing));
    clock.advance_ms(20_000);
    assert_eq!(seen(&sim), (InstanceState::Running, Health::Ok));
    sim.rogue_impair_instance(&scope(), &i).unwrap();
    assert_eq!(seen(&sim), (InstanceState::Running, Health::Impaired));
    sim.rogue_stop_instance(&scope(), &i).unwrap();
    assert_eq!(seen(&sim), (InstanceState::Stopping, Health::Unknown));
    clock.advance_ms(5_000);
    assert_eq!(seen(&sim), (InstanceState::Stopped, Health::Unknown));
    let rogue: Vec<(String, Option<String>)> = sim
        .mutations()
        .into_iter()
        .filter(|m| m.caller == Caller::Rogue)
        .map(|m| (m.action, m.resource))
        .collect();
    assert_eq!(
        rogue,
        [
            ("sim.impair_instance".to_string(), Some(i.clone())),
            ("aws.ec2.stop_instances".to_string(), Some(i.clone())),
        ]
    );
    // Gone instances cannot be stopped.
    let e = sim
        .rogue_stop_instance(&scope(), "i-0123456789abcdef0")
        .unwrap_err();
    assert_eq!(e.code, "InvalidInstanceID.NotFound");
}

/// The conductor's TCP connect (a fleet's `Tcp` check) is modelled: a
/// running instance answers on every port, unless it is impaired or the
/// fault says nothing answers; a pending or gone one does not. No socket
/// is opened and no API call counted.
#[tokio::test]
async fn a_running_instance_is_reached_unless_impaired_or_unreachable() {
    let clock = ManualClock::default();
    let sim = SimCloud::with_clock(17, Arc::new(clock.clone()));
    let b = running(&sim).await;
    sim.set_faults(Faults {
        instance_boot_delay: Duration::from_secs(10),
        status_check_delay: Duration::from_secs(20),
        ..Faults::none()
    });
    let (_, i) = launch_box(&sim, &b).await;
    let seen = sim.describe(&scope(), &i).unwrap();
    let calls = sim.api_calls().total();
    assert!(!sim.reach(&scope(), &seen, 8080).await, "pending");
    clock.advance_ms(10_000);
    // Running with its checks still initializing: the port answers.
    assert!(sim.reach(&scope(), &seen, 8080).await);
    sim.set_faults(Faults {
        tcp_unreachable: true,
        ..sim.faults()
    });
    assert!(!sim.reach(&scope(), &seen, 8080).await, "unreachable");
    sim.set_faults(Faults {
        tcp_unreachable: false,
        ..sim.faults()
    });
    sim.rogue_impair_instance(&scope(), &i).unwrap();
    assert!(!sim.reach(&scope(), &seen, 8080).await, "impaired");
    assert!(!sim.reach(&scope(), &seen_gone(), 8080).await, "gone");
    assert_eq!(sim.api_calls().total(), calls, "a connect is no API call");
}

/// An instance no cloud has.
fn seen_gone() -> canon_model::ObservedResource {
    canon_model::ObservedResource {
        cloud_id: "i-0123456789abcdef0".into(),
        region: Region::new(REGION),
        spec: Spec::Instance(InstanceSpec {
            image_id: "ami-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            subnet: "subnet-1".into(),
            key_name: None,
            user_data: None,
            security_groups: Default::default(),
            tags: Default::default(),
            max_age_secs: None,
            fleet: None,
            source_dest_check: true,
        }),
        association_ids: Default::default(),
        pending: false,
        life: None,
    }
}

#[tokio::test]
async fn a_shutting_down_instance_blocks_its_group_until_it_is_gone() {
    let clock = ManualClock::default();
    let sim = SimCloud::with_clock(15, Arc::new(clock.clone()));
    sim.set_faults(Faults {
        shutdown_delay: Duration::from_secs(30),
        ..Faults::none()
    });
    let b = running(&sim).await;
    let sg = b.cloud_id(&sg_id(fid())).unwrap().to_string();
    let (li, i) = launch_box(&sim, &b).await;
    let terminate = req(li, Action::TerminateInstances { instance: id(&i) });
    sim.execute(&terminate, &ctx("kill")).await.unwrap();
    // Gone from observation at once, but still holding the group.
    assert!(sim.observe(&scope()).await.unwrap().get(&i).is_none());
    let delete = req(sg_id(fid()), Action::DeleteSecurityGroup { group: id(&sg) });
    let e = sim.execute(&delete, &ctx("kill")).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("DependencyViolation", ErrorClass::Retryable)
    );
    assert!(
        sim.execute(&terminate, &ctx("kill"))
            .await
            .unwrap()
            .already_done
    );
    clock.advance_ms(30_000);
    assert!(
        !sim.execute(&delete, &ctx("kill"))
            .await
            .unwrap()
            .already_done
    );
}

/// An address in use is never released: EC2 refuses (`InvalidIPAddress.InUse`),
/// and kill ends the association first.
#[tokio::test]
async fn an_associated_address_is_disassociated_before_release() {
    let sim = SimCloud::new(11);
    let f = Fid::random();
    let l = LogicalId::new(f, "address");
    let mut d = DesiredState::empty(f);
    d.insert(Resource {
        id: l,
        name: "address".into(),
        region: Region::new(REGION),
        spec: Spec::ElasticIp(ElasticIpSpec { tags: Tags::new() }),
    })
    .unwrap();
    let mut b = Bindings::new();
    let (_, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    apply(&sim, &p, &mut b, &ctx("run")).await.unwrap();
    let a = b.cloud_id(&l).unwrap().to_string();
    assert!(is_ec2_id(&a, "eipalloc"), "{a}");
    let association = sim
        .rogue_associate_address(&scope(), &a, "i-0123456789abcdef0")
        .unwrap();
    let refused = sim.rogue_release_address(&scope(), &a).unwrap_err();
    assert_eq!(refused.code, "InvalidIPAddress.InUse");
    // Still declared: an association is not drift.
    let (_, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    assert!(
        p.is_empty() && p.differences.is_empty(),
        "{:?}",
        p.differences
    );
    let (_, p) = observe_and_plan(&sim, f, None, &b).await;
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(
        types,
        ["aws.ec2.disassociate_address", "aws.ec2.release_address"]
    );
    assert!(matches!(
        &p.requests[0].action,
        Action::DisassociateAddress { association_id } if *association_id == association
    ));
    apply(&sim, &p, &mut b, &ctx("kill")).await.unwrap();
    assert_eq!(sim.observe(&scope()).await.unwrap().owned_by(f).count(), 0);
}

/// A NAT gateway takes its time, as EC2's do (`Faults::nat_gateway_delay`):
/// while it is `pending` no route goes through it and the plan only waits;
/// deleted, it stays `deleting`, holding its subnet, its address and its
/// VPC's internet gateway, so kill's deletes of those are refused as
/// retryable until it is gone.
#[tokio::test]
async fn nat_gateways_are_pending_then_available_and_deleting_then_gone() {
    let clock = ManualClock::default();
    let sim = SimCloud::with_clock(12, Arc::new(clock.clone()));
    sim.set_faults(Faults {
        nat_gateway_delay: Duration::from_secs(60),
        ..Faults::none()
    });
    let f = Fid::random();
    let l = |p: &str| LogicalId::new(f, p);
    let d = demo::nat_network(f).unwrap();
    let mut b = Bindings::new();
    let (_, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    apply(&sim, &p, &mut b, &ctx("run")).await.unwrap();

    // Pending: observed as such, and the plan only waits for it.
    let (obs, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    let nat = b.cloud_id(&l("net.nat")).unwrap().to_string();
    assert!(obs.get(&nat).unwrap().pending);
    assert!(p.only_waits() && p.differences.is_empty(), "{p:#?}");
    let table = b.cloud_id(&l("net.privateRoutes")).unwrap().to_string();
    let early = sim
        .rogue(
            &scope(),
            &Action::CreateRoute {
                route_table: id(&table),
                destination: IpCidr::V4(cidr("192.168.0.0/16")),
                gateway: id(&nat),
                hop: Hop::NatGateway,
            },
        )
        .unwrap_err();
    assert_eq!(early.code, "InvalidNatGatewayID.NotFound");

    // Available: the routes go through it.
    clock.advance_ms(60_000);
    let (obs, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    assert!(!obs.get(&nat).unwrap().pending);
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(types, ["aws.ec2.create_route", "aws.ec2.create_route"]);
    apply(&sim, &p, &mut b, &ctx("run-2")).await.unwrap();
    let (_, p) = observe_and_plan(&sim, f, Some(&d), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());

    // Kill: the gateways go first; their subnets wait for them.
    let (_, p) = observe_and_plan(&sim, f, None, &b).await;
    let e = apply(&sim, &p, &mut b, &ctx("kill")).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("DependencyViolation", ErrorClass::Retryable)
    );
    let address = b.cloud_id(&l("net.natAddress")).unwrap().to_string();
    let e = sim
        .execute(
            &req(
                l("net.natAddress"),
                Action::ReleaseAddress {
                    allocation: id(&address),
                },
            ),
            &ctx("kill"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("InvalidIPAddress.InUse", ErrorClass::Retryable)
    );
    // Deleting gateways are not observed; the next pass retries the rest.
    let (obs, p) = observe_and_plan(&sim, f, None, &b).await;
    assert!(obs.get(&nat).is_none());
    assert!(apply(&sim, &p, &mut b, &ctx("kill-2")).await.is_err());
    clock.advance_ms(60_000);
    let (_, p) = observe_and_plan(&sim, f, None, &b).await;
    apply(&sim, &p, &mut b, &ctx("kill-3")).await.unwrap();
    assert_eq!(sim.observe(&scope()).await.unwrap().owned_by(f).count(), 0);
}

/// Network ACL rules the conformance suite cannot reach on moto: a create
/// replayed by its client token, entry numbers and names, an ICMP type and
/// code kept, an entry created again after its answer was lost, a replaced
/// entry gone missing, and what blocks the delete of an ACL and of its VPC.
#[tokio::test]
async fn network_acl_entries_associations_and_deletes() {
    let sim = SimCloud::new(10);
    let s = scope();
    let vpc = create_vpc(
        &sim,
        LogicalId::new(fid(), "acl-vpc"),
        "10.40.0.0/16",
        &ctx("x"),
    )
    .await;
    let subnet = sim
        .rogue(
            &s,
            &Action::CreateSubnet {
                vpc: id(&vpc),
                cidr_block: cidr("10.40.1.0/24"),
                availability_zone: "us-west-2a".into(),
                ipv6_cidr_block: None,
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    let l = LogicalId::new(fid(), "acl");
    let create_acl = req(
        l,
        Action::CreateNetworkAcl {
            vpc: id(&vpc),
            tags: owned(l),
        },
    );
    let acl = sim
        .execute(&create_acl, &ctx("acl"))
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    // The same create of the same job again (a new leader re-running it):
    // its client token answers with the first ACL.
    let again = sim.execute(&create_acl, &ctx("acl")).await.unwrap();
    assert_eq!(
        (again.cloud_id.as_deref(), again.already_done),
        (Some(acl.as_str()), true)
    );
    let any = IpCidr::V4(Ipv4Cidr::ANY);
    let ping = AclEntry::new(false, 100, Protocol::Icmp, AclAction::Allow, any, (8, 0));
    let create = |entry: AclEntry| {
        req(
            l,
            Action::CreateNetworkAclEntry {
                network_acl: id(&acl),
                entry,
            },
        )
    };
    sim.execute(&create(ping.clone()), &ctx("acl"))
        .await
        .unwrap();
    let Spec::NetworkAcl(a) = sim.describe(&s, &acl).unwrap().spec else {
        panic!("not an ACL")
    };
    assert_eq!(
        a.entries,
        [ping.clone()].into_iter().collect(),
        "no 32767 shown"
    );

    // Sent again (its answer lost): done. Another entry at 100: retried,
    // for the next plan to replace it.
    let again = sim
        .execute(&create(ping.clone()), &ctx("acl"))
        .await
        .unwrap();
    assert!(again.already_done, "{again:?}");
    let deny = AclEntry::new(false, 100, Protocol::All, AclAction::Deny, any, (-1, -1));
    let e = sim
        .execute(&create(deny.clone()), &ctx("acl"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("NetworkAclEntryAlreadyExists", ErrorClass::Retryable)
    );
    // Numbers: 1 to 32766.
    let last = AclEntry::new(true, 32767, Protocol::All, AclAction::Allow, any, (-1, -1));
    let e = sim.execute(&create(last), &ctx("acl")).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("InvalidParameterValue", ErrorClass::Terminal)
    );
    // A replace of an entry a console user deleted: retried.
    let delete = Action::DeleteNetworkAclEntry {
        network_acl: id(&acl),
        egress: false,
        rule_number: 100,
    };
    sim.rogue(&s, &delete).unwrap();
    let replace = Action::ReplaceNetworkAclEntry {
        network_acl: id(&acl),
        entry: deny,
    };
    let e = sim
        .execute(&req(l, replace), &ctx("acl"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("InvalidNetworkAclEntry.NotFound", ErrorClass::Retryable)
    );
    // A delete of it again is done.
    assert!(
        sim.execute(&req(l, delete), &ctx("acl"))
            .await
            .unwrap()
            .already_done
    );

    // The subnet moves in; the ACL and its VPC stay while it holds it.
    let take = Action::ReplaceNetworkAclAssociation {
        subnet: id(&subnet),
        network_acl: Some(id(&acl)),
    };
    let moved = sim
        .execute(&req(l, take.clone()), &ctx("acl"))
        .await
        .unwrap();
    assert!(moved
        .association_id
        .is_some_and(|a| a.starts_with("aclassoc-")));
    assert!(
        sim.execute(&req(l, take), &ctx("acl"))
            .await
            .unwrap()
            .already_done
    );
    let drop_acl = Action::DeleteNetworkAcl {
        network_acl: id(&acl),
    };
    let e = sim.rogue(&s, &drop_acl).unwrap_err();
    assert_eq!(e.code, "DependencyViolation");
    // A deleted subnet leaves its ACL, which can then go; the VPC waits
    // for it.
    sim.rogue_delete_subnet(&s, &subnet).unwrap();
    let e = sim
        .rogue(&s, &Action::DeleteVpc { vpc: id(&vpc) })
        .unwrap_err();
    assert_eq!(e.code, "DependencyViolation");
    sim.rogue(&s, &drop_acl).unwrap();
    sim.rogue(&s, &Action::DeleteVpc { vpc: id(&vpc) }).unwrap();
    assert_eq!(
        sim.default_acl(&s, &vpc),
        None,
        "the default ACL went with its VPC"
    );
}

/// Routes carry the family their target carries (an egress-only gateway
/// IPv6, a NAT gateway IPv4); an egress-only gateway keeps its VPC from
/// going, and leaves its routes black holes when it goes (as on EC2).
#[tokio::test]
async fn egress_only_gateways_carry_ipv6_and_leave_black_holes() {
    let sim = SimCloud::new(12);
    let s = scope();
    let vpc = create_vpc(&sim, LogicalId::new(fid(), "v6"), "10.70.0.0/16", &ctx("x")).await;
    let made = |action: Action| sim.rogue(&s, &action).unwrap().cloud_id.unwrap();
    let eigw = made(Action::CreateEgressOnlyInternetGateway {
        vpc: id(&vpc),
        tags: Tags::new(),
    });
    // The gateway alone keeps the VPC (asked before the route table below
    // exists, which would keep it too).
    let e = sim
        .rogue(&s, &Action::DeleteVpc { vpc: id(&vpc) })
        .unwrap_err();
    assert_eq!(e.code, "DependencyViolation");
    let rtb = made(Action::CreateRouteTable {
        vpc: id(&vpc),
        tags: Tags::new(),
    });
    let route = |destination: IpCidr| Action::CreateRoute {
        route_table: id(&rtb),
        destination,
        gateway: id(&eigw),
        hop: Hop::EgressOnlyInternetGateway,
    };
    let e = sim
        .rogue(&s, &route(IpCidr::V4(Ipv4Cidr::ANY)))
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("InvalidParameterValue", ErrorClass::Terminal)
    );
    sim.rogue(&s, &route(IpCidr::V6(Ipv6Cidr::ANY))).unwrap();
    let delete = Action::DeleteEgressOnlyInternetGateway {
        egress_only_internet_gateway: id(&eigw),
    };
    sim.rogue(&s, &delete).unwrap();
    let Spec::RouteTable(t) = sim.describe(&s, &rtb).unwrap().spec else {
        panic!("not a table")
    };
    assert!(t.routes.iter().any(|r| r.target == eigw), "{t:?}");
    let e = sim.rogue(&s, &delete).unwrap_err();
    assert_eq!(e.code, "InvalidGatewayID.NotFound");
}

/// EC2's rules for peering connections that moto does not check: a VPC is
/// not peered with itself nor with one whose block overlaps; a connection
/// is accepted once (a second accept is already done, a deleted one's is
/// refused); routes go only through an active connection one end of which
/// is the table's VPC; unknown ids answer with their not-found codes; a
/// VPC with a live connection is not deleted, and a deleted connection is
/// not observed.
#[tokio::test]
async fn peering_connections_follow_ec2s_rules() {
    let sim = SimCloud::new(13);
    let c = ctx("pcx");
    let l = |p: &str| LogicalId::new(fid(), p);
    let a = create_vpc(&sim, l("a"), "10.70.0.0/16", &c).await;
    let b = create_vpc(&sim, l("b"), "10.71.0.0/16", &c).await;
    let over = create_vpc(&sim, l("over"), "10.70.128.0/17", &c).await;
    let code =
        |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| r.map(drop).unwrap_err().code;
    let create = |v: &str, p: &str| Action::CreateVpcPeeringConnection {
        vpc: id(v),
        peer_vpc: id(p),
        tags: owned(l("pcx")),
    };
    assert_eq!(
        code(sim.rogue(&scope(), &create(&a, &a))),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &create(&a, &over))),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &create(&a, "vpc-00000000000000000"))),
        "InvalidVpcID.NotFound"
    );
    let pcx = sim
        .execute(&req(l("pcx"), create(&a, &b)), &c)
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    assert!(is_ec2_id(&pcx, "pcx"), "{pcx}");
    let seen = sim.observe(&scope()).await.unwrap();
    let o = seen.get(&pcx).expect("observed by its ownership tag");
    assert!(o.pending, "pending-acceptance is not ready");
    assert!(
        matches!(&o.spec, Spec::VpcPeeringConnection(p) if !p.accepted && p.vpc == a && p.peer_vpc == b)
    );

    // A route through it waits for its acceptance.
    let table = sim
        .rogue(
            &scope(),
            &Action::CreateRouteTable {
                vpc: id(&a),
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    let route = |t: &str| Action::CreateRoute {
        route_table: id(t),
        destination: IpCidr::V4(cidr("10.71.0.0/16")),
        gateway: id(&pcx),
        hop: Hop::VpcPeeringConnection,
    };
    assert_eq!(
        code(sim.rogue(&scope(), &route(&table))),
        "InvalidVpcPeeringConnectionID.NotFound"
    );
    let accept = |p: &str| Action::AcceptVpcPeeringConnection {
        vpc_peering_connection: id(p),
    };
    sim.rogue(&scope(), &accept(&pcx)).unwrap();
    let again = sim.rogue(&scope(), &accept(&pcx)).unwrap();
    assert!(again.already_done, "{again:?}");
    let seen = sim.observe(&scope()).await.unwrap();
    assert!(!seen.get(&pcx).unwrap().pending, "active");
    sim.rogue(&scope(), &route(&table)).unwrap();

    // Not through a connection of other VPCs.
    let elsewhere = sim
        .rogue(
            &scope(),
            &Action::CreateRouteTable {
                vpc: id(&over),
                tags: Tags::new(),
            },
        )
        .unwrap()
        .cloud_id
        .unwrap();
    assert_eq!(
        code(sim.rogue(&scope(), &route(&elsewhere))),
        "InvalidParameterValue"
    );

    assert_eq!(
        code(sim.rogue(&scope(), &Action::DeleteVpc { vpc: id(&b) })),
        "DependencyViolation"
    );
    let delete = |p: &str| Action::DeleteVpcPeeringConnection {
        vpc_peering_connection: id(p),
    };
    assert_eq!(
        code(sim.rogue(&scope(), &delete("pcx-00000000000000000"))),
        "InvalidVpcPeeringConnectionID.NotFound"
    );
    sim.rogue(&scope(), &delete(&pcx)).unwrap();
    assert!(sim.observe(&scope()).await.unwrap().get(&pcx).is_none());
    assert_eq!(
        code(sim.rogue(&scope(), &accept(&pcx))),
        "InvalidStateTransition"
    );
    sim.rogue(&scope(), &Action::DeleteVpc { vpc: id(&b) })
        .unwrap();
}

/// EC2's rules for gateway endpoints that moto does not check: a create's
/// client token makes a rerun return the same endpoint; a route table of
/// another VPC, an unknown table, VPC or endpoint are refused with EC2's
/// codes; a second endpoint to the same service is refused a table the
/// first routes; a VPC with an endpoint is not deleted; a deleted route
/// table leaves its endpoint, which is then deleted, and the VPC with it.
#[tokio::test]
async fn gateway_endpoints_follow_ec2s_rules() {
    let sim = SimCloud::new(31);
    let ctx = ctx("vpce");
    let l = |p: &str| LogicalId::new(fid(), p);
    let vpc = create_vpc(&sim, l("a"), "10.80.0.0/16", &ctx).await;
    let other = create_vpc(&sim, l("b"), "10.81.0.0/16", &ctx).await;
    let table = |v: &str| Action::CreateRouteTable {
        vpc: id(v),
        tags: Tags::new(),
    };
    let run = |action: Action, job: &'static str| {
        let sim = &sim;
        async move { sim.execute(&req(l(job), action), &support::ctx(job)).await }
    };
    let rt = run(table(&vpc), "rt").await.unwrap().cloud_id.unwrap();
    let rt_b = run(table(&other), "rt-b").await.unwrap().cloud_id.unwrap();
    let create = |v: &str, tables: &[&str]| Action::CreateVpcEndpoint {
        vpc: id(v),
        service: EndpointService::S3,
        endpoint_type: EndpointType::Gateway,
        route_tables: tables.iter().map(|t| id(t)).collect(),
        subnets: BTreeSet::new(),
        security_groups: BTreeSet::new(),
        private_dns: false,
        policy: None,
        tags: owned(l("s3")),
    };
    let e = run(create(&vpc, &[&rt]), "s3")
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    assert!(is_ec2_id(&e, "vpce"), "{e}");
    let again = run(create(&vpc, &[&rt]), "s3").await.unwrap();
    assert_eq!(again.cloud_id.as_deref(), Some(e.as_str()));
    match &sim.describe(&scope(), &e).unwrap().spec {
        Spec::VpcEndpoint(s) => assert_eq!(s.route_tables, [rt.clone()].into()),
        other => panic!("{other:?}"),
    }

    let code = |a: Action| sim.rogue(&scope(), &a).unwrap_err().code;
    assert_eq!(code(create(&vpc, &[&rt_b])), "InvalidParameter");
    assert_eq!(
        code(create(&vpc, &["rtb-00000000000000000"])),
        "InvalidRouteTableId.NotFound"
    );
    assert_eq!(
        code(create("vpc-00000000000000000", &[])),
        "InvalidVpcID.NotFound"
    );
    assert_eq!(code(create(&vpc, &[&rt])), "RouteAlreadyExists");
    let modify = |e: &str, add: &str| {
        let c = Ep {
            add_route_tables: [id(add)].into(),
            ..Ep::default()
        };
        endpoint_modify(e, c)
    };
    assert_eq!(
        code(modify("vpce-00000000000000000", &rt)),
        "InvalidVpcEndpointId.NotFound"
    );
    assert_eq!(code(modify(&e, &rt_b)), "InvalidParameter");
    assert_eq!(
        code(Action::DeleteVpc { vpc: id(&vpc) }),
        "DependencyViolation"
    );

    // The table goes: the endpoint has no tables left; then it goes, and
    // its VPC after it.
    sim.rogue(
        &scope(),
        &Action::DeleteRouteTable {
            route_table: id(&rt),
        },
    )
    .unwrap();
    match &sim.describe(&scope(), &e).unwrap().spec {
        Spec::VpcEndpoint(s) => assert!(s.route_tables.is_empty()),
        other => panic!("{other:?}"),
    }
    sim.rogue(
        &scope(),
        &Action::DeleteVpcEndpoint {
            vpc_endpoint: id(&e),
        },
    )
    .unwrap();
    assert_eq!(
        code(Action::DeleteVpcEndpoint {
            vpc_endpoint: id(&e)
        }),
        "InvalidVpcEndpointId.NotFound"
    );
    sim.rogue(&scope(), &Action::DeleteVpc { vpc: id(&vpc) })
        .unwrap();
}

/// Routes through a network interface made outside Canon: the interface
/// must exist and be in the table's VPC; a route through one attached to
/// an instance reads back as the instance with the interface beside it,
/// and as the interface once the instance is gone; an attached interface
/// is not deleted, nor a subnet that holds one.
#[tokio::test]
async fn network_interface_routes_follow_ec2s_rules() {
    let sim = SimCloud::new(14);
    let made = |action: Action| {
        sim.rogue(&scope(), &action)
            .expect("made")
            .cloud_id
            .expect("an id")
    };
    let vpc = |block: &str| {
        made(Action::CreateVpc {
            cidr_block: cidr(block),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: Tags::new(),
        })
    };
    let (a, b) = (vpc("10.80.0.0/16"), vpc("10.81.0.0/16"));
    let subnet = |v: &str, block: &str| {
        made(Action::CreateSubnet {
            vpc: id(v),
            cidr_block: cidr(block),
            availability_zone: format!("{REGION}a"),
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let (in_a, in_b) = (subnet(&a, "10.80.1.0/24"), subnet(&b, "10.81.1.0/24"));
    let rtb = made(Action::CreateRouteTable {
        vpc: id(&a),
        tags: Tags::new(),
    });
    let appliance = made(Action::RunInstances {
        image_id: "ami-0123456789abcdef0".into(),
        instance_type: "t3.micro".into(),
        subnet: id(&in_a),
        security_groups: BTreeSet::new(),
        key_name: None,
        user_data: None,
        tags: Tags::new(),
    });
    let eni = sim
        .rogue_create_network_interface(&scope(), &in_a, Some(&appliance))
        .unwrap();
    assert!(is_ec2_id(&eni, "eni"), "{eni}");
    let other = sim
        .rogue_create_network_interface(&scope(), &in_b, None)
        .unwrap();
    let partner = IpCidr::V4(cidr("192.0.2.0/24"));
    let route = |target: &str| Action::CreateRoute {
        route_table: id(&rtb),
        destination: partner,
        gateway: id(target),
        hop: Hop::NetworkInterface,
    };
    let code = |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| r.unwrap_err().code;
    assert_eq!(
        code(sim.rogue(&scope(), &route(&other))),
        "InvalidParameterValue"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &route("eni-00000000000000000"))),
        "InvalidNetworkInterfaceID.NotFound"
    );
    sim.rogue(&scope(), &route(&eni)).unwrap();
    let table = |sim: &SimCloud| match sim.describe(&scope(), &rtb).map(|o| o.spec) {
        Some(Spec::RouteTable(t)) => t,
        other => panic!("the table: {other:?}"),
    };
    let t = table(&sim);
    let shown: Vec<&str> = t.routes.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(shown, vec![appliance.as_str()], "EC2 names the instance");
    assert_eq!(t.interfaces.get(&partner), Some(&eni), "and the interface");

    assert_eq!(
        sim.rogue_delete_network_interface(&scope(), &other)
            .map(drop),
        Ok(())
    );
    let blocked = sim.rogue(&scope(), &Action::DeleteSubnet { subnet: id(&in_a) });
    assert_eq!(code(blocked), "DependencyViolation");

    // The instance goes: its interface stays, detached, and the route names
    // the interface alone.
    sim.rogue(
        &scope(),
        &Action::TerminateInstances {
            instance: id(&appliance),
        },
    )
    .unwrap();
    let t = table(&sim);
    let shown: Vec<&str> = t.routes.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(shown, vec![eni.as_str()]);
    assert!(t.interfaces.is_empty());
}

/// EC2's rules for VPC IPv6 the conformance suite cannot reach on moto
/// (which takes any /64 anywhere and lets a VPC's /56 go with subnets
/// still in it): an Amazon /56 of 2600:1f00::/24, a subnet's block a /64
/// (`InvalidParameterValue`) inside its VPC's /56 (`InvalidSubnet.Range`,
/// also for a VPC without one) that no other subnet holds
/// (`InvalidSubnet.Conflict`), one /56 per VPC (`CidrLimitExceeded`), the
/// /56 kept while a subnet holds a /64 of it (`DependencyViolation`), and
/// a fresh /56 after one was taken away.
#[tokio::test]
async fn vpc_ipv6_follows_ec2s_rules() {
    let sim = SimCloud::new(17);
    let l = |p: &str| LogicalId::new(fid(), p);
    let code =
        |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| r.map(drop).unwrap_err().code;
    let made = |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| {
        r.expect("accepted").cloud_id.expect("an id")
    };
    let create_vpc = |block: &str, ipv6: bool, path: &str| Action::CreateVpc {
        cidr_block: cidr(block),
        instance_tenancy: Tenancy::Default,
        amazon_provided_ipv6_cidr_block: ipv6,
        tags: owned(l(path)),
    };
    let vpc = made(sim.rogue(&scope(), &create_vpc("10.80.0.0/16", true, "v")));
    let plain = made(sim.rogue(&scope(), &create_vpc("10.81.0.0/16", false, "p")));
    let Spec::Vpc(v) = observed(&sim, &vpc).await.0 else {
        panic!("a VPC")
    };
    let block = v.ipv6_cidr_block.expect("an Amazon /56");
    assert!(v.ipv6 && block.prefix() == 56, "{block}");
    assert!(
        cidr6("2600:1f00::/24").contains(block),
        "{block} is an Amazon /56"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &Action::AssociateVpcCidrBlock { vpc: id(&vpc) })),
        "CidrLimitExceeded"
    );

    let subnet = |v: &str, block: &str, ipv6: Option<Ipv6Cidr>| Action::CreateSubnet {
        vpc: id(v),
        cidr_block: cidr(block),
        availability_zone: "us-west-2a".into(),
        ipv6_cidr_block: ipv6,
        tags: owned(l(block)),
    };
    let wide = Ipv6Cidr::new(block.network(), 63).unwrap();
    assert_eq!(
        code(sim.rogue(&scope(), &subnet(&vpc, "10.80.1.0/24", Some(wide)))),
        "InvalidParameterValue"
    );
    let elsewhere = cidr6("2600:1f00:ffff:ff01::/64");
    assert_eq!(
        code(sim.rogue(&scope(), &subnet(&vpc, "10.80.1.0/24", Some(elsewhere)))),
        "InvalidSubnet.Range"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &subnet(&plain, "10.81.1.0/24", block.subnet64(0)))),
        "InvalidSubnet.Range"
    );
    let a = made(sim.rogue(&scope(), &subnet(&vpc, "10.80.1.0/24", block.subnet64(7))));
    assert!(
        matches!(observed(&sim, &a).await.0, Spec::Subnet(s) if s.ipv6_cidr_block == block.subnet64(7))
    );
    assert_eq!(
        code(sim.rogue(&scope(), &subnet(&vpc, "10.80.2.0/24", block.subnet64(7)))),
        "InvalidSubnet.Conflict"
    );
    let b = made(sim.rogue(&scope(), &subnet(&vpc, "10.80.2.0/24", None)));
    let associate = |s: &str, n: u8| Action::AssociateSubnetCidrBlock {
        subnet: id(s),
        ipv6_cidr_block: block.subnet64(n).unwrap(),
    };
    assert_eq!(
        code(sim.rogue(&scope(), &associate(&b, 7))),
        "InvalidSubnet.Conflict"
    );
    assert_eq!(
        code(sim.rogue(&scope(), &associate(&a, 8))),
        "InvalidParameterValue",
        "a subnet holds one /64"
    );

    // The /56 stays while a /64 of it is held.
    let vpc_association = observed(&sim, &vpc).await.1[IPV6_ASSOCIATION].clone();
    let take_56 = Action::DisassociateVpcCidrBlock {
        association_id: vpc_association.clone(),
    };
    assert_eq!(code(sim.rogue(&scope(), &take_56)), "DependencyViolation");
    let a_association = observed(&sim, &a).await.1[IPV6_ASSOCIATION].clone();
    let take_64 = Action::DisassociateSubnetCidrBlock {
        association_id: a_association,
    };
    sim.rogue(&scope(), &take_64).unwrap();
    assert_eq!(
        code(sim.rogue(&scope(), &take_64)),
        "InvalidSubnetCidrBlockAssociationID.NotFound"
    );
    assert!(matches!(observed(&sim, &a).await.0, Spec::Subnet(s) if s.ipv6_cidr_block.is_none()));
    sim.rogue(&scope(), &take_56).unwrap();
    assert_eq!(
        code(sim.rogue(&scope(), &take_56)),
        "InvalidVpcCidrBlockAssociationID.NotFound"
    );
    let (spec, associations) = observed(&sim, &vpc).await;
    assert!(matches!(spec, Spec::Vpc(v) if !v.ipv6 && v.ipv6_cidr_block.is_none()));
    assert!(associations.is_empty());

    // And a fresh /56 when asked again.
    sim.rogue(&scope(), &Action::AssociateVpcCidrBlock { vpc: id(&vpc) })
        .unwrap();
    let Spec::Vpc(v) = observed(&sim, &vpc).await.0 else {
        panic!("a VPC")
    };
    assert!(v.ipv6 && v.ipv6_cidr_block.is_some_and(|b| b.prefix() == 56));
}

fn cidr6(s: &str) -> Ipv6Cidr {
    s.parse().unwrap()
}

/// The observed spec and association ids of the owned resource `id`.
async fn observed(
    sim: &SimCloud,
    id: &str,
) -> (Spec<String>, std::collections::BTreeMap<String, String>) {
    let seen = sim.observe(&scope()).await.unwrap();
    let o = seen.get(id).expect("observed").clone();
    (o.spec, o.association_ids)
}

/// What a test's `ModifyVpcEndpoint` changes (nothing by default).
#[derive(Default)]
struct Ep {
    add_route_tables: BTreeSet<CloudRef>,
    add_subnets: BTreeSet<CloudRef>,
    add_security_groups: BTreeSet<CloudRef>,
    private_dns: Option<bool>,
    policy: Option<String>,
    reset_policy: bool,
}

/// A `ModifyVpcEndpoint` of endpoint `e` making the changes `c`.
fn endpoint_modify(e: &str, c: Ep) -> Action {
    Action::ModifyVpcEndpoint {
        vpc_endpoint: id(e),
        add_route_tables: c.add_route_tables,
        remove_route_tables: BTreeSet::new(),
        add_subnets: c.add_subnets,
        remove_subnets: BTreeSet::new(),
        add_security_groups: c.add_security_groups,
        remove_security_groups: BTreeSet::new(),
        private_dns: c.private_dns,
        policy: c.policy,
        reset_policy: c.reset_policy,
    }
}

/// EC2's rules for interface endpoints that moto does not check (or
/// lacks): two subnets of one zone are refused (DuplicateSubnetsInSameZone),
/// and so are a subnet or group of another VPC, an unknown subnet or
/// group, private DNS in a VPC without DNS hostnames, and a gateway-only
/// service as an interface; no groups given is the VPC's default group;
/// private DNS turned off and on and the policy reset by a modify (moto
/// ignores both); the policy is shown reformatted, and EC2's full-access
/// default when none is set; a subnet or group an endpoint uses is not
/// deleted until the endpoint is.
#[tokio::test]
async fn interface_endpoints_follow_ec2s_rules() {
    let sim = SimCloud::new(32);
    let ctx = ctx("ivpce");
    let l = |p: &str| LogicalId::new(fid(), p);
    let vpc = create_vpc(&sim, l("a"), "10.82.0.0/16", &ctx).await;
    let other = create_vpc(&sim, l("b"), "10.83.0.0/16", &ctx).await;
    let run = |action: Action, job: &'static str| {
        let sim = &sim;
        async move { sim.execute(&req(l(job), action), &support::ctx(job)).await }
    };
    let subnet = |v: &str, block: &str, zone: &str| Action::CreateSubnet {
        vpc: id(v),
        cidr_block: cidr(block),
        availability_zone: zone.into(),
        ipv6_cidr_block: None,
        tags: Tags::new(),
    };
    let group = |v: &str, name: &str| Action::CreateSecurityGroup {
        vpc: id(v),
        group_name: name.into(),
        description: name.into(),
        tags: Tags::new(),
    };
    let made =
        |r: Result<canon_cloud::Outcome, canon_cloud::CloudError>| r.unwrap().cloud_id.unwrap();
    let a1 = made(run(subnet(&vpc, "10.82.1.0/24", "us-west-2a"), "a1").await);
    let a2 = made(run(subnet(&vpc, "10.82.2.0/24", "us-west-2a"), "a2").await);
    let b1 = made(run(subnet(&vpc, "10.82.3.0/24", "us-west-2b"), "b1").await);
    let x1 = made(run(subnet(&other, "10.83.1.0/24", "us-west-2c"), "x1").await);
    let sg = made(run(group(&vpc, "https"), "sg").await);
    let sg_x = made(run(group(&other, "https"), "sg-x").await);
    let create = |subnets: &[&str], groups: &[&str], dns: bool| Action::CreateVpcEndpoint {
        vpc: id(&vpc),
        service: EndpointService::Sts,
        endpoint_type: EndpointType::Interface,
        route_tables: BTreeSet::new(),
        subnets: subnets.iter().map(|s| id(s)).collect(),
        security_groups: groups.iter().map(|s| id(s)).collect(),
        private_dns: dns,
        policy: None,
        tags: owned(l("sts")),
    };
    let code = |a: Action| sim.rogue(&scope(), &a).unwrap_err().code;
    assert_eq!(
        code(create(&[&a1, &a2], &[&sg], false)),
        "DuplicateSubnetsInSameZone"
    );
    assert_eq!(code(create(&[&x1], &[&sg], false)), "InvalidParameter");
    assert_eq!(code(create(&[&a1], &[&sg_x], false)), "InvalidParameter");
    assert_eq!(
        code(create(&["subnet-00000000000000000"], &[], false)),
        "InvalidSubnetID.NotFound"
    );
    assert_eq!(
        code(create(&[&a1], &["sg-00000000000000000"], false)),
        "InvalidGroup.NotFound"
    );
    // The VPC has no DNS hostnames: no private DNS.
    assert_eq!(code(create(&[&a1], &[&sg], true)), "InvalidParameter");
    let mut dynamo = create(&[&a1], &[&sg], false);
    if let Action::CreateVpcEndpoint { service, .. } = &mut dynamo {
        *service = EndpointService::DynamoDb;
    }
    assert_eq!(code(dynamo), "InvalidServiceName");

    // No groups: the VPC's default group; the default policy shown.
    let e = made(run(create(&[&a1, &b1], &[], false), "sts").await);
    let seen = |sim: &SimCloud| match sim.describe(&scope(), &e).unwrap().spec {
        Spec::VpcEndpoint(s) => s,
        other => panic!("{other:?}"),
    };
    let s = seen(&sim);
    assert_eq!(s.subnets, [a1.clone(), b1.clone()].into());
    assert_eq!(s.security_groups.len(), 1);
    assert!(!s.security_groups.contains(&sg));
    assert!(canon_model::endpoint_policy::same(
        s.policy.as_deref(),
        None
    ));
    assert_eq!(
        code(endpoint_modify(
            &e,
            Ep {
                add_subnets: [id(&a2)].into(),
                ..Ep::default()
            },
        )),
        "DuplicateSubnetsInSameZone"
    );

    // Private DNS once the VPC has hostnames; a policy set, shown
    // reformatted, then reset.
    assert_eq!(
        code(endpoint_modify(
            &e,
            Ep {
                private_dns: Some(true),
                ..Ep::default()
            },
        )),
        "InvalidParameter"
    );
    sim.rogue(
        &scope(),
        &Action::ModifyVpcAttribute {
            vpc: id(&vpc),
            attribute: VpcAttribute::EnableDnsHostnames,
            value: true,
        },
    )
    .unwrap();
    let policy =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:*","Resource":"*"}]}"#;
    sim.rogue(
        &scope(),
        &endpoint_modify(
            &e,
            Ep {
                private_dns: Some(true),
                policy: Some(policy.into()),
                add_security_groups: [id(&sg)].into(),
                ..Ep::default()
            },
        ),
    )
    .unwrap();
    let s = seen(&sim);
    assert!(s.private_dns);
    assert!(s.security_groups.contains(&sg));
    let shown = s.policy.unwrap();
    assert_ne!(shown, policy, "reformatted");
    assert!(canon_model::endpoint_policy::same(
        Some(&shown),
        Some(policy)
    ));
    assert_eq!(
        code(endpoint_modify(
            &e,
            Ep {
                policy: Some("{not json".into()),
                ..Ep::default()
            },
        )),
        "InvalidPolicyDocument"
    );
    sim.rogue(
        &scope(),
        &endpoint_modify(
            &e,
            Ep {
                reset_policy: true,
                private_dns: Some(false),
                ..Ep::default()
            },
        ),
    )
    .unwrap();
    let s = seen(&sim);
    assert!(!s.private_dns);
    assert!(canon_model::endpoint_policy::same(
        s.policy.as_deref(),
        None
    ));

    // Its subnet and group are not deleted while it is there.
    assert_eq!(
        code(Action::DeleteSubnet { subnet: id(&b1) }),
        "DependencyViolation"
    );
    assert_eq!(
        code(Action::DeleteSecurityGroup { group: id(&sg) }),
        "DependencyViolation"
    );
    sim.rogue(
        &scope(),
        &Action::DeleteVpcEndpoint {
            vpc_endpoint: id(&e),
        },
    )
    .unwrap();
    sim.rogue(&scope(), &Action::DeleteSubnet { subnet: id(&b1) })
        .unwrap();
    sim.rogue(&scope(), &Action::DeleteSecurityGroup { group: id(&sg) })
        .unwrap();
}

/// The look-up before a create reads an index of ownership tags (issue
/// #19 §3), not a scan of the kind: it must answer as the scan did. It
/// finds what a later `CreateTags` gave the tag, not what lost the tag or
/// is gone, the first by id when several carry it, and the same after
/// the state is saved and loaded (the index is rebuilt, not saved).
#[tokio::test]
async fn the_look_up_before_a_create_finds_what_carries_the_tag_now() {
    let sim = SimCloud::new(41);
    let l = LogicalId::new(fid(), "net.vpc");
    let make = |tags: Tags| {
        let sim = &sim;
        async move {
            sim.rogue(
                &scope(),
                &Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags,
                },
            )
            .unwrap()
            .cloud_id
            .unwrap()
        }
    };
    let looked_up = || {
        let sim = &sim;
        async move {
            let o = sim
                .execute(
                    &req(
                        l,
                        Action::CreateVpc {
                            cidr_block: cidr("10.0.0.0/16"),
                            instance_tenancy: Tenancy::Default,
                            amazon_provided_ipv6_cidr_block: false,
                            tags: owned(l),
                        },
                    ),
                    &ctx("look"),
                )
                .await
                .unwrap();
            (o.already_done, o.cloud_id.unwrap())
        }
    };
    // Made untagged (the index is built at the first look-up), then
    // tagged: found.
    let plain = make(Tags::new()).await;
    let (done, first) = looked_up().await;
    assert!(!done, "nothing carried the tag yet");
    let e = sim.rogue(
        &scope(),
        &Action::DeleteTags {
            resource: id(&first),
            keys: [OWNERSHIP_TAG.to_string()].into(),
        },
    );
    assert!(e.is_ok(), "{e:?}");
    sim.rogue_set_tag(&scope(), &plain, OWNERSHIP_TAG, &l.to_string())
        .unwrap();
    assert_eq!(looked_up().await, (true, plain.clone()), "tagged later");
    // Two carry it: the first by id, as a scan in id order finds.
    let other = make(owned(l)).await;
    let lowest = plain.clone().min(other.clone());
    assert_eq!(looked_up().await, (true, lowest.clone()));
    // The lowest loses its tag: the other.
    sim.rogue(
        &scope(),
        &Action::DeleteTags {
            resource: id(&lowest),
            keys: [OWNERSHIP_TAG.to_string()].into(),
        },
    )
    .unwrap();
    let highest = plain.max(other);
    assert_eq!(looked_up().await, (true, highest.clone()));
    // Saved and loaded: found again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    sim.save(&path).unwrap();
    let loaded = SimCloud::new(42);
    assert!(loaded.load(&path).unwrap());
    let again = loaded
        .execute(
            &req(
                l,
                Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned(l),
                },
            ),
            &ctx("look"),
        )
        .await
        .unwrap();
    assert_eq!((again.already_done, again.cloud_id), (true, Some(highest)));
}
