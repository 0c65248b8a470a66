//! The drawing as SVG, written directly: no external program, and the same
//! graph always gives the same bytes.
//!
//! Boxes are drawn parents first; a drifted box or edge is red and dashed, a
//! missing one hatched. Every box carries `data-id` and `data-kind`, so the
//! web console can find and update it.

use std::fmt::Write as _;

use crate::layout::{
    badge_rows, badge_w, fit, layout, Layout, Rect, BADGE_CHAR_W, BADGE_H, CHAR_W, LINE, PAD, TITLE,
};
use crate::topology::{Edge, EdgeKind, Graph, Node, NodeKind, Status};

const STYLE: &str = "
.box rect.frame{fill:#fff;stroke:#5b6b7b;stroke-width:1.2}
.region>rect.frame{fill:#f7f9fb;stroke:#8a99a8;stroke-dasharray:2 3}
.vpc>rect.frame{fill:#eef5ff;stroke:#2f6fb3;stroke-width:1.6}
.zone>rect.frame{fill:#f4f8fc;stroke:#a9bdd3;stroke-dasharray:4 3}
.subnet>rect.frame{fill:#e9f6ec;stroke:#3c8c52}
.subnet.private>rect.frame{fill:#f1f1f4;stroke:#6b6b80}
.instance>rect.frame{fill:#fff8e6;stroke:#b07d12}
.internet_gateway>rect.frame{fill:#e6f0ff;stroke:#1d4f91}
.internet>rect.frame{fill:#ffffff;stroke:#1d4f91;stroke-width:1.6}
.security_group>rect.frame{fill:#fff0f0;stroke:#a33b3b}
.drifted>rect.frame{stroke:#d11;stroke-width:2;stroke-dasharray:6 4}
.missing>rect.frame{fill:url(#hatch)}
text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#1f2a36}
text.title{font-weight:bold}
text.detail{fill:#46525e}
rect.badge{fill:#dde6ef;stroke:#8a99a8;stroke-width:.6}
text.badge{font-size:10px}
path.edge{fill:none;stroke:#1d4f91;stroke-width:1.4;marker-end:url(#arrow)}
path.edge.peering{stroke:#2f6fb3;stroke-dasharray:3 3;marker-end:none}
path.edge.drifted{stroke:#d11;stroke-dasharray:6 4}
text.edge{font-size:11px;fill:#1d4f91;paint-order:stroke;stroke:#fff;stroke-width:3px}
text.edge.drifted{fill:#d11}
";

/// The graph drawn as an SVG document.
pub fn to_svg(graph: &Graph) -> String {
    let layout = layout(graph);
    let mut out = String::new();
    let (w, h) = (layout.width, layout.height);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    out.push_str(
        "<defs><pattern id=\"hatch\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#fff\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#c9a3a3\" stroke-width=\"3\"/></pattern>\
         <marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#1d4f91\"/></marker></defs>\n",
    );
    let _ = writeln!(out, "<style>{STYLE}</style>");
    for n in &graph.nodes {
        if let Some(r) = layout.boxes.get(&n.id) {
            draw_box(&mut out, n, r);
        }
    }
    for e in &graph.edges {
        draw_edge(&mut out, e, &layout);
    }
    out.push_str("</svg>\n");
    out
}

fn kind_class(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Internet => "internet",
        NodeKind::Region => "region",
        NodeKind::Vpc => "vpc",
        NodeKind::Zone => "zone",
        NodeKind::Subnet => "subnet",
        NodeKind::Instance => "instance",
        NodeKind::InternetGateway => "internet_gateway",
        NodeKind::SecurityGroup => "security_group",
        NodeKind::RouteTable => "route_table",
        NodeKind::DhcpOptions => "dhcp_options",
        NodeKind::ElasticIp => "elastic_ip",
        NodeKind::NatGateway => "nat_gateway",
        NodeKind::NetworkAcl => "network_acl",
        NodeKind::Volume => "volume",
        NodeKind::EgressOnlyInternetGateway => "egress_only_internet_gateway",
        NodeKind::VpcEndpoint => "vpc_endpoint",
        NodeKind::VpcPeeringConnection => "vpc_peering_connection",
        NodeKind::Other => "other",
    }
}

fn status_class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Drifted => "drifted",
        Status::Missing => "missing",
    }
}

fn draw_box(out: &mut String, n: &Node, r: &Rect) {
    let mut classes = format!("box {} {}", kind_class(n.kind), status_class(n.status));
    if n.kind == NodeKind::Subnet && !n.public {
        classes.push_str(" private");
    }
    let _ = writeln!(
        out,
        "<g class=\"{classes}\" data-id=\"{}\" data-kind=\"{}\">",
        escape(&n.id),
        kind_class(n.kind)
    );
    // The whole text as a tooltip: lines in the box may be cut to fit.
    let full: Vec<&str> = std::iter::once(n.label.as_str())
        .chain(n.detail.iter().map(String::as_str))
        .collect();
    let _ = writeln!(out, "<title>{}</title>", escape(&full.join("\n")));
    let radius = if n.kind == NodeKind::Internet { 14 } else { 4 };
    let _ = writeln!(
        out,
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{radius}\"/>",
        r.x, r.y, r.w, r.h
    );
    let inner = r.w - 2 * PAD;
    let mut y = r.y + TITLE - 6;
    let _ = writeln!(
        out,
        "<text class=\"title\" x=\"{}\" y=\"{y}\">{}</text>",
        r.x + PAD,
        escape(&fit(&n.label, inner, CHAR_W))
    );
    for line in &n.detail {
        y += LINE;
        let _ = writeln!(
            out,
            "<text class=\"detail\" x=\"{}\" y=\"{y}\">{}</text>",
            r.x + PAD,
            escape(&fit(line, inner, CHAR_W))
        );
    }
    let (at, _) = badge_rows(&n.badges, inner);
    let badges_y = y + 6;
    for (b, (dx, dy)) in n.badges.iter().zip(at) {
        let (bx, by) = (r.x + PAD + dx, badges_y + dy);
        let bw = badge_w(b, inner);
        let _ = writeln!(
            out,
            "<rect class=\"badge\" x=\"{bx}\" y=\"{by}\" width=\"{bw}\" height=\"{BADGE_H}\" rx=\"3\"/>\
             <text class=\"badge\" x=\"{}\" y=\"{}\">{}</text>",
            bx + 5,
            by + 12,
            escape(&fit(b, bw - 10, BADGE_CHAR_W))
        );
    }
    out.push_str("</g>\n");
}

/// An edge from the bottom of one box to the top of the other (or the top
/// of one to the bottom of the other when the target is above; side to side
/// when they share rows), with its label at the middle.
fn draw_edge(out: &mut String, e: &Edge, layout: &Layout) {
    let (Some(a), Some(b)) = (layout.boxes.get(&e.from), layout.boxes.get(&e.to)) else {
        return;
    };
    let (x1, y1, x2, y2) = if b.y >= a.y + a.h {
        (a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y)
    } else if a.y >= b.y + b.h {
        (a.x + a.w / 2, a.y, b.x + b.w / 2, b.y + b.h)
    } else if b.x >= a.x + a.w / 2 {
        (a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2)
    } else {
        (a.x, a.y + a.h / 2, b.x + b.w, b.y + b.h / 2)
    };
    let mid_y = (y1 + y2) / 2;
    let class = format!("edge {} {}", edge_class(e.kind), status_class(e.status));
    let _ = writeln!(
        out,
        "<path class=\"{class}\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1},{y1} C{x1},{mid_y} {x2},{mid_y} {x2},{y2}\"/>",
        escape(&e.from),
        escape(&e.to)
    );
    if !e.label.is_empty() {
        let _ = writeln!(
            out,
            "<text class=\"{class}\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (x1 + x2) / 2,
            mid_y - 4,
            escape(&e.label)
        );
    }
}

fn edge_class(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::InternetIngress => "internet_ingress",
        EdgeKind::GroupPeer => "group_peer",
        EdgeKind::Gateway => "gateway",
        EdgeKind::Peering => "peering",
    }
}

/// Text and attribute values with XML's five special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
