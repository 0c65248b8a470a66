//! Egress-only internet gateways: IPv6 out of one VPC, for good (a new VPC
//! is a new gateway); nothing else about one changes but its tags. Routes
//! through one carry IPv6 destinations.

use super::{Changes, Params};
use crate::draft::{Draft, Going, STEP_CREATE, STEP_DELETE};
use crate::{Action, EgressOnlyInternetGatewaySpec, Mutability, Ref, Resource, Tags};

/// The properties of an egress-only internet gateway and how each may
/// change.
pub(super) const PROPERTIES: &[(&str, Mutability)] =
    &[("vpc", Mutability::Replace), ("tags", Mutability::Mutable)];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateEgressOnlyInternetGateway { vpc, tags } => {
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway,
        } => p.put(
            "EgressOnlyInternetGatewayId",
            egress_only_internet_gateway.to_json(),
        ),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(
    draft: &mut Draft<'_>,
    d: &Resource,
    s: &EgressOnlyInternetGatewaySpec<Ref>,
    tags: Tags,
) {
    let vpc = draft.cref(&s.vpc);
    let action = Action::CreateEgressOnlyInternetGateway { vpc, tags };
    draft.apply(d, STEP_CREATE, None, action);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteEgressOnlyInternetGateway {
        egress_only_internet_gateway: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &EgressOnlyInternetGatewaySpec<Ref>,
    h: &EgressOnlyInternetGatewaySpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc)
}

pub(super) fn replace_differences(
    w: &EgressOnlyInternetGatewaySpec<Ref>,
    h: &EgressOnlyInternetGatewaySpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
}
