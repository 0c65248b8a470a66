//! EBS volumes, by EC2's rules: a volume grows but never shrinks; it is
//! attached to one instance at a time, in its own zone, on a device that
//! instance does not already use; it is detached only from the instance it
//! is attached to, and deleted only once detached. (Terminating an instance
//! detaches its volumes: `instance.rs`.)

use canon_model::{Action, ObservedResource, Request, Spec, VolumeAttachment, VolumeSpec};

use super::{id, not_mine, RefCloud};

pub(super) fn execute(cloud: &mut RefCloud, req: &Request) -> Result<Option<String>, String> {
    match &req.action {
        Action::CreateVolume {
            availability_zone,
            size_gib,
            volume_type,
            iops,
            encrypted,
            tags,
        } => {
            let spec = Spec::Volume(VolumeSpec {
                availability_zone: availability_zone.clone(),
                size_gib: *size_gib,
                volume_type: volume_type.clone(),
                iops: *iops,
                encrypted: *encrypted,
                attachment: None,
                tags: tags.clone(),
            });
            return Ok(Some(cloud.create(&req.region, "vol", spec)));
        }
        Action::ModifyVolume {
            volume,
            size_gib,
            volume_type,
            iops,
        } => cloud.update(&id(volume)?, |r| match &mut r.spec {
            Spec::Volume(v) if *size_gib < v.size_gib => Err(format!(
                "InvalidParameterValue: {size_gib} GiB is smaller than {} GiB",
                v.size_gib
            )),
            Spec::Volume(v) => {
                v.size_gib = *size_gib;
                v.volume_type = volume_type.clone();
                v.iops = *iops;
                Ok(())
            }
            _ => Err("not a volume".into()),
        })?,
        Action::AttachVolume {
            volume,
            instance,
            device,
        } => attach(cloud, &id(volume)?, &id(instance)?, device)?,
        Action::DetachVolume { volume, instance } => {
            let instance = id(instance)?;
            cloud.update(&id(volume)?, |r| match &mut r.spec {
                Spec::Volume(v)
                    if v.attachment.as_ref().map(|a| &a.instance) == Some(&instance) =>
                {
                    v.attachment = None;
                    Ok(())
                }
                Spec::Volume(_) => Err(format!("IncorrectState: not attached to {instance}")),
                _ => Err("not a volume".into()),
            })?
        }
        Action::DeleteVolume { volume } => {
            let v = id(volume)?;
            match &cloud.get(&v)?.spec {
                Spec::Volume(s) if s.attachment.is_some() => {
                    return Err(format!("VolumeInUse: {v} is attached"))
                }
                Spec::Volume(_) => cloud.remove(&v)?,
                _ => return Err(format!("{v} is not a volume")),
            }
        }
        _ => return Err(not_mine("volume", req)),
    }
    Ok(None)
}

fn attach(cloud: &mut RefCloud, v: &str, i: &str, device: &str) -> Result<(), String> {
    let Spec::Instance(inst) = &cloud.get(i)?.spec else {
        return Err(format!("{i} is not an instance"));
    };
    let Spec::Subnet(subnet) = &cloud.get(&inst.subnet)?.spec else {
        return Err("the instance's subnet is not a subnet".into());
    };
    let zone = subnet.availability_zone.clone();
    let device_taken = cloud.state.iter().any(|r| {
        matches!(&r.spec, Spec::Volume(o) if o.attachment.as_ref()
            .is_some_and(|a| a.instance == i && a.device == device))
    });
    if device_taken {
        return Err(format!("InvalidParameterValue: {device} is in use on {i}"));
    }
    cloud.update(v, |r| match &mut r.spec {
        Spec::Volume(s) if s.attachment.is_some() => Err(format!("VolumeInUse: {v}")),
        Spec::Volume(s) if s.availability_zone != zone => Err(format!(
            "InvalidVolume.ZoneMismatch: {v} is in {}, {i} in {zone}",
            s.availability_zone
        )),
        Spec::Volume(s) => {
            s.attachment = Some(VolumeAttachment {
                instance: i.to_string(),
                device: device.to_string(),
            });
            Ok(())
        }
        _ => Err(format!("{v} is not a volume")),
    })
}

impl RefCloud {
    /// Detaches every volume attached to `instance`, as EC2 does when it
    /// terminates (volumes attached after launch outlive it).
    pub fn detach_volumes_of(&mut self, instance: &str) {
        let attached: Vec<ObservedResource> = self
            .state
            .iter()
            .filter(|r| {
                matches!(&r.spec, Spec::Volume(v)
                    if v.attachment.as_ref().is_some_and(|a| a.instance == instance))
            })
            .cloned()
            .collect();
        for mut r in attached {
            if let Spec::Volume(v) = &mut r.spec {
                v.attachment = None;
            }
            self.state.insert(r);
        }
    }
}
