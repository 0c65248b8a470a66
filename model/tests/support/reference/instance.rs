//! Instances: launched into a subnet with groups of the subnet's VPC; their
//! groups replaced as a set, never emptied.

use std::collections::BTreeSet;

use canon_model::{Action, InstanceSpec, Request, Spec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::RunInstances {
            image_id,
            instance_type,
            subnet,
            security_groups,
            key_name,
            user_data,
            tags,
        } => {
            let s = id(subnet)?;
            let Spec::Subnet(ss) = &cloud.get(&s)?.spec else {
                return Err("not a subnet".into());
            };
            let vpc = ss.vpc.clone();
            let mut groups = BTreeSet::new();
            for g in security_groups {
                let g = id(g)?;
                match &cloud.get(&g)?.spec {
                    Spec::SecurityGroup(sg) if sg.vpc == vpc => {}
                    _ => return Err("InvalidGroup.NotFound in subnet's VPC".into()),
                }
                groups.insert(g);
            }
            let spec = Spec::Instance(InstanceSpec {
                image_id: image_id.clone(),
                instance_type: instance_type.clone(),
                subnet: s,
                key_name: key_name.clone(),
                user_data: user_data.clone(),
                security_groups: groups.into(),
                tags: tags.clone(),
                max_age_secs: None,
                fleet: None,
                source_dest_check: true,
            });
            return Ok(Some(cloud.create(&req.region, "i", spec)));
        }
        Action::ModifyInstanceSecurityGroups {
            instance,
            security_groups,
        } => {
            let i = id(instance)?;
            let mut groups = BTreeSet::new();
            for g in security_groups {
                let g = id(g)?;
                cloud.get(&g)?;
                groups.insert(g);
            }
            if groups.is_empty() {
                return Err("InvalidParameterValue: an instance needs a group".into());
            }
            cloud.update(&i, |r| match &mut r.spec {
                Spec::Instance(s) => {
                    s.security_groups = groups.into();
                    Ok(())
                }
                _ => Err("not an instance".into()),
            })?;
        }
        Action::ModifyInstanceSourceDestCheck { instance, enabled } => {
            let i = id(instance)?;
            cloud.update(&i, |r| match &mut r.spec {
                Spec::Instance(s) => {
                    s.source_dest_check = *enabled;
                    Ok(())
                }
                _ => Err("not an instance".into()),
            })?;
        }
        Action::TerminateInstances { instance } => {
            let i = id(instance)?;
            cloud.remove(&i)?;
            cloud.detach_volumes_of(&i);
        }
        _ => return Err(not_mine("instance", req)),
    }
    Ok(None)
}
