//! Subnets: their VPC, range and zone are fixed; whether instances get a
//! public address, and which IPv6 `/64` of their VPC's `/56` they hold,
//! change in place.
//!
//! A subnet declares its `/64` by number (`ipv6_index`), since the VPC's
//! `/56` is EC2's choice and known only once the VPC has it. The block is
//! computed here from the VPC's observed `/56`; while that is not known
//! (the VPC or its `/56` is new in this plan) the subnet is made without
//! it and its `/64` waits for a later pass (`Draft::wait`).

use serde_json::json;

use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_LINK, STEP_UNLINK,
};
use crate::{
    Action, CloudRef, Ipv6Cidr, LogicalId, Mutability, ObservedResource, Ref, Resource, Spec,
    SubnetSpec, Tags, IPV6_ASSOCIATION,
};

/// The properties of a subnet and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("cidrBlock", Mutability::Replace),
    ("availabilityZone", Mutability::Replace),
    ("mapPublicIpOnLaunch", Mutability::Mutable),
    // AssociateSubnetCidrBlock / DisassociateSubnetCidrBlock.
    ("ipv6Index", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            ipv6_cidr_block,
            tags,
        } => {
            p.put("AvailabilityZone", json!(availability_zone));
            p.put("CidrBlock", json!(cidr_block.to_string()));
            if let Some(b) = ipv6_cidr_block {
                p.put("Ipv6CidrBlock", json!(b.to_string()));
            }
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
        Action::AssociateSubnetCidrBlock {
            subnet,
            ipv6_cidr_block,
        } => {
            p.put("Ipv6CidrBlock", json!(ipv6_cidr_block.to_string()));
            p.put("SubnetId", subnet.to_json());
        }
        Action::DisassociateSubnetCidrBlock { association_id } => {
            p.put("AssociationId", json!(association_id));
        }
        Action::DeleteSubnet { subnet } => p.put("SubnetId", subnet.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &SubnetSpec<Ref>, tags: Tags) {
    let ipv6_cidr_block = match s.ipv6_index {
        Some(i) => match declared_block(draft, &s.vpc, i) {
            None => {
                wait_for_vpc(draft, d, &s.vpc);
                None
            }
            Some(block) => match holder_of(draft, block, d.id) {
                // Another subnet gives it back in this plan: take it in
                // the next.
                Some(holder) => {
                    draft.wait(d, "ipv6CidrBlock".into(), holder);
                    None
                }
                None => Some(block),
            },
        },
        None => None,
    };
    let action = Action::CreateSubnet {
        vpc: draft.cref(&s.vpc),
        cidr_block: s.cidr_block,
        availability_zone: s.availability_zone.clone(),
        ipv6_cidr_block,
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
    raw: &SubnetSpec<String>,
) {
    ipv6(draft, k, want, raw);
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

/// The `/64` number `index` of the `/56` the cloud shows the (kept) VPC
/// `vpc` holding, if it is known.
fn declared_block(draft: &Draft<'_>, vpc: &Ref, index: u8) -> Option<Ipv6Cidr> {
    vpc_block(draft, draft.physical(vpc)?)?.subnet64(index)
}

/// The `/56` the cloud shows the VPC `vpc` (a cloud id) holding.
fn vpc_block(draft: &Draft<'_>, vpc: &str) -> Option<Ipv6Cidr> {
    match &draft.observed(vpc)?.spec {
        Spec::Vpc(v) => v.ipv6_cidr_block,
        _ => None,
    }
}

/// Which `/64` of its VPC's `/56` the observed subnet `raw` holds: `None`
/// without one, `Some(None)` for a block that is not one of them.
fn observed_index(draft: &Draft<'_>, raw: &SubnetSpec<String>) -> Option<Option<u8>> {
    let block = raw.ipv6_cidr_block?;
    Some(vpc_block(draft, &raw.vpc).and_then(|vpc| block.index_in(vpc)))
}

/// The subnet other than `me` that holds `block` now and still will when
/// this plan takes it (EC2 refuses a `/64` another subnet holds:
/// `InvalidSubnet.Conflict`): a kept one giving it back in this plan, or
/// one this plan deletes late. One deleted early (`conflicts`) has let go
/// of it by then.
fn holder_of(draft: &Draft<'_>, block: Ipv6Cidr, me: LogicalId) -> Option<LogicalId> {
    let holds = |o: &ObservedResource| {
        !draft.early.contains(o.cloud_id.as_str())
            && matches!(&o.spec, Spec::Subnet(s) if s.ipv6_cidr_block == Some(block))
    };
    let kept = draft.matched.iter().map(|(l, o)| (*l, *o));
    let going = draft.orphans.iter().map(|(l, o)| (*l, *o));
    kept.chain(going)
        .find(|(l, o)| *l != me && holds(o))
        .map(|(l, _)| l)
}

/// Leaves `d`'s `/64` for a later pass, when its VPC (declared with IPv6)
/// shows its `/56`. A VPC declared without IPv6 (which the language
/// refuses) or one Canon does not manage gives nothing to wait for.
fn wait_for_vpc(draft: &mut Draft<'_>, d: &Resource, vpc: &Ref) {
    let Ref::Managed(l) = vpc else {
        return;
    };
    let wants_ipv6 = matches!(
        draft.desired.resources.get(l).map(|v| &v.spec),
        Some(Spec::Vpc(v)) if v.ipv6
    );
    if wants_ipv6 {
        draft.wait(d, "ipv6CidrBlock".into(), *l);
    }
}

/// Brings the kept subnet `k`'s IPv6 `/64` to the declared one: a `/64`
/// it should not hold is given back first (a subnet holds at most one),
/// then the declared one is taken.
fn ipv6(draft: &mut Draft<'_>, k: &Kept<'_>, want: &SubnetSpec<Ref>, raw: &SubnetSpec<String>) {
    let have = observed_index(draft, raw);
    if have == want.ipv6_index.map(Some) {
        return;
    }
    let target = match want.ipv6_index {
        Some(i) => match declared_block(draft, &want.vpc, i) {
            Some(b) => Some(b),
            None => {
                // The VPC's `/56` is on its way: keep what there is.
                wait_for_vpc(draft, k.d, &want.vpc);
                return;
            }
        },
        None => None,
    };
    // A `/64` another subnet still holds (it gives it back in this plan)
    // is taken in the next: EC2 refuses it meanwhile.
    let held_by = target.and_then(|b| holder_of(draft, b, k.d.id));
    draft.drift(
        k,
        "ipv6Index",
        want.ipv6_index.map(|i| i.to_string()),
        raw.ipv6_cidr_block.map(|b| b.to_string()),
    );
    if raw.ipv6_cidr_block.is_some() {
        if let Some(association_id) = k.o.association_ids.get(IPV6_ASSOCIATION) {
            let action = Action::DisassociateSubnetCidrBlock {
                association_id: association_id.clone(),
            };
            draft.apply(k.d, STEP_UNLINK, Some("ipv6"), action);
        }
    }
    if let Some(holder) = held_by {
        draft.wait(k.d, "ipv6CidrBlock".into(), holder);
        return;
    }
    if let Some(ipv6_cidr_block) = target {
        let action = Action::AssociateSubnetCidrBlock {
            subnet: k.me.clone(),
            ipv6_cidr_block,
        };
        draft.apply(k.d, STEP_LINK, Some("ipv6"), action);
    }
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteSubnet {
        subnet: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(draft: &Draft<'_>, w: &SubnetSpec<Ref>, h: &SubnetSpec<String>) -> bool {
    let ipv6_ok = match (w.ipv6_index, h.ipv6_cidr_block) {
        (None, None) => true,
        (Some(i), Some(_)) => observed_index(draft, h) == Some(Some(i)),
        _ => false,
    };
    ipv6_ok && w.map_public_ip_on_launch == h.map_public_ip_on_launch
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
/// overlaps its range, or holds the IPv6 `/64` it declares.
pub(super) fn conflicts(
    draft: &Draft<'_>,
    new: &SubnetSpec<Ref>,
    old: &SubnetSpec<String>,
) -> bool {
    if draft.physical(&new.vpc) != Some(old.vpc.as_str()) {
        return false;
    }
    let same_64 = new.ipv6_index.is_some() && observed_index(draft, old) == Some(new.ipv6_index);
    new.cidr_block.overlaps(old.cidr_block) || same_64
}
