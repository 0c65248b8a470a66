//! Internet gateways: attached to at most one VPC, re-attached in place.
//! EC2 refuses to detach one while a public NAT gateway in its VPC maps
//! an address: such a gateway, if it goes, goes first
//! (`nat_gateway::must_go_first`).

use super::Params;
use crate::draft::{
    Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_DETACH, STEP_LINK,
};
use crate::{Action, CloudRef, InternetGatewaySpec, Mutability, Ref, Resource, Spec, Tags};

/// The properties of an internet gateway and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] =
    &[("vpc", Mutability::Mutable), ("tags", Mutability::Mutable)];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateInternetGateway { tags } => p.put_tags(tags),
        Action::AttachInternetGateway {
            internet_gateway,
            vpc,
        }
        | Action::DetachInternetGateway {
            internet_gateway,
            vpc,
        } => {
            p.put("InternetGatewayId", internet_gateway.to_json());
            p.put("VpcId", vpc.to_json());
        }
        Action::DeleteInternetGateway { internet_gateway } => {
            p.put("InternetGatewayId", internet_gateway.to_json())
        }
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(
    draft: &mut Draft<'_>,
    d: &Resource,
    s: &InternetGatewaySpec<Ref>,
    tags: Tags,
) {
    draft.apply(d, STEP_CREATE, None, Action::CreateInternetGateway { tags });
    if let Some(vpc) = &s.vpc {
        let action = Action::AttachInternetGateway {
            internet_gateway: CloudRef::Pending(d.id),
            vpc: draft.cref(vpc),
        };
        draft.apply(d, STEP_LINK, Some("attachment"), action);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &InternetGatewaySpec<Ref>,
    have: &InternetGatewaySpec<Ref>,
    raw: &InternetGatewaySpec<String>,
) {
    if have.vpc == want.vpc {
        return;
    }
    let declared = want.vpc.as_ref().map(|v| draft.shown(v));
    let observed = have.vpc.as_ref().map(|v| draft.shown(v));
    draft.drift(k, "vpc", declared, observed);
    if let Some(old) = &raw.vpc {
        let action = Action::DetachInternetGateway {
            internet_gateway: k.me.clone(),
            vpc: CloudRef::Id(old.clone()),
        };
        draft.apply(k.d, STEP_ATTRIBUTES, Some("attachment"), action);
    }
    if let Some(new) = &want.vpc {
        let action = Action::AttachInternetGateway {
            internet_gateway: k.me.clone(),
            vpc: draft.cref(new),
        };
        draft.apply(k.d, STEP_LINK, Some("attachment"), action);
    }
}

/// Detaches the gateway from its VPC, if any, then deletes it.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>, s: &InternetGatewaySpec<String>) {
    if let Some(vpc) = &s.vpc {
        let action = Action::DetachInternetGateway {
            internet_gateway: g.me.clone(),
            vpc: CloudRef::Id(vpc.clone()),
        };
        draft.delete(g, STEP_DETACH, Some("attachment"), action);
    }
    let action = Action::DeleteInternetGateway {
        internet_gateway: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

/// Whether this plan detaches a kept gateway from VPC `vpc` (moving it, or
/// leaving it unattached).
pub(super) fn leaves(draft: &Draft<'_>, vpc: &str) -> bool {
    draft.desired.resources.values().any(|d| {
        let (Spec::InternetGateway(want), Some(o)) = (&d.spec, draft.matched.get(&d.id)) else {
            return false;
        };
        let Spec::InternetGateway(have) = &o.spec else {
            return false;
        };
        !draft.replaced.contains(&d.id)
            && have.vpc.as_deref() == Some(vpc)
            && want.vpc.as_ref().and_then(|v| draft.physical(v)) != Some(vpc)
    })
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &InternetGatewaySpec<Ref>,
    h: &InternetGatewaySpec<String>,
) -> bool {
    draft.opt_ref_eq(w.vpc.as_ref(), h.vpc.as_deref())
}
