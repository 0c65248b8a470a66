//! VPC endpoints, gateway (S3 and DynamoDB) and interface (network
//! interfaces in subnets): bound to their VPC, their type and their
//! service (new ones are a new endpoint). Everything else changes in
//! place in one `ModifyVpcEndpoint`, so that a pass heals any mix of
//! drift with one call: route tables, subnets and security groups added
//! and removed, private DNS turned on or off, the policy set or reset to
//! EC2's default, and (as for every kind) the tags. The policy is
//! compared as parsed JSON (`endpoint_policy`), since EC2 gives it back
//! reformatted. The prefix-list routes EC2 adds to a gateway's tables
//! belong to the endpoint: the route tables' observation leaves them out.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{Changes, Params};
use crate::draft::{Draft, Going, Kept, STEP_ASSOCIATE, STEP_CREATE, STEP_DELETE};
use crate::sorted_vec::SortedVecSet;
use crate::{
    endpoint_policy, Action, CloudRef, EndpointType, Mutability, Ref, Region, Resource, Tags,
    VpcEndpointSpec,
};

/// The properties of an endpoint and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("service", Mutability::Replace),
    ("type", Mutability::Replace),
    ("routeTables", Mutability::Mutable),
    ("subnets", Mutability::Mutable),
    ("securityGroups", Mutability::Mutable),
    ("privateDns", Mutability::Mutable),
    ("policy", Mutability::Mutable),
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
            endpoint_type,
            route_tables,
            subnets,
            security_groups,
            private_dns,
            policy,
            tags,
        } => {
            if let Some(policy) = policy {
                p.put("PolicyDocument", json!(policy));
            }
            if *endpoint_type == EndpointType::Interface {
                p.put("PrivateDnsEnabled", json!(private_dns));
                p.put("SecurityGroupIds", ids(security_groups.iter()));
                p.put("SubnetIds", ids(subnets.iter()));
            } else {
                p.put("RouteTableIds", ids(route_tables.iter()));
            }
            p.put("ServiceName", json!(service.service_name(region)));
            p.put("VpcEndpointType", json!(endpoint_type.as_str()));
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
            add_subnets,
            remove_subnets,
            add_security_groups,
            remove_security_groups,
            private_dns,
            policy,
            reset_policy,
        } => {
            let mut put_refs = |key: &str, set: &BTreeSet<CloudRef>| {
                if !set.is_empty() {
                    p.put(key, ids(set.iter()));
                }
            };
            put_refs("AddRouteTableIds", add_route_tables);
            put_refs("AddSubnetIds", add_subnets);
            put_refs("AddSecurityGroupIds", add_security_groups);
            let mut put_ids = |key: &str, set: &BTreeSet<String>| {
                if !set.is_empty() {
                    p.put(key, json!(set));
                }
            };
            put_ids("RemoveRouteTableIds", remove_route_tables);
            put_ids("RemoveSubnetIds", remove_subnets);
            put_ids("RemoveSecurityGroupIds", remove_security_groups);
            if let Some(on) = private_dns {
                p.put("PrivateDnsEnabled", json!(on));
            }
            if let Some(policy) = policy {
                p.put("PolicyDocument", json!(policy));
            }
            if *reset_policy {
                p.put("ResetPolicy", json!(true));
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
    let crefs = |set: &SortedVecSet<Ref>| set.iter().map(|r| draft.cref(r)).collect();
    let action = Action::CreateVpcEndpoint {
        vpc: draft.cref(&s.vpc),
        service: s.service,
        endpoint_type: s.endpoint_type,
        route_tables: crefs(&s.route_tables),
        subnets: crefs(&s.subnets),
        security_groups: crefs(&s.security_groups),
        private_dns: s.private_dns,
        policy: s.policy.as_deref().map(endpoint_policy::canonical),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
}

/// What one set of references (tables, subnets, groups) lacks and has
/// too many of.
#[derive(Default)]
struct SetChange {
    add: BTreeSet<CloudRef>,
    remove: BTreeSet<String>,
}

impl SetChange {
    fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The members of `property` to add and remove, each reported as drift.
fn set_change(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    property: &str,
    want: &SortedVecSet<Ref>,
    raw: &SortedVecSet<String>,
) -> SetChange {
    let mut change = SetChange::default();
    let mut have = SortedVecSet::new();
    for member in raw {
        let declared = draft.translate_id(member);
        if want.contains(&declared) {
            have.insert(declared);
        } else {
            draft.drift(k, property, None, Some(member.clone()));
            // A table deleted first leaves the endpoint by itself.
            if !draft.early.contains(member.as_str()) {
                change.remove.insert(member.clone());
            }
        }
    }
    for member in want.difference(&have) {
        let shown = Some(draft.shown(member));
        draft.drift(k, property, shown, None);
        change.add.insert(draft.cref(member));
    }
    change
}

/// Brings the endpoint to its declaration in one request: the route
/// tables, subnets and groups it lacks added and those it no longer
/// declares removed, private DNS and the policy set.
pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VpcEndpointSpec<Ref>,
    raw: &VpcEndpointSpec<String>,
) {
    let tables = set_change(
        draft,
        k,
        "routeTables",
        &want.route_tables,
        &raw.route_tables,
    );
    let subnets = set_change(draft, k, "subnets", &want.subnets, &raw.subnets);
    let groups = if default_groups(want) {
        SetChange {
            add: BTreeSet::new(),
            remove: leaving_groups(draft, raw),
        }
    } else {
        set_change(
            draft,
            k,
            "securityGroups",
            &want.security_groups,
            &raw.security_groups,
        )
    };
    let mut private_dns = None;
    if want.endpoint_type == EndpointType::Interface && want.private_dns != raw.private_dns {
        let (w, h) = (want.private_dns.to_string(), raw.private_dns.to_string());
        draft.drift(k, "privateDns", Some(w), Some(h));
        private_dns = Some(want.private_dns);
    }
    let (mut policy, mut reset_policy) = (None, false);
    if !endpoint_policy::same(want.policy.as_deref(), raw.policy.as_deref()) {
        draft.drift(k, "policy", want.policy.clone(), raw.policy.clone());
        match &want.policy {
            Some(p) => policy = Some(endpoint_policy::canonical(p)),
            None => reset_policy = true,
        }
    }
    let changed = [
        ("routeTables", !tables.is_empty()),
        ("subnets", !subnets.is_empty()),
        ("securityGroups", !groups.is_empty()),
        ("privateDns", private_dns.is_some()),
        ("policy", policy.is_some() || reset_policy),
    ];
    let Some((part, _)) = changed.into_iter().find(|(_, c)| *c) else {
        return;
    };
    let action = Action::ModifyVpcEndpoint {
        vpc_endpoint: k.me.clone(),
        add_route_tables: tables.add,
        remove_route_tables: tables.remove,
        add_subnets: subnets.add,
        remove_subnets: subnets.remove,
        add_security_groups: groups.add,
        remove_security_groups: groups.remove,
        private_dns,
        policy,
        reset_policy,
    };
    draft.apply(k.d, STEP_ASSOCIATE, Some(part), action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteVpcEndpoint {
        vpc_endpoint: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

/// Whether the endpoint declares no groups: EC2 then guards an interface
/// endpoint with its VPC's default group, which is left to EC2.
fn default_groups(w: &VpcEndpointSpec<Ref>) -> bool {
    w.security_groups.is_empty()
}

/// The groups of an endpoint that declares none which must leave it all
/// the same: those this plan deletes late (EC2 refuses to delete a group
/// an endpoint uses; one deleted early leaves by itself). The rest, EC2's
/// choice, stay.
fn leaving_groups(draft: &Draft<'_>, raw: &VpcEndpointSpec<String>) -> BTreeSet<String> {
    raw.security_groups
        .iter()
        .filter(|g| draft.doomed_ids.contains(g.as_str()) && !draft.early.contains(g.as_str()))
        .cloned()
        .collect()
}

fn same_set(draft: &Draft<'_>, w: &SortedVecSet<Ref>, h: &SortedVecSet<String>) -> bool {
    w.len() == h.len() && h.iter().all(|t| w.iter().any(|r| draft.ref_eq(r, t)))
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<String>,
) -> bool {
    same_set(draft, &w.route_tables, &h.route_tables)
        && same_set(draft, &w.subnets, &h.subnets)
        && if default_groups(w) {
            leaving_groups(draft, h).is_empty()
        } else {
            same_set(draft, &w.security_groups, &h.security_groups)
        }
        && (w.endpoint_type == EndpointType::Gateway || w.private_dns == h.private_dns)
        && endpoint_policy::same(w.policy.as_deref(), h.policy.as_deref())
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc) || w.service != h.service || w.endpoint_type != h.endpoint_type
}

pub(super) fn replace_differences(
    w: &VpcEndpointSpec<Ref>,
    h: &VpcEndpointSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
    out.compare("service", w.service.to_string(), h.service.to_string());
    out.compare(
        "type",
        w.endpoint_type.to_string(),
        h.endpoint_type.to_string(),
    );
}
