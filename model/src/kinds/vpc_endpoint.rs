//! Gateway VPC endpoints (S3 and DynamoDB): bound to their VPC and their
//! service (new ones are a new endpoint); the route tables that send the
//! service's traffic through it change in place, all in one
//! `ModifyVpcEndpoint` (tables added and removed), and so do its tags. The
//! prefix-list routes EC2 adds to those tables belong to the endpoint:
//! the route tables' observation leaves them out.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{Changes, Params};
use crate::draft::{Draft, Going, Kept, STEP_ASSOCIATE, STEP_CREATE, STEP_DELETE};
use crate::{Action, CloudRef, Mutability, Ref, Region, Resource, Tags, VpcEndpointSpec};

/// The properties of a gateway endpoint and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("service", Mutability::Replace),
    ("routeTables", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

fn ids<'a>(refs: impl Iterator<Item = &'a CloudRef>) -> Value {
    Value::Array(refs.map(CloudRef::to_json).collect())
}

/// The parameters of an endpoint action of a request in `region`.
pub(super) fn params(action: &Action, region: &Region, p: &mut Params) {
    match action {
        Action::CreateVpcEndpoint {
            vpc,
            service,
            route_tables,
            tags,
        } => {
            p.put("RouteTableIds", ids(route_tables.iter()));
            p.put("ServiceName", json!(service.service_name(region)));
            p.put("VpcEndpointType", json!("Gateway"));
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
        } => {
            if !add_route_tables.is_empty() {
                p.put("AddRouteTableIds", ids(add_route_tables.iter()));
            }
            if !remove_route_tables.is_empty() {
                p.put("RemoveRouteTableIds", json!(remove_route_tables));
            }
            p.put("VpcEndpointId", vpc_endpoint.to_json());
        }
        Action::DeleteVpcEndpoint { vpc_endpoint } => {
            p.put("VpcEndpointIds", json!([vpc_endpoint.to_json()]));
        }
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &VpcEndpointSpec<Ref>, tags: Tags) {
    let action = Action::CreateVpcEndpoint {
        vpc: draft.cref(&s.vpc),
        service: s.service,
        route_tables: s.route_tables.iter().map(|r| draft.cref(r)).collect(),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
}

/// Adds the declared route tables the endpoint lacks and removes those it
/// has but no longer declares, in one request.
pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VpcEndpointSpec<Ref>,
    raw: &VpcEndpointSpec<String>,
) {
    let mut remove = BTreeSet::new();
    let mut have = BTreeSet::new();
    for table in &raw.route_tables {
        let declared = draft.translate_id(table);
        if want.route_tables.contains(&declared) {
            have.insert(declared);
        } else {
            draft.drift(k, "routeTables", None, Some(table.clone()));
            // A table deleted first leaves the endpoint by itself.
            if !draft.early.contains(table.as_str()) {
                remove.insert(table.clone());
            }
        }
    }
    let mut add = BTreeSet::new();
    for table in want.route_tables.difference(&have) {
        let shown = Some(draft.shown(table));
        draft.drift(k, "routeTables", shown, None);
        add.insert(draft.cref(table));
    }
    if add.is_empty() && remove.is_empty() {
        return;
    }
    let action = Action::ModifyVpcEndpoint {
        vpc_endpoint: k.me.clone(),
        add_route_tables: add,
        remove_route_tables: remove,
    };
    draft.apply(k.d, STEP_ASSOCIATE, Some("routeTables"), action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteVpcEndpoint {
        vpc_endpoint: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<String>,
) -> bool {
    w.route_tables.len() == h.route_tables.len()
        && h.route_tables
            .iter()
            .all(|t| w.route_tables.iter().any(|r| draft.ref_eq(r, t)))
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc) || w.service != h.service
}

pub(super) fn replace_differences(
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
    out.compare("service", w.service.to_string(), h.service.to_string());
}
