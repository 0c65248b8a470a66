//! The network a declaration describes, as a containment tree plus traffic
//! edges — the data every output format draws.
//!
//! Containment, not dependencies: region → VPC → one column per
//! availability zone → subnets → instances; the internet gateway sits on its
//! VPC's edge; security groups, unassociated route tables and kinds the
//! drawing has no special place for sit in their VPC's panel. Edges are only
//! for traffic: the Internet to a group that admits 0.0.0.0/0 or ::/0, a
//! group to a group it admits, a gateway to the Internet.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    DesiredState, EndpointType, InstanceSpec, IpCidr, Ipv4Cidr, LogicalId, Peer, Protocol, Ref,
    Resource, RouteTableSpec, Rule, SecurityGroupSpec, Spec, VpcPeeringConnectionSpec,
};
use serde::Serialize;

/// How a node or edge stands against the cloud (always `ok` for a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// The cloud differs from the declaration (drawn red and dashed).
    Drifted,
    /// Declared but not in the cloud (drawn hatched).
    Missing,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Internet,
    Region,
    Vpc,
    Zone,
    Subnet,
    Instance,
    InternetGateway,
    SecurityGroup,
    RouteTable,
    DhcpOptions,
    /// An Elastic IP address (in its region; a NAT gateway's is drawn with
    /// the gateway).
    ElasticIp,
    /// A NAT gateway, in its subnet.
    NatGateway,
    /// A network ACL, in its VPC, with its subnets and entry counts.
    NetworkAcl,
    /// An EBS volume: beside its instance (in the instance's subnet), or
    /// in its region when it is attached to none.
    Volume,
    /// An egress-only internet gateway, in its VPC.
    EgressOnlyInternetGateway,
    /// A VPC endpoint, in its VPC, with its service and what it serves.
    VpcEndpoint,
    /// A VPC peering connection, in its region, with a peering edge
    /// between the two VPC boxes.
    VpcPeeringConnection,
    /// A kind the drawing has no special place for.
    Other,
}

/// A box in the drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Stable across runs: derived from logical ids and names only.
    pub id: String,
    pub kind: NodeKind,
    /// The box this one is drawn inside; none for the Internet and regions.
    pub parent: Option<String>,
    pub label: String,
    /// Lines under the label (a CIDR, an instance's type and image, rules).
    pub detail: Vec<String>,
    /// Small tags drawn on the box (a subnet's route table, an instance's
    /// security groups).
    pub badges: Vec<String>,
    /// A subnet whose route table sends 0.0.0.0/0 to an internet gateway.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// How many identical resources this box stands for (collapsed).
    pub count: usize,
    /// The declared resources it stands for.
    pub resources: Vec<String>,
    pub status: Status,
}

/// What an edge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// The Internet to a group admitting 0.0.0.0/0 or ::/0.
    InternetIngress,
    /// One group to another it admits.
    GroupPeer,
    /// An internet gateway to the Internet.
    Gateway,
    /// One VPC to another through a peering connection (traffic both
    /// ways: drawn without an arrow head).
    Peering,
}

/// Traffic from one box to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// What flows (`tcp 80, 443`).
    pub label: String,
    pub status: Status,
    /// The declared resource the edge stands for (a peering connection),
    /// whose status it takes; none for traffic rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// The drawing's data: boxes in drawing order (parents before children)
/// and edges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The Internet's node id.
pub const INTERNET: &str = "internet";

/// Instances alike in everything drawn collapse into one box past this many.
pub const COLLAPSE_AT: usize = 2;

impl Graph {
    /// The network `desired` declares.
    pub fn from_desired(desired: &DesiredState) -> Graph {
        Builder::new(desired).build()
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node standing for declared resource `id`.
    pub fn node_of(&self, id: &LogicalId) -> Option<&Node> {
        let id = id.to_string();
        self.nodes.iter().find(|n| n.resources.contains(&id))
    }

    /// The children of `parent` (the top level for `None`), in order.
    pub fn children<'g>(&'g self, parent: Option<&'g str>) -> impl Iterator<Item = &'g Node> {
        self.nodes
            .iter()
            .filter(move |n| n.parent.as_deref() == parent)
    }
}

fn node(id: String, kind: NodeKind, parent: Option<String>, label: String) -> Node {
    Node {
        id,
        kind,
        parent,
        label,
        detail: Vec::new(),
        badges: Vec::new(),
        public: false,
        count: 1,
        resources: Vec::new(),
        status: Status::Ok,
    }
}

/// A resource's name for people: its `Name` tag, else its path.
fn display_name(r: &Resource) -> String {
    r.spec
        .tags()
        .get("Name")
        .cloned()
        .unwrap_or_else(|| r.name.clone())
}

fn managed(r: &Ref) -> Option<LogicalId> {
    match r {
        Ref::Managed(id) => Some(*id),
        Ref::External(_) => None,
    }
}

struct Builder<'d> {
    desired: &'d DesiredState,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// The node id of each drawn resource's VPC box.
    vpc_box: BTreeMap<LogicalId, String>,
}

impl<'d> Builder<'d> {
    fn new(desired: &'d DesiredState) -> Self {
        Builder {
            desired,
            nodes: Vec::new(),
            edges: Vec::new(),
            vpc_box: BTreeMap::new(),
        }
    }

    fn of_kind(&self, want: fn(&Spec<Ref>) -> bool) -> Vec<&'d Resource> {
        let mut out: Vec<&Resource> = self
            .desired
            .resources
            .values()
            .filter(|r| want(&r.spec))
            .collect();
        out.sort_by_key(|r| (display_name(r), r.id));
        out
    }

    fn build(mut self) -> Graph {
        self.nodes.push(node(
            INTERNET.into(),
            NodeKind::Internet,
            None,
            "Internet".into(),
        ));
        self.regions();
        self.vpcs();
        let public = self.public_subnets();
        self.subnets(&public);
        self.route_tables();
        self.gateways();
        self.groups();
        self.instances();
        self.others();
        Graph {
            nodes: self.nodes,
            edges: self.edges,
        }
    }

    fn regions(&mut self) {
        let regions: BTreeSet<&str> = self
            .desired
            .resources
            .values()
            .map(|r| r.region.as_str())
            .collect();
        for region in regions {
            let id = region_id(region);
            self.nodes
                .push(node(id, NodeKind::Region, None, region.to_string()));
        }
    }

    fn vpcs(&mut self) {
        for r in self.of_kind(|s| matches!(s, Spec::Vpc(_))) {
            let Spec::Vpc(v) = &r.spec else { continue };
            let id = format!("vpc:{}", r.id);
            let mut n = node(
                id.clone(),
                NodeKind::Vpc,
                Some(region_id(r.region.as_str())),
                display_name(r),
            );
            n.detail.push(if v.ipv6 {
                format!("{} · IPv6 /56", v.cidr_block)
            } else {
                v.cidr_block.to_string()
            });
            if let Some(dhcp) = v.dhcp_options.as_ref().and_then(|d| self.resource(d)) {
                if let Spec::DhcpOptions(o) = &dhcp.spec {
                    let domain = o.domain_name.clone().unwrap_or_else(|| display_name(dhcp));
                    n.badges.push(format!("dhcp {domain}"));
                    n.resources.push(dhcp.id.to_string());
                }
            }
            n.resources.push(r.id.to_string());
            self.vpc_box.insert(r.id, id);
            self.nodes.push(n);
        }
    }

    fn resource(&self, r: &Ref) -> Option<&'d Resource> {
        managed(r).and_then(|id| self.desired.resources.get(&id))
    }

    /// The VPC box a reference to a VPC is drawn in, adding a box for a VPC
    /// Canon does not manage.
    fn vpc_of(&mut self, vpc: &Ref, region: &str) -> String {
        if let Some(id) = managed(vpc).and_then(|id| self.vpc_box.get(&id)) {
            return id.clone();
        }
        let id = format!("vpc:external:{vpc}");
        if !self.nodes.iter().any(|n| n.id == id) {
            let mut n = node(
                id.clone(),
                NodeKind::Vpc,
                Some(region_id(region)),
                vpc.to_string(),
            );
            n.detail.push("not managed by this process".into());
            self.nodes.push(n);
        }
        id
    }

    /// Subnets associated with a route table that sends 0.0.0.0/0 to an
    /// internet gateway.
    fn public_subnets(&self) -> BTreeSet<Ref> {
        let mut public = BTreeSet::new();
        for r in self.desired.resources.values() {
            if let Spec::RouteTable(t) = &r.spec {
                if self.routes_to_internet(t) {
                    public.extend(t.associations.iter().cloned());
                }
            }
        }
        public
    }

    fn routes_to_internet(&self, t: &RouteTableSpec<Ref>) -> bool {
        t.routes.iter().any(|route| {
            route.destination == IpCidr::V4(Ipv4Cidr::ANY)
                && match &route.target {
                    Ref::Managed(id) => self
                        .desired
                        .resources
                        .get(id)
                        .is_some_and(|g| matches!(g.spec, Spec::InternetGateway(_))),
                    Ref::External(id) => id.starts_with("igw-"),
                }
        })
    }

    fn subnets(&mut self, public: &BTreeSet<Ref>) {
        let mut subnets = self.of_kind(|s| matches!(s, Spec::Subnet(_)));
        // Public subnets above private ones, then by address.
        subnets.sort_by_key(|r| {
            let Spec::Subnet(s) = &r.spec else {
                return (true, None, r.id);
            };
            (
                !public.contains(&Ref::Managed(r.id)),
                Some(s.cidr_block),
                r.id,
            )
        });
        for r in subnets {
            let Spec::Subnet(s) = &r.spec else { continue };
            let vpc = self.vpc_of(&s.vpc, r.region.as_str());
            let zone = self.zone(&vpc, &s.availability_zone);
            let mut n = node(
                format!("subnet:{}", r.id),
                NodeKind::Subnet,
                Some(zone),
                display_name(r),
            );
            n.public = public.contains(&Ref::Managed(r.id));
            n.detail.push(format!(
                "{} · {}",
                s.cidr_block,
                if n.public { "public" } else { "private" }
            ));
            n.resources.push(r.id.to_string());
            self.nodes.push(n);
        }
    }

    /// The availability-zone column of `vpc` for `zone`, made on first use.
    fn zone(&mut self, vpc: &str, zone: &str) -> String {
        let id = format!("zone:{vpc}:{zone}");
        if !self.nodes.iter().any(|n| n.id == id) {
            self.nodes.push(node(
                id.clone(),
                NodeKind::Zone,
                Some(vpc.into()),
                zone.into(),
            ));
        }
        id
    }

    fn route_tables(&mut self) {
        for r in self.of_kind(|s| matches!(s, Spec::RouteTable(_))) {
            let Spec::RouteTable(t) = &r.spec else {
                continue;
            };
            let name = display_name(r);
            let mut badged = false;
            for subnet in t.associations.iter().filter_map(managed) {
                let id = format!("subnet:{subnet}");
                if let Some(n) = self.nodes.iter_mut().find(|n| n.id == id) {
                    n.badges.push(format!("rt {name}"));
                    n.resources.push(r.id.to_string());
                    badged = true;
                }
            }
            if badged {
                continue;
            }
            let vpc = self.vpc_of(&t.vpc, r.region.as_str());
            let mut n = node(
                format!("rt:{}", r.id),
                NodeKind::RouteTable,
                Some(vpc),
                name,
            );
            n.detail = t
                .routes
                .iter()
                .map(|route| format!("{} → {}", route.destination, self.ref_name(&route.target)))
                .collect();
            n.resources.push(r.id.to_string());
            self.nodes.push(n);
        }
    }

    fn ref_name(&self, r: &Ref) -> String {
        self.resource(r)
            .map(display_name)
            .unwrap_or_else(|| r.to_string())
    }

    fn gateways(&mut self) {
        for r in self.of_kind(|s| matches!(s, Spec::InternetGateway(_))) {
            let Spec::InternetGateway(g) = &r.spec else {
                continue;
            };
            let parent = match &g.vpc {
                Some(vpc) => self.vpc_of(vpc, r.region.as_str()),
                None => region_id(r.region.as_str()),
            };
            let id = format!("igw:{}", r.id);
            let mut n = node(
                id.clone(),
                NodeKind::InternetGateway,
                Some(parent),
                display_name(r),
            );
            n.resources.push(r.id.to_string());
            self.nodes.push(n);
            if g.vpc.is_some() {
                self.edges.push(Edge {
                    from: id,
                    to: INTERNET.into(),
                    kind: EdgeKind::Gateway,
                    label: String::new(),
                    status: Status::Ok,
                    resource: None,
                });
            }
        }
    }

    fn groups(&mut self) {
        for r in self.of_kind(|s| matches!(s, Spec::SecurityGroup(_))) {
            let Spec::SecurityGroup(g) = &r.spec else {
                continue;
            };
            let vpc = self.vpc_of(&g.vpc, r.region.as_str());
            let id = format!("sg:{}", r.id);
            let mut n = node(
                id.clone(),
                NodeKind::SecurityGroup,
                Some(vpc),
                display_name(r),
            );
            n.detail = self.rule_lines(g);
            n.resources.push(r.id.to_string());
            self.nodes.push(n);
            self.group_edges(&id, g);
        }
    }

    fn rule_lines(&self, g: &SecurityGroupSpec<Ref>) -> Vec<String> {
        let peer = |p: &Peer<Ref>| match p {
            Peer::Group(r) => self.ref_name(r),
            Peer::Cidr(c) => c.to_string(),
            Peer::Ipv6Cidr(c) => c.to_string(),
            Peer::PrefixList(p) => p.clone(),
        };
        let mut lines: Vec<String> = g
            .ingress
            .iter()
            .map(|rule| format!("in {} from {}", ports(rule), peer(&rule.peer)))
            .collect();
        let default_egress = g.egress.len() == 1 && g.egress.contains(&Rule::allow_all_egress());
        if !default_egress {
            lines.extend(
                g.egress
                    .iter()
                    .map(|rule| format!("out {} to {}", ports(rule), peer(&rule.peer))),
            );
        }
        lines
    }

    /// Internet → group for rules open to everyone; peer group → group.
    fn group_edges(&mut self, id: &str, g: &SecurityGroupSpec<Ref>) {
        let mut from_internet = Vec::new();
        let mut from_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rule in &g.ingress {
            match &rule.peer {
                p if from_anywhere(p) => from_internet.push(rule),
                Peer::Group(Ref::Managed(peer)) => from_groups
                    .entry(format!("sg:{peer}"))
                    .or_default()
                    .push(ports(rule)),
                _ => {}
            }
        }
        if !from_internet.is_empty() {
            self.edges.push(Edge {
                from: INTERNET.into(),
                to: id.into(),
                kind: EdgeKind::InternetIngress,
                label: port_summary(&from_internet),
                status: Status::Ok,
                resource: None,
            });
        }
        for (peer, mut labels) in from_groups {
            labels.dedup();
            self.edges.push(Edge {
                from: peer,
                to: id.into(),
                kind: EdgeKind::GroupPeer,
                label: labels.join(", "),
                status: Status::Ok,
                resource: None,
            });
        }
    }

    fn instances(&mut self) {
        // Instances alike in subnet, image, type, key and groups are one box.
        let mut alike: BTreeMap<Likeness, Vec<&Resource>> = BTreeMap::new();
        for r in self.of_kind(|s| matches!(s, Spec::Instance(_))) {
            let Spec::Instance(i) = &r.spec else { continue };
            let groups: Vec<String> = i.security_groups.iter().map(|g| self.ref_name(g)).collect();
            let key = Likeness {
                subnet: self.subnet_box(i, r),
                image: i.image_id.clone(),
                instance_type: i.instance_type.clone(),
                key_name: i.key_name.clone().unwrap_or_default(),
                groups,
            };
            alike.entry(key).or_default().push(r);
        }
        for (like, members) in alike {
            let chunks: Vec<Vec<&Resource>> = if members.len() >= COLLAPSE_AT {
                vec![members]
            } else {
                members.into_iter().map(|m| vec![m]).collect()
            };
            for chunk in chunks {
                let first = chunk[0];
                let mut n = node(
                    format!("instance:{}", first.id),
                    NodeKind::Instance,
                    Some(like.subnet.clone()),
                    display_name(first),
                );
                if chunk.len() > 1 {
                    n.label = format!("{} ×{}", common_prefix_name(&chunk), chunk.len());
                }
                n.count = chunk.len();
                n.detail
                    .push(format!("{} · {}", like.instance_type, like.image));
                n.badges = like.groups.clone();
                n.resources = chunk.iter().map(|r| r.id.to_string()).collect();
                self.nodes.push(n);
            }
        }
    }

    /// The subnet box an instance sits in (its region when the subnet is
    /// not drawn).
    fn subnet_box(&self, i: &InstanceSpec<Ref>, r: &Resource) -> String {
        match managed(&i.subnet) {
            Some(id) if self.desired.resources.contains_key(&id) => format!("subnet:{id}"),
            _ => region_id(r.region.as_str()),
        }
    }

    /// DHCP options no VPC uses, and kinds with no special place: in the VPC
    /// they refer to, else in their region.
    fn others(&mut self) {
        let drawn: BTreeSet<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.resources.iter().cloned())
            .collect();
        let rest: Vec<&Resource> = self
            .of_kind(|_| true)
            .into_iter()
            .filter(|r| !drawn.contains(&r.id.to_string()))
            .collect();
        for r in rest {
            let mut parent = self.home_of(r);
            let kind = match &r.spec {
                Spec::DhcpOptions(_) => NodeKind::DhcpOptions,
                Spec::ElasticIp(_) => NodeKind::ElasticIp,
                Spec::NatGateway(g) => {
                    // In its subnet's box, when the subnet is drawn.
                    if let Some(id) = managed(&g.subnet) {
                        let subnet = format!("subnet:{id}");
                        if self.nodes.iter().any(|n| n.id == subnet) {
                            parent = subnet;
                        }
                    }
                    NodeKind::NatGateway
                }
                Spec::NetworkAcl(_) => NodeKind::NetworkAcl,
                Spec::EgressOnlyInternetGateway(_) => NodeKind::EgressOnlyInternetGateway,
                Spec::VpcEndpoint(_) => NodeKind::VpcEndpoint,
                Spec::VpcPeeringConnection(p) => {
                    // Between two VPCs, so in neither: in its region.
                    parent = region_id(r.region.as_str());
                    self.peering_edge(r, p);
                    NodeKind::VpcPeeringConnection
                }
                Spec::Volume(v) => {
                    if let Some(home) = v.attachment.as_ref().and_then(|a| self.beside(&a.instance))
                    {
                        parent = home;
                    }
                    NodeKind::Volume
                }
                _ => NodeKind::Other,
            };
            let mut n = node(format!("res:{}", r.id), kind, Some(parent), display_name(r));
            n.detail.push(r.kind().to_string());
            if let Spec::NetworkAcl(a) = &r.spec {
                let egress = a.entries.iter().filter(|e| e.egress).count();
                n.detail.push(format!(
                    "{} in, {egress} out, {} subnet(s)",
                    a.entries.len() - egress,
                    a.associations.len()
                ));
            }
            if let Spec::Volume(v) = &r.spec {
                let mut line = format!("{} GiB {}", v.size_gib, v.volume_type);
                if let Some(a) = &v.attachment {
                    line.push_str(&format!(
                        " · {} on {}",
                        a.device,
                        self.ref_name(&a.instance)
                    ));
                }
                n.detail.push(line);
            }
            if let Some(line) = self.connection_detail(&r.spec) {
                n.detail.push(line);
            }
            if let Spec::NatGateway(g) = &r.spec {
                n.detail.push(
                    if g.allocation.is_some() {
                        "public"
                    } else {
                        "private"
                    }
                    .into(),
                );
            }
            n.resources.push(r.id.to_string());
            self.nodes.push(n);
        }
    }

    /// The edge between the two VPC boxes of a peering connection (a box
    /// is added for a peer VPC Canon does not manage), labelled with the
    /// connection's name.
    fn peering_edge(&mut self, r: &Resource, p: &VpcPeeringConnectionSpec<Ref>) {
        let region = r.region.as_str();
        let from = self.vpc_of(&p.vpc, region);
        let to = self.vpc_of(&p.peer_vpc, region);
        self.edges.push(Edge {
            from,
            to,
            kind: EdgeKind::Peering,
            label: format!("peering {}", display_name(r)),
            status: Status::Ok,
            resource: Some(r.id.to_string()),
        });
    }

    /// What an endpoint or a peering connection joins, in one line:
    /// `s3 · gateway · 2 route table(s)`, `web ↔ data`.
    fn connection_detail(&self, spec: &Spec<Ref>) -> Option<String> {
        match spec {
            Spec::VpcEndpoint(e) => Some(match e.endpoint_type {
                EndpointType::Gateway => {
                    format!(
                        "{} · gateway · {} route table(s)",
                        e.service,
                        e.route_tables.len()
                    )
                }
                EndpointType::Interface => format!(
                    "{} · interface · {} subnet(s), {} group(s)",
                    e.service,
                    e.subnets.len(),
                    e.security_groups.len()
                ),
            }),
            Spec::VpcPeeringConnection(p) => Some(format!(
                "{} ↔ {}",
                self.ref_name(&p.vpc),
                self.ref_name(&p.peer_vpc)
            )),
            _ => None,
        }
    }

    /// The box that holds the drawn instance `instance` (its subnet's),
    /// if it is drawn.
    fn beside(&self, instance: &Ref) -> Option<String> {
        let id = managed(instance)?.to_string();
        self.nodes
            .iter()
            .find(|n| n.kind == NodeKind::Instance && n.resources.contains(&id))
            .and_then(|n| n.parent.clone())
    }

    fn home_of(&self, r: &Resource) -> String {
        for reference in r.spec.references() {
            if let Some(id) = managed(reference) {
                if let Some(vpc) = self.vpc_box.get(&id) {
                    return vpc.clone();
                }
            }
        }
        region_id(r.region.as_str())
    }
}

/// What makes instances look alike in the drawing: one box stands for all
/// of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Likeness {
    subnet: String,
    image: String,
    instance_type: String,
    key_name: String,
    groups: Vec<String>,
}

/// A rule peer that is the whole Internet: 0.0.0.0/0 or ::/0.
pub(crate) fn from_anywhere<R>(peer: &Peer<R>) -> bool {
    match peer {
        Peer::Cidr(c) => *c == Ipv4Cidr::ANY,
        Peer::Ipv6Cidr(c) => c.prefix() == 0,
        _ => false,
    }
}

fn region_id(region: &str) -> String {
    format!("region:{region}")
}

/// `tcp 80`, `tcp 1024-2048`, `all traffic`, `icmp`.
pub(crate) fn ports<R>(rule: &Rule<R>) -> String {
    match rule.protocol {
        Protocol::All => "all traffic".into(),
        p if !p.has_ports() => p.ec2_name(),
        p if rule.from_port == rule.to_port => format!("{} {}", p.ec2_name(), rule.from_port),
        p => format!("{} {}-{}", p.ec2_name(), rule.from_port, rule.to_port),
    }
}

/// `tcp 80, 443` — one protocol named once, ports in numeric order.
fn port_summary(rules: &[&Rule<Ref>]) -> String {
    let mut by_protocol: BTreeMap<String, BTreeSet<(i32, i32)>> = BTreeMap::new();
    for rule in rules {
        let name = match rule.protocol {
            Protocol::All => "all traffic".to_string(),
            p => p.ec2_name(),
        };
        let ports = by_protocol.entry(name).or_default();
        if rule.protocol.has_ports() && rule.from_port >= 0 {
            ports.insert((rule.from_port, rule.to_port));
        }
    }
    let format_range = |(from, to): (i32, i32)| {
        if from == to {
            from.to_string()
        } else {
            format!("{from}-{to}")
        }
    };
    by_protocol
        .into_iter()
        .map(|(protocol, ports)| {
            if ports.is_empty() {
                protocol
            } else {
                let ports: Vec<String> = ports.into_iter().map(format_range).collect();
                format!("{protocol} {}", ports.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A collapsed box's name: the longest common prefix of its members' names
/// (without trailing separators), else the first member's name.
fn common_prefix_name(members: &[&Resource]) -> String {
    let names: Vec<String> = members.iter().map(|r| display_name(r)).collect();
    let first = &names[0];
    let mut end = first.len();
    for n in &names[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(n.chars())
                .take_while(|((_, a), b)| a == b)
                .last()
                .map_or(0, |((i, c), _)| i + c.len_utf8()),
        );
    }
    let prefix = first[..end].trim_end_matches(['-', '_', '.', '[', ' ']);
    if prefix.is_empty() {
        first.clone()
    } else {
        prefix.to_string()
    }
}
