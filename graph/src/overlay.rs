//! What the cloud says about a process, laid over its declaration: drifted
//! resources red and dashed (with what differs), missing ones hatched, and
//! traffic the cloud allows that nobody declared as red edges.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::LogicalId;

use crate::topology::{Edge, EdgeKind, Graph, Status, INTERNET};

/// Findings about a process's resources, from its drift records and
/// bindings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Resources whose cloud copy differs, with one line per difference
    /// (`ingress: declared … observed …`).
    pub drifted: BTreeMap<LogicalId, Vec<String>>,
    /// Declared resources with no cloud resource.
    pub missing: BTreeSet<LogicalId>,
    /// Security groups admitting traffic from the Internet that the
    /// declaration does not (`tcp 22`), drawn as red Internet edges.
    pub open_to_internet: BTreeMap<LogicalId, Vec<String>>,
}

impl Graph {
    /// The graph with `overlay` drawn on it. A box standing for several
    /// resources takes the worst status among them.
    pub fn with_overlay(mut self, overlay: &Overlay) -> Graph {
        for n in &mut self.nodes {
            for r in &n.resources {
                let Ok(id) = r.parse::<LogicalId>() else {
                    continue;
                };
                if overlay.missing.contains(&id) {
                    n.status = n.status.max(Status::Missing);
                }
                if let Some(lines) = overlay.drifted.get(&id) {
                    n.status = n.status.max(Status::Drifted);
                    n.detail.extend(lines.iter().map(|l| format!("drift: {l}")));
                }
            }
        }
        for (group, ports) in &overlay.open_to_internet {
            let to = format!("sg:{group}");
            if self.node(&to).is_some() {
                self.edges.push(Edge {
                    from: INTERNET.into(),
                    to,
                    kind: EdgeKind::InternetIngress,
                    label: ports.join(", "),
                    status: Status::Drifted,
                });
            }
        }
        self
    }
}
