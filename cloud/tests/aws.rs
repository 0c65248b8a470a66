//! `AwsCloud` specifics against moto: one describe per kind per page, call
//! counters, client-side rate limits, the ownership-tag look-up before
//! creates, the per-VPC attribute cache, and error mapping.

mod support;

use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use canon_cloud::{
    AssumeRole, AwsCloud, AwsConfig, BucketConfig, Cloud, ErrorClass, ExecContext, RateLimits,
    RetryPolicy, Scope,
};
use canon_model::*;
use support::conformance::req;
use support::moto::{moto, sdk_config};
use support::*;

fn config() -> AwsConfig {
    AwsConfig {
        rate_limits: RateLimits::unlimited(),
        retry: RetryPolicy::none(),
        ..AwsConfig::default()
    }
}

async fn run_demo(cloud: &dyn Cloud) -> Bindings {
    let mut b = Bindings::new();
    let (_, p) = observe_and_plan(cloud, fid(), Some(&demo(fid(), false)), &b).await;
    apply(cloud, &p, &mut b, &ctx("run")).await.unwrap();
    b
}

#[tokio::test]
async fn one_describe_per_kind_and_a_cached_attribute_read_per_vpc() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let b = run_demo(&aws).await;
    // Another adapter, which did not make the VPC (its maker knows the DNS
    // attributes it made it with).
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let obs = aws.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid()).count(), 7);
    let calls = aws.api_calls().snapshot();
    for action in [
        "DescribeDhcpOptions",
        "DescribeVpcs",
        "DescribeInternetGateways",
        "DescribeAddresses",
        "DescribeSubnets",
        "DescribeNatGateways",
        "DescribeRouteTables",
        "DescribeSecurityGroups",
        "DescribeInstances",
    ] {
        assert_eq!(calls.get(action), Some(&1), "{action}: {calls:?}");
    }
    // DescribeVpcs does not return DNS attributes: two reads for the one
    // VPC on first sight, then the cache answers.
    assert_eq!(calls.get("DescribeVpcAttribute"), Some(&2), "{calls:?}");
    aws.api_calls().reset();
    let obs = aws.observe(&scope()).await.unwrap();
    assert_eq!(aws.api_calls().get("DescribeVpcAttribute"), 0);
    // One describe per kind.
    assert_eq!(aws.api_calls().describes(), ResourceKind::ALL.len() as u64);
    let vpc = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.vpc"))
        .unwrap();
    match &obs.get(vpc).unwrap().spec {
        Spec::Vpc(v) => {
            assert!(v.enable_dns_support && v.enable_dns_hostnames);
            assert!(v.dhcp_options.is_some());
        }
        other => panic!("{other:?}"),
    }
    // With no cache, each VPC costs two attribute reads.
    let fresh = AwsCloud::from_sdk_config(
        sdk_config(&m.endpoint).await,
        AwsConfig {
            vpc_attribute_ttl: Duration::ZERO,
            ..config()
        },
    );
    fresh.observe(&scope()).await.unwrap();
    assert_eq!(fresh.api_calls().get("DescribeVpcAttribute"), 2);
}

#[tokio::test]
async fn a_vpc_on_the_default_dhcp_set_reads_as_none() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let l = LogicalId::new(fid(), "plain");
    let vpc = aws
        .execute(
            &req(
                l,
                Action::CreateVpc {
                    cidr_block: cidr("10.9.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: tags(&[(OWNERSHIP_TAG, &l.to_string())]),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    let obs = aws.observe(&scope()).await.unwrap();
    match &obs.get(&vpc).unwrap().spec {
        Spec::Vpc(v) => assert_eq!(v.dhcp_options, None),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn creates_without_tokens_look_for_the_ownership_tag_first() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let l = LogicalId::new(fid(), "vpc");
    let create = req(
        l,
        Action::CreateVpc {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: tags(&[(OWNERSHIP_TAG, &l.to_string()), ("Name", "x")]),
        },
    );
    let a = aws.execute(&create, &ctx("job-1")).await.unwrap();
    // A new leader re-runs the job: no duplicate.
    let b = aws.execute(&create, &ctx("job-1")).await.unwrap();
    assert!(b.already_done);
    assert_eq!(a.cloud_id, b.cloud_id);
    assert_eq!(aws.api_calls().get("CreateVpc"), 1);
    assert_eq!(aws.api_calls().get("DescribeVpcs"), 2);
    let obs = aws.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid()).count(), 1);
}

#[tokio::test]
async fn the_rate_limiter_paces_calls() {
    let m = moto();
    let slow = BucketConfig {
        capacity: 1.0,
        refill_per_sec: 20.0,
    };
    let aws = AwsCloud::from_sdk_config(
        sdk_config(&m.endpoint).await,
        AwsConfig {
            rate_limits: RateLimits {
                read: slow,
                ..RateLimits::unlimited()
            },
            ..config()
        },
    );
    let start = Instant::now();
    for _ in 0..3 {
        aws.observe(&scope()).await.unwrap();
    }
    // 24 reads (one per kind), the first free, the rest at 20/s: at least
    // a second.
    assert_eq!(
        aws.api_calls().describes(),
        3 * ResourceKind::ALL.len() as u64
    );
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn service_errors_keep_code_and_message_and_class() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let l = LogicalId::new(fid(), "x");
    let e = aws
        .execute(
            &req(
                l,
                Action::CreateSubnet {
                    vpc: CloudRef::Id("vpc-00000000000000000".into()),
                    cidr_block: cidr("10.0.1.0/24"),
                    availability_zone: "us-west-2a".into(),
                    ipv6_cidr_block: None,
                    tags: Tags::new(),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("InvalidVpcID.NotFound", ErrorClass::Terminal)
    );
    assert!(e.message.contains("vpc-00000000000000000"), "{e}");
    // A delete of something already gone is done.
    let o = aws
        .execute(
            &req(
                l,
                Action::DeleteSubnet {
                    subnet: CloudRef::Id("subnet-00000000000000000".into()),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap();
    assert!(o.already_done);
    assert!(
        o.changes[0].starts_with("InvalidSubnetID.NotFound"),
        "{o:?}"
    );
}

/// A team's account is reached through its role (STS AssumeRole with the
/// external id): what Canon makes there lives in that account, invisible
/// to the node's own credentials.
#[tokio::test]
async fn each_account_is_reached_through_its_role() {
    let m = moto();
    let team = "222222222222";
    let role = AssumeRole {
        role_arn: format!("arn:aws:iam::{team}:role/canon-conductor"),
        external_id: Some("canon-7f3a".into()),
    };
    let roles: BTreeMap<String, AssumeRole> = [(team.to_string(), role)].into();
    let aws = AwsCloud::from_sdk_config(
        sdk_config(&m.endpoint).await,
        AwsConfig {
            roles: Arc::new(roles),
            ..config()
        },
    );
    let l = LogicalId::new(fid(), "team-vpc");
    let create = req(
        l,
        Action::CreateVpc {
            cidr_block: cidr("10.7.0.0/16"),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: tags(&[(OWNERSHIP_TAG, &l.to_string())]),
        },
    );
    let vpc = aws
        .execute(&create, &ExecContext::new(team, "j", 1, 1))
        .await
        .expect("create through the assumed role")
        .cloud_id
        .unwrap();
    let in_team = aws
        .observe(&Scope::new(team, REGION))
        .await
        .expect("observe through the assumed role");
    assert!(
        in_team.get(&vpc).is_some(),
        "the VPC is in the team's account"
    );
    let own = aws.observe(&scope()).await.unwrap();
    assert!(
        own.get(&vpc).is_none(),
        "the VPC leaked into the conductor's own account"
    );
}

#[tokio::test]
async fn a_missing_reference_is_retried_briefly_for_consistency() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(
        sdk_config(&m.endpoint).await,
        AwsConfig {
            retry: RetryPolicy {
                max_attempts: 6,
                base: Duration::from_millis(5),
                cap: Duration::from_millis(20),
            },
            ..config()
        },
    );
    let l = LogicalId::new(fid(), "x");
    let e = aws
        .execute(
            &req(
                l,
                Action::CreateSubnet {
                    vpc: CloudRef::Id("vpc-00000000000000000".into()),
                    cidr_block: cidr("10.0.1.0/24"),
                    availability_zone: "us-west-2a".into(),
                    ipv6_cidr_block: None,
                    tags: Tags::new(),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidVpcID.NotFound");
    // Three attempts, then the terminal error (the request carries no
    // ownership tag, so there was no look-up before it).
    assert_eq!(aws.api_calls().get("CreateSubnet"), 3);
    assert_eq!(aws.api_calls().get("DescribeSubnets"), 0);
}

#[tokio::test]
async fn user_data_is_read_once_per_instance() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let b = run_demo(&aws).await;
    let subnet = b
        .cloud_id(&LogicalId::new(fid(), "dev-network.publicSubnets[0]"))
        .unwrap()
        .to_string();
    let l = LogicalId::new(fid(), "box");
    let i = aws
        .execute(
            &req(
                l,
                Action::RunInstances {
                    image_id: "ami-0123456789abcdef0".into(),
                    instance_type: "t3.micro".into(),
                    subnet: CloudRef::Id(subnet),
                    security_groups: Default::default(),
                    key_name: None,
                    user_data: Some("echo once".into()),
                    tags: tags(&[(OWNERSHIP_TAG, &l.to_string())]),
                },
            ),
            &ctx("j"),
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    aws.api_calls().reset();
    for _ in 0..3 {
        let obs = aws.observe(&scope()).await.unwrap();
        match &obs.get(&i).unwrap().spec {
            Spec::Instance(s) => assert_eq!(s.user_data.as_deref(), Some("echo once")),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(aws.api_calls().get("DescribeInstanceAttribute"), 1);
    assert_eq!(aws.api_calls().get("DescribeInstances"), 3);
}

/// A pass's creates of kinds without client tokens are looked up together,
/// one describe per kind, and then make no look-up of their own; a create
/// whose resource a lost answer already made is found, not made twice.
#[tokio::test]
async fn a_pass_looks_up_its_creates_once_per_kind() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let f = Fid::random();
    let owned = |l: LogicalId| -> Tags {
        [(OWNERSHIP_TAG.to_string(), l.to_string())]
            .into_iter()
            .collect()
    };
    let vpc_req = |n: usize| {
        let l = LogicalId::new(f, &format!("vpc{n}"));
        req(
            l,
            Action::CreateVpc {
                cidr_block: format!("10.{n}.0.0/16").parse().unwrap(),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags: owned(l),
            },
        )
    };
    let dhcp_req = |n: usize| {
        let l = LogicalId::new(f, &format!("dhcp{n}"));
        req(
            l,
            Action::CreateDhcpOptions {
                domain_name: Some(format!("d{n}.internal")),
                domain_name_servers: vec!["AmazonProvidedDNS".into()],
                ntp_servers: Vec::new(),
                tags: owned(l),
            },
        )
    };
    let mut requests: Vec<Request> = (0..5).map(vpc_req).collect();
    requests.extend((0..3).map(dhcp_req));
    // An earlier attempt made vpc2, and its answer was lost.
    let made = aws.execute(&requests[2], &ctx("earlier")).await.unwrap();
    let made = made.cloud_id.unwrap();

    aws.api_calls().reset();
    let found = aws.look_up_owned(&scope(), &requests).await.unwrap();
    assert_eq!(found.len(), 8);
    assert_eq!(aws.api_calls().get("DescribeVpcs"), 1);
    assert_eq!(aws.api_calls().get("DescribeDhcpOptions"), 1);
    let owner = |r: &Request| r.target.to_string();
    assert_eq!(
        found.answer(ResourceKind::Vpc, &owner(&requests[2])),
        Some(Some(made.as_str()))
    );
    assert_eq!(
        found.answer(ResourceKind::Vpc, &owner(&requests[0])),
        Some(None)
    );
    assert_eq!(
        found.answer(ResourceKind::Subnet, &owner(&requests[0])),
        None
    );

    aws.api_calls().reset();
    let mut c = ctx("pass");
    c.looked_up = Some(Arc::new(found));
    let mut ids = Vec::new();
    for r in &requests {
        let o = aws.execute(r, &c).await.unwrap();
        ids.push(o.cloud_id.unwrap());
        if r.target == requests[2].target {
            assert!(o.already_done, "found, not made again");
        }
    }
    assert_eq!(ids[2], made);
    assert_eq!(
        aws.api_calls().describes(),
        0,
        "no create looked for itself"
    );
    assert_eq!(aws.api_calls().get("CreateVpc"), 4);
    assert_eq!(aws.api_calls().get("CreateDhcpOptions"), 3);
    let obs = aws.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(f).count(), 8, "one of each, none twice");
}

/// A create no earlier attempt can have sent (`ExecContext::never_sent`)
/// makes no look-up; sent again after its answer was lost (the flag off),
/// it looks for its tag and finds what the first attempt made.
#[tokio::test]
async fn a_create_never_sent_makes_no_look_up_and_one_that_may_have_been_does() {
    let m = moto();
    let aws = AwsCloud::from_sdk_config(sdk_config(&m.endpoint).await, config());
    let f = Fid::random();
    let vpc = LogicalId::new(f, "vpc");
    let group = LogicalId::new(f, "sg");
    let owned = |l: LogicalId| -> Tags {
        [(OWNERSHIP_TAG.to_string(), l.to_string())]
            .into_iter()
            .collect()
    };
    let create_vpc = req(
        vpc,
        Action::CreateVpc {
            cidr_block: "10.7.0.0/16".parse().unwrap(),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: owned(vpc),
        },
    );
    let mut first = ctx("pass");
    first.never_sent = true;
    aws.api_calls().reset();
    let made = aws.execute(&create_vpc, &first).await.unwrap();
    let vpc_id = made.cloud_id.clone().unwrap();
    let create_group = req(
        group,
        Action::CreateSecurityGroup {
            vpc: CloudRef::Id(vpc_id.clone()),
            group_name: "web".into(),
            description: "web".into(),
            tags: owned(group),
        },
    );
    aws.execute(&create_group, &first).await.unwrap();
    assert_eq!(
        aws.api_calls().describes(),
        0,
        "no look-up before a first create"
    );
    assert_eq!(aws.api_calls().get("CreateVpc"), 1);
    assert_eq!(aws.api_calls().get("CreateSecurityGroup"), 1);

    // The first answer was lost: the next attempt may not skip the look-up.
    aws.api_calls().reset();
    let again = aws.execute(&create_vpc, &ctx("pass")).await.unwrap();
    assert!(again.already_done, "{again:?}");
    assert_eq!(again.cloud_id.as_deref(), Some(vpc_id.as_str()));
    assert_eq!(aws.api_calls().get("DescribeVpcs"), 1);
    assert_eq!(aws.api_calls().get("CreateVpc"), 0);
    let obs = aws.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(f).count(), 2, "one of each, none twice");
    assert_eq!(
        aws.api_calls().get("DescribeVpcAttribute"),
        0,
        "the maker of a VPC knows its DNS attributes"
    );
}

/// A create of a kind without client tokens whose answer is lost (the
/// server hangs up) is not sent again inside the call: the failure goes
/// back to the caller, whose next attempt looks first. A delete is resent.
#[tokio::test]
async fn a_create_without_a_client_token_is_not_resent_after_a_lost_answer() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            // Read the request, then hang up without an answer.
            let mut buf = vec![0u8; 64 * 1024];
            let _ = tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await;
            drop(socket);
        }
    });
    let aws = AwsCloud::from_sdk_config(
        sdk_config(&endpoint).await,
        AwsConfig {
            retry: RetryPolicy {
                max_attempts: 4,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(5),
            },
            ..config()
        },
    );
    let l = LogicalId::new(Fid::random(), "vpc");
    let create = req(
        l,
        Action::CreateVpc {
            cidr_block: "10.8.0.0/16".parse().unwrap(),
            instance_tenancy: Tenancy::Default,
            amazon_provided_ipv6_cidr_block: false,
            tags: [(OWNERSHIP_TAG.to_string(), l.to_string())]
                .into_iter()
                .collect(),
        },
    );
    let mut first = ctx("lost");
    first.never_sent = true;
    let e = aws.execute(&create, &first).await.unwrap_err();
    assert!(e.may_have_taken_effect(), "{e:?}");
    assert_eq!(e.class, ErrorClass::Retryable, "{e:?}");
    assert_eq!(aws.api_calls().get("CreateVpc"), 1, "sent once");
    let delete = req(
        l,
        Action::DeleteVpc {
            vpc: CloudRef::Id("vpc-0123456789abcdef0".into()),
        },
    );
    let e = aws.execute(&delete, &ctx("lost")).await.unwrap_err();
    assert!(e.may_have_taken_effect(), "{e:?}");
    assert_eq!(
        aws.api_calls().get("DeleteVpc"),
        4,
        "resent to the last attempt"
    );
    server.abort();
}

/// The ownership tag of `name` (in process `fid()`) on a resource of
/// `kind`, as a create's tag specification.
fn owned_as(
    kind: aws_sdk_ec2::types::ResourceType,
    name: &str,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(kind)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(OWNERSHIP_TAG)
                .value(LogicalId::new(fid(), name).to_string())
                .build(),
        )
        .build()
}

/// One owned resource of every kind the adapter observes, made straight
/// through the SDK: their ids, by kind.
async fn one_of_every_kind(ec2: &aws_sdk_ec2::Client) -> BTreeMap<ResourceKind, String> {
    use aws_sdk_ec2::types::{DomainType, NewDhcpConfiguration, ResourceType as T};
    let mut made = BTreeMap::new();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(owned_as(T::Vpc, "vpc"))
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let peer = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap();
    let peer = peer.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-west-2a")
        .tag_specifications(owned_as(T::Subnet, "subnet"))
        .send()
        .await
        .unwrap();
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    made.insert(ResourceKind::Vpc, vpc.clone());
    made.insert(ResourceKind::Subnet, subnet.clone());
    let r = ec2
        .create_security_group()
        .vpc_id(&vpc)
        .group_name("g")
        .description("d")
        .tag_specifications(owned_as(T::SecurityGroup, "g"))
        .send()
        .await
        .unwrap();
    made.insert(ResourceKind::SecurityGroup, r.group_id().unwrap().into());
    let r = ec2
        .create_internet_gateway()
        .tag_specifications(owned_as(T::InternetGateway, "igw"))
        .send()
        .await
        .unwrap();
    let igw = r.internet_gateway().unwrap().internet_gateway_id().unwrap();
    made.insert(ResourceKind::InternetGateway, igw.into());
    let r = ec2
        .create_egress_only_internet_gateway()
        .vpc_id(&vpc)
        .tag_specifications(owned_as(T::EgressOnlyInternetGateway, "eigw"))
        .send()
        .await
        .unwrap();
    let eigw = r.egress_only_internet_gateway().unwrap();
    made.insert(
        ResourceKind::EgressOnlyInternetGateway,
        eigw.egress_only_internet_gateway_id().unwrap().into(),
    );
    let mut addresses = Vec::new();
    for name in ["eip", "nat-eip"] {
        let r = ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(owned_as(T::ElasticIp, name))
            .send()
            .await
            .unwrap();
        addresses.push(r.allocation_id().unwrap().to_string());
    }
    made.insert(ResourceKind::ElasticIp, addresses[0].clone());
    let r = ec2
        .create_nat_gateway()
        .subnet_id(&subnet)
        .allocation_id(&addresses[1])
        .tag_specifications(owned_as(T::Natgateway, "nat"))
        .send()
        .await
        .unwrap();
    let nat = r.nat_gateway().unwrap().nat_gateway_id().unwrap();
    made.insert(ResourceKind::NatGateway, nat.into());
    let r = ec2
        .create_vpc_peering_connection()
        .vpc_id(&vpc)
        .peer_vpc_id(&peer)
        .tag_specifications(owned_as(T::VpcPeeringConnection, "pcx"))
        .send()
        .await
        .unwrap();
    let pcx = r.vpc_peering_connection().unwrap();
    made.insert(
        ResourceKind::VpcPeeringConnection,
        pcx.vpc_peering_connection_id().unwrap().into(),
    );
    let r = ec2
        .create_route_table()
        .vpc_id(&vpc)
        .tag_specifications(owned_as(T::RouteTable, "rtb"))
        .send()
        .await
        .unwrap();
    let rtb = r.route_table().unwrap().route_table_id().unwrap();
    made.insert(ResourceKind::RouteTable, rtb.into());
    let r = ec2
        .create_vpc_endpoint()
        .vpc_id(&vpc)
        .service_name("com.amazonaws.us-west-2.s3")
        .tag_specifications(owned_as(T::VpcEndpoint, "vpce"))
        .send()
        .await
        .unwrap();
    let vpce = r.vpc_endpoint().unwrap().vpc_endpoint_id().unwrap();
    made.insert(ResourceKind::VpcEndpoint, vpce.into());
    let r = ec2
        .create_network_acl()
        .vpc_id(&vpc)
        .tag_specifications(owned_as(T::NetworkAcl, "acl"))
        .send()
        .await
        .unwrap();
    let acl = r.network_acl().unwrap().network_acl_id().unwrap();
    made.insert(ResourceKind::NetworkAcl, acl.into());
    let r = ec2
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .subnet_id(&subnet)
        .min_count(1)
        .max_count(1)
        .tag_specifications(owned_as(T::Instance, "i"))
        .send()
        .await
        .unwrap();
    let instance = r.instances()[0].instance_id().unwrap();
    made.insert(ResourceKind::Instance, instance.into());
    let r = ec2
        .create_volume()
        .availability_zone("us-west-2a")
        .size(1)
        .tag_specifications(owned_as(T::Volume, "vol"))
        .send()
        .await
        .unwrap();
    made.insert(ResourceKind::Volume, r.volume_id().unwrap().into());
    let r = ec2
        .create_dhcp_options()
        .dhcp_configurations(
            NewDhcpConfiguration::builder()
                .key("domain-name-servers")
                .values("AmazonProvidedDNS")
                .build(),
        )
        .tag_specifications(owned_as(T::DhcpOptions, "dopt"))
        .send()
        .await
        .unwrap();
    let dopt = r.dhcp_options().unwrap().dhcp_options_id().unwrap();
    // moto leaves a DHCP set's tag specifications out (Canon tags it again).
    let tag = owned_as(T::DhcpOptions, "dopt").tags()[0].clone();
    ec2.create_tags()
        .resources(dopt)
        .tags(tag)
        .send()
        .await
        .unwrap();
    made.insert(ResourceKind::DhcpOptions, dopt.into());
    made
}

/// The id parameter of each kind's describe, as EC2's query protocol
/// names it (`GroupId.1=sg-…`).
fn id_parameter(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::DhcpOptions => "DhcpOptionsId",
        ResourceKind::Vpc => "VpcId",
        ResourceKind::InternetGateway => "InternetGatewayId",
        ResourceKind::EgressOnlyInternetGateway => "EgressOnlyInternetGatewayId",
        ResourceKind::ElasticIp => "AllocationId",
        ResourceKind::Subnet => "SubnetId",
        ResourceKind::NatGateway => "NatGatewayId",
        ResourceKind::VpcPeeringConnection => "VpcPeeringConnectionId",
        ResourceKind::RouteTable => "RouteTableId",
        ResourceKind::VpcEndpoint => "VpcEndpointId",
        ResourceKind::NetworkAcl => "NetworkAclId",
        ResourceKind::SecurityGroup => "GroupId",
        ResourceKind::Instance => "InstanceId",
        ResourceKind::Volume => "VolumeId",
    }
}

/// Whether request body `request` names `id` of `kind` in the describe's
/// id parameter.
fn asks_by_id(request: &str, kind: ResourceKind, id: &str) -> bool {
    let param = format!("{}.", id_parameter(kind));
    request
        .split('&')
        .any(|kv| kv.starts_with(&param) && kv.ends_with(&format!("={id}")))
}

/// Whether request body `request` names `id` as a filter's value.
fn asks_by_filter(request: &str, id: &str) -> bool {
    request.split('&').any(|kv| {
        kv.starts_with("Filter.") && kv.contains(".Value.") && kv.ends_with(&format!("={id}"))
    })
}

/// The adapter through a recording relay to moto, and the relay.
async fn recorded(m: &support::moto::Moto) -> (AwsCloud, support::recorder::Recorder) {
    let relay = support::recorder::Recorder::start(&m.endpoint).await;
    let aws = AwsCloud::from_sdk_config(sdk_config(&relay.endpoint).await, config());
    (aws, relay)
}

#[tokio::test]
async fn a_look_by_id_asks_each_kind_by_its_id_parameter() {
    let m = moto();
    let plain = aws_sdk_ec2::Client::new(&sdk_config(&m.endpoint).await);
    let made = one_of_every_kind(&plain).await;
    let (aws, relay) = recorded(&m).await;
    let whole = aws.observe(&scope()).await.unwrap();
    let kinds: BTreeSet<_> = whole.iter().map(|r| r.kind()).collect();
    assert_eq!(kinds.len(), ResourceKind::ALL.len(), "{kinds:?}");
    let ids: BTreeSet<String> = made.values().cloned().collect();
    relay.clear();
    aws.api_calls().reset();

    let own = aws.observe_ids(&scope(), &ids).await.unwrap();

    support::conformance::assert_shows_as_observed(&own, &whole, &ids);
    // One describe per kind, naming its id as the describe's id parameter
    // (a direct look-up), not as a filter's value (a walk of the region).
    for (kind, id) in &made {
        let asked = relay.requests(canon_cloud::names::describe_action(*kind));
        assert_eq!(asked.len(), 1, "{kind}: {asked:?}");
        assert!(asks_by_id(&asked[0], *kind, id), "{kind}: {}", asked[0]);
        assert!(!asks_by_filter(&asked[0], id), "{kind}: {}", asked[0]);
    }
    // And the instance's status checks, asked by id too.
    let calls = aws.api_calls().snapshot();
    assert_eq!(calls.get("DescribeInstanceStatus"), Some(&1), "{calls:?}");
    let describes = ResourceKind::ALL.len() as u64 + 1;
    assert_eq!(aws.api_calls().describes(), describes, "{calls:?}");
}

#[tokio::test]
async fn a_look_by_id_omits_what_is_gone_and_shows_the_rest() {
    let m = moto();
    let plain = aws_sdk_ec2::Client::new(&sdk_config(&m.endpoint).await);
    let made = one_of_every_kind(&plain).await;
    let vpc = &made[&ResourceKind::Vpc];
    let mut groups = Vec::new();
    for name in ["a", "b", "c"] {
        let r = plain
            .create_security_group()
            .vpc_id(vpc)
            .group_name(name)
            .description("d")
            .tag_specifications(owned_as(
                aws_sdk_ec2::types::ResourceType::SecurityGroup,
                name,
            ))
            .send()
            .await
            .unwrap();
        groups.push(r.group_id().unwrap().to_string());
    }
    let volume = &made[&ResourceKind::Volume];
    plain
        .delete_security_group()
        .group_id(&groups[1])
        .send()
        .await
        .unwrap();
    plain
        .delete_volume()
        .volume_id(volume)
        .send()
        .await
        .unwrap();
    let (aws, relay) = recorded(&m).await;
    let mut ids: BTreeSet<String> = made.values().cloned().collect();
    ids.extend(groups.iter().cloned());

    let own = aws.observe_ids(&scope(), &ids).await.unwrap();

    // The deleted group and volume read as missing (the planner makes
    // them again); everything else is there.
    let shown: BTreeSet<&str> = own.iter().map(|r| r.cloud_id.as_str()).collect();
    let mut want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    want.remove(groups[1].as_str());
    want.remove(volume.as_str());
    assert_eq!(shown, want);
    // EC2 fails a describe by id that names a missing id: the groups and
    // the volume were asked again by filter; every other kind once, by id.
    for (kind, id) in [
        (ResourceKind::SecurityGroup, &groups[0]),
        (ResourceKind::Volume, volume),
    ] {
        let asked = relay.requests(canon_cloud::names::describe_action(kind));
        assert_eq!(asked.len(), 2, "{kind}: {asked:?}");
        assert!(asks_by_id(&asked[0], kind, id), "{}", asked[0]);
        assert!(asks_by_filter(&asked[1], id), "{}", asked[1]);
    }
    for (kind, id) in &made {
        if [ResourceKind::SecurityGroup, ResourceKind::Volume].contains(kind) {
            continue;
        }
        let asked = relay.requests(canon_cloud::names::describe_action(*kind));
        assert!(asks_by_id(&asked[0], *kind, id), "{kind}: {asked:?}");
        assert!(
            !asked.iter().any(|r| asks_by_filter(r, id)),
            "{kind}: {asked:?}"
        );
    }
}
