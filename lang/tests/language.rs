//! Language features beyond the demo: user types and constructors, `case`,
//! `if`, `let`, lambdas, record update, `++`, generics from the prelude,
//! optional values, user modules with exports.

use canon_lang::{compile_str, Compiled, MapLoader, Options};
use canon_model::{Fid, LogicalId, Spec};

fn compile_ok(src: &str, loader: &MapLoader) -> Compiled {
    let out = compile_str("lang.lw", src, loader, Options::default());
    assert!(!out.has_errors(), "{}", out.render());
    out.compiled.expect("compiled")
}

fn fid() -> Fid {
    "29c5a5ff-dcb6-4015-854a-16475b8eef4c".parse().unwrap()
}

#[test]
fn user_types_case_if_let_lambdas_and_record_update() {
    let src = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

type Env:
  | Dev
  | Prod(Int)

type Plan: {env: Env, name: String, extraTags: Optional<List<AWS.Tag>>}

fun octet(env: Env) -> String:
  case env of
    | Dev -> "1"
    | Prod(n) -> toString(n + 1)

fun subnetCount(env: Env) -> Int:
  case env of
    | Prod(n) -> if n > 1 then 3 else 2
    | _ -> 1

base: Plan({env: Dev, name: "base"})
prod: base with {env: Prod(4), name: "prod"}

vpc: EC2.Vpc.new {
  cidrBlock: "10." ++ octet(prod.env) ++ ".0.0/16",
  region: AWS.Eu-central-1,
  tags: [AWS.tag("Name", let n: prod.name n ++ "-vpc")] ++ withDefault(prod.extraTags, []),
}

subnets: map(
  fun(i): EC2.Subnet.new {
    vpc: vpc,
    cidrBlock: "10.5." ++ toString(i) ++ ".0/24",
    availabilityZone: case i of | 0 -> AWS.A | 1 -> AWS.B | _ -> AWS.F,
  },
  range(0, subnetCount(prod.env)),
)
"#;
    let c = compile_ok(src, &MapLoader::default());
    let paths: Vec<&str> = c.resources.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, vec!["subnets[0]", "subnets[1]", "subnets[2]", "vpc"]);
    let s = c.instantiate(fid()).unwrap();
    let vpc = &s.resources[&LogicalId::new(fid(), "vpc")];
    let Spec::Vpc(v) = &vpc.spec else { panic!() };
    assert_eq!(v.cidr_block.to_string(), "10.5.0.0/16");
    assert_eq!(v.tags["Name"], "prod-vpc");
    assert_eq!(vpc.region.as_str(), "eu-central-1");
    let last = &s.resources[&LogicalId::new(fid(), "subnets[2]")];
    let Spec::Subnet(sn) = &last.spec else {
        panic!()
    };
    assert_eq!(sn.availability_zone, "eu-central-1f");
}

#[test]
fn generic_user_functions_and_optionals() {
    let src = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

fun first<T>(xs: List<T>, fallback: T) -> T:
  withDefault(pick(xs), fallback)

fun pick<T>(xs: List<T>) -> Optional<T>:
  case indexed(xs) of
    | _ -> None

vpc: EC2.Vpc.new {
  cidrBlock: first([], "10.7.0.0/16"),
  region: AWS.Sa-east-1,
  dhcpOptions: EC2.DhcpOptions.new {region: AWS.Sa-east-1, domainName: "corp.example"},
}
"#;
    let c = compile_ok(src, &MapLoader::default());
    let s = c.instantiate(fid()).unwrap();
    let vpc = &s.resources[&LogicalId::new(fid(), "vpc")];
    let Spec::Vpc(v) = &vpc.spec else { panic!() };
    assert_eq!(v.cidr_block.to_string(), "10.7.0.0/16");
    let dhcp = LogicalId::new(fid(), "vpc.dhcpOptions");
    assert_eq!(v.dhcp_options, Some(canon_model::Ref::Managed(dhcp)));
    let Spec::DhcpOptions(d) = &s.resources[&dhcp].spec else {
        panic!()
    };
    assert_eq!(d.domain_name.as_deref(), Some("corp.example"));
    assert_eq!(d.domain_name_servers, vec!["AmazonProvidedDNS".to_string()]);
}

#[test]
fn user_modules_resolve_relative_to_the_composition_and_respect_exports() {
    let mut files = std::collections::HashMap::new();
    files.insert(
        "Team/Net.lw".to_string(),
        r#"
import Canon.AWS.Pattern.Network as Network
import Canon.Core.AWS.Common as AWS

export standard

fun standard(name: String) -> Network.Network:
  Network.new {
    name: name,
    region: AWS.Us-east-2,
    cidr: block,
    publicSubnets: [(AWS.A, "10.3.1.0/24")],
  }

block: "10.3.0.0/16"
"#
        .to_string(),
    );
    let loader = MapLoader(files);
    let c = compile_ok(
        "import Team.Net as Net\n\nteam: Net.standard(\"team\")\n",
        &loader,
    );
    assert_eq!(c.resources.len(), 4);
    let out = compile_str(
        "lang.lw",
        "import Team.Net as Net\n\nb: Net.block\n",
        &loader,
        Options::default(),
    );
    assert!(
        out.render().contains("Variable not in scope: Net.block"),
        "{}",
        out.render()
    );
}

#[test]
fn playground_style_record_argument_without_parentheses() {
    let src = r#"
import Fugue.AWS.EC2 as EC2
import Fugue.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: "10.0.0.0/16", region: AWS.Us-west-2}
sg: EC2.SecurityGroup{
  description: "Allow http/s traffic from the Internet",
  ipPermissions: [EC2.https, EC2.http, EC2.ssh],
  ipPermissionsEgress: [],
  vpc: vpc,
}
"#;
    let c = compile_ok(src, &MapLoader::default());
    let s = c.instantiate(fid()).unwrap();
    let Spec::SecurityGroup(g) = &s.resources[&LogicalId::new(fid(), "sg")].spec else {
        panic!()
    };
    assert_eq!(g.ingress.len(), 3);
    assert!(
        g.egress.is_empty(),
        "an explicit empty egress list means no egress"
    );
}

#[test]
fn brace_tuples_are_tuples_and_braces_of_fields_stay_records() {
    let with = |pair: &str| {
        format!(
            r#"
import Canon.AWS.Pattern.Network as Network
import Canon.Core.AWS.Common as AWS

region: AWS.Us-east-2
net: Network.new {{
  name: "braces",
  region,
  cidr: "10.3.0.0/16",
  publicSubnets: [{pair}],
}}
"#
        )
    };
    let loader = MapLoader::default();
    let parens = compile_ok(&with(r#"(AWS.A, "10.3.1.0/24")"#), &loader);
    let braces = compile_ok(&with(r#"{AWS.A, "10.3.1.0/24"}"#), &loader);
    let specs = |c: &Compiled| -> Vec<String> {
        c.resources
            .iter()
            .map(|r| format!("{:?}", r.spec))
            .collect()
    };
    assert_eq!(specs(&parens), specs(&braces));
    assert_eq!(braces.resources.len(), 4);
    // One item in braces is neither a record nor a tuple.
    let out = compile_str("lang.lw", &with(r#"{AWS.A}"#), &loader, Options::default());
    assert!(
        out.render().contains("two items or more"),
        "{}",
        out.render()
    );
}

#[test]
fn a_case_that_misses_a_value_is_warned_with_the_value_it_misses() {
    let with = |arms: &str| {
        format!(
            r#"
type Env:
  | Dev
  | Stage(Bool)
  | Prod(Optional<Int>)

fun octet(env: Env) -> Int:
  case env of
{arms}

a: octet(Dev)
"#
        )
    };
    let warned = |arms: &str| -> Vec<String> {
        let out = compile_str(
            "lang.lw",
            &with(arms),
            &MapLoader::default(),
            Options::default(),
        );
        assert!(!out.has_errors(), "{}", out.render());
        out.diagnostics
            .iter()
            .filter(|d| d.kind == canon_lang::diag::Kind::NotExhaustive)
            .map(|d| d.message.clone())
            .collect()
    };
    let every = "    | Dev -> 1\n    | Stage(True) -> 2\n    | Stage(False) -> 3\n    | Prod(None) -> 4\n    | Prod(Some(n)) -> n";
    assert_eq!(warned(every), Vec::<String>::new());
    let cases = [
        ("    | Dev -> 1\n    | Stage(b) -> 2", "Prod(_)"),
        (
            "    | Dev -> 1\n    | Stage(True) -> 2\n    | Prod(p) -> 3",
            "Stage(False)",
        ),
        (
            "    | Dev -> 1\n    | Stage(_) -> 2\n    | Prod(Some(n)) -> n",
            "Prod(None)",
        ),
        (
            "    | Dev -> 1\n    | Stage(_) -> 2\n    | Prod(Some(7)) -> 7\n    | Prod(None) -> 0",
            "Prod(Some(_))",
        ),
    ];
    for (arms, missed) in cases {
        let w = warned(arms);
        assert_eq!(w.len(), 1, "{arms}: {w:?}");
        assert!(w[0].contains(&format!("`{missed}`")), "{arms}: {w:?}");
    }
    assert_eq!(
        warned("    | Prod(_) -> 1\n    | _ -> 2"),
        Vec::<String>::new()
    );
    // Numbers and strings are covered by a catch-all arm only.
    let ints = "\nfun size(n: Int) -> String:\n  case n of\n    | 1 -> \"one\"\n    | 2 -> \"two\"\n\nb: size(1)\n";
    let out = compile_str("lang.lw", ints, &MapLoader::default(), Options::default());
    assert!(
        out.render().contains("add a last arm `_ -> …`"),
        "{}",
        out.render()
    );
}

#[test]
fn the_ip_permission_helpers_make_the_rules_they_name() {
    let src = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {cidrBlock: "10.9.0.0/16", region: AWS.Us-west-2}
lb: EC2.SecurityGroup.new {vpc: vpc, description: "lb"}
app: EC2.SecurityGroup.new {
  vpc: vpc,
  description: "app",
  ipPermissions: [
    EC2.IpPermission.https(EC2.IpPermission.Target.all),
    EC2.IpPermission.http(EC2.IpPermission.Target.allIpv6),
    EC2.IpPermission.ssh(EC2.IpPermission.Target.ip("10.0.0.0/8")),
    EC2.IpPermission.rdp(EC2.IpPermission.Target.ipv6("2001:db8::/32")),
    EC2.IpPermission.tcpRange(8000, 8099, EC2.IpPermission.Target.securityGroup(lb)),
    EC2.IpPermission.udp(53, EC2.IpPermission.Target.prefixList("pl-63a5400a")),
    EC2.IpPermission.icmp(EC2.IpPermission.Target.ip("10.9.0.0/16")),
  ],
  ipPermissionsEgress: [EC2.IpPermission.all(EC2.IpPermission.Target.all)],
}
"#;
    let c = compile_ok(src, &MapLoader::default());
    let app = c
        .resources
        .iter()
        .find(|r| r.path == "app")
        .expect("the app group");
    let Spec::SecurityGroup(sg) = &app.spec else {
        panic!("{:?}", app.spec)
    };
    let rules: Vec<String> = sg.ingress.iter().map(|r| r.to_string()).collect();
    let text = rules.join("\n");
    for want in [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/8",
        "2001:db8::/32",
        "lb",
        "pl-63a5400a",
        "10.9.0.0/16",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert_eq!(sg.ingress.len(), 7, "{text}");
    assert!(
        text.contains("3389") && text.contains("8000") && text.contains("8099"),
        "{text}"
    );
    assert_eq!(sg.egress.len(), 1);
    // The VPC has no IPv6 block: the two IPv6 rules are warned, by the
    // group's binding, and the IPv4-only group is not.
    let out = compile_str("lang.lw", src, &MapLoader::default(), Options::default());
    let warned: Vec<&str> = out
        .diagnostics
        .iter()
        .filter(|d| d.kind == canon_lang::diag::Kind::Ipv6WithoutRange)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].starts_with("security group app:"), "{warned:?}");
    assert!(
        warned[0].contains("::/0") && warned[0].contains("2001:db8::/32"),
        "{warned:?}"
    );
    // What EC2 would refuse is refused at its line.
    for (bad, says) in [
        (
            r#"EC2.IpPermission.Target.prefixList("s3")"#,
            "not a prefix list id",
        ),
        (
            r#"EC2.IpPermission.Target.ipv6("10.0.0.0/8")"#,
            "Invalid Ipv6Range",
        ),
        (r#"EC2.IpPermission.Target.ip("::/0")"#, "Invalid IpRange"),
    ] {
        let src = src.replace(
            "EC2.IpPermission.Target.all),\n    EC2",
            &format!("{bad}),\n    EC2"),
        );
        let out = compile_str("lang.lw", &src, &MapLoader::default(), Options::default());
        assert!(out.render().contains(says), "{bad}: {}", out.render());
    }
}

#[test]
fn the_database_example_attaches_its_volume_in_the_servers_zone() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/Database.lw");
    let src = std::fs::read_to_string(path).expect("the example");
    let c = compile_ok(&src, &MapLoader::default());
    assert_eq!(c.resources.len(), 5);
    let data = c.resources.iter().find(|r| r.path == "data").expect("data");
    match &data.spec {
        canon_model::Spec::Volume(v) => {
            assert_eq!(v.availability_zone, "us-west-2b");
            assert_eq!(
                (v.size_gib, v.volume_type.as_str(), v.iops),
                (100, "gp3", Some(4000))
            );
            assert!(v.encrypted);
            let a = v.attachment.as_ref().expect("attached");
            assert_eq!(
                (a.instance.as_str(), a.device.as_str()),
                ("server", "/dev/sdf")
            );
        }
        other => panic!("{other:?}"),
    }
    // Moved to another zone, the volume is refused, naming both.
    let moved = src.replace(
        "availabilityZone: AWS.B,\n  size",
        "availabilityZone: AWS.C,\n  size",
    );
    assert_ne!(moved, src);
    let out = compile_str(
        "Database.lw",
        &moved,
        &MapLoader::default(),
        Options::default(),
    );
    assert!(
        out.render()
            .contains("it is in us-west-2c, but its instance server is in us-west-2b"),
        "{}",
        out.render()
    );
}

#[test]
fn the_three_tier_example_chains_its_tiers_and_gives_each_zone_its_way_out() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ThreeTier.lw");
    let src = std::fs::read_to_string(path).expect("the example");
    let c = compile_ok(&src, &MapLoader::default());
    let spec = |path: &str| {
        c.resources
            .iter()
            .find(|r| r.path == path)
            .map(|r| format!("{:?}", r.spec))
            .unwrap_or_else(|| panic!("no {path}"))
    };
    assert_eq!(c.resources.len(), 19);
    // Each tier admits the one in front of it, by group.
    assert!(spec("shop.appGroup").contains("Group(\"shop.publicGroup\")"));
    assert!(spec("shop.dataGroup").contains("Group(\"shop.appGroup\")"));
    // Each zone's app subnet goes out through the NAT gateway of its zone;
    // the data tier has no way out.
    let zone_b = spec("shop.network.privateRoutes[1]");
    assert!(zone_b.contains("shop.network.natGateways[1]"), "{zone_b}");
    assert!(
        zone_b.contains("shop.network.privateSubnets[1]"),
        "{zone_b}"
    );
    assert!(!zone_b.contains("privateSubnets[0]"), "{zone_b}");
    assert!(spec("shop.network.natGateways[1]").contains("shop.network.publicSubnets[1]"));
    assert!(
        spec("shop.dataRoutes").contains("routes: {}"),
        "{}",
        spec("shop.dataRoutes")
    );
    // A zone with app subnets and no public one has no NAT home; tiers
    // may not overlap.
    let no_home = src.replace(r#"{AWS.B, "10.40.1.0/24"}"#, r#"{AWS.A, "10.40.1.0/24"}"#);
    let out = compile_str(
        "lang.lw",
        &no_home,
        &MapLoader::default(),
        Options::default(),
    );
    assert!(
        out.render()
            .contains("private subnet 10.40.11.0/24 has no public subnet in its zone"),
        "{}",
        out.render()
    );
    let clash = src.replace(r#""10.40.20.0/24""#, r#""10.40.10.0/24""#);
    let out = compile_str("lang.lw", &clash, &MapLoader::default(), Options::default());
    assert!(
        out.render().contains("Invalid ThreeTier: subnet"),
        "{}",
        out.render()
    );
    // Without NAT, nothing goes out of the app tier either.
    let none = src.replace("Network.NatPerZone", "Network.NoNat");
    assert_eq!(compile_ok(&none, &MapLoader::default()).resources.len(), 13);
    let shared = src.replace("Network.NatPerZone", "Network.SharedNat");
    assert_eq!(
        compile_ok(&shared, &MapLoader::default()).resources.len(),
        16
    );
}

#[test]
fn target_all_is_both_families_in_an_ipv6_vpc_and_its_ipv6_rules_are_not_warned() {
    let src = |ipv6: &str| {
        format!(
            r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

vpc: EC2.Vpc.new {{cidrBlock: "10.9.0.0/16", region: AWS.Us-west-2, ipv6: {ipv6}}}
web: EC2.SecurityGroup.new {{
  vpc: vpc,
  description: "web",
  ipPermissions: [
    EC2.IpPermission.https(EC2.IpPermission.Target.all),
    EC2.IpPermission.ssh(EC2.IpPermission.Target.ipv6("2001:db8::/32")),
  ],
}}
"#
        )
    };
    let rules = |ipv6: &str| -> (Vec<String>, usize) {
        let out = compile_str(
            "lang.lw",
            &src(ipv6),
            &MapLoader::default(),
            Options::default(),
        );
        let warned = out
            .diagnostics
            .iter()
            .filter(|d| d.kind == canon_lang::diag::Kind::Ipv6WithoutRange)
            .count();
        let c = out.compiled.expect("compiles");
        let web = c.resources.iter().find(|r| r.path == "web").expect("web");
        let Spec::SecurityGroup(sg) = &web.spec else {
            panic!("{:?}", web.spec)
        };
        (sg.ingress.iter().map(|r| r.to_string()).collect(), warned)
    };
    let (with, warned) = rules("True");
    let text = with.join("\n");
    assert_eq!(with.len(), 3, "{text}");
    assert!(
        text.contains("0.0.0.0/0") && text.contains("::/0"),
        "{text}"
    );
    assert_eq!(warned, 0, "a VPC with IPv6: its IPv6 rules admit traffic");
    let (without, warned) = rules("False");
    let text = without.join("\n");
    assert_eq!(without.len(), 2, "{text}");
    assert!(
        text.contains("0.0.0.0/0") && !text.contains("::/0"),
        "{text}"
    );
    assert_eq!(warned, 1, "the IPv6 rule of an IPv4-only VPC is warned");
}

#[test]
fn the_network_pattern_with_ipv6_numbers_its_64s_and_routes_ipv6_out() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/ok_network_pattern_ipv6.lw"
    );
    let src = std::fs::read_to_string(path).expect("the golden case");
    let c = compile_ok(&src, &MapLoader::default());
    let spec = |p: &str| {
        &c.resources
            .iter()
            .find(|r| r.path == p)
            .unwrap_or_else(|| panic!("{p}"))
            .spec
    };
    assert!(matches!(spec("net.vpc"), Spec::Vpc(v) if v.ipv6));
    for (p, n) in [
        ("net.publicSubnets[0]", 0),
        ("net.publicSubnets[1]", 1),
        ("net.privateSubnets[0]", 2),
        ("net.privateSubnets[1]", 3),
    ] {
        assert!(
            matches!(spec(p), Spec::Subnet(s) if s.ipv6_index == Some(n)),
            "{p}: {:?}",
            spec(p)
        );
    }
    let routes = |p: &str| -> Vec<(String, String)> {
        match spec(p) {
            Spec::RouteTable(t) => t
                .routes
                .iter()
                .map(|r| (r.destination.to_string(), r.target.clone()))
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    let public = routes("net.routes");
    assert!(
        public.contains(&("::/0".into(), "net.igw".into())),
        "{public:?}"
    );
    assert!(
        public.contains(&("0.0.0.0/0".into(), "net.igw".into())),
        "{public:?}"
    );
    let private = routes("net.privateRoutes[0]");
    assert!(
        private.contains(&("::/0".into(), "net.egressOnlyIgws[0]".into())),
        "{private:?}"
    );
    assert!(
        private.contains(&("0.0.0.0/0".into(), "net.natGateways[0]".into())),
        "{private:?}"
    );
    let alone = routes("v6only.privateRoutes[0]");
    assert_eq!(
        alone,
        [("::/0".to_string(), "v6only.egressOnlyIgws[0]".to_string())]
    );
}
