//! The demo's compositions compile unchanged and lower to the desired state
//! the conductor builds: stable logical ids, managed references, EC2's
//! default egress, tags as declared, full zone names.

use std::path::{Path, PathBuf};

use canon_lang::{compile_file, compile_str, Compiled, MapLoader, Options};
use canon_model::{
    DesiredState, Fid, Ipv4Cidr, LogicalId, Peer, Protocol, Ref, ResourceKind, Rule, Spec,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compositions")
}

fn compile(name: &str) -> Compiled {
    let out = compile_file(&dir().join(name), Options::default()).expect("read");
    assert!(out.diagnostics.is_empty(), "{}", out.render());
    out.compiled.expect("compiled")
}

fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().expect("fid")
}

fn state(name: &str) -> DesiredState {
    compile(name)
        .instantiate(fid())
        .expect("valid desired state")
}

fn paths(c: &Compiled) -> Vec<&str> {
    c.resources.iter().map(|r| r.path.as_str()).collect()
}

#[test]
fn vpc_sam_lowers_to_the_demo_resources() {
    let c = compile("VPC-sam.lw");
    assert_eq!(
        paths(&c),
        vec![
            "dev-network.igw",
            "dev-network.publicSubnets[0]",
            "dev-network.publicSubnets[1]",
            "dev-network.routes",
            "dev-network.vpc",
            "dev-sam-sg",
        ]
    );
    let s = c.instantiate(fid()).expect("state");
    let vpc_id = LogicalId::new(fid(), "dev-network.vpc");
    let vpc = &s.resources[&vpc_id];
    assert_eq!(vpc.region.as_str(), "us-west-2");
    let Spec::Vpc(v) = &vpc.spec else {
        panic!("not a vpc")
    };
    assert_eq!(v.cidr_block, "10.0.0.0/16".parse::<Ipv4Cidr>().unwrap());
    assert_eq!(
        v.tags.get("Name").map(String::as_str),
        Some("dev-network-sam")
    );

    let sub = &s.resources[&LogicalId::new(fid(), "dev-network.publicSubnets[1]")];
    let Spec::Subnet(sn) = &sub.spec else {
        panic!("not a subnet")
    };
    assert_eq!(sn.availability_zone, "us-west-2b");
    assert_eq!(sn.vpc, Ref::Managed(vpc_id));
    assert!(sn.map_public_ip_on_launch);

    let sg = &s.resources[&LogicalId::new(fid(), "dev-sam-sg")];
    let Spec::SecurityGroup(g) = &sg.spec else {
        panic!("not a group")
    };
    assert_eq!(g.vpc, Ref::Managed(vpc_id));
    assert_eq!(g.description, "Allow http/s traffic from the Internet");
    let any = Peer::Cidr(Ipv4Cidr::ANY);
    let expected: canon_model::SortedVecSet<Rule<Ref>> = [
        Rule::new(Protocol::Tcp, 80, 80, any.clone()),
        Rule::new(Protocol::Tcp, 443, 443, any),
    ]
    .into_iter()
    .collect();
    assert_eq!(g.ingress, expected);
    // `ipPermissionsEgress: None` means EC2's default egress.
    assert_eq!(g.egress, [Rule::allow_all_egress()].into_iter().collect());
    assert_eq!(
        g.tags.get("Environment").map(String::as_str),
        Some("dev-sam")
    );

    let rt = &s.resources[&LogicalId::new(fid(), "dev-network.routes")];
    let Spec::RouteTable(t) = &rt.spec else {
        panic!("not a route table")
    };
    assert_eq!(t.associations.len(), 2);
    let route = t.routes.iter().next().expect("route");
    assert_eq!(route.destination, canon_model::IpCidr::V4(Ipv4Cidr::ANY));
    assert_eq!(
        route.target,
        Ref::Managed(LogicalId::new(fid(), "dev-network.igw"))
    );
}

#[test]
fn recompiling_is_deterministic_and_fid_independent() {
    let a = compile("VPC-sam.lw");
    let b = compile("VPC-sam.lw");
    assert_eq!(a, b);
    assert_eq!(a.source_hash.len(), 64);
    let other: Fid = "07ce06bb-bf5a-4d8d-a639-2db96577c8b6".parse().unwrap();
    let s1 = a.instantiate(fid()).unwrap();
    let s2 = a.instantiate(other).unwrap();
    assert_eq!(s1.resources.len(), s2.resources.len());
    for (r1, r2) in s1.resources.values().zip(s2.resources.values()) {
        assert_eq!(r1.name, r2.name);
        assert_eq!(r1.id.path, r2.id.path);
        assert_eq!(r2.id.fid, other);
    }
}

#[test]
fn fugue_and_canon_module_paths_are_the_same_library() {
    let sam = compile("VPC-sam.lw");
    let text = std::fs::read_to_string(dir().join("VPC-sam.lw")).unwrap();
    let canon = text.replace("import Fugue.", "import Canon.");
    let out = compile_str(
        "VPC-sam.lw",
        &canon,
        &MapLoader::default(),
        Options::default(),
    );
    let c = out.compiled.expect("compiles");
    assert_eq!(c.resources, sam.resources);
    assert_ne!(
        c.source_hash, sam.source_hash,
        "different text, different hash"
    );
}

#[test]
fn the_three_environments_compile() {
    for (file, name, tag) in [
        ("VPC-sam.lw", "dev-network-sam", "dev-sam"),
        ("VPC-hector.lw", "dev-network-hector", "dev-hector"),
        ("VPC-lisa.lw", "dev-network-lisa", "dev-lisa"),
    ] {
        let s = state(file);
        assert_eq!(s.resources.len(), 6, "{file}");
        let names: Vec<&str> = s
            .resources
            .values()
            .filter(|r| r.kind() == ResourceKind::Vpc)
            .filter_map(|r| r.spec.tags().get("Name").map(String::as_str))
            .collect();
        assert_eq!(names, vec![name]);
        let envs: Vec<&str> = s
            .resources
            .values()
            .filter_map(|r| r.spec.tags().get("Environment").map(String::as_str))
            .collect();
        assert_eq!(envs, vec![tag], "{file}");
    }
}

#[test]
fn ssh_update_adds_exactly_one_rule() {
    let before = state("VPC-sam.lw");
    let after = state("VPC-sam-ssh.lw");
    let ids: Vec<_> = before.resources.keys().collect();
    assert_eq!(
        ids,
        after.resources.keys().collect::<Vec<_>>(),
        "same logical ids"
    );
    let mut changed = Vec::new();
    for (id, r) in &before.resources {
        if after.resources[id] != *r {
            changed.push(r.name.clone());
        }
    }
    assert_eq!(changed, vec!["dev-sam-sg".to_string()]);
    let sg = LogicalId::new(fid(), "dev-sam-sg");
    let (Spec::SecurityGroup(a), Spec::SecurityGroup(b)) =
        (&before.resources[&sg].spec, &after.resources[&sg].spec)
    else {
        panic!("not groups")
    };
    let added: Vec<_> = b.ingress.difference(&a.ingress).collect();
    assert_eq!(
        added,
        vec![&Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(Ipv4Cidr::ANY))]
    );
}

#[test]
fn staging_has_private_subnets_groups_and_instances() {
    let s = state("Staging.lw");
    let count = |k: ResourceKind| s.resources.values().filter(|r| r.kind() == k).count();
    assert_eq!(count(ResourceKind::Subnet), 4);
    assert_eq!(count(ResourceKind::SecurityGroup), 2);
    assert_eq!(count(ResourceKind::Instance), 2);
    let app = &s.resources[&LogicalId::new(fid(), "app-sg")];
    let Spec::SecurityGroup(g) = &app.spec else {
        panic!()
    };
    let web = Ref::Managed(LogicalId::new(fid(), "web-sg"));
    assert!(g.ingress.iter().all(|r| r.peer == Peer::Group(web.clone())));
    let server = &s.resources[&LogicalId::new(fid(), "app-servers[0]")];
    let Spec::Instance(i) = &server.spec else {
        panic!()
    };
    assert_eq!(i.instance_type, "t3.small");
    assert_eq!(
        i.subnet,
        Ref::Managed(LogicalId::new(fid(), "staging-network.privateSubnets[0]"))
    );
    assert_eq!(server.region.as_str(), "us-west-2");
    let private = &s.resources[&LogicalId::new(fid(), "staging-network.privateSubnets[1]")];
    let Spec::Subnet(sn) = &private.spec else {
        panic!()
    };
    assert!(!sn.map_public_ip_on_launch);
    assert_eq!(
        sn.tags.get("Environment").map(String::as_str),
        Some("staging")
    );
    let vpc = &s.resources[&LogicalId::new(fid(), "staging-network.vpc")];
    let Spec::Vpc(v) = &vpc.spec else { panic!() };
    assert!(v.enable_dns_hostnames);
}

#[test]
fn resources_met_only_inside_other_resources_get_nested_paths() {
    let src = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

sg: EC2.SecurityGroup.new {
  vpc: EC2.Vpc.new {cidrBlock: "10.9.0.0/16", region: AWS.Ca-central-1},
  description: "inline vpc",
}
"#;
    let out = compile_str("inline.lw", src, &MapLoader::default(), Options::default());
    let c = out.compiled.expect("compiles");
    assert_eq!(paths(&c), vec!["sg", "sg.vpc"]);
    assert_eq!(c.resources[1].region.as_str(), "ca-central-1");
}
