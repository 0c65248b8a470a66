//! Tags through EC2, on any kind; and the repair of a create whose answer
//! lacks tags it was sent.

use aws_sdk_ec2::types::Tag;
use canon_model::{Action, Tags};

use super::{Call, Ec2};
use crate::aws::convert::{tags_from, tags_to};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

/// Sends the call of one tag action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateTags { resource, tags } => {
            let r = id(resource)?;
            call.send(|| {
                client
                    .create_tags()
                    .resources(r)
                    .set_tags(Some(tags_to(tags)))
                    .send()
            })
            .await?;
            Ok(Outcome::changed(
                tags.iter().map(|(k, v)| format!("tagged {r} {k}={v}")),
            ))
        }
        Action::DeleteTags { resource, keys } => {
            let r = id(resource)?;
            let tags: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
            call.send(|| {
                client
                    .delete_tags()
                    .resources(r)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
            Ok(Outcome::changed(
                keys.iter().map(|k| format!("untagged {r} {k}")),
            ))
        }
        _ => Err(misrouted(action)),
    }
}

/// Some EC2 emulators (moto's CreateDhcpOptions) ignore
/// `TagSpecifications`: if the create's answer lacks tags we sent, add
/// them with `CreateTags` so the ownership tag is never missing. Costs
/// nothing on EC2 itself, which answers with the tags.
pub(in crate::aws) async fn ensure_tags(
    ec2: &Ec2<'_>,
    resource: &str,
    wanted: &Tags,
    answered: &[Tag],
) -> Result<(), CloudError> {
    let have = tags_from(answered);
    if wanted.iter().all(|(k, v)| have.get(k) == Some(v)) {
        return Ok(());
    }
    ec2.call("CreateTags", "aws.ec2.create_tags", || {
        ec2.client
            .create_tags()
            .resources(resource)
            .set_tags(Some(tags_to(wanted)))
            .send()
    })
    .await?;
    Ok(())
}
