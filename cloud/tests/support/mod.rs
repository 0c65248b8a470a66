//! Shared test support: the demo's declaration, a minimal executor of plans,
//! and the moto server.

#![allow(dead_code)]

pub mod conformance;
pub mod moto;

use std::collections::BTreeSet;

use canon_cloud::{Cloud, CloudError, ExecContext, Outcome, Scope};
use canon_model::plan::{plan, Plan};
use canon_model::*;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-west-2";

pub fn scope() -> Scope {
    Scope::new(ACCOUNT, REGION)
}

pub fn ctx(job: &str) -> ExecContext {
    ExecContext::new(ACCOUNT, job, 1, 1)
}

pub fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
}

pub fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn add(d: &mut DesiredState, path: &str, spec: DesiredSpec) -> LogicalId {
    let id = LogicalId::new(d.fid, path);
    d.insert(Resource {
        id,
        name: path.into(),
        region: Region::new(REGION),
        spec,
    })
    .unwrap();
    id
}

pub fn web(port: i32) -> Rule<Ref> {
    Rule::new(Protocol::Tcp, port, port, Peer::Cidr(Ipv4Cidr::ANY))
}

pub fn sg_id(fid: Fid) -> LogicalId {
    LogicalId::new(fid, "dev-sam-sg")
}

/// The demo's network (DHCP options, VPC, gateway, two public subnets, a
/// public route table) and the web-facing group, optionally with SSH.
pub fn demo(fid: Fid, ssh: bool) -> DesiredState {
    let mut d = DesiredState::empty(fid);
    let dopt = add(
        &mut d,
        "dev-network.dhcpOptions",
        Spec::DhcpOptions(DhcpOptionsSpec {
            domain_name: Some("sam.example.internal".into()),
            domain_name_servers: vec!["AmazonProvidedDNS".into()],
            ntp_servers: vec![],
            tags: tags(&[("Name", "dev-network-sam")]),
        }),
    );
    let vpc = add(
        &mut d,
        "dev-network.vpc",
        Spec::Vpc(VpcSpec {
            cidr_block: cidr("10.0.0.0/16"),
            instance_tenancy: Tenancy::Default,
            enable_dns_support: true,
            enable_dns_hostnames: true,
            dhcp_options: Some(Ref::Managed(dopt)),
            tags: tags(&[("Name", "dev-network-sam")]),
        }),
    );
    let igw = add(
        &mut d,
        "dev-network.igw",
        Spec::InternetGateway(InternetGatewaySpec {
            vpc: Some(Ref::Managed(vpc)),
            tags: tags(&[("Name", "dev-network-sam")]),
        }),
    );
    let mut subnets = BTreeSet::new();
    for (i, (az, block)) in [("us-west-2a", "10.0.1.0/24"), ("us-west-2b", "10.0.2.0/24")]
        .iter()
        .enumerate()
    {
        subnets.insert(Ref::Managed(add(
            &mut d,
            &format!("dev-network.publicSubnets[{i}]"),
            Spec::Subnet(SubnetSpec {
                vpc: Ref::Managed(vpc),
                cidr_block: cidr(block),
                availability_zone: az.to_string(),
                map_public_ip_on_launch: true,
                tags: tags(&[("Name", "dev-network-sam")]),
            }),
        )));
    }
    add(
        &mut d,
        "dev-network.publicRouteTable",
        Spec::RouteTable(RouteTableSpec {
            vpc: Ref::Managed(vpc),
            routes: [Route {
                destination: Ipv4Cidr::ANY,
                target: Ref::Managed(igw),
            }]
            .into_iter()
            .collect(),
            associations: subnets,
            tags: tags(&[("Name", "dev-network-sam")]),
        }),
    );
    let mut ingress: BTreeSet<_> = [web(80), web(443)].into_iter().collect();
    if ssh {
        ingress.insert(web(22));
    }
    add(
        &mut d,
        "dev-sam-sg",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: Ref::Managed(vpc),
            group_name: "dev-sam-sg".into(),
            description: "Allow http/s traffic from the Internet".into(),
            ingress,
            egress: [Rule::allow_all_egress()].into_iter().collect(),
            tags: tags(&[("Environment", "dev-sam")]),
        }),
    );
    d.validate().unwrap();
    d
}

/// Executes a plan in order the way the scheduler will: adopt, resolve each
/// request with the bindings so far, execute, bind what was created.
pub async fn apply(
    cloud: &dyn Cloud,
    p: &Plan,
    bindings: &mut Bindings,
    ctx: &ExecContext,
) -> Result<Vec<Outcome>, CloudError> {
    for (l, c) in &p.adoptions {
        bindings.bind(*l, c.clone());
    }
    let mut out = Vec::new();
    for req in &p.requests {
        let resolved = req
            .resolve(|l| bindings.cloud_id(l).map(String::from))
            .map_err(|u| CloudError::terminal("Canon.Unresolved", u.to_string()))?;
        let o = cloud.execute(&resolved, ctx).await?;
        if req.action.creates().is_some() {
            let id = o.cloud_id.clone().expect("a create returns a cloud id");
            bindings.bind(req.target, id);
        }
        out.push(o);
    }
    Ok(out)
}

/// Observes and plans `desired` (or kill, when `None`).
pub async fn observe_and_plan(
    cloud: &dyn Cloud,
    fid: Fid,
    desired: Option<&DesiredState>,
    bindings: &Bindings,
) -> (ObservedState, Plan) {
    let observed = cloud.observe(&scope()).await.expect("observe");
    let p = match desired {
        Some(d) => plan(d, &observed, bindings),
        None => canon_model::plan::plan_kill(fid, &observed, bindings),
    };
    (observed, p)
}

/// The observed security group bound to the demo's group.
pub fn observed_group(
    observed: &ObservedState,
    bindings: &Bindings,
    fid: Fid,
) -> SecurityGroupSpec<String> {
    let id = bindings.cloud_id(&sg_id(fid)).expect("group bound");
    match &observed.get(id).expect("group observed").spec {
        Spec::SecurityGroup(s) => s.clone(),
        other => panic!("not a group: {other:?}"),
    }
}

pub fn rules(ports: &[i32]) -> BTreeSet<Rule<String>> {
    ports
        .iter()
        .map(|p| Rule::new(Protocol::Tcp, *p, *p, Peer::Cidr(Ipv4Cidr::ANY)))
        .collect()
}

pub fn all_traffic() -> Rule<String> {
    Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY))
}
