//! Route tables: bound to their VPC; routes and subnet associations change
//! in place, one request each. A route through a NAT gateway that is not
//! ready yet waits for it (`Plan::waiting`).

use std::collections::BTreeMap;

use serde_json::json;

use super::associations::{self, Associate};
use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, STEP_CREATE, STEP_DELETE, STEP_DETACH, STEP_LINK, STEP_UNLINK,
};
use crate::{Action, CloudRef, IpCidr, Mutability, Ref, Resource, RouteTableSpec, Tags};

/// The properties of a route table and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("routes", Mutability::Mutable),
    ("associations", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

/// A route's destination, in the parameter of its family.
fn put_destination(p: &mut Params, destination: &IpCidr) {
    let key = match destination {
        IpCidr::V4(_) => "DestinationCidrBlock",
        IpCidr::V6(_) => "DestinationIpv6CidrBlock",
    };
    p.put(key, json!(destination.to_string()));
}

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateRouteTable { vpc, tags } => {
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::CreateRoute {
            route_table,
            destination,
            gateway,
            hop,
        }
        | Action::ReplaceRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => {
            put_destination(p, destination);
            p.put(hop.param(), gateway.to_json());
            p.put("RouteTableId", route_table.to_json());
        }
        Action::DeleteRoute {
            route_table,
            destination,
        } => {
            put_destination(p, destination);
            p.put("RouteTableId", route_table.to_json());
        }
        Action::AssociateRouteTable {
            route_table,
            subnet,
        } => {
            p.put("RouteTableId", route_table.to_json());
            p.put("SubnetId", subnet.to_json());
        }
        Action::DisassociateRouteTable { association_id } => {
            p.put("AssociationId", json!(association_id))
        }
        Action::DeleteRouteTable { route_table } => p.put("RouteTableId", route_table.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &RouteTableSpec<Ref>, tags: Tags) {
    let me = CloudRef::Pending(d.id);
    let vpc = draft.cref(&s.vpc);
    draft.apply(d, STEP_CREATE, None, Action::CreateRouteTable { vpc, tags });
    for route in &s.routes {
        if let Some(on) = draft.not_ready(&route.target) {
            draft.wait(d, format!("routes.{}", route.destination), on);
            continue;
        }
        let action = Action::CreateRoute {
            route_table: me.clone(),
            destination: route.destination,
            gateway: draft.cref(&route.target),
            hop: draft.hop(&route.target),
        };
        draft.apply(d, STEP_LINK, Some("routes"), action);
    }
    associations::create(draft, d, &s.associations, &Tables);
}

/// How a route table takes subnets, and lets them go (by the association
/// ids the cloud shows).
struct Tables;

impl Associate for Tables {
    fn take(&self, route_table: CloudRef, subnet: CloudRef) -> Action {
        Action::AssociateRouteTable {
            route_table,
            subnet,
        }
    }

    fn release(&self, _: &Draft<'_>, k: &Kept<'_>, subnet: &str, _: &Ref) -> Option<Action> {
        let association_id = k.o.association_ids.get(subnet)?.clone();
        Some(Action::DisassociateRouteTable { association_id })
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &RouteTableSpec<Ref>,
    have: &RouteTableSpec<Ref>,
    raw: &RouteTableSpec<String>,
) {
    update_routes(draft, k, want, have);
    let sets = (&want.associations, &have.associations, &raw.associations);
    associations::update(draft, k, sets, &Tables);
}

/// Deletes routes no longer declared, replaces those whose target
/// changed, creates the new ones (those through a target that is not
/// ready wait, and are not differences yet).
fn update_routes(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &RouteTableSpec<Ref>,
    have: &RouteTableSpec<Ref>,
) {
    let want_routes: BTreeMap<_, _> = want
        .routes
        .iter()
        .map(|r| (r.destination, &r.target))
        .collect();
    let have_routes: BTreeMap<_, _> = have
        .routes
        .iter()
        .map(|r| (r.destination, &r.target))
        .collect();
    for (dest, target) in &have_routes {
        if !want_routes.contains_key(dest) {
            let observed = Some(draft.shown(target));
            draft.drift(k, format!("routes.{dest}"), None, observed);
            let action = Action::DeleteRoute {
                route_table: k.me.clone(),
                destination: *dest,
            };
            draft.apply(k.d, STEP_UNLINK, Some("routes"), action);
        }
    }
    for (dest, target) in &want_routes {
        let old = have_routes.get(dest);
        if old == Some(target) || have.interfaces.get(dest) == Some(*target) {
            continue;
        }
        if let Some(on) = draft.not_ready(target) {
            draft.wait(k.d, format!("routes.{dest}"), on);
            continue;
        }
        let gateway = draft.cref(target);
        let hop = draft.hop(target);
        let (declared, observed) = (draft.shown(target), old.map(|h| draft.shown(h)));
        draft.drift(k, format!("routes.{dest}"), Some(declared), observed);
        let (route_table, destination) = (k.me.clone(), *dest);
        let action = if old.is_some() {
            Action::ReplaceRoute {
                route_table,
                destination,
                gateway,
                hop,
            }
        } else {
            Action::CreateRoute {
                route_table,
                destination,
                gateway,
                hop,
            }
        };
        draft.apply(k.d, STEP_LINK, Some("routes"), action);
    }
}

/// Disassociates every subnet, then deletes the table.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    for association_id in g.o.association_ids.values() {
        let action = Action::DisassociateRouteTable {
            association_id: association_id.clone(),
        };
        draft.delete(g, STEP_DETACH, Some("associations"), action);
    }
    let action = Action::DeleteRouteTable {
        route_table: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &RouteTableSpec<Ref>,
    h: &RouteTableSpec<String>,
) -> bool {
    w.routes.len() == h.routes.len()
        && h.routes.iter().all(|r| {
            let interface = h.interfaces.get(&r.destination);
            w.routes.iter().any(|x| {
                x.destination == r.destination
                    && (draft.ref_eq(&x.target, &r.target)
                        || interface.is_some_and(|i| draft.ref_eq(&x.target, i)))
            })
        })
        && associations::unchanged(draft, &w.associations, &h.associations)
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &RouteTableSpec<Ref>,
    h: &RouteTableSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc)
}

pub(super) fn replace_differences(
    w: &RouteTableSpec<Ref>,
    h: &RouteTableSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
}
