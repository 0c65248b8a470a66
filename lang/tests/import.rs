//! Resources named by cloud id: `Kind.external(…)` references (never
//! declared, `Ref::External` once instantiated) and `importId` (what
//! `canon run --import` adopts), with their ids checked at compile time.

use canon_lang::{compile_str, Compiled, MapLoader, Options, Output};
use canon_model::{Fid, LogicalId, Ref, ResourceKind, Spec};

const HEAD: &str = "import Canon.AWS.EC2 as EC2\nimport Canon.Core.AWS.Common as AWS\n";

fn compile(body: &str) -> Output {
    let src = format!("{HEAD}{body}");
    compile_str("import.lw", &src, &MapLoader::default(), Options::default())
}

fn compiled(body: &str) -> Compiled {
    let out = compile(body);
    assert!(!out.has_errors(), "{}", out.render());
    out.compiled.expect("compiled")
}

fn fid() -> Fid {
    "03ac9846-a3ad-4378-ab0e-3ad578dee1b7".parse().unwrap()
}

/// The first error's message and line (1-based).
fn first_error(body: &str) -> (String, u64) {
    let out = compile(body);
    let json = out.to_json();
    let e = json
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("no error: {json}"))
        .clone();
    (
        e["message"].as_str().unwrap_or_default().to_string(),
        e["line"].as_u64().unwrap_or_default(),
    )
}

#[test]
fn an_external_vpc_is_referred_to_not_declared() {
    let c = compiled(
        "shared: EC2.Vpc.external(\"vpc-0abc123\", AWS.Us-west-2)\n\
         subnet: EC2.Subnet.new {vpc: shared, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A}\n\
         web: EC2.SecurityGroup.new {vpc: shared, description: \"web\", groupName: \"web\"}\n\
         other: EC2.SecurityGroup.external(\"sg-0def456\", shared)\n\
         app: EC2.SecurityGroup.new {vpc: shared, description: \"app\", groupName: \"app\", \
            ipPermissions: [EC2.tcp(8080, EC2.Target.securityGroup(other))]}\n",
    );
    let paths: Vec<&str> = c.resources.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, vec!["app", "subnet", "web"]);
    let d = c.instantiate(fid()).unwrap();
    let subnet = &d.resources[&LogicalId::new(fid(), "subnet")];
    assert_eq!(subnet.region.as_str(), "us-west-2");
    match &subnet.spec {
        Spec::Subnet(s) => {
            assert_eq!(s.vpc, Ref::External("vpc-0abc123".into()));
            assert_eq!(s.availability_zone, "us-west-2a");
        }
        other => panic!("{other:?}"),
    }
    let app = &d.resources[&LogicalId::new(fid(), "app")];
    assert!(app
        .spec
        .references()
        .contains(&&Ref::External("sg-0def456".into())));
    let named = d.external_ids();
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["sg-0def456".to_string(), "vpc-0abc123".to_string()]
    );
    // The encoding carries it through.
    assert_eq!(Compiled::decode(&c.encode()).unwrap(), c);
}

#[test]
fn an_import_id_is_carried_to_the_desired_state() {
    let c = compiled(
        "vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2, importId: \"vpc-0abc123\"}\n\
         web: EC2.SecurityGroup.new {vpc: vpc, description: \"web\"} with {importId: \"sg-0def456\"}\n",
    );
    let decoded = Compiled::decode(&c.encode()).unwrap();
    assert_eq!(decoded, c);
    let d = decoded.instantiate(fid()).unwrap();
    assert_eq!(d.import_ids[&LogicalId::new(fid(), "vpc")], "vpc-0abc123");
    assert_eq!(d.import_ids[&LogicalId::new(fid(), "web")], "sg-0def456");
    assert_eq!(d.resources.len(), 2);
}

#[test]
fn an_import_id_of_another_kind_is_refused_at_its_line() {
    let (message, line) = first_error(
        "vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2}\n\
         subnet: EC2.Subnet.new {vpc: vpc, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A, importId: \"vpc-0abc\"}\n",
    );
    assert!(
        message.contains("importId \"vpc-0abc\" is not a Subnet id"),
        "{message}"
    );
    assert!(message.contains("subnet-"), "{message}");
    assert_eq!(line, 4);
}

#[test]
fn an_external_id_of_another_kind_is_refused_at_its_line() {
    let (message, line) = first_error("\nshared: EC2.Vpc.external(\"sg-0abc\", AWS.Us-west-2)\n");
    assert!(message.contains("Vpc.external"), "{message}");
    assert!(message.contains("not a Vpc id"), "{message}");
    assert_eq!(line, 4);
    let (message, _) = first_error("shared: EC2.Vpc.external(\"vpc-\", AWS.Us-west-2)\n");
    assert!(message.contains("not a Vpc id"), "{message}");
}

#[test]
fn every_kind_takes_an_import_id() {
    for kind in ResourceKind::ALL {
        assert!(kind.is_cloud_id(&format!("{}-0abc", kind.id_prefix())));
        assert!(!kind.is_cloud_id(kind.id_prefix()));
    }
    let c = compiled(
        "dopt: EC2.DhcpOptions.new {region: AWS.Us-west-2, importId: \"dopt-1\"}\n\
         eip: EC2.ElasticIp.new {region: AWS.Us-west-2, importId: \"eipalloc-1\"}\n\
         vpc: EC2.Vpc.new {cidrBlock: \"10.0.0.0/16\", region: AWS.Us-west-2}\n\
         igw: EC2.InternetGateway.new {vpc: vpc, importId: \"igw-1\"}\n\
         eigw: EC2.EgressOnlyInternetGateway.new {vpc: vpc, importId: \"eigw-1\"}\n\
         subnet: EC2.Subnet.new {vpc: vpc, cidrBlock: \"10.0.1.0/24\", availabilityZone: AWS.A, importId: \"subnet-1\"}\n\
         nat: EC2.NatGateway.new {subnet: subnet, importId: \"nat-1\"}\n\
         rt: EC2.RouteTable.new {vpc: vpc, importId: \"rtb-1\"}\n\
         acl: EC2.NetworkAcl.new {vpc: vpc, importId: \"acl-1\"}\n\
         sg: EC2.SecurityGroup.new {vpc: vpc, description: \"d\", importId: \"sg-1\"}\n\
         box: EC2.Instance.new {imageId: \"ami-1\", subnet: subnet, importId: \"i-1\"}\n",
    );
    assert_eq!(
        c.resources.iter().filter(|r| r.import_id.is_some()).count(),
        10
    );
}
