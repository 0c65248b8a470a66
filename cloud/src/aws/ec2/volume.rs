//! EBS volumes through EC2. A create takes the request's client token.
//! Volumes being deleted, deleted or failed are gone as far as Canon is
//! concerned; an attachment that is attaching or attached counts, one that
//! is detaching does not (it ends by itself, and an attach made meanwhile
//! is refused and retried).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Volume, VolumeAttachmentState, VolumeType};
use canon_model::{Action, ObservedResource, ResourceKind, Spec, VolumeAttachment, VolumeSpec};

use super::{Call, Ec2};
use crate::aws::convert::{tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Volume;

/// An `i32` parameter EC2 takes for a `u32` Canon declares (the language
/// bounds sizes and IOPS far below `i32::MAX`).
fn int(value: u32, name: &str) -> Result<i32, CloudError> {
    i32::try_from(value).map_err(|_| {
        CloudError::terminal(
            "InvalidParameterValue",
            format!("{name} {value} is too large"),
        )
    })
}

/// Sends the call of one volume action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateVolume {
            availability_zone,
            size_gib,
            volume_type,
            iops,
            encrypted,
            tags,
        } => {
            let size = int(*size_gib, "Size")?;
            let iops = iops.map(|i| int(i, "Iops")).transpose()?;
            let resp = call
                .send(|| {
                    client
                        .create_volume()
                        .availability_zone(availability_zone)
                        .size(size)
                        .volume_type(VolumeType::from(volume_type.as_str()))
                        .set_iops(iops)
                        .encrypted(*encrypted)
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let v = resp.volume_id().ok_or_else(|| missing("VolumeId"))?;
            Ok(Outcome::created(v, "volume"))
        }
        Action::ModifyVolume {
            volume,
            size_gib,
            volume_type,
            iops,
        } => {
            let v = id(volume)?;
            let size = int(*size_gib, "Size")?;
            let iops = iops.map(|i| int(i, "Iops")).transpose()?;
            call.send(|| {
                client
                    .modify_volume()
                    .volume_id(v)
                    .size(size)
                    .volume_type(VolumeType::from(volume_type.as_str()))
                    .set_iops(iops)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "modified {v}: {size_gib} GiB {volume_type}"
            )]))
        }
        Action::AttachVolume {
            volume,
            instance,
            device,
        } => {
            let (v, i) = (id(volume)?, id(instance)?);
            call.send(|| {
                client
                    .attach_volume()
                    .volume_id(v)
                    .instance_id(i)
                    .device(device)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "attached {v} to {i} as {device}"
            )]))
        }
        Action::DetachVolume { volume, instance } => {
            let (v, i) = (id(volume)?, id(instance)?);
            call.send(|| client.detach_volume().volume_id(v).instance_id(i).send())
                .await?;
            Ok(Outcome::changed([format!("detached {v} from {i}")]))
        }
        Action::DeleteVolume { volume } => {
            let v = id(volume)?;
            call.send(|| client.delete_volume().volume_id(v).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {v}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// Every owned volume that is not going, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(
            ec2,
            describe_volumes,
            set_volume_ids,
            token,
            Filter::builder()
                .name("status")
                .values("creating")
                .values("available")
                .values("in-use")
                .build(),
        )
        .await?;
        for v in resp.volumes() {
            out.push(observed(ec2, v)?);
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// One described volume as Canon sees it.
fn observed(ec2: &Ec2<'_>, v: &Volume) -> Result<ObservedResource, CloudError> {
    let id = v.volume_id().ok_or_else(|| missing("VolumeId"))?;
    let attachment = v
        .attachments()
        .iter()
        .filter(|a| {
            matches!(
                a.state(),
                Some(VolumeAttachmentState::Attaching | VolumeAttachmentState::Attached)
            )
        })
        .find_map(|a| {
            Some(VolumeAttachment {
                instance: a.instance_id()?.to_string(),
                device: a.device()?.to_string(),
            })
        });
    let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::Volume(VolumeSpec {
            availability_zone: v.availability_zone().unwrap_or("").to_string(),
            size_gib: count(v.size()).unwrap_or(0),
            volume_type: v
                .volume_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            iops: count(v.iops()),
            encrypted: v.encrypted().unwrap_or(false),
            attachment,
            tags: tags_from(v.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: None,
    })
}

/// An attach of volume `v` to instance `i` as `device` refused with `e`
/// (the volume is in use): done if that is the attachment EC2 shows (an
/// earlier try of the same request went through), else `e`.
pub(in crate::aws) async fn attached_already(
    ec2: &Ec2<'_>,
    v: &str,
    i: &str,
    device: &str,
    e: CloudError,
) -> Result<Outcome, CloudError> {
    let resp = ec2
        .describe(KIND, || ec2.client.describe_volumes().volume_ids(v).send())
        .await?;
    let attached = resp
        .volumes()
        .iter()
        .flat_map(|x| x.attachments())
        .any(|a| a.instance_id() == Some(i) && a.device() == Some(device));
    if attached {
        Ok(Outcome::already_done(
            None,
            format!("{v} already attached to {i} as {device}"),
        ))
    } else {
        Err(e)
    }
}
