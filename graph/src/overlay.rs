//! What the cloud says about a process, laid over its declaration: drifted
//! resources red and dashed (with what differs), missing ones hatched, and
//! traffic the cloud allows that nobody declared as red edges.
//! [`Overlay::from_cloud`] makes one from what a node reports of a process
//! (its resources' cloud copies and its open drift), so the CLI and the web
//! console draw the same picture.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{DesiredState, LogicalId, ObservedResource, Protocol, Spec};
use canon_proto::canon::api::v1 as pb;

use crate::topology::{from_anywhere, ports, Edge, EdgeKind, Graph, Status, INTERNET};

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

impl Overlay {
    /// The findings about `desired` given each declared resource's cloud
    /// copy (`observed`, by logical id; a declared resource without one is
    /// missing) and the process's open drift (`(resource, what differs)`).
    /// A group's ingress from 0.0.0.0/0 or ::/0 that the declaration does
    /// not have is an Internet edge, even before a tick records it.
    pub fn from_cloud(
        desired: &DesiredState,
        observed: &BTreeMap<LogicalId, ObservedResource>,
        open_drift: impl IntoIterator<Item = (LogicalId, String)>,
    ) -> Overlay {
        let mut overlay = Overlay::default();
        for (id, resource) in &desired.resources {
            let Some(seen) = observed.get(id) else {
                overlay.missing.insert(*id);
                continue;
            };
            let (Spec::SecurityGroup(declared), Spec::SecurityGroup(cloud)) =
                (&resource.spec, &seen.spec)
            else {
                continue;
            };
            let declared_open: BTreeSet<(Protocol, i32, i32)> = declared
                .ingress
                .iter()
                .filter(|r| from_anywhere(&r.peer))
                .map(|r| (r.protocol, r.from_port, r.to_port))
                .collect();
            let undeclared: BTreeSet<String> = cloud
                .ingress
                .iter()
                .filter(|r| from_anywhere(&r.peer))
                .filter(|r| !declared_open.contains(&(r.protocol, r.from_port, r.to_port)))
                .map(ports)
                .collect();
            if !undeclared.is_empty() {
                overlay
                    .open_to_internet
                    .insert(*id, undeclared.into_iter().collect());
            }
        }
        for (id, line) in open_drift {
            overlay.drifted.entry(id).or_default().push(line);
        }
        overlay
    }
}

/// What a node reports of a process, as its Status and History replies
/// carry it: each resource's cloud copy as JSON (empty: the cloud lacks
/// it) and each drift record. Both readers of those replies (the CLI's
/// `canon graph` and the web console) draw from it alike.
#[derive(Debug, Clone, Default)]
pub struct Report<'a> {
    /// `(logical id, observed JSON)` per resource.
    pub observed: Vec<(&'a str, &'a str)>,
    /// `(logical id, property, declared, observed, healed)` per record.
    pub drift: Vec<(&'a str, &'a str, &'a str, &'a str, bool)>,
    /// Why the cloud could not be observed, if it could not: then nothing
    /// is called missing, and only recorded drift is drawn.
    pub observe_error: &'a str,
}

impl<'a> Report<'a> {
    /// What a Status and a History reply about one process say.
    pub fn from_replies(status: &'a pb::StatusReply, history: &'a pb::HistoryReply) -> Report<'a> {
        Report {
            observed: status
                .resources
                .iter()
                .map(|r| (r.logical_id.as_str(), r.observed_json.as_str()))
                .collect(),
            drift: history
                .drift
                .iter()
                .map(|d| {
                    let healed = d.healed_ms != 0;
                    let (id, property) = (d.logical_id.as_str(), d.property.as_str());
                    (
                        id,
                        property,
                        d.declared.as_str(),
                        d.observed.as_str(),
                        healed,
                    )
                })
                .collect(),
            observe_error: &status.observe_error,
        }
    }
}

impl Overlay {
    /// The overlay of `report` on `desired`. Entries that do not read (an
    /// id or a cloud copy from a newer node) are left out.
    pub fn from_report(desired: &DesiredState, report: &Report<'_>) -> Overlay {
        let drift: Vec<(LogicalId, String)> = report
            .drift
            .iter()
            .filter(|(.., healed)| !healed)
            .filter_map(|(id, property, declared, observed, _)| {
                let id = id.parse::<LogicalId>().ok()?;
                let line = format!(
                    "{property}: declared {} observed {}",
                    or_none(declared),
                    or_none(observed)
                );
                Some((id, line))
            })
            .collect();
        if !report.observe_error.is_empty() {
            let mut overlay = Overlay::default();
            for (id, line) in drift {
                overlay.drifted.entry(id).or_default().push(line);
            }
            return overlay;
        }
        let observed: BTreeMap<LogicalId, ObservedResource> = report
            .observed
            .iter()
            .filter(|(_, json)| !json.is_empty())
            .filter_map(|(id, json)| {
                let id = id.parse::<LogicalId>().ok()?;
                Some((id, serde_json::from_str(json).ok()?))
            })
            .collect();
        Overlay::from_cloud(desired, &observed, drift)
    }
}

fn or_none(text: &str) -> &str {
    if text.is_empty() {
        "(none)"
    } else {
        text
    }
}

impl Graph {
    /// A process drawn from a node's Status and History replies about it
    /// (`canon graph ALIAS`, the web console): its declaration
    /// (`desired_json`) with what the cloud shows laid over it.
    pub fn from_replies(
        status: &pb::StatusReply,
        history: &pb::HistoryReply,
    ) -> Result<Graph, String> {
        if status.desired_json.is_empty() {
            return Err(
                "the node did not say what the process declares (a node older than this one?)"
                    .into(),
            );
        }
        let desired: DesiredState = serde_json::from_str(&status.desired_json)
            .map_err(|e| format!("the node's declaration of the process does not read: {e}"))?;
        let overlay = Overlay::from_report(&desired, &Report::from_replies(status, history));
        Ok(Graph::from_desired(&desired).with_overlay(&overlay))
    }

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
        for e in &mut self.edges {
            let Some(id) = e
                .resource
                .as_ref()
                .and_then(|r| r.parse::<LogicalId>().ok())
            else {
                continue;
            };
            if overlay.missing.contains(&id) {
                e.status = e.status.max(Status::Missing);
            }
            if overlay.drifted.contains_key(&id) {
                e.status = e.status.max(Status::Drifted);
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
                    resource: None,
                });
            }
        }
        self
    }
}
