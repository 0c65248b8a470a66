//! A fleet spreads across availability zones only if its subnets are in
//! distinct zones (issue #18 §1): this warns, once per fleet, at the
//! binding that declares it, when two of its subnets share a zone. It
//! reads the lowered resources, so it knows the zone of every subnet the
//! composition declares; a fleet's subnets declared elsewhere (external
//! ids) cannot be judged and are not warned about.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::Spec;

use crate::ast;
use crate::diag::{Diagnostic, Kind};
use crate::lower::CompiledResource;

/// The warnings for the fleets of `resources` declared by the root
/// module's `bindings` (a member's path starts with its binding's name).
pub(crate) fn warnings(
    resources: &[CompiledResource],
    bindings: &[&ast::Binding],
) -> Vec<Diagnostic> {
    let zone_of: BTreeMap<&str, &str> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::Subnet(s) => Some((r.path.as_str(), s.availability_zone.as_str())),
            _ => None,
        })
        .collect();
    // (binding, fleet) → the fleet's subnets.
    let mut fleets: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for r in resources {
        if let Spec::Instance(i) = &r.spec {
            if let Some(fm) = &i.fleet {
                let binding = r.path.split(['.', '[']).next().unwrap_or_default();
                fleets
                    .entry((binding, fm.fleet.as_str()))
                    .or_default()
                    .insert(i.subnet.as_str());
            }
        }
    }
    let mut out = Vec::new();
    for ((binding, fleet), subnets) in fleets {
        let Some(shared) = shared_zone(&subnets, &zone_of) else {
            continue;
        };
        let Some(b) = bindings.iter().find(|b| b.name == binding) else {
            continue;
        };
        let (zone, names) = shared;
        out.push(
            Diagnostic::new(
                Kind::FleetZones,
                b.name_span,
                format!(
                    "fleet {fleet}: subnets {} share {zone}, so losing that zone takes several members at once",
                    names.join(", ")
                ),
            )
            .with_label("subnets share a zone")
            .with_hint("give the fleet subnets in distinct availability zones"),
        );
    }
    out
}

/// The first zone two or more of `subnets` share, with their paths.
fn shared_zone<'a>(
    subnets: &BTreeSet<&'a str>,
    zone_of: &BTreeMap<&str, &'a str>,
) -> Option<(&'a str, Vec<&'a str>)> {
    let mut by_zone: BTreeMap<&'a str, Vec<&'a str>> = BTreeMap::new();
    for s in subnets {
        if let Some(z) = zone_of.get(s) {
            by_zone.entry(z).or_default().push(s);
        }
    }
    by_zone.into_iter().find(|(_, v)| v.len() > 1)
}
