//! EBS volumes (`Canon.AWS.EC2.Volume`): lowering, which checks what EC2
//! would refuse — each type's size and IOPS bounds, a device name an
//! instance can take, and an attached instance in the volume's own zone —
//! and encoding.

use canon_model::volume_type::volume_shape;
use canon_model::{Spec, VolumeAttachment, VolumeSpec};
use canon_proto::canon::composition::v1 as pb;

use super::encoding::{tags_from_proto, tags_to_proto};
use super::lowering::{region_of, region_of_vpc, Lowered, Lowering};
use crate::value::Value;

/// The stdlib resource type this file lowers.
pub(super) const NAME: &str = "Volume";

pub(super) fn lower(l: &mut Lowering<'_, '_>) -> Lowered {
    let region = region_of(&l.field("region"));
    let availability_zone = zone(&region.to_string(), &l.field("availabilityZone"));
    let volume_type = match l.field("volumeType") {
        Value::Ctor(c) => c.name.to_lowercase(),
        _ => "gp3".to_string(),
    };
    let size_gib = l.field("size").as_int().unwrap_or(0);
    let iops = l.field("iops").as_int();
    check_shape(l, &volume_type, size_gib, iops);
    let attachment = attachment(l, &availability_zone);
    let spec = VolumeSpec {
        availability_zone,
        size_gib: u32::try_from(size_gib).unwrap_or(0),
        volume_type,
        iops: iops.and_then(|i| u32::try_from(i).ok()),
        encrypted: l.field("encrypted").as_bool().unwrap_or(false),
        attachment,
        tags: l.tags(),
    };
    Some((region, Spec::Volume(spec)))
}

/// The full zone name of zone letter `letter` (`AWS.A`) in `region`.
fn zone(region: &str, letter: &Value<'_>) -> String {
    match letter {
        Value::Ctor(c) => format!("{region}{}", c.name.to_lowercase()),
        _ => String::new(),
    }
}

/// Reports a size or IOPS EC2 refuses for `volume_type`.
fn check_shape(l: &mut Lowering<'_, '_>, volume_type: &str, size_gib: i64, iops: Option<i64>) {
    let Some(shape) = volume_shape(volume_type) else {
        l.error(format!("Invalid Volume: unknown volume type {volume_type}"));
        return;
    };
    let (size_min, size_max) = (shape.size_gib_min, shape.size_gib_max);
    if size_gib < i64::from(size_min) || size_gib > i64::from(size_max) {
        l.error(format!(
            "Invalid Volume: size {size_gib} GiB is out of range for {} volume, which is {size_min} to {size_max} GiB", a(volume_type)
        ));
    }
    match (shape.iops, iops) {
        (None, Some(i)) => l.error(format!(
            "Invalid Volume: {} volume takes no iops (it was given {i}); use Gp3, Io1 or Io2 for provisioned IOPS", a(volume_type)
        )),
        (Some(r), Some(i)) if i < i64::from(r.min) || i > i64::from(r.max) => l.error(format!(
            "Invalid Volume: iops {i} is out of range for {} volume, which takes {} to {}", a(volume_type), r.min, r.max
        )),
        (Some(r), None) if r.default.is_none() => l.error(format!(
            "Invalid Volume: {} volume needs its iops (provisioned IOPS); give iops", a(volume_type)
        )),
        _ => {}
    }
}

/// `volume_type` with its article: "a gp3", "an io1".
fn a(volume_type: &str) -> String {
    let article = if volume_type.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {volume_type}")
}

/// The volume's attachment, if it declares one: its instance must be in
/// the volume's zone, and its device a name EC2 lets a data volume take.
fn attachment(l: &mut Lowering<'_, '_>, volume_zone: &str) -> Option<VolumeAttachment<String>> {
    let a = l.field("attachment");
    if matches!(a, Value::None) {
        return None;
    }
    let instance = a.field("instance").unwrap_or(Value::None);
    let device = a
        .field("device")
        .and_then(|d| d.as_str().map(String::from))
        .unwrap_or_default();
    if !device_ok(&device) {
        l.error(format!(
            "Invalid Volume: device {device:?} is not one a data volume can take; use /dev/sdf to /dev/sdp (or /dev/xvdf to /dev/xvdp)"
        ));
    }
    let subnet = instance.field("subnet").unwrap_or(Value::None);
    let vpc = subnet.field("vpc").unwrap_or(Value::None);
    let instance_zone = zone(
        &region_of_vpc(&vpc).to_string(),
        &subnet.field("availabilityZone").unwrap_or(Value::None),
    );
    let path = l.path_of(&instance)?;
    // An instance in an external subnet has no zone Canon knows.
    if !instance_zone.is_empty() && instance_zone != volume_zone {
        l.error(format!(
            "Invalid Volume: it is in {volume_zone}, but its instance {path} is in {instance_zone}; a volume attaches only to an instance in its own availability zone"
        ));
    }
    Some(VolumeAttachment {
        instance: path,
        device,
    })
}

/// Whether `device` is a data volume's device name: `/dev/sd` or
/// `/dev/xvd`, then one letter from f to p.
fn device_ok(device: &str) -> bool {
    let letter = device
        .strip_prefix("/dev/sd")
        .or_else(|| device.strip_prefix("/dev/xvd"));
    matches!(letter.map(str::as_bytes), Some([b'f'..=b'p']))
}

pub(super) fn to_proto(s: &VolumeSpec<String>) -> pb::Volume {
    pb::Volume {
        availability_zone: s.availability_zone.clone(),
        size_gib: s.size_gib,
        volume_type: s.volume_type.clone(),
        iops: s.iops,
        encrypted: s.encrypted,
        attachment: s.attachment.as_ref().map(|a| pb::VolumeAttachment {
            instance: a.instance.clone(),
            device: a.device.clone(),
        }),
        tags: tags_to_proto(&s.tags),
    }
}

pub(super) fn from_proto(s: pb::Volume) -> Result<VolumeSpec<String>, String> {
    if s.size_gib == 0 {
        return Err(format!("volume in {} has no size", s.availability_zone));
    }
    Ok(VolumeSpec {
        availability_zone: s.availability_zone,
        size_gib: s.size_gib,
        volume_type: s.volume_type,
        iops: s.iops,
        encrypted: s.encrypted,
        attachment: s.attachment.map(|a| VolumeAttachment {
            instance: a.instance,
            device: a.device,
        }),
        tags: tags_from_proto(s.tags),
    })
}

#[cfg(test)]
mod tests {
    use super::device_ok;

    #[test]
    fn data_volumes_take_sdf_to_sdp() {
        for ok in ["/dev/sdf", "/dev/sdp", "/dev/xvdg"] {
            assert!(device_ok(ok), "{ok}");
        }
        for bad in ["/dev/sda1", "/dev/sde", "/dev/sdq", "/dev/sdff", "sdf", ""] {
            assert!(!device_ok(bad), "{bad}");
        }
    }
}
