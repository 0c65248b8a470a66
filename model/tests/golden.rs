//! Golden tests of the dry-run JSON for the demo's plans: killing a
//! two-subnet network, and the update that adds one SSH ingress rule.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite the files after an intended change.

mod support;

use canon_model::*;
use support::reference::RefCloud;

fn fid() -> Fid {
    "9b567e78-2b5b-48ba-8c80-0667674df4c6".parse().unwrap()
}

/// The demo's network, with SSH after the update.
fn demo(ssh: bool) -> DesiredState {
    demo::DemoNetwork::default()
        .with_ssh(ssh)
        .build(fid())
        .unwrap()
}

fn check_golden(name: &str, value: &serde_json::Value) {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert_eq!(text, want, "{name} differs from {path}");
}

fn running() -> (RefCloud, Bindings) {
    let mut cloud = RefCloud::new();
    let mut b = Bindings::new();
    let p = plan(&demo(false), &cloud.state, &b);
    cloud.apply_plan(&p, &mut b).unwrap();
    (cloud, b)
}

#[test]
fn run_of_the_demo_network() {
    let p = plan(&demo(false), &ObservedState::new(), &Bindings::new());
    check_golden("run_demo_network", &p.to_json());
}

#[test]
fn kill_of_the_demo_network() {
    let (cloud, b) = running();
    let p = plan_kill(fid(), &cloud.state, &b);
    let types: Vec<_> = p.requests.iter().map(|r| r.request_type()).collect();
    assert_eq!(
        types,
        [
            "aws.ec2.delete_security_group",
            "aws.ec2.disassociate_route_table",
            "aws.ec2.disassociate_route_table",
            "aws.ec2.delete_route_table",
            "aws.ec2.delete_subnet",
            "aws.ec2.delete_subnet",
            "aws.ec2.detach_internet_gateway",
            "aws.ec2.delete_internet_gateway",
            "aws.ec2.delete_vpc",
            "aws.ec2.delete_dhcp_options",
        ]
    );
    check_golden("kill_demo_network", &p.to_json());
}

#[test]
fn update_adding_ssh_is_one_authorize() {
    let (cloud, b) = running();
    let p = plan(&demo(true), &cloud.state, &b);
    assert_eq!(p.requests.len(), 1);
    assert_eq!(
        p.requests[0].request_type(),
        "aws.ec2.authorize_security_group_ingress"
    );
    assert!(p.requests[0].guid().ends_with(".rules"));
    check_golden("update_add_ssh", &p.to_json());
}

/// The plan for the running demo after a rogue operator added `peer`
/// (all traffic) to Sam's group, and that group's cloud id.
fn plan_after_rogue_rule(peer: Peer<String>) -> (Plan, String) {
    let (mut cloud, b) = running();
    let sg = b
        .cloud_id(&LogicalId::new(fid(), "dev-sam-sg"))
        .unwrap()
        .to_string();
    let mut r = cloud.state.get(&sg).unwrap().clone();
    if let Spec::SecurityGroup(g) = &mut r.spec {
        g.ingress.insert(Rule::new(Protocol::All, -1, -1, peer));
    }
    cloud.state.insert(r);
    (plan(&demo(false), &cloud.state, &b), sg)
}

#[test]
fn rogue_all_traffic_rule_is_one_revoke_and_one_difference() {
    let (p, sg) = plan_after_rogue_rule(Peer::Cidr(Ipv4Cidr::ANY));
    assert_eq!(p.differences.len(), 1);
    let d = &p.differences[0];
    assert_eq!(d.property, "ingress");
    assert_eq!(d.declared, None);
    assert_eq!(d.observed.as_deref(), Some("all traffic 0.0.0.0/0"));
    assert_eq!(d.cloud_id.as_deref(), Some(sg.as_str()));
    check_golden("heal_rogue_rule", &p.to_json());
}

#[test]
fn rogue_ipv6_rule_is_revoked_with_its_ipv6_range() {
    let (p, _) = plan_after_rogue_rule(Peer::Ipv6Cidr(Ipv6Cidr::ANY));
    assert_eq!(p.differences.len(), 1);
    assert_eq!(
        p.differences[0].observed.as_deref(),
        Some("all traffic ::/0")
    );
    assert_eq!(p.requests.len(), 1);
    check_golden("heal_rogue_ipv6_rule", &p.to_json());
}
