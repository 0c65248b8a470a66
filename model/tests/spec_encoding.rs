//! Specs hold their sets and tags in sorted vectors (issue #19, memory per
//! node), but every stored log entry, snapshot, state file and API answer
//! written before must read the same and be written byte for byte as
//! before: the CBOR of the raft log and snapshots (`ciborium`) and the
//! JSON of the API and state files (`serde_json`). These mirrors are the
//! specs as they were, with B-tree sets and maps.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    IpCidr, Ipv4Cidr, Peer, Protocol, Route, RouteTableSpec, Rule, SecurityGroupSpec, Tags,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct SecurityGroupBefore {
    vpc: String,
    group_name: String,
    description: String,
    ingress: BTreeSet<Rule<String>>,
    egress: BTreeSet<Rule<String>>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RouteTableBefore {
    vpc: String,
    routes: BTreeSet<Route<String>>,
    associations: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    interfaces: BTreeMap<IpCidr, String>,
    tags: BTreeMap<String, String>,
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().expect("a valid block")
}

/// Rules, given out of order and once twice.
fn rules() -> Vec<Rule<String>> {
    vec![
        Rule::new(Protocol::Tcp, 443, 443, Peer::Cidr(Ipv4Cidr::ANY)),
        Rule::new(Protocol::Tcp, 22, 22, Peer::Group("sg-2".to_string())),
        Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(cidr("10.0.0.0/8"))),
        Rule::new(Protocol::Tcp, 443, 443, Peer::Cidr(Ipv4Cidr::ANY)),
        Rule::new(Protocol::Udp, 53, 53, Peer::PrefixList("pl-1".to_string())),
    ]
}

fn tags() -> Vec<(String, String)> {
    [("canon:id", "f/x"), ("Name", "web"), ("Env", "prod")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
}

fn groups() -> (SecurityGroupSpec<String>, SecurityGroupBefore) {
    let now = SecurityGroupSpec {
        vpc: "vpc-1".to_string(),
        group_name: "web".to_string(),
        description: "web".to_string(),
        ingress: rules().into_iter().collect(),
        egress: [Rule::allow_all_egress()].into(),
        tags: tags().into_iter().collect(),
    };
    let before = SecurityGroupBefore {
        vpc: "vpc-1".to_string(),
        group_name: "web".to_string(),
        description: "web".to_string(),
        ingress: rules().into_iter().collect(),
        egress: [Rule::allow_all_egress()].into(),
        tags: tags().into_iter().collect(),
    };
    (now, before)
}

fn tables(interfaces: &[(&str, &str)]) -> (RouteTableSpec<String>, RouteTableBefore) {
    let routes = || {
        [("10.1.0.0/16", "pcx-1"), ("0.0.0.0/0", "igw-1")].map(|(d, t)| Route {
            destination: IpCidr::V4(cidr(d)),
            target: t.to_string(),
        })
    };
    let associations = || ["subnet-b", "subnet-a"].map(String::from);
    let interfaces = || {
        interfaces
            .iter()
            .map(|(d, i)| (IpCidr::V4(cidr(d)), i.to_string()))
            .collect::<Vec<_>>()
    };
    let now = RouteTableSpec {
        vpc: "vpc-1".to_string(),
        routes: routes().into(),
        associations: associations().into(),
        interfaces: interfaces().into_iter().collect(),
        tags: Tags::from_iter(tags()),
    };
    let before = RouteTableBefore {
        vpc: "vpc-1".to_string(),
        routes: routes().into(),
        associations: associations().into(),
        interfaces: interfaces().into_iter().collect(),
        tags: tags().into_iter().collect(),
    };
    (now, before)
}

fn cbor(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("encodes");
    out
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("encodes")
}

#[test]
fn a_security_group_encodes_as_it_did_with_b_trees() {
    let (now, before) = groups();
    assert_eq!(cbor(&now), cbor(&before));
    assert_eq!(json(&now), json(&before));
    let pretty = serde_json::to_string_pretty(&now).expect("encodes");
    assert_eq!(
        pretty,
        serde_json::to_string_pretty(&before).expect("encodes")
    );
}

#[test]
fn a_route_table_encodes_as_it_did_with_b_trees() {
    for interfaces in [
        &[][..],
        &[("10.2.0.0/16", "eni-2"), ("10.1.0.0/16", "eni-1")],
    ] {
        let (now, before) = tables(interfaces);
        assert_eq!(cbor(&now), cbor(&before));
        assert_eq!(json(&now), json(&before));
    }
}

#[test]
fn what_was_written_with_b_trees_reads_back_the_same() {
    let (now, before) = groups();
    let from_cbor: SecurityGroupSpec<String> =
        ciborium::from_reader(&cbor(&before)[..]).expect("decodes");
    assert_eq!(from_cbor, now);
    let from_json: SecurityGroupSpec<String> =
        serde_json::from_slice(&json(&before)).expect("decodes");
    assert_eq!(from_json, now);
    let (now, before) = tables(&[("10.1.0.0/16", "eni-1")]);
    let from_cbor: RouteTableSpec<String> =
        ciborium::from_reader(&cbor(&before)[..]).expect("decodes");
    assert_eq!(from_cbor, now);
    assert_eq!(cbor(&from_cbor), cbor(&before));
}

#[test]
fn unsorted_input_reads_as_the_b_tree_reads_it() {
    // Hand-written: rules out of order and repeated, a tag given twice.
    let text = r#"{"vpc":"vpc-1","group_name":"g","description":"d",
        "ingress":[
          {"protocol":"tcp","from_port":443,"to_port":443,"peer":{"Cidr":"0.0.0.0/0"}},
          {"protocol":"tcp","from_port":22,"to_port":22,"peer":{"Cidr":"0.0.0.0/0"}},
          {"protocol":"tcp","from_port":443,"to_port":443,"peer":{"Cidr":"0.0.0.0/0"}}],
        "egress":[],
        "tags":{"b":"1","a":"2","b":"3"}}"#;
    let before: Result<SecurityGroupBefore, _> = serde_json::from_str(text);
    let now: Result<SecurityGroupSpec<String>, _> = serde_json::from_str(text);
    let (before, now) = match (before, now) {
        (Ok(b), Ok(n)) => (b, n),
        (b, n) => panic!("both should read it: before {b:?}, now {n:?}"),
    };
    assert_eq!(now.ingress.len(), 2);
    assert_eq!(now.tags.get("b").map(String::as_str), Some("3"));
    assert_eq!(json(&now), json(&before));
    assert_eq!(cbor(&now), cbor(&before));
    assert_eq!(format!("{:?}", now.tags), format!("{:?}", before.tags));
    assert_eq!(
        format!("{:?}", now.ingress),
        format!("{:?}", before.ingress)
    );
}
