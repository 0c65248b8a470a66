//! Subnets: their VPC, range and zone are fixed; whether instances get a
//! public address changes in place.

use serde_json::json;

use super::{Changes, Params};
use crate::draft::{Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE};
use crate::{Action, CloudRef, Mutability, Ref, Resource, SubnetSpec, Tags};

/// The properties of a subnet and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("cidrBlock", Mutability::Replace),
    ("availabilityZone", Mutability::Replace),
    ("mapPublicIpOnLaunch", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            tags,
        } => {
            p.put("AvailabilityZone", json!(availability_zone));
            p.put("CidrBlock", json!(cidr_block.to_string()));
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::ModifySubnetAttribute {
            subnet,
            map_public_ip_on_launch,
        } => {
            p.put(
                "MapPublicIpOnLaunch",
                json!({ "Value": map_public_ip_on_launch }),
            );
            p.put("SubnetId", subnet.to_json());
        }
        Action::DeleteSubnet { subnet } => p.put("SubnetId", subnet.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &SubnetSpec<Ref>, tags: Tags) {
    let action = Action::CreateSubnet {
        vpc: draft.cref(&s.vpc),
        cidr_block: s.cidr_block,
        availability_zone: s.availability_zone.clone(),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    if s.map_public_ip_on_launch {
        let action = Action::ModifySubnetAttribute {
            subnet: CloudRef::Pending(d.id),
            map_public_ip_on_launch: true,
        };
        draft.apply(d, STEP_ATTRIBUTES, Some("attributes"), action);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &SubnetSpec<Ref>,
    have: &SubnetSpec<Ref>,
) {
    if have.map_public_ip_on_launch == want.map_public_ip_on_launch {
        return;
    }
    draft.drift_value(
        k,
        "mapPublicIpOnLaunch",
        &want.map_public_ip_on_launch,
        &have.map_public_ip_on_launch,
    );
    let action = Action::ModifySubnetAttribute {
        subnet: k.me.clone(),
        map_public_ip_on_launch: want.map_public_ip_on_launch,
    };
    draft.apply(k.d, STEP_ATTRIBUTES, Some("attributes"), action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteSubnet {
        subnet: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(w: &SubnetSpec<Ref>, h: &SubnetSpec<String>) -> bool {
    w.map_public_ip_on_launch == h.map_public_ip_on_launch
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &SubnetSpec<Ref>,
    h: &SubnetSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc)
        || w.cidr_block != h.cidr_block
        || w.availability_zone != h.availability_zone
}

pub(super) fn replace_differences(w: &SubnetSpec<Ref>, h: &SubnetSpec<Ref>, out: &mut Changes) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
    out.compare(
        "cidrBlock",
        w.cidr_block.to_string(),
        h.cidr_block.to_string(),
    );
    out.compare(
        "availabilityZone",
        w.availability_zone.clone(),
        h.availability_zone.clone(),
    );
}

/// A new subnet cannot be created while an old one in the same VPC
/// overlaps its range.
pub(super) fn conflicts(
    draft: &Draft<'_>,
    new: &SubnetSpec<Ref>,
    old: &SubnetSpec<String>,
) -> bool {
    draft.physical(&new.vpc) == Some(old.vpc.as_str()) && new.cidr_block.overlaps(old.cidr_block)
}
