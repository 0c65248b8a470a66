//! Simulated security groups: names unique per VPC (never `default` or
//! `sg-*`), at most 60 rules a direction, an authorize refused whole when
//! any of its rules exists, peers in the same VPC; a group is deleted only
//! when no other group's rule and no instance refers to it.

use std::collections::BTreeSet;

use canon_model::{
    Action, CloudRef, ObservedSpec, Peer, ResourceKind, Rule, SecurityGroupSpec, Spec, Tags,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::error::DUPLICATE_RULE;
use crate::refs::id;
use crate::rules::resolved_rules;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::SecurityGroup;

/// A stored security group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Sg {
    pub meta: Meta,
    pub vpc: String,
    pub name: String,
    pub description: String,
    pub ingress: BTreeSet<Rule<String>>,
    pub egress: BTreeSet<Rule<String>>,
    pub default: bool,
}

impl Sg {
    /// The group as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc: self.vpc.clone(),
            group_name: self.name.clone(),
            description: self.description.clone(),
            ingress: self.ingress.clone().into(),
            egress: self.egress.clone().into(),
            tags: self.meta.tags.clone(),
        })
    }
}

/// Which rules of a group a call touches.
fn direction(ingress: bool) -> &'static str {
    if ingress {
        "ingress"
    } else {
        "egress"
    }
}

/// Applies one security-group action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateSecurityGroup {
            vpc,
            group_name,
            description,
            tags,
        } => create(region, vpc, group_name, description, tags, call),
        Action::AuthorizeSecurityGroupIngress { group, rules } => {
            authorize(region, group, rules, true)
        }
        Action::AuthorizeSecurityGroupEgress { group, rules } => {
            authorize(region, group, rules, false)
        }
        Action::RevokeSecurityGroupIngress { group, rules } => revoke(region, group, rules, true),
        Action::RevokeSecurityGroupEgress { group, rules } => revoke(region, group, rules, false),
        Action::DeleteSecurityGroup { group } => delete(region, group, call.timing.now),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    vpc: &CloudRef,
    group_name: &str,
    description: &str,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    check_tags(tags)?;
    let v = id(vpc)?.to_string();
    region.vpc(&v)?;
    if group_name.is_empty() || group_name.len() > 255 || description.len() > 255 {
        return Err(err(
            "InvalidParameterValue",
            "Group name and description must be 1 to 255 characters",
        ));
    }
    if group_name.starts_with("sg-") {
        return Err(err(
            "InvalidParameterValue",
            "Group names may not be in the format sg-*",
        ));
    }
    if group_name == "default" {
        return Err(err(
            "InvalidGroup.Reserved",
            "The security group 'default' is reserved",
        ));
    }
    if region
        .sg_names
        .contains(&(v.clone(), group_name.to_string()))
    {
        return Err(err(
            "InvalidGroup.Duplicate",
            format!("The security group '{group_name}' already exists for VPC '{v}'"),
        ));
    }
    let rid = new_id(call.rng, "sg");
    region.sg_names.insert((v.clone(), group_name.to_string()));
    region.sgs.insert(
        rid.clone(),
        Sg {
            meta: Meta::new(tags, call.timing.visible_at),
            vpc: v,
            name: group_name.to_string(),
            description: description.to_string(),
            ingress: BTreeSet::new(),
            egress: [Rule::allow_all_egress()].into_iter().collect(),
            default: false,
        },
    );
    Ok(Applied::mutated(
        Outcome::created(&rid, "security group"),
        Some(rid),
    ))
}

impl RegionState {
    /// Refuses a group peer that does not exist or sits in another VPC, and
    /// a port range EC2 would not take.
    fn check_peers(&self, vpc: &str, rules: &BTreeSet<Rule<String>>) -> Result<(), CloudError> {
        for r in rules {
            if let Peer::Group(g) = &r.peer {
                let Some(peer) = self.sgs.get(g) else {
                    return Err(not_found(KIND, g));
                };
                if peer.vpc != vpc {
                    return Err(err(
                        "InvalidGroup.NotFound",
                        format!("The security group '{g}' does not exist in VPC '{vpc}'"),
                    ));
                }
            }
            if r.protocol.has_ports()
                && r.protocol != canon_model::Protocol::Icmp
                && (r.from_port < 0 || r.to_port > 65535 || r.from_port > r.to_port)
            {
                return Err(err(
                    "InvalidParameterValue",
                    format!("Invalid port range {}-{}", r.from_port, r.to_port),
                ));
            }
        }
        Ok(())
    }
}

fn authorize(
    region: &mut RegionState,
    group: &CloudRef,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<Applied, CloudError> {
    let g = id(group)?.to_string();
    let rules = resolved_rules(rules)?;
    let sg = region.sgs.get(&g).ok_or_else(|| not_found(KIND, &g))?;
    region.check_peers(&sg.vpc.clone(), &rules)?;
    let set = if ingress { &sg.ingress } else { &sg.egress };
    if let Some(dup) = rules.iter().find(|r| set.contains(*r)) {
        return Err(err(
            DUPLICATE_RULE,
            format!("the specified rule \"peer: {}\" already exists", dup),
        ));
    }
    if set.len() + rules.len() > 60 {
        return Err(err(
            "RulesPerSecurityGroupLimitExceeded",
            "The maximum number of rules per security group has been reached.",
        ));
    }
    let lines = rules
        .iter()
        .map(|r| format!("authorized {} {r} on {g}", direction(ingress)))
        .collect::<Vec<_>>();
    if let Some(sg) = region.sgs.get_mut(&g) {
        let set = if ingress {
            &mut sg.ingress
        } else {
            &mut sg.egress
        };
        set.extend(rules);
    }
    Ok(Applied::mutated(Outcome::changed(lines), Some(g)))
}

fn revoke(
    region: &mut RegionState,
    group: &CloudRef,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<Applied, CloudError> {
    let g = id(group)?.to_string();
    let rules = resolved_rules(rules)?;
    let sg = region.sgs.get_mut(&g).ok_or_else(|| not_found(KIND, &g))?;
    let set = if ingress {
        &mut sg.ingress
    } else {
        &mut sg.egress
    };
    let present: Vec<_> = rules.iter().filter(|r| set.contains(*r)).cloned().collect();
    if present.is_empty() {
        return Err(err(
            "InvalidPermission.NotFound",
            "The specified rule does not exist in this security group.",
        ));
    }
    let mut lines = Vec::new();
    for r in &present {
        set.remove(r);
        lines.push(format!("revoked {} {r} on {g}", direction(ingress)));
    }
    for r in rules.iter().filter(|r| !present.contains(r)) {
        lines.push(format!("already absent: {r}"));
    }
    Ok(Applied::mutated(Outcome::changed(lines), Some(g)))
}

fn delete(region: &mut RegionState, group: &CloudRef, now: u64) -> Result<Applied, CloudError> {
    let g = id(group)?.to_string();
    let sg = region.sgs.get(&g).ok_or_else(|| not_found(KIND, &g))?;
    if sg.default {
        return Err(err(
            "CannotDelete",
            format!("the specified group: \"{g}\" name: \"default\" cannot be deleted by a user"),
        ));
    }
    let referenced = region.sgs.iter().any(|(other, s)| {
        *other != g
            && s.ingress
                .iter()
                .chain(&s.egress)
                .any(|r| r.peer == Peer::Group(g.clone()))
    });
    let in_use = region
        .instances
        .values()
        .any(|i| i.state.blocks(now) && i.groups.contains(&g));
    if referenced || in_use || region.endpoint_uses(&g) {
        return Err(err(
            "DependencyViolation",
            format!("resource {g} has a dependent object"),
        ));
    }
    if let Some(gone) = region.sgs.remove(&g) {
        region.sg_names.remove(&(gone.vpc, gone.name));
    }
    Ok(Applied::mutated(changed(format!("deleted {g}")), Some(g)))
}
