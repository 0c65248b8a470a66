//! Simulated EBS volumes: created in one of the region's zones with a
//! client token, each type within EC2's size and IOPS bounds (gp3 and gp2
//! show their default IOPS when none are asked for); grown, never shrunk;
//! attached to one live instance of their zone at a time, on a device that
//! instance does not already use; deleted only once detached (EC2's
//! `VolumeInUse`). Detaching is immediate here; terminating an instance
//! detaches its volumes (`detach_all`).

use canon_model::volume_type::{gp2_iops, volume_shape};
use canon_model::{Action, CloudRef, ObservedSpec, ResourceKind, Spec, VolumeAttachment};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::tags::check_tags;
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Volume;

/// A stored volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Vol {
    pub meta: Meta,
    pub zone: String,
    pub size_gib: u32,
    pub volume_type: String,
    /// Provisioned or default IOPS (`None` for the types that have none).
    pub iops: Option<u32>,
    pub encrypted: bool,
    /// The instance it is attached to, and the device.
    pub attachment: Option<(String, String)>,
}

impl Vol {
    /// The volume as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::Volume(canon_model::VolumeSpec {
            availability_zone: self.zone.clone(),
            size_gib: self.size_gib,
            volume_type: self.volume_type.clone(),
            iops: self.iops,
            encrypted: self.encrypted,
            attachment: self
                .attachment
                .as_ref()
                .map(|(instance, device)| VolumeAttachment {
                    instance: instance.clone(),
                    device: device.clone(),
                }),
            tags: self.meta.tags.clone(),
        })
    }
}

/// Applies one volume action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateVolume { .. } => create(region, action, call),
        Action::ModifyVolume {
            volume,
            size_gib,
            volume_type,
            iops,
        } => modify(region, volume, *size_gib, volume_type, *iops),
        Action::AttachVolume {
            volume,
            instance,
            device,
        } => attach(region, volume, instance, device, call.timing.now),
        Action::DetachVolume { volume, instance } => detach(region, volume, instance),
        Action::DeleteVolume { volume } => delete(region, volume),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let Action::CreateVolume {
        availability_zone,
        size_gib,
        volume_type,
        iops,
        encrypted,
        tags,
    } = action
    else {
        return Err(misrouted(action));
    };
    check_tags(tags)?;
    let fingerprint = format!("{action:?}");
    if let Some(replayed) = region.replay(call.token, &fingerprint)? {
        return Ok(replayed);
    }
    if !region.has_zone(availability_zone) {
        return Err(err(
            "InvalidParameterValue",
            format!("Invalid availability zone: [{availability_zone}]"),
        ));
    }
    let iops = check_shape(volume_type, *size_gib, *iops)?;
    let rid = new_id(call.rng, "vol");
    region.vols.insert(
        rid.clone(),
        Vol {
            meta: Meta::new(tags, call.timing.visible_at),
            zone: availability_zone.clone(),
            size_gib: *size_gib,
            volume_type: volume_type.clone(),
            iops,
            encrypted: *encrypted,
            attachment: None,
        },
    );
    region.remember_token(call.token, fingerprint, &rid);
    Ok(Applied::mutated(
        Outcome::created(&rid, "volume"),
        Some(rid),
    ))
}

/// EC2's bounds on a volume of `volume_type`: its size in GiB, and the
/// IOPS it may (io1, io2, gp3) or may not be given; returns the IOPS a
/// describe shows.
fn check_shape(
    volume_type: &str,
    size_gib: u32,
    iops: Option<u32>,
) -> Result<Option<u32>, CloudError> {
    let Some(shape) = volume_shape(volume_type) else {
        return Err(err(
            "InvalidParameterValue",
            format!("Value ({volume_type}) for parameter volumeType is invalid."),
        ));
    };
    let (lo, hi) = (shape.size_gib_min, shape.size_gib_max);
    if !(lo..=hi).contains(&size_gib) {
        return Err(err(
            "InvalidParameterValue",
            format!("Volume of {size_gib}GiB is out of range for {volume_type}: {lo} to {hi} GiB."),
        ));
    }
    match (shape.iops, iops) {
        (None, Some(_)) => Err(err(
            "InvalidParameterCombination",
            format!("The parameter iops is not supported for {volume_type} volumes."),
        )),
        (Some(r), Some(i)) if !(r.min..=r.max).contains(&i) => Err(err(
            "InvalidParameterValue",
            format!(
                "Volume iops of {i} is out of range for {volume_type}: {} to {}.",
                r.min, r.max
            ),
        )),
        (Some(_), Some(i)) => Ok(Some(i)),
        (Some(r), None) => r.default.map(Some).ok_or_else(|| {
            err(
                "MissingParameter",
                format!("The request must contain the parameter iops for {volume_type} volumes."),
            )
        }),
        (None, None) if volume_type == "gp2" => Ok(Some(gp2_iops(size_gib))),
        (None, None) => Ok(None),
    }
}

fn modify(
    region: &mut RegionState,
    volume: &CloudRef,
    size_gib: u32,
    volume_type: &str,
    iops: Option<u32>,
) -> Result<Applied, CloudError> {
    let v = id(volume)?.to_string();
    let vol = region.vols.get_mut(&v).ok_or_else(|| not_found(KIND, &v))?;
    if size_gib < vol.size_gib {
        return Err(err(
            "InvalidParameterValue",
            format!(
                "New size cannot be smaller than existing size ({} GiB).",
                vol.size_gib
            ),
        ));
    }
    vol.iops = check_shape(volume_type, size_gib, iops)?;
    vol.size_gib = size_gib;
    vol.volume_type = volume_type.to_string();
    Ok(Applied::mutated(
        changed(format!("modified {v}: {size_gib} GiB {volume_type}")),
        Some(v),
    ))
}

fn attach(
    region: &mut RegionState,
    volume: &CloudRef,
    instance: &CloudRef,
    device: &str,
    now: u64,
) -> Result<Applied, CloudError> {
    let (v, i) = (id(volume)?.to_string(), id(instance)?.to_string());
    let inst = region
        .instances
        .get(&i)
        .ok_or_else(|| not_found(ResourceKind::Instance, &i))?;
    if !inst.state.live(now) {
        return Err(err(
            "IncorrectState",
            format!("Instance '{i}' is not 'running'."),
        ));
    }
    let zone = region.subnet(&inst.subnet)?.az.clone();
    let vol = region.vols.get(&v).ok_or_else(|| not_found(KIND, &v))?;
    if let Some((holder, _)) = &vol.attachment {
        return Err(err(
            "VolumeInUse",
            format!("{v} is already attached to an instance ({holder})"),
        ));
    }
    if vol.zone != zone {
        return Err(err(
            "InvalidVolume.ZoneMismatch",
            format!("The volume '{v}' is not in the same availability zone as instance '{i}'"),
        ));
    }
    let taken = region
        .vols
        .values()
        .any(|o| o.attachment.as_ref() == Some(&(i.clone(), device.to_string())));
    if taken {
        return Err(err(
            "InvalidParameterValue",
            format!("Attachment point {device} is already in use"),
        ));
    }
    if let Some(vol) = region.vols.get_mut(&v) {
        vol.attachment = Some((i.clone(), device.to_string()));
    }
    Ok(Applied::mutated(
        changed(format!("attached {v} to {i} as {device}")),
        Some(v),
    ))
}

fn detach(
    region: &mut RegionState,
    volume: &CloudRef,
    instance: &CloudRef,
) -> Result<Applied, CloudError> {
    let (v, i) = (id(volume)?.to_string(), id(instance)?.to_string());
    let vol = region.vols.get_mut(&v).ok_or_else(|| not_found(KIND, &v))?;
    match &vol.attachment {
        None => Err(err(
            "IncorrectState",
            format!("Volume '{v}' is in the 'available' state."),
        )),
        Some((holder, _)) if *holder != i => Err(err(
            "InvalidAttachment.NotFound",
            format!("The volume '{v}' is not attached to instance '{i}'"),
        )),
        Some(_) => {
            vol.attachment = None;
            Ok(Applied::mutated(
                changed(format!("detached {v} from {i}")),
                Some(v),
            ))
        }
    }
}

fn delete(region: &mut RegionState, volume: &CloudRef) -> Result<Applied, CloudError> {
    let v = id(volume)?.to_string();
    let vol = region.vols.get(&v).ok_or_else(|| not_found(KIND, &v))?;
    if let Some((holder, _)) = &vol.attachment {
        return Err(err(
            "VolumeInUse",
            format!("Volume {v} is currently attached to {holder}"),
        ));
    }
    region.vols.remove(&v);
    Ok(Applied::mutated(changed(format!("deleted {v}")), Some(v)))
}

/// Detaches every volume attached to `instance` (EC2 does as it
/// terminates; volumes attached after launch outlive it).
pub(crate) fn detach_all(region: &mut RegionState, instance: &str) {
    for vol in region.vols.values_mut() {
        if vol.attachment.as_ref().is_some_and(|(i, _)| i == instance) {
            vol.attachment = None;
        }
    }
}
