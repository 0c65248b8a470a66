//! Internet gateways through EC2. An attach refused as already associated
//! is done if the gateway is attached to the VPC asked for.

use std::collections::BTreeMap;

use canon_model::{Action, InternetGatewaySpec, ObservedResource, ResourceKind, Spec};

use super::{Call, Ec2};
use crate::aws::convert::{tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::InternetGateway;

/// Sends the call of one internet-gateway action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateInternetGateway { tags } => {
            let resp = call
                .send(|| {
                    client
                        .create_internet_gateway()
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let i = resp
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .ok_or_else(|| missing("InternetGatewayId"))?;
            Ok(Outcome::created(i, "internet gateway"))
        }
        Action::AttachInternetGateway {
            internet_gateway,
            vpc,
        } => {
            let (i, v) = (id(internet_gateway)?, id(vpc)?);
            call.send(|| {
                client
                    .attach_internet_gateway()
                    .internet_gateway_id(i)
                    .vpc_id(v)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("attached {i} to {v}")]))
        }
        Action::DetachInternetGateway {
            internet_gateway,
            vpc,
        } => {
            let (i, v) = (id(internet_gateway)?, id(vpc)?);
            call.send(|| {
                client
                    .detach_internet_gateway()
                    .internet_gateway_id(i)
                    .vpc_id(v)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("detached {i} from {v}")]))
        }
        Action::DeleteInternetGateway { internet_gateway } => {
            let i = id(internet_gateway)?;
            call.send(|| {
                client
                    .delete_internet_gateway()
                    .internet_gateway_id(i)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("deleted {i}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// An attach of gateway `i` to VPC `v` refused with `e` (already
/// associated): done if EC2 shows that very attachment, else `e`.
pub(in crate::aws) async fn attached_already(
    ec2: &Ec2<'_>,
    i: &str,
    v: &str,
    e: CloudError,
) -> Result<Outcome, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_internet_gateways()
                .internet_gateway_ids(i)
                .send()
        })
        .await?;
    let attached = resp
        .internet_gateways()
        .iter()
        .flat_map(|g| g.attachments())
        .any(|a| a.vpc_id() == Some(v));
    if attached {
        Ok(Outcome::already_done(
            None,
            format!("{i} already attached to {v}"),
        ))
    } else {
        Err(e)
    }
}

super::find_owned_by_tag!(
    describe_internet_gateways,
    internet_gateways,
    internet_gateway_id
);

/// Every owned gateway, page by page, with the VPC it is attached to (an
/// attachment going away counts as none).
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(
            ec2,
            describe_internet_gateways,
            set_internet_gateway_ids,
            token
        )
        .await?;
        for g in resp.internet_gateways() {
            let id = g
                .internet_gateway_id()
                .ok_or_else(|| missing("InternetGatewayId"))?;
            let vpc = g
                .attachments()
                .iter()
                .find(|a| {
                    !matches!(
                        a.state().map(|s| s.as_str()),
                        Some("detaching") | Some("detached")
                    )
                })
                .and_then(|a| a.vpc_id())
                .map(String::from);
            out.push(ObservedResource {
                cloud_id: id.to_string(),
                region: ec2.scope.region.clone(),
                spec: Spec::InternetGateway(InternetGatewaySpec {
                    vpc,
                    tags: tags_from(g.tags()),
                }),
                association_ids: BTreeMap::new(),
                pending: false,
                life: None,
            });
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}
