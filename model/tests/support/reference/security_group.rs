//! Security groups: names unique within a VPC; new ones allow all egress;
//! authorizing a rule twice is an error, revoking a missing one is not; a
//! group used by an instance or named in another group's rule cannot be
//! deleted.

use std::collections::BTreeSet;

use canon_model::{Action, CloudRef, Peer, Request, Rule, SecurityGroupSpec, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateSecurityGroup {
            vpc,
            group_name,
            description,
            tags,
        } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let taken = cloud.state.iter().any(|r| {
                matches!(&r.spec, Spec::SecurityGroup(g) if g.vpc == v && g.group_name == *group_name)
            });
            if taken {
                return Err("InvalidGroup.Duplicate".into());
            }
            let spec = Spec::SecurityGroup(SecurityGroupSpec {
                vpc: v,
                group_name: group_name.clone(),
                description: description.clone(),
                ingress: Default::default(),
                egress: [Rule::allow_all_egress()].into_iter().collect(),
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "sg", spec)));
        }
        Action::AuthorizeSecurityGroupIngress { group, rules } => {
            authorize(cloud, &id(group)?, rules, true)?
        }
        Action::AuthorizeSecurityGroupEgress { group, rules } => {
            authorize(cloud, &id(group)?, rules, false)?
        }
        Action::RevokeSecurityGroupIngress { group, rules } => {
            revoke(cloud, &id(group)?, rules, true)?
        }
        Action::RevokeSecurityGroupEgress { group, rules } => {
            revoke(cloud, &id(group)?, rules, false)?
        }
        Action::DeleteSecurityGroup { group } => delete(cloud, &id(group)?)?,
        _ => return Err(not_mine("security group", req)),
    }
    Ok(None)
}

fn resolved(rules: &BTreeSet<Rule<CloudRef>>) -> Result<Vec<Rule<String>>, String> {
    rules.iter().map(|r| r.try_map_peer(id)).collect()
}

/// The ingress (or egress) rules of group `g`, changed by `f`.
fn change(
    cloud: &mut RefCloud,
    g: &str,
    ingress: bool,
    f: impl FnOnce(&mut canon_model::SortedVecSet<Rule<String>>) -> Result<(), String>,
) -> Result<(), String> {
    cloud.update(g, |r| {
        let Spec::SecurityGroup(sg) = &mut r.spec else {
            return Err("not a group".into());
        };
        f(if ingress {
            &mut sg.ingress
        } else {
            &mut sg.egress
        })
    })
}

fn authorize(
    cloud: &mut RefCloud,
    g: &str,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<(), String> {
    let rules = resolved(rules)?;
    for r in &rules {
        if let Peer::Group(p) = &r.peer {
            if !matches!(cloud.get(p)?.spec, Spec::SecurityGroup(_)) {
                return Err("InvalidGroup.NotFound".into());
            }
        }
    }
    change(cloud, g, ingress, |set| {
        for rule in rules {
            if !set.insert(rule) {
                return Err("InvalidPermission.Duplicate".into());
            }
        }
        Ok(())
    })
}

fn revoke(
    cloud: &mut RefCloud,
    g: &str,
    rules: &BTreeSet<Rule<CloudRef>>,
    ingress: bool,
) -> Result<(), String> {
    let rules = resolved(rules)?;
    change(cloud, g, ingress, |set| {
        for rule in rules {
            set.remove(&rule);
        }
        Ok(())
    })
}

fn delete(cloud: &mut RefCloud, g: &str) -> Result<(), String> {
    if !matches!(cloud.get(g)?.spec, Spec::SecurityGroup(_)) {
        return Err("not a group".into());
    }
    let used = cloud.state.iter().any(|r| match &r.spec {
        Spec::Instance(i) => i.security_groups.contains(g),
        Spec::VpcEndpoint(e) => e.security_groups.contains(g),
        Spec::SecurityGroup(other) if r.cloud_id != g => other
            .ingress
            .iter()
            .chain(&other.egress)
            .any(|x| x.peer == Peer::Group(g.to_string())),
        _ => false,
    });
    if used {
        return Err(format!("DependencyViolation: {g} is in use"));
    }
    cloud.remove(g)
}
