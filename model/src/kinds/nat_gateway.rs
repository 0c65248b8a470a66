//! NAT gateways: public (holding an Elastic IP) or private, in a subnet.
//! Nothing about one changes in place but its tags; a new subnet or a new
//! address is a new gateway. A gateway is slow to become `available`:
//! routes through one wait for it (`Draft::not_ready`). An old gateway goes
//! first when a new one needs the address it holds, or when its VPC's
//! internet gateway is detached.

use serde_json::json;

use super::{Changes, Params};
use crate::draft::{Draft, Going, STEP_CREATE, STEP_DELETE};
use crate::{Action, Mutability, NatGatewaySpec, Ref, Resource, Spec, Tags};

/// The properties of a NAT gateway and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("subnet", Mutability::Replace),
    ("allocation", Mutability::Replace),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateNatGateway {
            subnet,
            allocation,
            tags,
        } => {
            if let Some(a) = allocation {
                p.put("AllocationId", a.to_json());
            }
            let connectivity = if allocation.is_some() {
                "public"
            } else {
                "private"
            };
            p.put("ConnectivityType", json!(connectivity));
            p.put("SubnetId", subnet.to_json());
            p.put_tags(tags);
        }
        Action::DeleteNatGateway { nat_gateway } => p.put("NatGatewayId", nat_gateway.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &NatGatewaySpec<Ref>, tags: Tags) {
    let action = Action::CreateNatGateway {
        subnet: draft.cref(&s.subnet),
        allocation: s.allocation.as_ref().map(|a| draft.cref(a)),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
}

/// Deletes the gateway; its address is freed once EC2 has deleted it.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteNatGateway {
        nat_gateway: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &NatGatewaySpec<Ref>,
    h: &NatGatewaySpec<String>,
) -> bool {
    !draft.ref_eq(&w.subnet, &h.subnet)
        || !draft.opt_ref_eq(w.allocation.as_ref(), h.allocation.as_deref())
}

pub(super) fn replace_differences(
    w: &NatGatewaySpec<Ref>,
    h: &NatGatewaySpec<Ref>,
    out: &mut Changes,
) {
    let address = |a: &Option<Ref>| {
        a.as_ref()
            .map_or("none (private)".to_string(), Ref::to_string)
    };
    out.compare("subnet", w.subnet.to_string(), h.subnet.to_string());
    out.compare("allocation", address(&w.allocation), address(&h.allocation));
}

/// A new gateway cannot take the address an old one holds until the old
/// one is gone.
pub(super) fn conflicts(
    draft: &Draft<'_>,
    new: &NatGatewaySpec<Ref>,
    old: &NatGatewaySpec<String>,
) -> bool {
    match (&new.allocation, &old.allocation) {
        (Some(new), Some(old)) => draft.physical(new) == Some(old.as_str()),
        _ => false,
    }
}

/// Whether the doomed gateway `old` must go before the creates and
/// changes: a public one keeps its VPC's internet gateway attached (EC2
/// refuses the detach while it maps an address), and this plan detaches
/// that gateway.
pub(super) fn must_go_first(draft: &Draft<'_>, old: &NatGatewaySpec<String>) -> bool {
    if old.allocation.is_none() {
        return false;
    }
    match draft.observed(&old.subnet).map(|s| &s.spec) {
        Some(Spec::Subnet(s)) => super::internet_gateway::leaves(draft, &s.vpc),
        _ => false,
    }
}
