//! Network ACLs, by EC2's rules: entries named by direction and number,
//! 1 to 32766 (a second with the same name refused, a replace or a delete
//! of a missing one refused); a subnet is in one ACL at a time, of its own
//! VPC (giving it back puts it in the VPC's default ACL, which this
//! interpreter does not keep: a subnet in no ACL here is in the default);
//! an ACL is deleted only once it holds no subnets.

use canon_model::{Action, NetworkAclSpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateNetworkAcl { vpc, tags } => {
            let v = id(vpc)?;
            cloud.vpc(&v)?;
            let spec = Spec::NetworkAcl(NetworkAclSpec {
                vpc: v,
                entries: Default::default(),
                associations: Default::default(),
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "acl", spec)));
        }
        Action::CreateNetworkAclEntry { network_acl, entry }
        | Action::ReplaceNetworkAclEntry { network_acl, entry } => {
            let replace = matches!(req.action, Action::ReplaceNetworkAclEntry { .. });
            if !(1..=32766).contains(&entry.rule_number) {
                return Err(format!(
                    "InvalidParameterValue: rule number {}",
                    entry.rule_number
                ));
            }
            cloud.update(&id(network_acl)?, |r| {
                let Spec::NetworkAcl(a) = &mut r.spec else {
                    return Err("not a network ACL".into());
                };
                let old = a.entries.iter().find(|e| e.key() == entry.key()).cloned();
                match (replace, old) {
                    (false, Some(_)) => return Err("NetworkAclEntryAlreadyExists".into()),
                    (true, None) => return Err("InvalidNetworkAclEntry.NotFound".into()),
                    (_, Some(old)) => {
                        a.entries.remove(&old);
                    }
                    (false, None) => {}
                }
                a.entries.insert(entry.clone());
                Ok(())
            })?;
        }
        Action::DeleteNetworkAclEntry {
            network_acl,
            egress,
            rule_number,
        } => {
            cloud.update(&id(network_acl)?, |r| {
                let Spec::NetworkAcl(a) = &mut r.spec else {
                    return Err("not a network ACL".into());
                };
                let before = a.entries.len();
                a.entries.retain(|e| e.key() != (*egress, *rule_number));
                if a.entries.len() == before {
                    return Err("InvalidNetworkAclEntry.NotFound".into());
                }
                Ok(())
            })?;
        }
        Action::ReplaceNetworkAclAssociation {
            subnet,
            network_acl,
        } => associate(
            cloud,
            &id(subnet)?,
            network_acl.as_ref().map(id).transpose()?,
        )?,
        Action::DeleteNetworkAcl { network_acl } => {
            let n = id(network_acl)?;
            match &cloud.get(&n)?.spec {
                Spec::NetworkAcl(a) if !a.associations.is_empty() => {
                    return Err("DependencyViolation: the ACL has subnets".into())
                }
                Spec::NetworkAcl(_) => cloud.remove(&n)?,
                _ => return Err(format!("{n} is not a network ACL")),
            }
        }
        _ => return Err(not_mine("network ACL", req)),
    }
    Ok(None)
}

/// Takes subnet `s` out of whichever ACL holds it and puts it in `target`
/// (`None`: the VPC's default).
fn associate(cloud: &mut RefCloud, s: &str, target: Option<String>) -> Result<(), String> {
    let Spec::Subnet(sub) = &cloud.get(s)?.spec else {
        return Err(format!("{s} is not a subnet"));
    };
    let vpc = sub.vpc.clone();
    if let Some(n) = &target {
        match &cloud.get(n)?.spec {
            Spec::NetworkAcl(a) if a.vpc == vpc => {}
            Spec::NetworkAcl(_) => return Err("InvalidParameterValue: another VPC".into()),
            _ => return Err(format!("{n} is not a network ACL")),
        }
    }
    let holders: Vec<String> = cloud
        .state
        .iter()
        .filter(|r| matches!(&r.spec, Spec::NetworkAcl(a) if a.associations.contains(s)))
        .map(|r| r.cloud_id.clone())
        .collect();
    for h in holders {
        cloud.update(&h, |r| {
            if let Spec::NetworkAcl(a) = &mut r.spec {
                a.associations.remove(s);
            }
            r.association_ids.remove(s);
            Ok(())
        })?;
    }
    if let Some(n) = target {
        let association = cloud.fresh("aclassoc");
        cloud.update(&n, |r| {
            if let Spec::NetworkAcl(a) = &mut r.spec {
                a.associations.insert(s.to_string());
            }
            r.association_ids.insert(s.to_string(), association);
            Ok(())
        })?;
    }
    Ok(())
}
