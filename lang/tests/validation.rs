//! Validation modules (`canon_lang::validation`): the library's five
//! validations find what they promise and nothing else, a failure names its
//! validation and the line it is declared on, and a module that is not a
//! validation module is refused with a diagnostic. The rendered reports are
//! pinned in `tests/validations/*.out` (`UPDATE_GOLDEN=1` rewrites them).

use std::path::{Path, PathBuf};

use canon_lang::validation::{check, evaluate, Failure, Subject, ValidationSource};
use canon_lang::{compile_str, Compiled, MapLoader, Options};
use canon_model::{Ipv4Cidr, Ipv6Cidr, Peer, Protocol, Rule, SecurityGroupSpec, Spec};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validations")
}

fn policy(file: &str) -> ValidationSource {
    let text = std::fs::read_to_string(dir().join(file)).expect("read policy");
    let name = file.trim_end_matches(".lw");
    ValidationSource::new(name, file, text)
}

fn compile(src: &str) -> Compiled {
    let text = format!("import Canon.AWS.EC2 as EC2\nimport Canon.Core.AWS.Common as AWS\n{src}");
    let out = compile_str("test.lw", &text, &MapLoader::default(), Options::default());
    out.compiled
        .clone()
        .unwrap_or_else(|| panic!("{}", out.render()))
}

fn composition(file: &str) -> Compiled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compositions")
        .join(file);
    let text = std::fs::read_to_string(path).expect("read composition");
    let out = compile_str(file, &text, &MapLoader::default(), Options::default());
    out.compiled
        .clone()
        .unwrap_or_else(|| panic!("{}", out.render()))
}

fn failures(file: &str, compiled: &Compiled) -> Vec<Failure> {
    evaluate(&policy(file), &Subject::of_compiled(compiled)).failures
}

/// The failures of `validation`, by message.
fn of<'a>(fs: &'a [Failure], validation: &str) -> Vec<&'a str> {
    fs.iter()
        .filter(|f| f.validation == validation)
        .map(|f| f.message.as_str())
        .collect()
}

const ONE_VPC: &str = r#"
vpc: EC2.Vpc.new {cidrBlock: "10.1.0.0/16", region: AWS.Us-west-2, tags: [AWS.tag("Environment", "dev")]}
a: EC2.Subnet.new {vpc: vpc, cidrBlock: "10.1.1.0/24", availabilityZone: AWS.A}
"#;

#[test]
fn ssh_from_the_internet_fails_with_the_group_the_port_and_the_line() {
    let fs = failures("policy.lw", &composition("VPC-sam-ssh.lw"));
    let open = of(&fs, "policy.no-admin-ports");
    assert_eq!(
        open,
        ["security group dev-sam-sg admits port 22 from 0.0.0.0/0 (tcp 22)"],
        "{fs:#?}"
    );
    let f = fs
        .iter()
        .find(|f| f.validation == "policy.no-admin-ports")
        .expect("failure");
    assert_eq!((f.file.as_str(), f.line, f.column), ("policy.lw", 11, 1));
    assert!(f.to_string().ends_with("(policy.lw:11:1)"), "{f}");
    // Without the SSH rule, the same network passes.
    let fs = failures("policy.lw", &composition("VPC-sam.lw"));
    assert!(of(&fs, "policy.no-admin-ports").is_empty(), "{fs:#?}");
}

#[test]
fn all_traffic_and_ipv6_from_anywhere_count_as_open_admin_ports() {
    let group = |rule: Rule<String>| Subject {
        path: "sg".into(),
        region: "us-west-2".into(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: "vpc".into(),
            group_name: "sg".into(),
            description: "d".into(),
            ingress: [rule].into_iter().collect(),
            egress: Default::default(),
            tags: Default::default(),
        }),
    };
    let run = |rule| evaluate(&policy("policy.lw"), &[group(rule)]).failures;
    let all = run(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
    assert_eq!(
        of(&all, "policy.no-admin-ports"),
        [
            "security group sg admits port 22 from 0.0.0.0/0 (all traffic)",
            "security group sg admits port 3389 from 0.0.0.0/0 (all traffic)"
        ]
    );
    let rdp6 = run(Rule::new(
        Protocol::Tcp,
        3000,
        4000,
        Peer::Ipv6Cidr(Ipv6Cidr::ANY),
    ));
    assert_eq!(
        of(&rdp6, "policy.no-admin-ports"),
        ["security group sg admits port 3389 from ::/0 (tcp 3000-4000)"]
    );
    let office: Ipv4Cidr = "203.0.113.0/24".parse().expect("cidr");
    let narrow = run(Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(office)));
    assert!(of(&narrow, "policy.no-admin-ports").is_empty());
    let udp_dns = run(Rule::new(Protocol::Udp, 53, 53, Peer::Cidr(Ipv4Cidr::ANY)));
    assert!(of(&udp_dns, "policy.no-admin-ports").is_empty());
}

#[test]
fn subnets_in_one_zone_fail_and_in_two_pass() {
    let fs = failures("policy.lw", &compile(ONE_VPC));
    assert_eq!(
        of(&fs, "policy.multi-az"),
        ["the subnets of vpc are in 1 availability zone(s) (us-west-2a); at least 2 are required"]
    );
    let two = format!(
        "{ONE_VPC}b: EC2.Subnet.new {{vpc: vpc, cidrBlock: \"10.1.2.0/24\", availabilityZone: AWS.B}}\n"
    );
    assert!(of(&failures("policy.lw", &compile(&two)), "policy.multi-az").is_empty());
    // A VPC without subnets has nothing to spread.
    let bare = "vpc: EC2.Vpc.new {cidrBlock: \"10.1.0.0/16\", region: AWS.Us-west-2}\n";
    assert!(of(&failures("policy.lw", &compile(bare)), "policy.multi-az").is_empty());
}

#[test]
fn every_resource_must_carry_the_required_tags() {
    let fs = failures("tagged.lw", &compile(ONE_VPC));
    assert_eq!(
        of(&fs, "tagged.tagged"),
        [
            "Subnet a lacks the required tag(s) Environment, Application",
            "Vpc vpc lacks the required tag(s) Application",
        ]
    );
    let f = &fs[0];
    assert_eq!((f.line, f.column), (5, 5), "{f}");
    let tagged = r#"
tags: [AWS.tag("Environment", "dev"), AWS.tag("Application", "web")]
vpc: EC2.Vpc.new {cidrBlock: "10.1.0.0/16", region: AWS.Us-west-2, tags: tags}
"#;
    assert!(failures("tagged.lw", &compile(tagged)).is_empty());
}

#[test]
fn vpc_blocks_must_come_from_the_allowed_ranges() {
    let outside = "vpc: EC2.Vpc.new {cidrBlock: \"192.168.0.0/16\", region: AWS.Us-west-2}\n";
    let fs = failures("policy.lw", &compile(outside));
    assert_eq!(
        of(&fs, "policy.private-ranges"),
        ["VPC vpc has block 192.168.0.0/16, outside the allowed ranges (10.0.0.0/8, 172.16.0.0/12)"]
    );
    let inside = "vpc: EC2.Vpc.new {cidrBlock: \"172.20.0.0/16\", region: AWS.Us-west-2}\n";
    assert!(of(
        &failures("policy.lw", &compile(inside)),
        "policy.private-ranges"
    )
    .is_empty());
}

#[test]
fn instances_only_from_allowed_images_and_types() {
    let src = format!(
        "{ONE_VPC}ok: EC2.Instance.new {{imageId: \"ami-0abcdef1234567890\", subnet: a, instanceType: EC2.T3-micro}}\n\
         big: EC2.Instance.new {{imageId: \"ami-0123456789abcdef0\", subnet: a, instanceType: EC2.M5-xlarge}}\n"
    );
    let fs = failures("policy.lw", &compile(&src));
    assert_eq!(
        of(&fs, "policy.approved-images"),
        ["instance big uses image ami-0123456789abcdef0, not one of the allowed images (ami-0abcdef1234567890)"]
    );
    assert_eq!(
        of(&fs, "policy.small-instances"),
        ["instance big is of type m5.xlarge, not one of the allowed types (t2.micro, t3.micro, t3.small)"]
    );
}

#[test]
fn a_module_of_ones_own_validations_runs_beside_the_librarys() {
    let r = check(&policy("own.lw"));
    assert_eq!(
        r.validations,
        ["no-admin-ports", "multi-az", "sixteen"],
        "{}",
        r.render()
    );
    let wide = "vpc: EC2.Vpc.new {cidrBlock: \"10.1.0.0/20\", region: AWS.Us-west-2}\n";
    assert_eq!(
        of(&failures("own.lw", &compile(wide)), "own.sixteen"),
        ["VPC vpc is not a /16"]
    );
    assert!(failures("own.lw", &compile(ONE_VPC))
        .iter()
        .all(|f| f.validation != "own.sixteen"));
}

#[test]
fn a_module_lists_its_validations_in_order() {
    let r = check(&policy("policy.lw"));
    assert!(r.compiles(), "{}", r.render());
    assert_eq!(
        r.validations,
        [
            "multi-az",
            "no-admin-ports",
            "private-ranges",
            "approved-images",
            "small-instances"
        ]
    );
    assert!(r.failures.is_empty());
}

#[test]
fn modules_that_are_not_validation_modules_are_refused_and_fail_whatever_they_see() {
    for (file, says) in [
        (
            "bad_export.lw",
            "`zones` is exported but is not a validation: its type is Int",
        ),
        ("bad_none.lw", "this module declares no validation"),
        ("bad_import.lw", "Module not found: Lib.Tags"),
    ] {
        let r = check(&policy(file));
        assert!(!r.compiles(), "{file}");
        assert!(r.validations.is_empty(), "{file}");
        assert!(r.render().contains(says), "{file}: {}", r.render());
        // Evaluated (a stored module the library no longer accepts): it
        // fails, named by the module, rather than letting anything through.
        let fs = evaluate(&policy(file), &[]).failures;
        assert_eq!(fs.len(), 1, "{file}");
        assert_eq!(fs[0].validation, file.trim_end_matches(".lw"));
        assert!(fs[0].message.contains(says), "{file}: {}", fs[0].message);
    }
}

#[test]
fn a_validation_that_raises_an_error_fails_at_the_error() {
    let fs = failures("raises.lw", &compile(ONE_VPC));
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0].validation, "raises.strict");
    assert_eq!(
        fs[0].message,
        "raised an error: no VPC may be declared here"
    );
    assert_eq!(fs[0].line, 4);
    let bare = compile("");
    assert!(failures("raises.lw", &bare).is_empty());
}

/// What a user sees for each case: the modules against every demo
/// composition, and the refused modules' diagnostics.
#[test]
fn golden_reports() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let comps = [
        "Staging.lw",
        "VPC-hector.lw",
        "VPC-lisa.lw",
        "VPC-sam.lw",
        "VPC-sam-ssh.lw",
    ];
    let mut problems = Vec::new();
    for file in [
        "policy.lw",
        "own.lw",
        "tagged.lw",
        "raises.lw",
        "bad_export.lw",
        "bad_none.lw",
        "bad_import.lw",
    ] {
        let mut got = String::new();
        if file.starts_with("bad_") {
            got.push_str(&check(&policy(file)).render());
        } else {
            for c in comps {
                let r = evaluate(&policy(file), &Subject::of_compiled(&composition(c)));
                got.push_str(&format!("== {c}: {} failure(s)\n", r.failures.len()));
                got.push_str(&r.render());
            }
        }
        let out = dir().join(file).with_extension("out");
        if update {
            std::fs::write(&out, &got).expect("write golden");
        } else if std::fs::read_to_string(&out).unwrap_or_default() != got {
            problems.push(format!("{}:\n{got}", out.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The README's example policy is the one these tests pin.
#[test]
fn the_example_policy_is_the_tested_one() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy.lw");
    let example = std::fs::read_to_string(example).expect("examples/policy.lw");
    assert_eq!(example, policy("policy.lw").text);
}
