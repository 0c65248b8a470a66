//! Network ACLs: bound to their VPC; entries change in place (one request
//! each: EC2 names an entry by direction and number, so a changed entry is
//! replaced and one no longer declared deleted), and so do subnet
//! associations. A subnet always has an ACL: associating one takes it from
//! whichever it had, and one that leaves goes back to its VPC's default.

use std::collections::BTreeMap;

use serde_json::json;

use super::associations::{self, Associate};
use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, STEP_CREATE, STEP_DELETE, STEP_DETACH, STEP_LINK, STEP_UNLINK,
};
use crate::{
    AclEntry, Action, CloudRef, IpCidr, LogicalId, Mutability, NetworkAclSpec, Ref, Resource, Spec,
    Tags,
};

/// The properties of a network ACL and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("entries", Mutability::Mutable),
    ("associations", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

/// An entry's parameters, in EC2's names.
fn put_entry(p: &mut Params, e: &AclEntry) {
    match e.range {
        IpCidr::V4(c) => p.put("CidrBlock", json!(c.to_string())),
        IpCidr::V6(c) => p.put("Ipv6CidrBlock", json!(c.to_string())),
    }
    p.put("Egress", json!(e.egress));
    if let Some((t, c)) = e.icmp_type_code() {
        p.put("IcmpTypeCode", json!({"Code": c, "Type": t}));
    }
    if let Some((from, to)) = e.port_range() {
        p.put("PortRange", json!({"From": from, "To": to}));
    }
    p.put("Protocol", json!(e.protocol_number()));
    p.put("RuleAction", json!(e.action.as_str()));
    p.put("RuleNumber", json!(e.rule_number));
}

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateNetworkAcl { vpc, tags } => {
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::CreateNetworkAclEntry { network_acl, entry }
        | Action::ReplaceNetworkAclEntry { network_acl, entry } => {
            p.put("NetworkAclId", network_acl.to_json());
            put_entry(p, entry);
        }
        Action::DeleteNetworkAclEntry {
            network_acl,
            egress,
            rule_number,
        } => {
            p.put("Egress", json!(egress));
            p.put("NetworkAclId", network_acl.to_json());
            p.put("RuleNumber", json!(rule_number));
        }
        Action::ReplaceNetworkAclAssociation {
            subnet,
            network_acl,
        } => {
            // EC2 takes the subnet's current association id, which the
            // adapter looks up; `null` is the VPC's default ACL.
            p.put(
                "NetworkAclId",
                network_acl.as_ref().map_or(json!(null), CloudRef::to_json),
            );
            p.put("SubnetId", subnet.to_json());
        }
        Action::DeleteNetworkAcl { network_acl } => p.put("NetworkAclId", network_acl.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &NetworkAclSpec<Ref>, tags: Tags) {
    let me = CloudRef::Pending(d.id);
    let vpc = draft.cref(&s.vpc);
    draft.apply(d, STEP_CREATE, None, Action::CreateNetworkAcl { vpc, tags });
    for entry in &s.entries {
        let action = Action::CreateNetworkAclEntry {
            network_acl: me.clone(),
            entry: entry.clone(),
        };
        draft.apply(d, STEP_LINK, Some("entries"), action);
    }
    associations::create(draft, d, &s.associations, &Acls);
}

/// How a network ACL takes a subnet (from whichever ACL holds it), and
/// lets one go (back to its VPC's default ACL, unless another declared
/// ACL takes it).
struct Acls;

impl Associate for Acls {
    fn take(&self, network_acl: CloudRef, subnet: CloudRef) -> Action {
        Action::ReplaceNetworkAclAssociation {
            subnet,
            network_acl: Some(network_acl),
        }
    }

    fn release(
        &self,
        draft: &Draft<'_>,
        k: &Kept<'_>,
        subnet: &str,
        declared: &Ref,
    ) -> Option<Action> {
        (!taken_by_another(draft, Some(k.d.id), declared)).then(|| give_back(subnet))
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &NetworkAclSpec<Ref>,
    have: &NetworkAclSpec<Ref>,
    raw: &NetworkAclSpec<String>,
) {
    update_entries(draft, k, want, have);
    let sets = (&want.associations, &have.associations, &raw.associations);
    associations::update(draft, k, sets, &Acls);
}

/// Deletes entries no longer declared, replaces those whose number now
/// means something else, creates the new ones.
fn update_entries(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &NetworkAclSpec<Ref>,
    have: &NetworkAclSpec<Ref>,
) {
    let wanted: BTreeMap<_, _> = want.entries.iter().map(|e| (e.key(), e)).collect();
    let had: BTreeMap<_, _> = have.entries.iter().map(|e| (e.key(), e)).collect();
    for (key, old) in &had {
        if wanted.contains_key(key) {
            continue;
        }
        draft.drift(k, old.property(), None, Some(old.to_string()));
        let action = Action::DeleteNetworkAclEntry {
            network_acl: k.me.clone(),
            egress: old.egress,
            rule_number: old.rule_number,
        };
        draft.apply(k.d, STEP_UNLINK, Some("entries"), action);
    }
    for (key, new) in &wanted {
        let old = had.get(key);
        if old == Some(new) {
            continue;
        }
        draft.drift(
            k,
            new.property(),
            Some(new.to_string()),
            old.map(|o| o.to_string()),
        );
        let (network_acl, entry) = (k.me.clone(), (*new).clone());
        let action = if old.is_some() {
            Action::ReplaceNetworkAclEntry { network_acl, entry }
        } else {
            Action::CreateNetworkAclEntry { network_acl, entry }
        };
        draft.apply(k.d, STEP_LINK, Some("entries"), action);
    }
}

/// Whether a declared ACL other than `me` holds `subnet`: its own
/// association (in the apply phase, so before any late delete) moves the
/// subnet, so giving it back to the default first would only be undone.
fn taken_by_another(draft: &Draft<'_>, me: Option<LogicalId>, subnet: &Ref) -> bool {
    draft.desired.resources.values().any(|d| {
        Some(d.id) != me
            && matches!(&d.spec, Spec::NetworkAcl(a) if a.associations.contains(subnet))
    })
}

/// The request that puts subnet `s` back in its VPC's default ACL.
fn give_back(s: &str) -> Action {
    Action::ReplaceNetworkAclAssociation {
        subnet: CloudRef::Id(s.to_string()),
        network_acl: None,
    }
}

/// Gives every subnet back to its VPC's default ACL, then deletes the ACL
/// (EC2 refuses to delete one that holds subnets). A late delete leaves
/// the subnets that are gone by then (deleted early) or taken by a
/// declared ACL (in the apply phase); an early one goes before either.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>, s: &NetworkAclSpec<String>) {
    let early = draft.early.contains(g.o.cloud_id.as_str());
    for subnet in &s.associations {
        let later = draft.early.contains(subnet.as_str())
            || taken_by_another(draft, None, &draft.translate_id(subnet));
        if later && !early {
            continue;
        }
        draft.delete(g, STEP_DETACH, Some("associations"), give_back(subnet));
    }
    let action = Action::DeleteNetworkAcl {
        network_acl: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &NetworkAclSpec<Ref>,
    h: &NetworkAclSpec<String>,
) -> bool {
    w.entries == h.entries && associations::unchanged(draft, &w.associations, &h.associations)
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &NetworkAclSpec<Ref>,
    h: &NetworkAclSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc)
}

pub(super) fn replace_differences(
    w: &NetworkAclSpec<Ref>,
    h: &NetworkAclSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
}
