//! The examples drawn: golden SVG, DOT and JSON files (regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p canon-graph --test examples`), every SVG
//! well-formed XML, and the demo network's picture as the seed's visualizer
//! drew it.

use std::path::{Path, PathBuf};

use canon_graph::{to_dot, to_json, to_svg, EdgeKind, Graph, NodeKind, Overlay};
use canon_lang::{compile_file, Options};
use canon_model::{DesiredState, Fid};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A fixed FID, so ids (and so the drawings) are the same on every run.
fn fid() -> Fid {
    "00000000-0000-4000-8000-000000000001".parse().expect("fid")
}

fn desired(file: &str) -> DesiredState {
    let out = compile_file(&examples().join(file), Options::default()).expect("read example");
    assert!(!out.has_errors(), "{file}: {}", out.render());
    out.compiled
        .expect("compiled")
        .instantiate(fid())
        .expect("instantiate")
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its golden file; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff"
    );
}

const EXAMPLES: [&str; 5] = [
    "VPC-sam.lw",
    "VPC-sam-ssh.lw",
    "VPC-lisa.lw",
    "VPC-hector.lw",
    "Staging.lw",
];

#[test]
fn every_example_matches_its_golden_drawings() {
    for file in EXAMPLES {
        let graph = Graph::from_desired(&desired(file));
        let stem = file.trim_end_matches(".lw");
        let svg = to_svg(&graph);
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{file}: SVG is not XML: {e}"));
        check_golden(&format!("{stem}.svg"), &svg);
        check_golden(&format!("{stem}.dot"), &to_dot(&graph));
        let json = serde_json::to_string_pretty(&to_json(&graph)).expect("json") + "\n";
        check_golden(&format!("{stem}.json"), &json);
        // Drawing twice gives the same bytes.
        assert_eq!(to_svg(&Graph::from_desired(&desired(file))), svg);
    }
}

#[test]
fn the_demo_network_is_drawn_by_containment() {
    let graph = Graph::from_desired(&desired("VPC-sam.lw"));
    let kind_of = |id: &str| graph.node(id).map(|n| n.kind);
    let vpc = graph
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::Vpc)
        .expect("a VPC box");
    assert_eq!(vpc.detail, ["10.0.0.0/16"]);
    assert_eq!(
        kind_of(vpc.parent.as_deref().unwrap()),
        Some(NodeKind::Region)
    );
    // One column per zone, each holding one public subnet with its route table.
    let zones: Vec<_> = graph
        .children(Some(&vpc.id))
        .filter(|n| n.kind == NodeKind::Zone)
        .collect();
    assert_eq!(
        zones.iter().map(|z| z.label.as_str()).collect::<Vec<_>>(),
        ["us-west-2a", "us-west-2b"]
    );
    for z in zones {
        let subnets: Vec<_> = graph.children(Some(&z.id)).collect();
        assert_eq!(subnets.len(), 1);
        assert!(subnets[0].public, "{:?}", subnets[0]);
        assert!(
            subnets[0].badges.iter().any(|b| b.starts_with("rt ")),
            "{:?}",
            subnets[0]
        );
    }
    // The gateway on the VPC, with a line to the Internet.
    let igw = graph
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::InternetGateway)
        .expect("a gateway");
    assert_eq!(igw.parent.as_deref(), Some(vpc.id.as_str()));
    assert!(graph
        .edges
        .iter()
        .any(|e| e.from == igw.id && e.to == "internet" && e.kind == EdgeKind::Gateway));
    // The web group admits the Internet on 80 and 443: one labelled edge.
    let web: Vec<_> = graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::InternetIngress)
        .collect();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].label, "tcp 80, 443");
}

#[test]
fn drift_and_missing_resources_are_marked() {
    let d = desired("VPC-sam.lw");
    let group = d
        .resources
        .values()
        .find(|r| r.kind() == canon_model::ResourceKind::SecurityGroup)
        .expect("group")
        .id;
    let subnet = d
        .resources
        .values()
        .find(|r| r.kind() == canon_model::ResourceKind::Subnet)
        .expect("subnet")
        .id;
    let mut overlay = Overlay::default();
    overlay
        .drifted
        .insert(group, vec!["ingress: all traffic 0.0.0.0/0 added".into()]);
    overlay.missing.insert(subnet);
    overlay
        .open_to_internet
        .insert(group, vec!["all traffic".into()]);
    let graph = Graph::from_desired(&d).with_overlay(&overlay);
    assert_eq!(
        graph.node_of(&group).unwrap().status,
        canon_graph::Status::Drifted
    );
    assert_eq!(
        graph.node_of(&subnet).unwrap().status,
        canon_graph::Status::Missing
    );
    let svg = to_svg(&graph);
    roxmltree::Document::parse(&svg).expect("XML");
    assert!(svg.contains("class=\"edge internet_ingress drifted\""));
    assert!(svg.contains("box subnet missing"));
    assert!(svg.contains("drift: ingress: all traffic 0.0.0.0/0 added"));
}

/// The demo network as the cloud would report it, every resource as
/// declared (references as made-up cloud ids).
fn observed_as_declared(
    d: &DesiredState,
) -> std::collections::BTreeMap<canon_model::LogicalId, canon_model::ObservedResource> {
    d.resources
        .values()
        .map(|r| {
            let seen = canon_model::ObservedResource {
                cloud_id: format!("cloud-{}", r.id),
                region: r.region.clone(),
                spec: r.spec.map_refs(|x| format!("ref-{x}")),
                association_ids: Default::default(),
                pending: false,
                life: None,
            };
            (r.id, seen)
        })
        .collect()
}

#[test]
fn an_overlay_from_the_cloud_names_missing_resources_undeclared_internet_ingress_and_open_drift() {
    use canon_model::{Ipv4Cidr, Peer, Protocol, ResourceKind, Rule, Spec};
    let d = desired("VPC-sam.lw");
    let of = |kind: ResourceKind| {
        d.resources
            .values()
            .find(|r| r.kind() == kind)
            .expect("kind")
            .id
    };
    let (group, subnet) = (of(ResourceKind::SecurityGroup), of(ResourceKind::Subnet));
    // As declared: nothing to mark.
    let clean = Overlay::from_cloud(&d, &observed_as_declared(&d), []);
    assert_eq!(clean, Overlay::default());
    // A subnet deleted, SSH opened to the world and an open drift record.
    let mut cloud = observed_as_declared(&d);
    cloud.remove(&subnet);
    let Spec::SecurityGroup(sg) = &mut cloud.get_mut(&group).expect("group").spec else {
        panic!("not a group");
    };
    sg.ingress
        .insert(Rule::new(Protocol::Tcp, 22, 22, Peer::Cidr(Ipv4Cidr::ANY)));
    let drift = vec![(group, "ingress: tcp 22 from 0.0.0.0/0 added".to_string())];
    let overlay = Overlay::from_cloud(&d, &cloud, drift);
    assert_eq!(overlay.missing.iter().collect::<Vec<_>>(), vec![&subnet]);
    assert_eq!(
        overlay.open_to_internet.get(&group),
        Some(&vec!["tcp 22".to_string()])
    );
    assert_eq!(overlay.drifted.get(&group).map(Vec::len), Some(1));
    let graph = Graph::from_desired(&d).with_overlay(&overlay);
    let rogue: Vec<_> = graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::InternetIngress && e.label == "tcp 22")
        .collect();
    assert_eq!(rogue.len(), 1, "{:?}", graph.edges);
    assert_eq!(
        graph.node_of(&subnet).unwrap().status,
        canon_graph::Status::Missing
    );
}

fn desired_from(src: &str) -> DesiredState {
    let out = canon_lang::compile_str(
        "inline.lw",
        src,
        &canon_lang::MapLoader::default(),
        Options::default(),
    );
    assert!(!out.has_errors(), "{}", out.render());
    out.compiled
        .expect("compiled")
        .instantiate(fid())
        .expect("instantiate")
}

const PEERED: &str = r#"
import Canon.AWS.EC2 as EC2
import Canon.Core.AWS.Common as AWS

apps: EC2.Vpc.new {cidrBlock: "10.0.0.0/16", region: AWS.Us-east-1}
data: EC2.Vpc.new {cidrBlock: "10.1.0.0/16", region: AWS.Us-east-1}
link: EC2.VpcPeeringConnection.new {
  vpc: apps,
  peerVpc: data,
  tags: [AWS.Tag({key: "Name", value: "apps-to-data"})],
}
appsRoutes: EC2.RouteTable.new {
  vpc: apps,
  routes: [EC2.Route.peering("10.1.0.0/16", link)],
}
s3: EC2.VpcEndpoint.s3(data, [])
eigw: EC2.EgressOnlyInternetGateway.new {vpc: apps}
"#;

#[test]
fn a_peering_joins_two_vpc_boxes_and_endpoints_sit_in_their_vpc() {
    let d = desired_from(PEERED);
    let graph = Graph::from_desired(&d);
    let id_of = |kind: canon_model::ResourceKind| {
        d.resources
            .values()
            .find(|r| r.kind() == kind)
            .map(|r| r.id)
            .expect("declared")
    };
    let link = id_of(canon_model::ResourceKind::VpcPeeringConnection);
    let node = graph.node_of(&link).expect("the connection is drawn");
    assert_eq!(node.kind, NodeKind::VpcPeeringConnection);
    assert_eq!(node.parent.as_deref(), Some("region:us-east-1"));
    assert!(node.detail.iter().any(|l| l.contains("↔")), "{node:?}");
    let vpc_box = |name: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.kind == NodeKind::Vpc && n.label == name)
            .map(|n| n.id.clone())
            .expect("VPC box")
    };
    let (apps, data) = (vpc_box("apps"), vpc_box("data"));
    let peering: Vec<_> = graph
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Peering)
        .collect();
    assert_eq!(peering.len(), 1, "{:?}", graph.edges);
    assert_eq!((&peering[0].from, &peering[0].to), (&apps, &data));
    assert_eq!(peering[0].label, "peering apps-to-data");
    let endpoint = graph
        .node_of(&id_of(canon_model::ResourceKind::VpcEndpoint))
        .expect("the endpoint is drawn");
    assert_eq!(endpoint.kind, NodeKind::VpcEndpoint);
    assert_eq!(endpoint.parent.as_ref(), Some(&data));
    assert!(
        endpoint.detail.iter().any(|l| l.starts_with("s3")),
        "{endpoint:?}"
    );
    let eigw = graph
        .node_of(&id_of(canon_model::ResourceKind::EgressOnlyInternetGateway))
        .expect("the gateway is drawn");
    assert_eq!(eigw.kind, NodeKind::EgressOnlyInternetGateway);
    assert_eq!(eigw.parent.as_ref(), Some(&apps));

    // A connection the cloud lacks: its box and its edge are missing.
    let mut overlay = Overlay::default();
    overlay.missing.insert(link);
    let drawn = Graph::from_desired(&d).with_overlay(&overlay);
    let edge = drawn
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Peering)
        .expect("edge");
    assert_eq!(edge.status, canon_graph::Status::Missing);
    let svg = to_svg(&drawn);
    roxmltree::Document::parse(&svg).expect("XML");
    assert!(svg.contains("class=\"edge peering missing\""), "{svg}");
    assert!(to_dot(&drawn).contains("dir=none"));
}
