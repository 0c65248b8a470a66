//! The conformance suite both clouds must pass: the demo's network and web
//! group built, observed, drifted by a rogue operator, healed, updated,
//! killed in reverse order; and one case of each error class.

use std::collections::BTreeSet;

use canon_cloud::{BoxFuture, Cloud, ErrorClass, ExecContext};
use canon_model::plan::{plan, plan_at};
use canon_model::*;

use super::*;

/// Someone changing the cloud behind Canon's back, through the cloud's API.
pub trait Operator {
    /// Adds `rule` to a group's ingress.
    fn add_ingress<'a>(&'a self, group: &'a str, rule: Rule<String>) -> BoxFuture<'a, ()>;
    /// Releases an Elastic IP address.
    fn release_address<'a>(&'a self, allocation: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes the route to `destination` from a route table.
    fn delete_route<'a>(&'a self, route_table: &'a str, destination: IpCidr) -> BoxFuture<'a, ()>;
    /// Makes a network interface in `subnet` outside Canon (an
    /// appliance's), attached to `instance` when one is named: its id.
    fn create_network_interface<'a>(
        &'a self,
        subnet: &'a str,
        instance: Option<&'a str>,
    ) -> BoxFuture<'a, String>;
    /// Detaches (if attached) and deletes a network interface.
    fn delete_network_interface<'a>(&'a self, eni: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes a NAT gateway.
    fn delete_nat_gateway<'a>(&'a self, nat_gateway: &'a str) -> BoxFuture<'a, ()>;
    /// Adds an entry to a network ACL.
    fn add_nacl_entry<'a>(&'a self, network_acl: &'a str, entry: AclEntry) -> BoxFuture<'a, ()>;
    /// Puts a subnet back in its VPC's default network ACL.
    fn default_acl<'a>(&'a self, subnet: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes an egress-only internet gateway.
    fn delete_egress_only_gateway<'a>(&'a self, gateway: &'a str) -> BoxFuture<'a, ()>;
    /// Stops an instance.
    fn stop_instance<'a>(&'a self, instance: &'a str) -> BoxFuture<'a, ()>;
    /// Detaches a volume from an instance.
    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> BoxFuture<'a, ()>;
    /// Turns an instance's source/destination check on or off.
    fn set_source_dest_check<'a>(&'a self, instance: &'a str, enabled: bool) -> BoxFuture<'a, ()>;
    /// Deletes a VPC peering connection.
    fn delete_peering<'a>(&'a self, connection: &'a str) -> BoxFuture<'a, ()>;
    /// Takes a route table off a gateway VPC endpoint.
    fn remove_endpoint_table<'a>(&'a self, endpoint: &'a str, table: &'a str) -> BoxFuture<'a, ()>;
    /// Deletes a VPC endpoint.
    fn delete_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, ()>;
    /// Takes a subnet's IPv6 `/64` away, by its association id.
    fn disassociate_subnet_ipv6<'a>(&'a self, association_id: &'a str) -> BoxFuture<'a, ()>;
    /// Takes a subnet and a security group off an interface VPC endpoint.
    fn remove_endpoint_members<'a>(
        &'a self,
        endpoint: &'a str,
        subnet: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, ()>;
}

pub fn req(target: LogicalId, action: Action) -> Request {
    Request {
        target,
        part: None,
        region: Region::new(REGION),
        action,
    }
}

fn id(s: &str) -> CloudRef {
    CloudRef::Id(s.to_string())
}

/// The demo, end to end.
pub async fn demo_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = fid();
    let ctx = ctx("job-run");
    let mut b = Bindings::new();
    let declared = demo(fid, false);

    // Run: nothing owned yet; seven creates.
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert_eq!(obs.owned_by(fid).count(), 0);
    let creates = p
        .requests
        .iter()
        .filter(|r| r.action.creates().is_some())
        .count();
    assert_eq!(creates, 7, "{:#}", p.to_json());
    let outcomes = apply(cloud, &p, &mut b, &ctx).await.expect("run");
    // Every request names the cloud's ids of the calls it made, each one
    // its own (the audit records them).
    let mut ids = std::collections::BTreeSet::new();
    for (o, r) in outcomes.iter().zip(&p.requests) {
        assert!(!o.request_ids.is_empty(), "{}: {o:?}", r.request_type());
        for id in &o.request_ids {
            assert!(!id.is_empty() && ids.insert(id.clone()), "{id} repeated");
        }
    }

    // Observed as declared: the plan is empty.
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.is_empty(),
        "not converged: {:#}\n{:#?}",
        p.to_json(),
        p.differences
    );
    looks_by_id_as_observed(cloud, &b).await;
    assert_eq!(obs.owned_by(fid).count(), 7);
    for r in obs.owned_by(fid) {
        assert_eq!(
            Some(r.cloud_id.as_str()),
            r.owner().and_then(|l| b.cloud_id(&l)),
            "ownership tag and binding agree"
        );
    }
    let g = observed_group(&obs, &b, fid);
    assert_eq!(g.ingress, rules(&[80, 443]));
    assert_eq!(g.egress, [Rule::allow_all_egress()].into_iter().collect());
    assert_eq!(g.group_name, "dev-sam-sg");
    let rtb = b
        .cloud_id(&LogicalId::new(fid, "dev-network.publicRouteTable"))
        .unwrap();
    let rtb_obs = obs.get(rtb).unwrap();
    assert_eq!(rtb_obs.association_ids.len(), 2);

    // Hector opens all traffic from the world, over IPv4 and then IPv6:
    // each is drift, found and healed by one revoke that leaves the two
    // declared rules.
    let group = b.cloud_id(&sg_id(fid)).unwrap().to_string();
    let all_v6 = Rule::new(Protocol::All, -1, -1, Peer::Ipv6Cidr(Ipv6Cidr::ANY));
    for (n, (rogue, shown)) in [
        (all_traffic(), "all traffic 0.0.0.0/0"),
        (all_v6, "all traffic ::/0"),
    ]
    .into_iter()
    .enumerate()
    {
        op.add_ingress(&group, rogue.clone()).await;
        let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
        let g = observed_group(&obs, &b, fid);
        assert!(g.ingress.contains(&rogue), "{:?}", g.ingress);
        assert!(
            p.differences.iter().any(|d| d.resource == sg_id(fid)
                && d.property == "ingress"
                && d.observed.as_deref() == Some(shown)),
            "{:#?}",
            p.differences
        );
        assert_eq!(p.requests.len(), 1, "{:#}", p.to_json());
        match &p.requests[0].action {
            Action::RevokeSecurityGroupIngress { rules, .. } => {
                let want: BTreeSet<Rule<CloudRef>> =
                    [rogue.map_peer(|g| id(g))].into_iter().collect();
                assert_eq!(*rules, want);
            }
            other => panic!("expected a revoke, got {other:?}"),
        }
        let heal = ctx_for(&format!("job-tick-{n}"));
        apply(cloud, &p, &mut b, &heal).await.expect("heal");
        let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
        assert_eq!(observed_group(&obs, &b, fid).ingress, rules(&[80, 443]));
        assert!(p.is_empty(), "{:#}", p.to_json());
    }

    // Update: SSH for Sam is one authorize of tcp 22.
    let with_ssh = demo(fid, true);
    let (_, p) = observe_and_plan(cloud, fid, Some(&with_ssh), &b).await;
    assert_eq!(p.requests.len(), 1, "{:#}", p.to_json());
    assert_eq!(
        p.requests[0].request_type(),
        "aws.ec2.authorize_security_group_ingress"
    );
    apply(cloud, &p, &mut b, &ctx_for("job-update"))
        .await
        .expect("update");
    let (obs, p) = observe_and_plan(cloud, fid, Some(&with_ssh), &b).await;
    assert_eq!(observed_group(&obs, &b, fid).ingress, rules(&[22, 80, 443]));
    assert!(p.is_empty());

    // Kill: deletes in reverse dependency order; nothing owned afterwards.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    let ranks: Vec<usize> = p
        .requests
        .iter()
        .filter(|r| r.action.is_delete())
        .map(|r| {
            let kind = declared.resources[&r.target].kind();
            kind.rank()
        })
        .collect();
    assert_eq!(ranks.len(), 7, "{:#}", p.to_json());
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    apply(cloud, &p, &mut b, &ctx_for("job-kill"))
        .await
        .expect("kill");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// An Elastic IP address: allocated, released by a rogue operator and
/// allocated again, retagged in place, released by kill.
pub async fn address_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = LogicalId::new(fid, "nat-address");
    let declare = |name: &str| {
        let address = Spec::ElasticIp(ElasticIpSpec {
            tags: tags(&[("Name", name)]),
        });
        demo::declaration(fid, [("nat-address", address)]).expect("one resource")
    };
    let declared = declare("nat");
    let mut b = Bindings::new();

    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(types, ["aws.ec2.allocate_address"]);
    apply(cloud, &p, &mut b, &ctx_for("job-address-run"))
        .await
        .expect("allocate");
    let allocation = b.cloud_id(&l).expect("bound").to_string();
    assert!(allocation.starts_with("eipalloc-"), "{allocation}");
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());
    assert_eq!(obs.owned_by(fid).count(), 1);

    // Released behind Canon's back: drift, healed by a new allocation.
    op.release_address(&allocation).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences.iter().any(|d| d.property == "existence"),
        "{:?}",
        p.differences
    );
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(types, ["aws.ec2.allocate_address"]);
    apply(cloud, &p, &mut b, &ctx_for("job-address-heal"))
        .await
        .expect("heal");
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());

    // Tags change in place.
    let renamed = declare("egress");
    let (_, p) = observe_and_plan(cloud, fid, Some(&renamed), &b).await;
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(types, ["aws.ec2.create_tags"]);
    apply(cloud, &p, &mut b, &ctx_for("job-address-update"))
        .await
        .expect("retag");
    let (_, p) = observe_and_plan(cloud, fid, Some(&renamed), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());

    // Kill releases it.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(types, ["aws.ec2.release_address"]);
    apply(cloud, &p, &mut b, &ctx_for("job-address-kill"))
        .await
        .expect("kill");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// Plans and applies `declared` until the plan is empty, as the scheduler's
/// passes would: a pass whose plan only waits (a NAT gateway still
/// `pending`) looks again a moment later. Returns the request types of
/// each pass.
pub async fn passes(
    cloud: &dyn Cloud,
    fid: Fid,
    declared: Option<&DesiredState>,
    b: &mut Bindings,
    job: &str,
) -> Vec<Vec<&'static str>> {
    let mut out = Vec::new();
    for pass in 0..20 {
        let (_, p) = observe_and_plan(cloud, fid, declared, b).await;
        if pass > 2 && std::env::var("DEBUG_PASSES").is_ok() {
            eprintln!(
                "PASS {pass}: {:#} {:?} {:?}",
                p.to_json(),
                p.differences,
                p.waiting
            );
        }
        if p.is_empty() {
            return out;
        }
        if p.only_waits() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        apply(cloud, &p, b, &ctx_for(&format!("{job}-{pass}")))
            .await
            .unwrap_or_else(|e| panic!("pass {pass} of {job}: {e}\n{:#}", p.to_json()));
        out.push(p.requests.iter().map(|r| r.request_type()).collect());
    }
    panic!("{job} did not converge in 20 passes");
}

/// The routes of an observed route table, by destination.
fn routes_of(obs: &ObservedState, table: &str) -> std::collections::BTreeMap<String, String> {
    match &obs.get(table).expect("table observed").spec {
        Spec::RouteTable(t) => t
            .routes
            .iter()
            .map(|r| (r.destination.to_string(), r.target.clone()))
            .collect(),
        other => panic!("not a table: {other:?}"),
    }
}

/// NAT gateways, public and private: built in two passes (routes through a
/// gateway wait until it is available), with the public one's address
/// showing no association of its own; a deleted route and a deleted
/// gateway are healed; kill takes everything down in reverse order.
pub async fn nat_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let declared = demo::nat_network(fid).unwrap();
    let l = |p: &str| LogicalId::new(fid, p);
    let mut b = Bindings::new();

    // First pass: everything but the routes through the gateways, which
    // wait for them.
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert_eq!(
        p.requests
            .iter()
            .filter(|r| r.action.creates().is_some())
            .count(),
        9,
        "{:#}",
        p.to_json()
    );
    let waiting: Vec<_> = p.waiting.iter().map(|w| (w.part.as_str(), w.on)).collect();
    assert_eq!(
        waiting,
        [
            ("routes.0.0.0.0/0", l("net.nat")),
            ("routes.172.16.0.0/12", l("net.privateNat"))
        ]
    );
    assert!(p
        .to_json()
        .to_string()
        .contains("\"ConnectivityType\":\"private\""));
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-nat-run").await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1], ["aws.ec2.create_route", "aws.ec2.create_route"]);

    let obs = cloud.observe(&scope()).await.unwrap();
    let nat = b.cloud_id(&l("net.nat")).unwrap().to_string();
    let private_nat = b.cloud_id(&l("net.privateNat")).unwrap().to_string();
    let address = b.cloud_id(&l("net.natAddress")).unwrap().to_string();
    assert!(nat.starts_with("nat-"), "{nat}");
    match &obs.get(&nat).unwrap().spec {
        Spec::NatGateway(n) => {
            assert_eq!(n.allocation.as_deref(), Some(address.as_str()));
            assert_eq!(Some(n.subnet.as_str()), b.cloud_id(&l("net.public")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&obs.get(&private_nat).unwrap().spec,
        Spec::NatGateway(n) if n.allocation.is_none()));
    assert!(
        obs.get(&address).unwrap().association_ids.is_empty(),
        "the gateway's hold is not an association Canon ends"
    );
    let table = b.cloud_id(&l("net.privateRoutes")).unwrap().to_string();
    let routes = routes_of(&obs, &table);
    assert_eq!(routes["0.0.0.0/0"], nat);
    assert_eq!(routes["172.16.0.0/12"], private_nat);

    // A console user deletes the default route: drift, healed by one
    // create through the NAT gateway.
    op.delete_route(&table, IpCidr::V4(Ipv4Cidr::ANY)).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.property == "routes.0.0.0.0/0" && d.observed.is_none()),
        "{:?}",
        p.differences
    );
    assert_eq!(p.requests.len(), 1, "{:#}", p.to_json());
    assert_eq!(p.requests[0].params()["NatGatewayId"], nat.as_str());
    apply(cloud, &p, &mut b, &ctx_for("job-nat-heal-route"))
        .await
        .expect("heal the route");

    // ... and the private gateway: a new one, then the route through it.
    op.delete_nat_gateway(&private_nat).await;
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-nat-heal").await;
    assert_eq!(
        all,
        [
            vec!["aws.ec2.create_nat_gateway"],
            vec!["aws.ec2.replace_route"]
        ]
    );
    let replaced = b.cloud_id(&l("net.privateNat")).unwrap().to_string();
    assert_ne!(replaced, private_nat);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(routes_of(&obs, &table)["172.16.0.0/12"], replaced);

    looks_by_id_as_observed(cloud, &b).await;

    // Kill: reverse dependency order, the gateways before their subnets
    // and the address; nothing owned afterwards.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    let ranks: Vec<usize> = p
        .requests
        .iter()
        .filter(|r| r.action.is_delete())
        .map(|r| declared.resources[&r.target].kind().rank())
        .collect();
    assert_eq!(ranks.len(), 9, "{:#}", p.to_json());
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    passes(cloud, fid, None, &mut b, "job-nat-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A VPC with two subnets and a network ACL (ingress: HTTPS, ephemeral
/// ports, ICMPv6; egress: everything) holding the first subnet;
/// `updated` serves HTTP instead of HTTPS, drops the ephemeral ports and
/// holds both subnets.
fn acl_network(fid: Fid, updated: bool) -> DesiredState {
    let l = |p: &str| LogicalId::new(fid, p);
    let m = |p: &str| Ref::Managed(l(p));
    let any = IpCidr::V4(Ipv4Cidr::ANY);
    let allow = AclAction::Allow;
    let web = if updated { 80 } else { 443 };
    let mut entries: BTreeSet<AclEntry> = [
        AclEntry::new(false, 100, Protocol::Tcp, allow, any, (web, web)),
        // Any ICMPv6 type and code: moto drops an entry's type and code
        // (see the moto gaps in `canon_cloud`).
        AclEntry::new(
            false,
            120,
            ICMPV6,
            allow,
            IpCidr::V6(Ipv6Cidr::ANY),
            (-1, -1),
        ),
        AclEntry::new(true, 100, Protocol::All, allow, any, (-1, -1)),
    ]
    .into_iter()
    .collect();
    if !updated {
        entries.insert(AclEntry::new(
            false,
            110,
            Protocol::Tcp,
            allow,
            any,
            (1024, 65535),
        ));
    }
    let subnet = |block: &str| {
        Spec::Subnet(SubnetSpec {
            vpc: m("acl.vpc"),
            cidr_block: cidr(block),
            availability_zone: "us-west-2a".into(),
            map_public_ip_on_launch: false,
            ipv6_index: None,
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let mut associations: BTreeSet<Ref> = [m("acl.a")].into_iter().collect();
    if updated {
        associations.insert(m("acl.b"));
    }
    let specs = [
        (
            "acl.vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.30.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: Tags::new(),
            }),
        ),
        ("acl.a", subnet("10.30.1.0/24")),
        ("acl.b", subnet("10.30.2.0/24")),
        (
            "acl.acl",
            Spec::NetworkAcl(NetworkAclSpec {
                vpc: m("acl.vpc"),
                entries: entries.into(),
                associations: associations.into(),
                tags: tags(&[("Name", "web")]),
            }),
        ),
    ];
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// The observed network ACL `acl`.
fn observed_acl(obs: &ObservedState, acl: &str) -> NetworkAclSpec<String> {
    match &obs.get(acl).expect("ACL observed").spec {
        Spec::NetworkAcl(a) => a.clone(),
        other => panic!("not an ACL: {other:?}"),
    }
}

/// The request types of a plan.
fn types(p: &canon_model::plan::Plan) -> Vec<&'static str> {
    p.requests.iter().map(|r| r.request_type()).collect()
}

/// A network ACL: built with its entries (EC2's own last entries are not
/// shown) and its subnet; a console-added entry and a subnet given back to
/// the default ACL are drift, each healed by one request; an update
/// replaces, deletes and associates in place; kill gives the subnets back
/// before deleting the ACL, in reverse order.
pub async fn acl_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = acl_network(fid, false);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-acl-run").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let acl = b.cloud_id(&l("acl.acl")).unwrap().to_string();
    let (a, subnet_b) = (
        b.cloud_id(&l("acl.a")).unwrap().to_string(),
        b.cloud_id(&l("acl.b")).unwrap().to_string(),
    );
    assert!(acl.starts_with("acl-"), "{acl}");
    let obs = cloud.observe(&scope()).await.unwrap();
    let seen = observed_acl(&obs, &acl);
    let Spec::NetworkAcl(want) = &declared.resources[&l("acl.acl")].spec else {
        unreachable!()
    };
    assert_eq!(seen.entries, want.entries);
    assert_eq!(seen.associations, [a.clone()].into_iter().collect());
    assert!(obs.get(&acl).unwrap().association_ids.contains_key(&a));

    // A console user allows all traffic in at 90: drift, healed by
    // deleting that entry.
    let rogue = AclEntry::new(
        false,
        90,
        Protocol::All,
        AclAction::Allow,
        IpCidr::V4(Ipv4Cidr::ANY),
        (-1, -1),
    );
    op.add_nacl_entry(&acl, rogue).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences.iter().any(|d| d.property == "ingress.90"
            && d.observed.as_deref() == Some("allow all traffic 0.0.0.0/0")),
        "{:?}",
        p.differences
    );
    assert_eq!(types(&p), ["aws.ec2.delete_network_acl_entry"]);
    passes(cloud, fid, Some(&declared), &mut b, "job-acl-heal-entry").await;

    // ... and gives the subnet back to the VPC's default ACL: healed by
    // taking it again.
    op.default_acl(&a).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert_eq!(types(&p), ["aws.ec2.replace_network_acl_association"]);
    passes(cloud, fid, Some(&declared), &mut b, "job-acl-heal-subnet").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(observed_acl(&obs, &acl).associations.len(), 1);

    // An update: entry 100 replaced, 110 deleted, the second subnet taken.
    let updated = acl_network(fid, true);
    let (_, p) = observe_and_plan(cloud, fid, Some(&updated), &b).await;
    let mut got = types(&p);
    got.sort();
    assert_eq!(
        got,
        [
            "aws.ec2.delete_network_acl_entry",
            "aws.ec2.replace_network_acl_association",
            "aws.ec2.replace_network_acl_entry",
        ]
    );
    passes(cloud, fid, Some(&updated), &mut b, "job-acl-update").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    let seen = observed_acl(&obs, &acl);
    assert_eq!(
        seen.associations,
        [a.clone(), subnet_b].into_iter().collect()
    );
    assert_eq!(
        b.cloud_id(&l("acl.acl")),
        Some(acl.as_str()),
        "kept in place"
    );

    // Kill: the subnets go back to the default ACL, then the ACL goes,
    // then the subnets and the VPC.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    assert_eq!(
        types(&p)[..3],
        [
            "aws.ec2.replace_network_acl_association",
            "aws.ec2.replace_network_acl_association",
            "aws.ec2.delete_network_acl",
        ]
    );
    passes(cloud, fid, None, &mut b, "job-acl-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A VPC reaching the Internet over IPv4 through an internet gateway and
/// out over IPv6 through an egress-only one.
fn egress_network(fid: Fid) -> DesiredState {
    let l = |p: &str| LogicalId::new(fid, p);
    let m = |p: &str| Ref::Managed(l(p));
    let routes = [
        (IpCidr::V4(Ipv4Cidr::ANY), "v6.igw"),
        (IpCidr::V6(Ipv6Cidr::ANY), "v6.eigw"),
    ]
    .into_iter()
    .map(|(destination, target)| Route {
        destination,
        target: m(target),
    })
    .collect();
    let specs = [
        (
            "v6.vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.50.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: Tags::new(),
            }),
        ),
        (
            "v6.igw",
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: Some(m("v6.vpc")),
                tags: Tags::new(),
            }),
        ),
        (
            "v6.eigw",
            Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                vpc: m("v6.vpc"),
                tags: tags(&[("Name", "out")]),
            }),
        ),
        (
            "v6.routes",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: m("v6.vpc"),
                routes,
                associations: Default::default(),
                tags: Tags::new(),
            }),
        ),
    ];
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// An egress-only internet gateway and an IPv6 route through it: built,
/// observed (the gateway in its VPC, the route by its IPv6 destination),
/// the route deleted by hand and healed by one create through the
/// gateway, the gateway deleted by hand and replaced with its route
/// following, and killed.
pub async fn egress_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = egress_network(fid);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-eigw-run").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let eigw = b.cloud_id(&l("v6.eigw")).unwrap().to_string();
    let table = b.cloud_id(&l("v6.routes")).unwrap().to_string();
    assert!(eigw.starts_with("eigw-"), "{eigw}");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(matches!(&obs.get(&eigw).unwrap().spec,
        Spec::EgressOnlyInternetGateway(g) if Some(g.vpc.as_str()) == b.cloud_id(&l("v6.vpc"))));
    assert_eq!(routes_of(&obs, &table)["::/0"], eigw);

    op.delete_route(&table, IpCidr::V6(Ipv6Cidr::ANY)).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.property == "routes.::/0" && d.observed.is_none()),
        "{:?}",
        p.differences
    );
    assert_eq!(types(&p), ["aws.ec2.create_route"]);
    let params = p.requests[0].params();
    assert_eq!(params["DestinationIpv6CidrBlock"], "::/0");
    assert_eq!(params["EgressOnlyInternetGatewayId"], eigw.as_str());
    passes(cloud, fid, Some(&declared), &mut b, "job-eigw-heal-route").await;

    op.delete_egress_only_gateway(&eigw).await;
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-eigw-heal").await;
    assert_eq!(
        all,
        [vec![
            "aws.ec2.create_egress_only_internet_gateway",
            "aws.ec2.replace_route"
        ]]
    );
    let replaced = b.cloud_id(&l("v6.eigw")).unwrap().to_string();
    assert_ne!(replaced, eigw);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(routes_of(&obs, &table)["::/0"], replaced);

    passes(cloud, fid, None, &mut b, "job-eigw-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A dual-stack VPC (`on`): an Amazon-provided `/56`, two subnets with
/// `/64`s number 0 and 1, an internet gateway for 0.0.0.0/0 and an
/// egress-only one for ::/0; or (`!on`) the same VPC and subnets IPv4 only,
/// with the internet gateway's route alone.
fn ipv6_network(fid: Fid, on: bool) -> DesiredState {
    let m = |p: &str| Ref::Managed(LogicalId::new(fid, p));
    let mut routes = BTreeSet::from([Route {
        destination: IpCidr::V4(Ipv4Cidr::ANY),
        target: m("six.igw"),
    }]);
    if on {
        routes.insert(Route {
            destination: IpCidr::V6(Ipv6Cidr::ANY),
            target: m("six.eigw"),
        });
    }
    let subnet = |block: &str, zone: &str, index: u8| {
        Spec::Subnet(SubnetSpec {
            vpc: m("six.vpc"),
            cidr_block: cidr(block),
            availability_zone: zone.into(),
            map_public_ip_on_launch: false,
            ipv6_index: on.then_some(index),
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let mut specs = vec![
        (
            "six.vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.60.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: on,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: tags(&[("Name", "six")]),
            }),
        ),
        (
            "six.igw",
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: Some(m("six.vpc")),
                tags: Tags::new(),
            }),
        ),
        ("six.a", subnet("10.60.1.0/24", "us-west-2a", 0)),
        ("six.b", subnet("10.60.2.0/24", "us-west-2b", 1)),
        (
            "six.routes",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: m("six.vpc"),
                routes: routes.into(),
                associations: canon_model::SortedVecSet::from([m("six.a"), m("six.b")]),
                tags: Tags::new(),
            }),
        ),
    ];
    if on {
        specs.push((
            "six.eigw",
            Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                vpc: m("six.vpc"),
                tags: Tags::new(),
            }),
        ));
    }
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// The observed `/56` of a VPC and `/64` of a subnet.
fn ipv6_of(obs: &ObservedState, id: &str) -> Option<Ipv6Cidr> {
    match &obs.get(id).expect("observed").spec {
        Spec::Vpc(v) => v.ipv6_cidr_block,
        Spec::Subnet(s) => s.ipv6_cidr_block,
        other => panic!("{other:?}"),
    }
}

/// VPC IPv6: a dual-stack VPC built (the `/56` with the create, the
/// subnets' `/64`s, numbered inside it, once it is observed), a `/64`
/// taken away by hand and put back, IPv6 taken away from the kept VPC in
/// place (the `/64`s before the `/56`), and killed.
pub async fn ipv6_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = ipv6_network(fid, true);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-ipv6-run").await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[1],
        [
            "aws.ec2.associate_subnet_cidr_block",
            "aws.ec2.associate_subnet_cidr_block"
        ]
    );
    let vpc = b.cloud_id(&l("six.vpc")).unwrap().to_string();
    let a = b.cloud_id(&l("six.a")).unwrap().to_string();
    let obs = cloud.observe(&scope()).await.unwrap();
    let block = ipv6_of(&obs, &vpc).expect("the VPC has its /56");
    assert_eq!(block.prefix(), 56, "{block}");
    assert_eq!(ipv6_of(&obs, &a), block.subnet64(0));
    let bsub = b.cloud_id(&l("six.b")).unwrap();
    assert_eq!(ipv6_of(&obs, bsub), block.subnet64(1));
    let table = b.cloud_id(&l("six.routes")).unwrap().to_string();
    let eigw = b.cloud_id(&l("six.eigw")).unwrap().to_string();
    assert_eq!(routes_of(&obs, &table)["::/0"], eigw);

    // A rogue operator takes subnet a's /64 away: put back, the same one.
    let association = obs.get(&a).unwrap().association_ids[IPV6_ASSOCIATION].clone();
    op.disassociate_subnet_ipv6(&association).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert_eq!(types(&p), ["aws.ec2.associate_subnet_cidr_block"]);
    assert!(
        p.differences.iter().any(|d| d.property == "ipv6Index"),
        "{:?}",
        p.differences
    );
    passes(cloud, fid, Some(&declared), &mut b, "job-ipv6-heal").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(ipv6_of(&obs, &a), block.subnet64(0));

    // IPv6 taken away in place: the VPC and subnets are kept.
    let off = ipv6_network(fid, false);
    let all = passes(cloud, fid, Some(&off), &mut b, "job-ipv6-off").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let pos = |x: &str| all[0].iter().position(|y| *y == x).unwrap();
    assert!(
        pos("aws.ec2.disassociate_subnet_cidr_block") < pos("aws.ec2.disassociate_vpc_cidr_block"),
        "{all:?}"
    );
    assert_eq!(b.cloud_id(&l("six.vpc")).unwrap(), vpc);
    assert_eq!(b.cloud_id(&l("six.a")).unwrap(), a);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(ipv6_of(&obs, &vpc), None);
    assert_eq!(ipv6_of(&obs, &a), None);

    passes(cloud, fid, None, &mut b, "job-ipv6-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// Two VPCs peered, and a route in the first's table to the second's
/// block through the connection.
fn peering_network(fid: Fid) -> DesiredState {
    let m = |p: &str| Ref::Managed(LogicalId::new(fid, p));
    let vpc = |block: &str| {
        Spec::Vpc(VpcSpec {
            cidr_block: cidr(block),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: false,
            ipv6: false,
            ipv6_cidr_block: None,
            dhcp_options: None,
            tags: Tags::new(),
        })
    };
    let route = Route {
        destination: IpCidr::V4(cidr("10.61.0.0/16")),
        target: m("pcx"),
    };
    let specs = [
        ("a.vpc", vpc("10.60.0.0/16")),
        ("b.vpc", vpc("10.61.0.0/16")),
        (
            "pcx",
            Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
                vpc: m("a.vpc"),
                peer_vpc: m("b.vpc"),
                accepted: true,
                tags: tags(&[("Name", "a-to-b")]),
            }),
        ),
        (
            "a.routes",
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: m("a.vpc"),
                routes: [route].into(),
                associations: Default::default(),
                tags: Tags::new(),
            }),
        ),
    ];
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// A VPC peering connection and a route through it: requested and
/// accepted in one pass, the route made in the next (it waits until the
/// connection is active); observed by its ownership tag (active, its two
/// VPCs, its tags); deleted by hand, it is a difference, made and accepted
/// again with the route following; killed, the route's table goes before
/// the connection and the connection before its VPCs.
pub async fn peering_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = peering_network(fid);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-pcx-run").await;
    assert_eq!(all.len(), 2, "{all:?}");
    let create = all[0]
        .iter()
        .position(|t| *t == "aws.ec2.create_vpc_peering_connection");
    let accept = all[0]
        .iter()
        .position(|t| *t == "aws.ec2.accept_vpc_peering_connection");
    assert!(create.is_some() && create < accept, "{all:?}");
    assert_eq!(all[1], ["aws.ec2.create_route"]);
    let pcx = b.cloud_id(&l("pcx")).unwrap().to_string();
    let table = b.cloud_id(&l("a.routes")).unwrap().to_string();
    assert!(pcx.starts_with("pcx-") && pcx.len() == 4 + 17, "{pcx}");
    let obs = cloud.observe(&scope()).await.unwrap();
    let seen = obs.get(&pcx).expect("the connection observed by its tag");
    assert!(!seen.pending, "{seen:?}");
    assert_eq!(seen.owner(), Some(l("pcx")));
    match &seen.spec {
        Spec::VpcPeeringConnection(p) => {
            assert_eq!(Some(p.vpc.as_str()), b.cloud_id(&l("a.vpc")));
            assert_eq!(Some(p.peer_vpc.as_str()), b.cloud_id(&l("b.vpc")));
            assert!(p.accepted);
            assert_eq!(p.tags.get("Name").map(String::as_str), Some("a-to-b"));
        }
        other => panic!("not a peering connection: {other:?}"),
    }
    assert_eq!(routes_of(&obs, &table)["10.61.0.0/16"], pcx);

    op.delete_peering(&pcx).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.resource == l("pcx") && d.property == "existence"),
        "{:?}",
        p.differences
    );
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-pcx-heal").await;
    assert_eq!(
        all,
        [
            vec![
                "aws.ec2.create_vpc_peering_connection",
                "aws.ec2.accept_vpc_peering_connection"
            ],
            vec!["aws.ec2.replace_route"]
        ]
    );
    let healed = b.cloud_id(&l("pcx")).unwrap().to_string();
    assert_ne!(healed, pcx);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(obs.get(&pcx).is_none(), "the deleted connection is gone");
    assert_eq!(routes_of(&obs, &table)["10.61.0.0/16"], healed);

    let all = passes(cloud, fid, None, &mut b, "job-pcx-kill").await;
    let kill: Vec<_> = all.concat();
    let at = |t: &str| {
        kill.iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} in {kill:?}"))
    };
    assert!(at("aws.ec2.delete_route_table") < at("aws.ec2.delete_vpc_peering_connection"));
    assert!(at("aws.ec2.delete_vpc_peering_connection") < at("aws.ec2.delete_vpc"));
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A VPC with two route tables (one with a declared route through the
/// VPC's internet gateway) and a gateway endpoint to S3 routed from both.
fn endpoint_network(fid: Fid) -> DesiredState {
    let m = |p: &str| Ref::Managed(LogicalId::new(fid, p));
    let table = |routes: BTreeSet<Route<Ref>>| {
        Spec::RouteTable(RouteTableSpec {
            interfaces: Default::default(),
            vpc: m("vpc"),
            routes: routes.into(),
            associations: Default::default(),
            tags: Tags::new(),
        })
    };
    let route = Route {
        destination: IpCidr::V4(cidr("0.0.0.0/0")),
        target: m("igw"),
    };
    let specs = [
        (
            "vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.70.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: false,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: Tags::new(),
            }),
        ),
        (
            "igw",
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: Some(m("vpc")),
                tags: Tags::new(),
            }),
        ),
        ("rt1", table([route].into())),
        ("rt2", table(BTreeSet::new())),
        (
            "s3",
            Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: m("vpc"),
                service: EndpointService::S3,
                endpoint_type: EndpointType::Gateway,
                route_tables: [m("rt1"), m("rt2")].into(),
                subnets: Default::default(),
                security_groups: Default::default(),
                private_dns: false,
                policy: None,
                tags: tags(&[("Name", "s3")]),
            }),
        ),
    ];
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// A gateway endpoint to S3 and its two route tables: made in one pass
/// after the tables; observed by its ownership tag (its VPC, service,
/// tables and tags); the prefix-list routes the cloud adds to its tables
/// are no drift of theirs (the plan is empty, the declared route still
/// seen); a table taken off by hand is put back with one
/// `ModifyVpcEndpoint`; deleted by hand, it is made again; killed, it goes
/// before its tables and its VPC.
pub async fn endpoint_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = endpoint_network(fid);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-vpce-run").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let at = |t: &str| all[0].iter().rposition(|x| *x == t).unwrap();
    assert!(at("aws.ec2.create_route_table") < at("aws.ec2.create_vpc_endpoint"));
    let vpce = b.cloud_id(&l("s3")).unwrap().to_string();
    let (rt1, rt2) = (
        b.cloud_id(&l("rt1")).unwrap().to_string(),
        b.cloud_id(&l("rt2")).unwrap().to_string(),
    );
    assert!(vpce.starts_with("vpce-") && vpce.len() == 5 + 17, "{vpce}");
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.is_empty() && p.differences.is_empty(),
        "{:#}\n{:?}",
        p.to_json(),
        p.differences
    );
    let seen = obs.get(&vpce).expect("the endpoint observed by its tag");
    assert_eq!(seen.owner(), Some(l("s3")));
    match &seen.spec {
        Spec::VpcEndpoint(e) => {
            assert_eq!(Some(e.vpc.as_str()), b.cloud_id(&l("vpc")));
            assert_eq!(e.service, EndpointService::S3);
            assert_eq!(e.route_tables, [rt1.clone(), rt2.clone()].into());
            assert_eq!(e.tags.get("Name").map(String::as_str), Some("s3"));
        }
        other => panic!("not an endpoint: {other:?}"),
    }
    let igw = b.cloud_id(&l("igw")).unwrap();
    assert_eq!(routes_of(&obs, &rt1).len(), 1);
    assert_eq!(routes_of(&obs, &rt1)["0.0.0.0/0"], igw);
    assert!(routes_of(&obs, &rt2).is_empty());

    op.remove_endpoint_table(&vpce, &rt2).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.resource == l("s3") && d.property == "routeTables"),
        "{:?}",
        p.differences
    );
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-vpce-table").await;
    assert_eq!(all, [vec!["aws.ec2.modify_vpc_endpoint"]]);

    op.delete_endpoint(&vpce).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.resource == l("s3") && d.property == "existence"),
        "{:?}",
        p.differences
    );
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-vpce-heal").await;
    assert_eq!(all, [vec!["aws.ec2.create_vpc_endpoint"]]);
    let healed = b.cloud_id(&l("s3")).unwrap().to_string();
    assert_ne!(healed, vpce);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(obs.get(&vpce).is_none(), "the deleted endpoint is gone");

    let all = passes(cloud, fid, None, &mut b, "job-vpce-kill").await;
    let kill: Vec<_> = all.concat();
    let at = |t: &str| {
        kill.iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} in {kill:?}"))
    };
    assert!(at("aws.ec2.delete_vpc_endpoints") < at("aws.ec2.delete_route_table"));
    assert!(at("aws.ec2.delete_vpc_endpoints") < at("aws.ec2.delete_vpc"));
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A policy of an interface endpoint, as declared (EC2 gives it back
/// reformatted).
const SSM_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ssm:*", "Resource": "*"}]}"#;

/// A VPC with DNS hostnames, subnets in two zones, two groups and an
/// interface endpoint to SSM in both subnets with both groups, private
/// DNS and `policy`.
fn interface_network(fid: Fid, policy: &str) -> DesiredState {
    let m = |p: &str| Ref::Managed(LogicalId::new(fid, p));
    let subnet = |block: &str, zone: &str| {
        Spec::Subnet(SubnetSpec {
            vpc: m("vpc"),
            cidr_block: cidr(block),
            availability_zone: zone.into(),
            map_public_ip_on_launch: false,
            ipv6_index: None,
            ipv6_cidr_block: None,
            tags: Tags::new(),
        })
    };
    let group = |name: &str| {
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: m("vpc"),
            group_name: name.into(),
            description: name.into(),
            ingress: Default::default(),
            egress: Default::default(),
            tags: Tags::new(),
        })
    };
    let specs = [
        (
            "vpc",
            Spec::Vpc(VpcSpec {
                cidr_block: cidr("10.71.0.0/16"),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: true,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: None,
                tags: Tags::new(),
            }),
        ),
        ("a", subnet("10.71.1.0/24", "us-west-2a")),
        ("b", subnet("10.71.2.0/24", "us-west-2b")),
        ("sg1", group("vpce-sg1")),
        ("sg2", group("vpce-sg2")),
        (
            "ssm",
            Spec::VpcEndpoint(VpcEndpointSpec {
                vpc: m("vpc"),
                service: EndpointService::Ssm,
                endpoint_type: EndpointType::Interface,
                route_tables: Default::default(),
                subnets: [m("a"), m("b")].into(),
                security_groups: [m("sg1"), m("sg2")].into(),
                private_dns: true,
                policy: Some(policy.to_string()),
                tags: tags(&[("Name", "ssm")]),
            }),
        ),
    ];
    demo::declaration(fid, specs).expect("a valid declaration")
}

/// An interface endpoint to SSM: made in one pass after its subnets and
/// groups; observed by its tag (type, service, subnets, groups, private
/// DNS, a policy the cloud may reformat, which is no drift); a subnet and
/// a group taken off by hand put back with exactly one
/// `ModifyVpcEndpoint`; a new policy set in place with one; deleted by
/// hand, made again; killed, it goes before its subnets and groups.
pub async fn interface_endpoint_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let declared = interface_network(fid, SSM_POLICY);
    let mut b = Bindings::new();
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-ivpce-run").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let at = |t: &str| all[0].iter().rposition(|x| *x == t).unwrap();
    assert!(at("aws.ec2.create_subnet") < at("aws.ec2.create_vpc_endpoint"));
    assert!(at("aws.ec2.create_security_group") < at("aws.ec2.create_vpc_endpoint"));
    let vpce = b.cloud_id(&l("ssm")).unwrap().to_string();
    let id = |p: &str| b.cloud_id(&l(p)).unwrap().to_string();
    let (a, sub_b, sg1, sg2) = (id("a"), id("b"), id("sg1"), id("sg2"));
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(
        p.is_empty() && p.differences.is_empty(),
        "{:#}\n{:?}",
        p.to_json(),
        p.differences
    );
    match &obs
        .get(&vpce)
        .expect("the endpoint observed by its tag")
        .spec
    {
        Spec::VpcEndpoint(e) => {
            assert_eq!(e.endpoint_type, EndpointType::Interface);
            assert_eq!(e.service, EndpointService::Ssm);
            assert_eq!(e.subnets, [a.clone(), sub_b.clone()].into());
            assert_eq!(e.security_groups, [sg1.clone(), sg2.clone()].into());
            assert!(e.private_dns);
            assert!(endpoint_policy::same(e.policy.as_deref(), Some(SSM_POLICY)));
        }
        other => panic!("not an endpoint: {other:?}"),
    }

    op.remove_endpoint_members(&vpce, &sub_b, &sg2).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    for property in ["subnets", "securityGroups"] {
        assert!(
            p.differences
                .iter()
                .any(|d| d.resource == l("ssm") && d.property == property),
            "{property}: {:?}",
            p.differences
        );
    }
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-ivpce-members").await;
    assert_eq!(all, [vec!["aws.ec2.modify_vpc_endpoint"]]);

    let changed = SSM_POLICY.replace("ssm:*", "ssm:GetParameter");
    let declared = interface_network(fid, &changed);
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-ivpce-policy").await;
    assert_eq!(all, [vec!["aws.ec2.modify_vpc_endpoint"]]);
    assert_eq!(
        b.cloud_id(&l("ssm")),
        Some(vpce.as_str()),
        "changed in place"
    );

    op.delete_endpoint(&vpce).await;
    let all = passes(cloud, fid, Some(&declared), &mut b, "job-ivpce-heal").await;
    assert_eq!(all, [vec!["aws.ec2.create_vpc_endpoint"]]);
    assert_ne!(b.cloud_id(&l("ssm")), Some(vpce.as_str()));

    let all = passes(cloud, fid, None, &mut b, "job-ivpce-kill").await;
    let kill: Vec<_> = all.concat();
    let at = |t: &str| {
        kill.iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} in {kill:?}"))
    };
    assert!(at("aws.ec2.delete_vpc_endpoints") < at("aws.ec2.delete_subnet"));
    assert!(at("aws.ec2.delete_vpc_endpoints") < at("aws.ec2.delete_security_group"));
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

fn ctx_for(job: &str) -> ExecContext {
    ctx(job)
}

/// One case of each error class, and idempotent creates by ownership tag.
/// `broken` is the same kind of cloud with every call failing transiently.
pub async fn error_suite(cloud: &dyn Cloud, broken: &dyn Cloud) {
    let fid = Fid::random();
    let ctx = ctx("job-errors");
    let l = |p: &str| LogicalId::new(fid, p);
    let owned = |p: &str| tags(&[(OWNERSHIP_TAG, &l(p).to_string())]);

    // Terminal: a /8 VPC.
    let e = cloud
        .execute(
            &req(
                l("wide"),
                Action::CreateVpc {
                    cidr_block: cidr("10.0.0.0/8"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned("wide"),
                },
            ),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (ErrorClass::Terminal, "InvalidVpc.Range")
    );
    assert!(
        !e.message.to_ascii_lowercase().contains("request id"),
        "{e}"
    );
    // The request ids of its calls (the look-up by ownership tag, the
    // refused create) travel beside the message.
    assert_eq!(e.request_ids.len(), 2, "{e:?}");

    let vpc = cloud
        .execute(
            &req(
                l("vpc"),
                Action::CreateVpc {
                    cidr_block: cidr("10.1.0.0/16"),
                    instance_tenancy: Tenancy::Default,
                    amazon_provided_ipv6_cidr_block: false,
                    tags: owned("vpc"),
                },
            ),
            &ctx,
        )
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    let subnet = |path: &str, block: &str| {
        req(
            l(path),
            Action::CreateSubnet {
                vpc: id(&vpc),
                cidr_block: cidr(block),
                availability_zone: "us-west-2a".into(),
                ipv6_cidr_block: None,
                tags: owned(path),
            },
        )
    };
    let s1 = cloud
        .execute(&subnet("s1", "10.1.1.0/24"), &ctx)
        .await
        .unwrap()
        .cloud_id
        .unwrap();
    // Terminal: overlapping subnet; outside the VPC.
    let e = cloud
        .execute(&subnet("s2", "10.1.1.128/25"), &ctx)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (ErrorClass::Terminal, "InvalidSubnet.Conflict")
    );
    let e = cloud
        .execute(&subnet("s3", "10.2.0.0/24"), &ctx)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (ErrorClass::Terminal, "InvalidSubnet.Range")
    );

    // Retryable: the VPC still has a subnet.
    let e = cloud
        .execute(&req(l("vpc"), Action::DeleteVpc { vpc: id(&vpc) }), &ctx)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (ErrorClass::Retryable, "DependencyViolation")
    );

    // Idempotent create: the same group again (another job, so no client
    // token would help) is found by its ownership tag.
    let group = |job: &str| {
        let _ = job;
        req(
            l("sg"),
            Action::CreateSecurityGroup {
                vpc: id(&vpc),
                group_name: "web".into(),
                description: "web".into(),
                tags: owned("sg"),
            },
        )
    };
    let first = cloud.execute(&group("a"), &ctx).await.unwrap();
    assert!(!first.already_done);
    let again = cloud
        .execute(&group("b"), &super::ctx("job-errors-rerun"))
        .await
        .unwrap();
    assert!(again.already_done, "{again:?}");
    assert_eq!(again.cloud_id, first.cloud_id);
    let sg = first.cloud_id.unwrap();

    // Already done: revoking a rule that is not there; authorizing one that
    // is; deleting twice.
    let rule: BTreeSet<Rule<CloudRef>> = [Rule::new(
        Protocol::Tcp,
        8080,
        8080,
        Peer::Cidr(Ipv4Cidr::ANY),
    )]
    .into_iter()
    .collect();
    let o = cloud
        .execute(
            &req(
                l("sg"),
                Action::RevokeSecurityGroupIngress {
                    group: id(&sg),
                    rules: rule.clone(),
                },
            ),
            &ctx,
        )
        .await
        .unwrap();
    assert!(o.already_done, "{o:?}");
    let authorize = req(
        l("sg"),
        Action::AuthorizeSecurityGroupIngress {
            group: id(&sg),
            rules: rule.clone(),
        },
    );
    assert!(!cloud.execute(&authorize, &ctx).await.unwrap().already_done);
    assert!(cloud.execute(&authorize, &ctx).await.unwrap().already_done);
    // A batch of one existing and one new rule: only the new one is added.
    let mut both = rule.clone();
    both.insert(Rule::new(
        Protocol::Tcp,
        9090,
        9090,
        Peer::Cidr(Ipv4Cidr::ANY),
    ));
    let o = cloud
        .execute(
            &req(
                l("sg"),
                Action::AuthorizeSecurityGroupIngress {
                    group: id(&sg),
                    rules: both,
                },
            ),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!o.already_done, "{o:?}");
    let obs = cloud.observe(&scope()).await.unwrap();
    match &obs.get(&sg).unwrap().spec {
        Spec::SecurityGroup(g) => assert_eq!(g.ingress, rules(&[8080, 9090])),
        other => panic!("{other:?}"),
    }

    let del = req(l("s1"), Action::DeleteSubnet { subnet: id(&s1) });
    assert!(!cloud.execute(&del, &ctx).await.unwrap().already_done);
    assert!(cloud.execute(&del, &ctx).await.unwrap().already_done);
    let del_sg = req(l("sg"), Action::DeleteSecurityGroup { group: id(&sg) });
    assert!(!cloud.execute(&del_sg, &ctx).await.unwrap().already_done);
    assert!(cloud.execute(&del_sg, &ctx).await.unwrap().already_done);
    let del_vpc = req(l("vpc"), Action::DeleteVpc { vpc: id(&vpc) });
    assert!(!cloud.execute(&del_vpc, &ctx).await.unwrap().already_done);
    assert!(cloud.execute(&del_vpc, &ctx).await.unwrap().already_done);

    // Terminal before any call: an unresolved reference.
    let calls = cloud.api_calls().total();
    let e = cloud
        .execute(
            &req(
                l("vpc"),
                Action::DeleteVpc {
                    vpc: CloudRef::Pending(l("vpc")),
                },
            ),
            &ctx,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (ErrorClass::Terminal, "Canon.Unresolved")
    );
    assert_eq!(cloud.api_calls().total(), calls);

    // Retryable: throttled or unreachable.
    let e = broken.observe(&scope()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    let _ = plan;
}

/// What a cloud's instances show of the conductor's `Tcp` health check.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// The observation carries the instance's address (the real cloud's;
    /// SimCloud models the connect by instance id instead).
    pub address: bool,
    /// The connect's outcome, where the test can know it (a real connect's
    /// depends on the network the test runs in).
    pub reachable: Option<bool>,
}

/// The demo plus one instance in the first subnet behind the web group:
/// run, converge (user data, groups and all), change its groups in place,
/// kill (terminate before the group and subnet go). The instance's
/// address and the conductor's TCP connect to it (`Cloud::reach`) are as
/// `probe` says.
pub async fn instance_suite(cloud: &dyn Cloud, probe: Probe) {
    let fid = Fid::random();
    let mut declared = demo(fid, false);
    let vpc = LogicalId::new(fid, "dev-network.vpc");
    let subnet = LogicalId::new(fid, "dev-network.publicSubnets[0]");
    let web = sg_id(fid);
    let admin = LogicalId::new(fid, "admin-sg");
    declared
        .insert(Resource {
            id: admin,
            name: "admin-sg".into(),
            region: Region::new(REGION),
            spec: Spec::SecurityGroup(SecurityGroupSpec {
                description: "admin".into(),
                ingress: [Rule::new(
                    Protocol::Tcp,
                    22,
                    22,
                    Peer::Group(Ref::Managed(web)),
                )]
                .into(),
                ..demo::web_group(Ref::Managed(vpc), "admin-sg", &[])
            }),
        })
        .unwrap();
    let box_id = LogicalId::new(fid, "app-box");
    let instance = |name: &str, groups: &[LogicalId]| Resource {
        id: LogicalId::new(fid, name),
        name: name.into(),
        region: Region::new(REGION),
        spec: Spec::Instance(InstanceSpec {
            image_id: "ami-0123456789abcdef0".into(),
            instance_type: "t3.micro".into(),
            subnet: Ref::Managed(subnet),
            key_name: None,
            user_data: Some("#!/bin/sh\necho hello".into()),
            security_groups: groups.iter().map(|g| Ref::Managed(*g)).collect(),
            tags: tags(&[("Name", "app")]),
            max_age_secs: None,
            fleet: None,
            source_dest_check: true,
        }),
    };
    // An instance declared with no groups is in its VPC's default group,
    // which is no difference (a fleet without `securityGroups`).
    let bare_id = LogicalId::new(fid, "bare-box");
    declared.insert(instance("bare-box", &[])).unwrap();
    let mut first = declared.clone();
    first.insert(instance("app-box", &[web])).unwrap();
    first.validate().unwrap();
    let mut b = Bindings::new();
    let ctx = ctx("job-instance");
    let (_, p) = observe_and_plan(cloud, fid, Some(&first), &b).await;
    apply(cloud, &p, &mut b, &ctx)
        .await
        .expect("run with an instance");
    let (obs, p) = observe_and_plan(cloud, fid, Some(&first), &b).await;
    assert!(p.is_empty(), "{:#}\n{:#?}", p.to_json(), p.differences);
    let i = b.cloud_id(&box_id).unwrap().to_string();
    match &obs.get(&i).unwrap().spec {
        Spec::Instance(s) => {
            assert_eq!(s.user_data.as_deref(), Some("#!/bin/sh\necho hello"));
            assert_eq!(s.security_groups.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let running = obs.get(&i).unwrap();
    let address = running.life.and_then(|l| l.address);
    assert_eq!(address.is_some(), probe.address, "{address:?}");
    let reached = cloud.reach(&scope(), running, 8080).await;
    if let Some(expected) = probe.reachable {
        assert_eq!(reached, expected);
    }
    let bare = b.cloud_id(&bare_id).unwrap();
    match &obs.get(bare).unwrap().spec {
        // EC2 and SimCloud put it in the VPC's default group; moto in
        // none (a gap the crate's docs list).
        Spec::Instance(s) => assert!(s.security_groups.len() <= 1, "{s:?}"),
        other => panic!("{other:?}"),
    }
    // A group referring to another group round-trips.
    let admin_obs = obs.get(b.cloud_id(&admin).unwrap()).unwrap();
    match &admin_obs.spec {
        Spec::SecurityGroup(s) => assert!(s
            .ingress
            .iter()
            .any(|r| r.peer == Peer::Group(b.cloud_id(&web).unwrap().to_string()))),
        other => panic!("{other:?}"),
    }

    // Groups change in place.
    let mut second = declared.clone();
    second.insert(instance("app-box", &[web, admin])).unwrap();
    let (_, p) = observe_and_plan(cloud, fid, Some(&second), &b).await;
    assert_eq!(p.requests.len(), 1, "{:#}", p.to_json());
    assert_eq!(
        p.requests[0].request_type(),
        "aws.ec2.modify_instance_attribute"
    );
    apply(cloud, &p, &mut b, &ctx_for("job-groups"))
        .await
        .expect("groups");
    let (obs, p) = observe_and_plan(cloud, fid, Some(&second), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());
    match &obs.get(&i).unwrap().spec {
        Spec::Instance(s) => assert_eq!(s.security_groups.len(), 2),
        other => panic!("{other:?}"),
    }

    // Kill.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    assert_eq!(
        p.requests[0].request_type(),
        "aws.ec2.terminate_instances",
        "{:#}",
        p.to_json()
    );
    apply(cloud, &p, &mut b, &ctx_for("job-kill"))
        .await
        .expect("kill");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// An instance's life as the cloud reports it, and its replacements: it
/// runs with passing checks after its launch; older than its `maxAge` it is
/// replaced surge-first (the old one serves until the new one is ready, then
/// goes); stopped out of band it is replaced at once.
pub async fn rotation_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let mut declared = demo(fid, false);
    let box_id = LogicalId::new(fid, "rotating-box");
    declared
        .insert(Resource {
            id: box_id,
            name: "rotating-box".into(),
            region: Region::new(REGION),
            spec: match demo_instance(fid, "rotating") {
                Spec::Instance(i) => Spec::Instance(InstanceSpec {
                    max_age_secs: Some(3600),
                    ..i
                }),
                other => other,
            },
        })
        .unwrap();
    let mut b = Bindings::new();
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    apply(cloud, &p, &mut b, &ctx("job-rotation"))
        .await
        .expect("run");
    let obs = cloud.observe(&scope()).await.unwrap();
    let first = b.cloud_id(&box_id).unwrap().to_string();
    let life = obs.get(&first).unwrap().life.expect("an instance's life");
    assert!(life.ready() && life.launched_at > 0, "{life:?}");

    // Younger than its maxAge: nothing to do. Older: a new instance is
    // launched, and the old one waits for it.
    let young = plan_at(&declared, &obs, &b, life.launched_at + 60_000);
    assert!(young.is_empty(), "{:#}", young.to_json());
    let p = plan_at(&declared, &obs, &b, life.launched_at + 3_601_000);
    assert_eq!(types(&p), ["aws.ec2.run_instances"], "{:#}", p.to_json());
    assert_eq!(p.waiting.len(), 1, "{:?}", p.waiting);
    assert!(p.differences.iter().any(|d| d.property == "age"));
    apply(cloud, &p, &mut b, &ctx_for("job-surge"))
        .await
        .expect("surge");
    let second = b.cloud_id(&box_id).unwrap().to_string();
    assert_ne!(first, second);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(obs.get(&first).is_some(), "the old instance went first");
    let new_life = obs.get(&second).unwrap().life.expect("the new one's life");
    let p = plan_at(&declared, &obs, &b, new_life.launched_at + 1_000);
    assert_eq!(
        types(&p),
        ["aws.ec2.terminate_instances"],
        "{:#}",
        p.to_json()
    );
    apply(cloud, &p, &mut b, &ctx_for("job-retire"))
        .await
        .expect("retire");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(obs.get(&first).is_none(), "the old instance stays");

    // Stopped out of band: replaced at once, the stopped one terminated.
    op.stop_instance(&second).await;
    let (obs, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    let stopped = obs.get(&second).unwrap().life.expect("life").state;
    assert_ne!(stopped, InstanceState::Running);
    assert_eq!(
        types(&p),
        ["aws.ec2.run_instances", "aws.ec2.terminate_instances"],
        "{:#}",
        p.to_json()
    );
    assert!(p.differences.iter().any(|d| d.property == "state"));
    apply(cloud, &p, &mut b, &ctx_for("job-restart"))
        .await
        .expect("replace the stopped one");
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "{:#}", p.to_json());

    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    apply(cloud, &p, &mut b, &ctx_for("job-kill"))
        .await
        .expect("kill");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// EBS volumes: one attached to an instance and one on its own, built,
/// observed as declared; a volume a console user detached is attached
/// again; a declared larger size and new type are one modify in place, a
/// smaller size a new volume; kill detaches, then deletes.
pub async fn volume_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let mut declared = demo(fid, false);
    let subnet = l("dev-network.publicSubnets[0]");
    let zone = match &declared.resources[&subnet].spec {
        Spec::Subnet(s) => s.availability_zone.clone(),
        other => panic!("{other:?}"),
    };
    let resource = |name: &str, spec: Spec<Ref>| Resource {
        id: l(name),
        name: name.into(),
        region: Region::new(REGION),
        spec,
    };
    declared
        .insert(resource("db-box", demo_instance(fid, "db")))
        .unwrap();
    let volume = |size_gib: u32, volume_type: &str, attached: bool| {
        Spec::Volume(VolumeSpec {
            availability_zone: zone.clone(),
            size_gib,
            volume_type: volume_type.into(),
            iops: None,
            encrypted: false,
            attachment: attached.then(|| VolumeAttachment {
                instance: Ref::Managed(l("db-box")),
                device: "/dev/sdf".into(),
            }),
            tags: tags(&[("Name", "data")]),
        })
    };
    let mut first = declared.clone();
    first
        .insert(resource("data", volume(8, "gp3", true)))
        .unwrap();
    first
        .insert(resource("scratch", volume(4, "gp2", false)))
        .unwrap();
    let mut b = Bindings::new();
    passes(cloud, fid, Some(&first), &mut b, "job-volume-run").await;
    let data = b.cloud_id(&l("data")).unwrap().to_string();
    let db = b.cloud_id(&l("db-box")).unwrap().to_string();
    assert!(data.starts_with("vol-"), "{data}");
    let obs = cloud.observe(&scope()).await.unwrap();
    match &obs.get(&data).unwrap().spec {
        Spec::Volume(v) => {
            assert_eq!((v.size_gib, v.volume_type.as_str()), (8, "gp3"));
            assert_eq!(v.iops, Some(3000), "gp3's default IOPS");
            let a = v.attachment.as_ref().expect("attached");
            assert_eq!(
                (a.instance.as_str(), a.device.as_str()),
                (db.as_str(), "/dev/sdf")
            );
        }
        other => panic!("{other:?}"),
    }

    // A console user detaches the volume: drift, healed by one attach.
    op.detach_volume(&data, &db).await;
    let (_, p) = observe_and_plan(cloud, fid, Some(&first), &b).await;
    assert!(
        p.differences
            .iter()
            .any(|d| d.property == "attachment" && d.observed.is_none()),
        "{:?}",
        p.differences
    );
    let kinds: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(kinds, ["aws.ec2.attach_volume"], "{:#}", p.to_json());
    passes(cloud, fid, Some(&first), &mut b, "job-volume-heal").await;

    // Grown and retyped in place; the scratch volume shrunk is replaced.
    let mut second = declared.clone();
    second
        .insert(resource("data", volume(20, "gp2", true)))
        .unwrap();
    second
        .insert(resource("scratch", volume(2, "gp2", false)))
        .unwrap();
    let (_, p) = observe_and_plan(cloud, fid, Some(&second), &b).await;
    let mut kinds: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "aws.ec2.create_volume",
            "aws.ec2.delete_volume",
            "aws.ec2.modify_volume"
        ],
        "{:#}",
        p.to_json()
    );
    passes(cloud, fid, Some(&second), &mut b, "job-volume-update").await;
    assert_eq!(b.cloud_id(&l("data")), Some(data.as_str()), "kept in place");
    let obs = cloud.observe(&scope()).await.unwrap();
    assert!(matches!(&obs.get(&data).unwrap().spec,
        Spec::Volume(v) if v.size_gib == 20 && v.volume_type == "gp2"));

    looks_by_id_as_observed(cloud, &b).await;

    // Kill: the volume is detached, then deleted, before its instance goes.
    let (_, p) = observe_and_plan(cloud, fid, None, &b).await;
    let order: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    let at = |t: &str| order.iter().position(|x| *x == t).unwrap();
    assert!(at("aws.ec2.detach_volume") < at("aws.ec2.delete_volume"));
    assert!(at("aws.ec2.delete_volume") < at("aws.ec2.terminate_instances"));
    passes(cloud, fid, None, &mut b, "job-volume-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0, "{obs:#?}");
}

/// A look by id at what `b` binds (what a poked process sees) shows each
/// resource as the whole observation shows it, and nothing else.
pub async fn looks_by_id_as_observed(cloud: &dyn Cloud, b: &Bindings) {
    let ids: BTreeSet<String> = b.iter().map(|(_, c)| c.to_string()).collect();
    let whole = cloud.observe(&scope()).await.expect("observe");
    let own = cloud
        .observe_ids(&scope(), &ids)
        .await
        .expect("observe by id");
    assert_shows_as_observed(&own, &whole, &ids);
}

/// `own`, a look by id at `ids`, shows each of them as the whole
/// observation `whole` shows it, and nothing else; every id is there. An
/// instance's status checks may move on between the two looks, so they
/// are not compared.
pub fn assert_shows_as_observed(
    own: &ObservedState,
    whole: &ObservedState,
    ids: &BTreeSet<String>,
) {
    let shown = |r: &ObservedResource| {
        (
            r.cloud_id.clone(),
            r.spec.clone(),
            r.association_ids.clone(),
            r.pending,
        )
    };
    let want: Vec<_> = whole
        .iter()
        .filter(|r| ids.contains(&r.cloud_id))
        .map(shown)
        .collect();
    let got: Vec<_> = own.iter().map(shown).collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), ids.len(), "every id's resource is there");
}

/// An instance named `name` in the demo's first public subnet and its web
/// group.
/// The source/destination check of instance `id` as `obs` shows it.
fn source_dest_check_of(obs: &canon_model::ObservedState, id: &str) -> Option<bool> {
    obs.iter()
        .find(|r| r.cloud_id == id)
        .and_then(|r| match &r.spec {
            Spec::Instance(i) => Some(i.source_dest_check),
            _ => None,
        })
}

fn demo_instance(fid: Fid, name: &str) -> Spec<Ref> {
    Spec::Instance(InstanceSpec {
        image_id: "ami-0123456789abcdef0".into(),
        instance_type: "t3.micro".into(),
        subnet: Ref::Managed(LogicalId::new(fid, "dev-network.publicSubnets[0]")),
        key_name: None,
        user_data: None,
        security_groups: [Ref::Managed(sg_id(fid))].into(),
        tags: tags(&[("Name", name)]),
        max_age_secs: None,
        fleet: None,
        source_dest_check: true,
    })
}

/// A route through an instance: in the run that makes both, the route
/// waits for the instance (it ranks after the table) and a later pass adds
/// it, naming the instance as its target; a route a console user deletes
/// is put back; a kill terminates the instance and then deletes the table.
pub async fn instance_route_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let mut declared = demo(fid, false);
    let table = l("dev-network.publicRouteTable");
    // It forwards what is routed to it: its source/destination check off.
    let mut firewall_spec = demo_instance(fid, "firewall");
    if let Spec::Instance(i) = &mut firewall_spec {
        i.source_dest_check = false;
    }
    declared
        .insert(Resource {
            id: l("firewall"),
            name: "firewall".into(),
            region: Region::new(REGION),
            spec: firewall_spec,
        })
        .unwrap();
    let partner = IpCidr::V4(cidr("192.0.2.0/24"));
    match declared.resources.get_mut(&table).map(|r| &mut r.spec) {
        Some(Spec::RouteTable(t)) => {
            t.routes.insert(Route {
                destination: partner,
                target: Ref::Managed(l("firewall")),
            });
        }
        other => panic!("the demo's public route table: {other:?}"),
    }
    declared.validate().expect("a route may name an instance");
    let mut b = Bindings::new();
    let done = passes(cloud, fid, Some(&declared), &mut b, "job-route-instance").await;
    let creates_of_route: Vec<usize> = done
        .iter()
        .enumerate()
        .filter(|(_, pass)| pass.contains(&"aws.ec2.create_route"))
        .map(|(i, _)| i)
        .collect();
    assert!(
        creates_of_route.len() >= 2,
        "the internet route first, the instance's once it exists: {done:?}"
    );
    let rtb = b.cloud_id(&table).unwrap().to_string();
    let firewall = b.cloud_id(&l("firewall")).unwrap().to_string();
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(
        routes_of(&obs, &rtb).get("192.0.2.0/24"),
        Some(&firewall),
        "the route names the instance"
    );
    assert!(
        done.iter()
            .flatten()
            .any(|t| *t == "aws.ec2.modify_instance_attribute"),
        "launched, then its check turned off: {done:?}"
    );
    assert_eq!(source_dest_check_of(&obs, &firewall), Some(false));
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "converged: {:#}", p.to_json());

    // A console user turns the check back on: drift, turned off again.
    op.set_source_dest_check(&firewall, true).await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(source_dest_check_of(&obs, &firewall), Some(true));
    let healed = passes(cloud, fid, Some(&declared), &mut b, "job-sdc-heal").await;
    assert_eq!(healed, vec![vec!["aws.ec2.modify_instance_attribute"]]);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(source_dest_check_of(&obs, &firewall), Some(false));

    // A console user deletes the route: drift, put back through the instance.
    op.delete_route(&rtb, partner).await;
    let healed = passes(
        cloud,
        fid,
        Some(&declared),
        &mut b,
        "job-route-instance-heal",
    )
    .await;
    assert_eq!(healed, vec![vec!["aws.ec2.create_route"]]);
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(routes_of(&obs, &rtb).get("192.0.2.0/24"), Some(&firewall));

    // Kill: the instance goes before the table that routes through it.
    let killed = passes(cloud, fid, None, &mut b, "job-route-instance-kill").await;
    let order: Vec<&str> = killed.iter().flatten().copied().collect();
    let at = |t: &str| order.iter().position(|x| *x == t);
    assert!(
        at("aws.ec2.terminate_instances") < at("aws.ec2.delete_route_table"),
        "{order:?}"
    );
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0);
}

/// A route through a network interface Canon does not manage: an
/// appliance's interface, made by the operator and attached to an instance
/// Canon runs. The route is made with the interface's id, reads back as
/// EC2 shows it (the instance, with the interface beside it, where the
/// cloud says so), and counts as declared: the next plan is empty. A
/// console user deleting it is drift, healed through the interface.
pub async fn interface_route_suite(cloud: &dyn Cloud, op: &dyn Operator) {
    let fid = Fid::random();
    let l = |p: &str| LogicalId::new(fid, p);
    let mut declared = demo(fid, false);
    declared
        .insert(Resource {
            id: l("appliance"),
            name: "appliance".into(),
            region: Region::new(REGION),
            spec: demo_instance(fid, "appliance"),
        })
        .unwrap();
    let mut b = Bindings::new();
    passes(cloud, fid, Some(&declared), &mut b, "job-eni-network").await;
    let appliance = b.cloud_id(&l("appliance")).unwrap().to_string();
    let subnet = b
        .cloud_id(&l("dev-network.publicSubnets[0]"))
        .unwrap()
        .to_string();
    let eni = op.create_network_interface(&subnet, Some(&appliance)).await;

    let table = l("dev-network.publicRouteTable");
    let partner = IpCidr::V4(cidr("192.0.2.0/24"));
    match declared.resources.get_mut(&table).map(|r| &mut r.spec) {
        Some(Spec::RouteTable(t)) => {
            t.routes.insert(Route {
                destination: partner,
                target: Ref::External(eni.clone()),
            });
        }
        other => panic!("the demo's public route table: {other:?}"),
    }
    let done = passes(cloud, fid, Some(&declared), &mut b, "job-eni-route").await;
    assert_eq!(done, vec![vec!["aws.ec2.create_route"]]);
    let rtb = b.cloud_id(&table).unwrap().to_string();
    let obs = cloud.observe(&scope()).await.unwrap();
    let shown = routes_of(&obs, &rtb).get("192.0.2.0/24").cloned();
    assert!(
        shown == Some(eni.clone()) || shown == Some(appliance.clone()),
        "the route goes through the interface (or its instance, as EC2 shows it): {shown:?}"
    );
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "converged: {:#}", p.to_json());

    // A console user deletes the route: put back through the interface.
    op.delete_route(&rtb, partner).await;
    let healed = passes(cloud, fid, Some(&declared), &mut b, "job-eni-heal").await;
    assert_eq!(healed, vec![vec!["aws.ec2.create_route"]]);
    let (_, p) = observe_and_plan(cloud, fid, Some(&declared), &b).await;
    assert!(p.is_empty(), "converged again: {:#}", p.to_json());

    // The appliance's interface goes first (it is not Canon's), then kill.
    op.delete_network_interface(&eni).await;
    passes(cloud, fid, None, &mut b, "job-eni-kill").await;
    let obs = cloud.observe(&scope()).await.unwrap();
    assert_eq!(obs.owned_by(fid).count(), 0);
}
