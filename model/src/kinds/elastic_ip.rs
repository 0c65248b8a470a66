//! Elastic IP addresses: allocated in the VPC domain, nothing but their tags
//! declared. An address is never released while it is associated: its
//! associations end first (a NAT gateway's with the gateway, which goes
//! before it in reverse dependency order).

use serde_json::json;

use super::Params;
use crate::draft::{Draft, Going, STEP_CREATE, STEP_DELETE, STEP_DETACH};
use crate::{Action, Mutability, Resource, Tags};

/// The properties of an address and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[("tags", Mutability::Mutable)];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::AllocateAddress { tags } => {
            p.put("Domain", json!("vpc"));
            p.put_tags(tags);
        }
        Action::DisassociateAddress { association_id } => {
            p.put("AssociationId", json!(association_id))
        }
        Action::ReleaseAddress { allocation } => p.put("AllocationId", allocation.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, tags: Tags) {
    draft.apply(d, STEP_CREATE, None, Action::AllocateAddress { tags });
}

/// Ends every association the cloud shows, then releases the address.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>) {
    for association_id in g.o.association_ids.values() {
        let action = Action::DisassociateAddress {
            association_id: association_id.clone(),
        };
        draft.delete(g, STEP_DETACH, Some("association"), action);
    }
    let action = Action::ReleaseAddress {
        allocation: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}
