//! EBS volumes and their attachment to an instance. A volume's zone and
//! encryption are fixed; its size, type and IOPS change in place through
//! one `ModifyVolume`, except that EC2 never shrinks a volume, so a smaller
//! declared size is a new volume. Its attachment (instance and device) is
//! ended and made again: a volume a console user detached is attached
//! again, one attached elsewhere is moved back.
//!
//! Declared IOPS of `None` leave them to EC2's default for the type (a gp3
//! volume shows 3000): observed IOPS are then not a difference.

use serde_json::json;

use super::{Changes, Params};
use crate::draft::{
    Draft, Going, Kept, STEP_ATTRIBUTES, STEP_CREATE, STEP_DELETE, STEP_DETACH, STEP_LINK,
    STEP_UNLINK,
};
use crate::{Action, CloudRef, Mutability, Ref, Resource, Tags, VolumeAttachment, VolumeSpec};

/// The properties of a volume and how each may change. `sizeGiB` grows in
/// place; a smaller size replaces the volume (`needs_replacement`).
pub(super) const PROPERTIES: &[(&str, Mutability)] = &[
    ("availabilityZone", Mutability::Replace),
    ("encrypted", Mutability::Replace),
    ("sizeGiB", Mutability::Mutable),
    ("volumeType", Mutability::Mutable),
    ("iops", Mutability::Mutable),
    ("attachment", Mutability::Mutable),
    ("tags", Mutability::Mutable),
];

pub(super) fn params(action: &Action, p: &mut Params) {
    match action {
        Action::CreateVolume {
            availability_zone,
            size_gib,
            volume_type,
            iops,
            encrypted,
            tags,
        } => {
            p.put("AvailabilityZone", json!(availability_zone));
            p.put("Encrypted", json!(encrypted));
            if let Some(iops) = iops {
                p.put("Iops", json!(iops));
            }
            p.put("Size", json!(size_gib));
            p.put("VolumeType", json!(volume_type));
            p.put_tags(tags);
        }
        Action::ModifyVolume {
            volume,
            size_gib,
            volume_type,
            iops,
        } => {
            if let Some(iops) = iops {
                p.put("Iops", json!(iops));
            }
            p.put("Size", json!(size_gib));
            p.put("VolumeId", volume.to_json());
            p.put("VolumeType", json!(volume_type));
        }
        Action::AttachVolume {
            volume,
            instance,
            device,
        } => {
            p.put("Device", json!(device));
            p.put("InstanceId", instance.to_json());
            p.put("VolumeId", volume.to_json());
        }
        Action::DetachVolume { volume, instance } => {
            p.put("InstanceId", instance.to_json());
            p.put("VolumeId", volume.to_json());
        }
        Action::DeleteVolume { volume } => p.put("VolumeId", volume.to_json()),
        // Another kind's action: `Request::params` sends it there.
        _ => {}
    }
}

pub(super) fn create(draft: &mut Draft<'_>, d: &Resource, s: &VolumeSpec<Ref>, tags: Tags) {
    let action = Action::CreateVolume {
        availability_zone: s.availability_zone.clone(),
        size_gib: s.size_gib,
        volume_type: s.volume_type.clone(),
        iops: s.iops,
        encrypted: s.encrypted,
        tags,
    };
    draft.apply(d, STEP_CREATE, None, action);
    if let Some(a) = &s.attachment {
        attach(draft, d, CloudRef::Pending(d.id), a);
    }
}

pub(super) fn update(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VolumeSpec<Ref>,
    have: &VolumeSpec<Ref>,
    raw: &VolumeSpec<String>,
) {
    if !performance_matches(want, have.size_gib, &have.volume_type, have.iops) {
        record_performance_drift(draft, k, want, have);
        let action = Action::ModifyVolume {
            volume: k.me.clone(),
            size_gib: want.size_gib,
            volume_type: want.volume_type.clone(),
            iops: want.iops,
        };
        draft.apply(k.d, STEP_ATTRIBUTES, Some("performance"), action);
    }
    if want.attachment == have.attachment {
        return;
    }
    let declared = want.attachment.as_ref().map(|a| describe(draft, a));
    let observed = have.attachment.as_ref().map(|a| describe(draft, a));
    draft.drift(k, "attachment", declared, observed);
    // An instance this plan terminates early has let go of the volume by
    // the time this runs (EC2 detaches a terminated instance's volumes).
    let gone = |a: &VolumeAttachment<String>| draft.early.contains(a.instance.as_str());
    if let Some(a) = have
        .attachment
        .as_ref()
        .filter(|_| !raw.attachment.as_ref().is_some_and(gone))
    {
        let action = Action::DetachVolume {
            volume: k.me.clone(),
            instance: draft.cref(&a.instance),
        };
        draft.apply(k.d, STEP_UNLINK, Some("detach"), action);
    }
    if let Some(a) = &want.attachment {
        attach(draft, k.d, k.me.clone(), a);
    }
}

fn attach(draft: &mut Draft<'_>, d: &Resource, volume: CloudRef, a: &VolumeAttachment<Ref>) {
    let action = Action::AttachVolume {
        volume,
        instance: draft.cref(&a.instance),
        device: a.device.clone(),
    };
    draft.apply(d, STEP_LINK, Some("attachment"), action);
}

fn record_performance_drift(
    draft: &mut Draft<'_>,
    k: &Kept<'_>,
    want: &VolumeSpec<Ref>,
    have: &VolumeSpec<Ref>,
) {
    if want.size_gib != have.size_gib {
        draft.drift_value(k, "sizeGiB", &want.size_gib, &have.size_gib);
    }
    if want.volume_type != have.volume_type {
        draft.drift_value(k, "volumeType", &want.volume_type, &have.volume_type);
    }
    if let Some(iops) = want.iops {
        if Some(iops) != have.iops {
            let observed = have.iops.map(|i| i.to_string());
            draft.drift(k, "iops", Some(iops.to_string()), observed);
        }
    }
}

/// Detaches the volume from whatever the cloud shows it attached to, then
/// deletes it (EC2 refuses to delete a volume in use; the delete is
/// retried until the detach has finished).
pub(super) fn delete(draft: &mut Draft<'_>, g: &Going<'_>, s: &VolumeSpec<String>) {
    if let Some(a) = &s.attachment {
        let action = Action::DetachVolume {
            volume: g.me.clone(),
            instance: CloudRef::Id(a.instance.clone()),
        };
        draft.delete(g, STEP_DETACH, Some("detach"), action);
    }
    let action = Action::DeleteVolume {
        volume: g.me.clone(),
    };
    draft.delete(g, STEP_DELETE, None, action);
}

pub(super) fn unchanged(draft: &Draft<'_>, w: &VolumeSpec<Ref>, h: &VolumeSpec<String>) -> bool {
    performance_matches(w, h.size_gib, &h.volume_type, h.iops)
        && match (&w.attachment, &h.attachment) {
            (None, None) => true,
            (Some(w), Some(h)) => w.device == h.device && draft.ref_eq(&w.instance, &h.instance),
            _ => false,
        }
}

/// Whether the declared size, type and IOPS are what the cloud shows
/// (undeclared IOPS are EC2's to choose).
fn performance_matches<R>(
    w: &VolumeSpec<R>,
    size_gib: u32,
    volume_type: &str,
    iops: Option<u32>,
) -> bool {
    w.size_gib == size_gib && w.volume_type == volume_type && (w.iops.is_none() || w.iops == iops)
}

pub(super) fn needs_replacement(w: &VolumeSpec<Ref>, h: &VolumeSpec<String>) -> bool {
    w.availability_zone != h.availability_zone
        || w.encrypted != h.encrypted
        || w.size_gib < h.size_gib
}

pub(super) fn replace_differences(w: &VolumeSpec<Ref>, h: &VolumeSpec<Ref>, out: &mut Changes) {
    out.compare(
        "availabilityZone",
        w.availability_zone.clone(),
        h.availability_zone.clone(),
    );
    out.compare(
        "encrypted",
        w.encrypted.to_string(),
        h.encrypted.to_string(),
    );
    if w.size_gib < h.size_gib {
        out.compare(
            "sizeGiB",
            format!("{} (EC2 cannot shrink a volume)", w.size_gib),
            h.size_gib.to_string(),
        );
    }
}

fn describe(draft: &Draft<'_>, a: &VolumeAttachment<Ref>) -> String {
    format!("{} as {}", draft.shown(&a.instance), a.device)
}
