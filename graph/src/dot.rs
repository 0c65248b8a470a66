//! The graph in Graphviz's DOT language, for people who lay out with `dot`:
//! containers become clusters, the rest nodes, traffic edges edges.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::topology::{EdgeKind, Graph, Node, Status};

/// The graph as a DOT document.
pub fn to_dot(graph: &Graph) -> String {
    let mut children: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
    for n in &graph.nodes {
        children.entry(n.parent.as_deref()).or_default().push(n);
    }
    let mut out = String::from(
        "digraph canon {\n  compound=true;\n  rankdir=TB;\n  node [shape=box, style=\"rounded\", fontname=\"Helvetica\"];\n",
    );
    for n in children.get(&None).into_iter().flatten() {
        write_node(&mut out, n, &children, 1);
    }
    for e in &graph.edges {
        let style = match e.status {
            Status::Ok => "",
            _ => ", color=red, style=dashed",
        };
        // A peering carries traffic both ways.
        let dir = match e.kind {
            EdgeKind::Peering => ", dir=none",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{dir}{style}];",
            quote(&e.from),
            quote(&e.to),
            quote(&e.label)
        );
    }
    out.push_str("}\n");
    out
}

fn write_node(
    out: &mut String,
    n: &Node,
    children: &BTreeMap<Option<&str>, Vec<&Node>>,
    depth: usize,
) {
    let indent = "  ".repeat(depth);
    let label = std::iter::once(n.label.as_str())
        .chain(n.detail.iter().map(String::as_str))
        .chain(n.badges.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    let style = match n.status {
        Status::Ok => "",
        Status::Drifted => ", color=red, style=\"rounded,dashed\"",
        Status::Missing => ", style=\"rounded,dotted\"",
    };
    match children.get(&Some(n.id.as_str())) {
        Some(kids) => {
            let _ = writeln!(
                out,
                "{indent}subgraph {} {{",
                quote(&format!("cluster_{}", n.id))
            );
            let _ = writeln!(out, "{indent}  label={}{style};", quote(&label));
            // An invisible point stands for the cluster in edges.
            let _ = writeln!(
                out,
                "{indent}  {} [shape=point, style=invis];",
                quote(&n.id)
            );
            for k in kids {
                write_node(out, k, children, depth + 1);
            }
            let _ = writeln!(out, "{indent}}}");
        }
        None => {
            let _ = writeln!(
                out,
                "{indent}{} [label={}{style}];",
                quote(&n.id),
                quote(&label)
            );
        }
    }
}

/// A DOT double-quoted string.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
