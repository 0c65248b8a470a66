//! Security groups: bound to their VPC, name and description; their rules
//! change in place, authorized and revoked in sets.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, Phase, STEP_CREATE, STEP_DELETE, STEP_DETACH, STEP_LINK, STEP_UNLINK,
};
use crate::sorted_vec::SortedVecSet;
use crate::{
    Action, CloudRef, Mutability, Peer, Protocol, Ref, Request, Resource, ResourceKind, Rule,
    SecurityGroupSpec, Tags,
};

/// The properties of a security group and how each may change.
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("vpc", Mutability::Replace),
    ("groupName", Mutability::Replace),
    ("description", Mutability::Replace),
    ("ingress", Mutability::Mutable),
    ("egress", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateSecurityGroup {
            vpc,
            group_name,
            description,
            tags,
        } => {
            p.put("Description", json!(description));
            p.put("GroupName", json!(group_name));
            p.put("VpcId", vpc.to_json());
            p.put_tags(tags);
        }
        Action::AuthorizeSecurityGroupIngress { group, rules }
        | Action::RevokeSecurityGroupIngress { group, rules }
        | Action::AuthorizeSecurityGroupEgress { group, rules }
        | Action::RevokeSecurityGroupEgress { group, rules } => {
            p.put("GroupId", group.to_json());
            p.put("IpPermissions", ip_permissions(rules));
        }
        Action::DeleteSecurityGroup { group } => p.put("GroupId", group.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

/// Rules grouped the way EC2 groups them: one `IpPermission` per protocol and
/// port range, with its IPv4 and IPv6 ranges, prefix lists and group pairs.
fn ip_permissions(rules: &BTreeSet<Rule<CloudRef>>) -> Value {
    /// The peers of one protocol and port range, keyed by EC2's field name
    /// (`IpRanges`, `Ipv6Ranges`, `PrefixListIds`, `UserIdGroupPairs`).
    type Peers = BTreeMap<&'static str, Vec<Value>>;
    let mut grouped: BTreeMap<(Protocol, i32, i32), Peers> = BTreeMap::new();
    for r in rules {
        let entry = grouped
            .entry((r.protocol, r.from_port, r.to_port))
            .or_default();
        let (field, peer) = match &r.peer {
            Peer::Cidr(c) => ("IpRanges", json!({ "CidrIp": c.to_string() })),
            Peer::Ipv6Cidr(c) => ("Ipv6Ranges", json!({ "CidrIpv6": c.to_string() })),
            Peer::PrefixList(p) => ("PrefixListIds", json!({ "PrefixListId": p })),
            Peer::Group(g) => ("UserIdGroupPairs", json!({ "GroupId": g.to_json() })),
        };
        entry.entry(field).or_default().push(peer);
    }
    Value::Array(
        grouped
            .into_iter()
            .map(|((proto, from, to), peers)| {
                // A `Map` keeps its keys sorted, as the golden files expect.
                let mut perm = Map::new();
                if proto.has_ports() {
                    perm.insert("FromPort".into(), json!(from));
                    perm.insert("ToPort".into(), json!(to));
                }
                perm.insert("IpProtocol".into(), json!(proto.ec2_name()));
                for (field, list) in peers {
                    perm.insert(field.into(), Value::Array(list));
                }
                Value::Object(perm)
            })
            .collect(),
    )
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &SecurityGroupSpec<Ref>, tags: Tags) {
    let me = CloudRef::Pending(d.id);
    let action = Action::CreateSecurityGroup {
        vpc: draft.cref(&s.vpc),
        group_name: s.group_name.clone(),
        description: s.description.clone(),
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    // EC2 gives a new group the allow-all egress rule.
    let default_egress: BTreeSet<Rule<CloudRef>> = [Rule::allow_all_egress()].into_iter().collect();
    let in_requests = |rules: &SortedVecSet<Rule<Ref>>| -> BTreeSet<Rule<CloudRef>> {
        rules
            .iter()
            .map(|r| r.map_peer(|g| draft.cref(g)))
            .collect()
    };
    let egress = in_requests(&s.egress);
    let ingress = in_requests(&s.ingress);
    change_rules(draft, d, &me, Direction::Egress, &default_egress, &egress);
    change_rules(
        draft,
        d,
        &me,
        Direction::Ingress,
        &BTreeSet::new(),
        &ingress,
    );
}

/// Authorizes the rules in `want` but not `have`, revokes those in
/// `have` but not `want` (revokes first).
fn change_rules(
    draft: &mut Draft<'_>,
    d: &Resource,
    group: &CloudRef,
    direction: Direction,
    have: &BTreeSet<Rule<CloudRef>>,
    want: &BTreeSet<Rule<CloudRef>>,
) {
    let revoke: BTreeSet<_> = have.difference(want).cloned().collect();
    let authorize: BTreeSet<_> = want.difference(have).cloned().collect();
    if !revoke.is_empty() {
        let action = direction.revoke(group.clone(), revoke);
        draft.apply(d, STEP_UNLINK, Some("rules"), action);
    }
    if !authorize.is_empty() {
        let action = direction.authorize(group.clone(), authorize);
        draft.apply(d, STEP_LINK, Some("rules"), action);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &SecurityGroupSpec<Ref>,
    have: &SecurityGroupSpec<Ref>,
    raw: &SecurityGroupSpec<String>,
) {
    let directions = [
        (
            Direction::Ingress,
            &want.ingress,
            &have.ingress,
            &raw.ingress,
        ),
        (Direction::Egress, &want.egress, &have.egress, &raw.egress),
    ];
    for (direction, want_rules, have_rules, raw_rules) in directions {
        // Revoke in the cloud's own terms, so the request names exactly
        // the rule that is there.
        let mut revoke_early = BTreeSet::new();
        let mut revoke = BTreeSet::new();
        for rule in raw_rules {
            let declared_form = rule.map_peer(|g| draft.translate_id(g));
            if want_rules.contains(&declared_form) {
                continue;
            }
            draft.drift(k, direction.property(), None, Some(rule.to_string()));
            let cloud_form = rule.map_peer(|g| CloudRef::Id(g.clone()));
            match &rule.peer {
                Peer::Group(g) if draft.early.contains(g.as_str()) => {
                    revoke_early.insert(cloud_form)
                }
                _ => revoke.insert(cloud_form),
            };
        }
        let mut authorize = BTreeSet::new();
        for rule in want_rules.difference(have_rules) {
            draft.drift(k, direction.property(), Some(rule.to_string()), None);
            authorize.insert(rule.map_peer(|g| draft.cref(g)));
        }
        if !revoke_early.is_empty() {
            // Before the early delete of the group the rules name.
            let request = Request {
                target: k.d.id,
                part: Some("rules".into()),
                region: k.d.region.clone(),
                action: direction.revoke(k.me.clone(), revoke_early),
            };
            draft.push(
                Phase::EarlyDelete,
                ResourceKind::Instance,
                STEP_DETACH,
                request,
            );
        }
        if !revoke.is_empty() {
            let action = direction.revoke(k.me.clone(), revoke);
            draft.apply(k.d, STEP_UNLINK, Some("rules"), action);
        }
        if !authorize.is_empty() {
            let action = direction.authorize(k.me.clone(), authorize);
            draft.apply(k.d, STEP_LINK, Some("rules"), action);
        }
    }
}

/// Revokes the rules that name other groups (they would block those
/// groups' deletion), then deletes the group.
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>, s: &SecurityGroupSpec<String>) {
    for (direction, rules) in [
        (Direction::Ingress, &s.ingress),
        (Direction::Egress, &s.egress),
    ] {
        let by_group: BTreeSet<Rule<CloudRef>> = rules
            .iter()
            .filter(|r| matches!(r.peer, Peer::Group(_)))
            .map(|r| r.map_peer(|g| CloudRef::Id(g.clone())))
            .collect();
        if !by_group.is_empty() {
            let action = direction.revoke(g.me.clone(), by_group);
            draft.delete(g, STEP_DETACH, Some("rules"), action);
        }
    }
    let action = Action::DeleteSecurityGroup {
        group: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(
    draft: &Draft<'_>,
    w: &SecurityGroupSpec<Ref>,
    h: &SecurityGroupSpec<String>,
) -> bool {
    w.ingress.len() == h.ingress.len()
        && w.egress.len() == h.egress.len()
        && h.ingress
            .iter()
            .all(|r| w.ingress.contains(&draft.translate_rule(r)))
        && h.egress
            .iter()
            .all(|r| w.egress.contains(&draft.translate_rule(r)))
}

pub(super) fn needs_replacement(
    draft: &Draft<'_>,
    w: &SecurityGroupSpec<Ref>,
    h: &SecurityGroupSpec<String>,
) -> bool {
    !draft.ref_eq(&w.vpc, &h.vpc) || w.group_name != h.group_name || w.description != h.description
}

pub(super) fn replace_differences(
    w: &SecurityGroupSpec<Ref>,
    h: &SecurityGroupSpec<Ref>,
    out: &mut Changes,
) {
    out.compare("vpc", w.vpc.to_string(), h.vpc.to_string());
    out.compare("groupName", w.group_name.clone(), h.group_name.clone());
    out.compare("description", w.description.clone(), h.description.clone());
}

/// A new group cannot be created while an old one in the same VPC has its
/// name.
pub(super) fn conflicts(
    draft: &Draft<'_>,
    new: &SecurityGroupSpec<Ref>,
    old: &SecurityGroupSpec<String>,
) -> bool {
    draft.physical(&new.vpc) == Some(old.vpc.as_str()) && new.group_name == old.group_name
}

/// Ingress or egress.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn property(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn authorize(self, group: CloudRef, rules: BTreeSet<Rule<CloudRef>>) -> Action {
        match self {
            Direction::Ingress => Action::AuthorizeSecurityGroupIngress { group, rules },
            Direction::Egress => Action::AuthorizeSecurityGroupEgress { group, rules },
        }
    }

    fn revoke(self, group: CloudRef, rules: BTreeSet<Rule<CloudRef>>) -> Action {
        match self {
            Direction::Ingress => Action::RevokeSecurityGroupIngress { group, rules },
            Direction::Egress => Action::RevokeSecurityGroupEgress { group, rules },
        }
    }
}
