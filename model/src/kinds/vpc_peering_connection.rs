//! VPC peering connections, within one account and region: requested by
//! one VPC, accepted by the other (both by this plan: the create is
//! `CreateVpcPeeringConnection` then `AcceptVpcPeeringConnection`). Both
//! VPCs are fixed (new ones are a new connection); nothing else changes in
//! place but its tags, and acceptance: a connection the cloud shows
//! `pending-acceptance` is accepted again. Routes through one wait until it
//! is `active` (`ResourceKind::starts_pending`).

use super::{Changes, Params};
use crate::draft::{Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_LINK};
use crate::{Action, CloudRef, Mutability, Ref, Resource, Tags, VpcPeeringConnectionSpec};

/// The properties of a peering connection and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("peerVpc", Mutability::Replace),
    ("accepted", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateVpcPeeringConnection {
            vpc,
            peer_vpc,
            tags,
        } => {
            p.put("VpcId", vpc.to_json());
            p.put("PeerVpcId", peer_vpc.to_json());
            p.put_tags(tags);
        }
        Action::AcceptVpcPeeringConnection {
            vpc_peering_connection,
        }
        | Action::DeleteVpcPeeringConnection {
            vpc_peering_connection,
        } => p.put("VpcPeeringConnectionId", vpc_peering_connection.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

/// Requests the connection, then accepts it.
pub(super) fn create(
    draft: &mut Draft<'_>,
    d: &Resource,
    s: &VpcPeeringConnectionSpec<Ref>,
    tags: Tags,
) {
    let action = Action::CreateVpcPeeringConnection {
        vpc: draft.cref(&s.vpc),
        peer_vpc: draft.cref(&s.peer_vpc),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    let accept = Action::AcceptVpcPeeringConnection {
        vpc_peering_connection: CloudRef::Pending(d.id),
    };
    draft.apply(d, STEP_LINK, Some("accept"), accept);
}

/// Accepts a connection the cloud shows still waiting for acceptance.
pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VpcPeeringConnectionSpec<Ref>,
    have: &VpcPeeringConnectionSpec<Ref>,
) {
    if have.accepted || !want.accepted {
        return;
    }
    let status = |accepted: bool| {
        Some(
            if accepted {
                "active"
            } else {
                "pending-acceptance"
            }
            .to_string(),
        )
    };
    draft.drift(k, "status", status(true), status(false));
    let accept = Action::AcceptVpcPeeringConnection {
        vpc_peering_connection: k.me.clone(),
    };
    draft.apply(k.d, STEP_ATTRIBUTES, Some("accept"), accept);
}

pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    let action = Action::DeleteVpcPeeringConnection {
        vpc_peering_connection: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    w: &VpcPeeringConnectionSpec<Ref>,
    h: &VpcPeeringConnectionSpec<String>,
) -> bool {
    h.accepted || !w.accepted
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &VpcPeeringConnectionSpec<Ref>,
    h: &VpcPeeringConnectionSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc) || !draft.ref_eq(&w.peer_vpc, &h.peer_vpc)
}

pub(super) fn replace_differences(
    w: &VpcPeeringConnectionSpec<Ref>,
    h: &VpcPeeringConnectionSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
    out.compare("peerVpc", w.peer_vpc.to_string(), h.peer_vpc.to_string());
}
