//! Draws a composition as the network it declares — containment, not a flat
//! dependency graph: a region holds VPC boxes (with their CIDR), a VPC one
//! column per availability zone, a zone its subnets (public above private,
//! each with its route table's badge), a subnet its instances (with their
//! security groups as chips); the internet gateway sits on its VPC's top
//! edge with a line to the Internet; an endpoint or an egress-only gateway
//! sits in its VPC, a peering connection in its region with an edge between
//! the two VPCs it joins; edges are only for traffic.
//!
//! Pure and deterministic (no I/O, no clock, whole-pixel layout), so the
//! CLI (`canon graph`) and the node's web console draw the same picture, and
//! golden files can hold it.
//!
//! - [`topology`]: the graph — nodes with a parent and a kind, edges;
//! - [`overlay`]: drift and missing resources from the cloud, drawn over it;
//! - [`layout`]: nested boxes in pixels;
//! - [`svg`], [`dot`]: the drawings; JSON is the graph itself.

pub mod dot;
pub mod layout;
pub mod overlay;
pub mod svg;
pub mod topology;

pub use dot::to_dot;
pub use layout::{layout, Layout, Rect};
pub use overlay::{Overlay, Report};
pub use svg::to_svg;
pub use topology::{Edge, EdgeKind, Graph, Node, NodeKind, Status};

/// The graph as JSON: `{"nodes": [{id, kind, parent, label, …}], "edges":
/// [{from, to, kind, label, status}]}`.
pub fn to_json(graph: &Graph) -> serde_json::Value {
    // A graph of strings, numbers and enums always has a JSON form.
    serde_json::to_value(graph).unwrap_or(serde_json::Value::Null)
}
