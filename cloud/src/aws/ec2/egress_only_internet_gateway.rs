//! Egress-only internet gateways through EC2: a create takes the request's
//! client token (so no look-up by ownership tag comes first); a described
//! gateway's VPC is its attachment's. Observation keeps only the gateways
//! that carry the ownership tag (which EC2's filter already did; moto
//! ignores it).

use std::collections::BTreeMap;

use canon_model::{Action, EgressOnlyInternetGatewaySpec, ObservedResource, ResourceKind, Spec};

use super::{Call, Ec2};
use crate::aws::convert::{carries, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::EgressOnlyInternetGateway;

/// Sends the call of one egress-only-gateway action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateEgressOnlyInternetGateway { vpc, tags } => {
            let v = id(vpc)?;
            let resp = call
                .send(|| {
                    client
                        .create_egress_only_internet_gateway()
                        .vpc_id(v)
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let g = resp
                .egress_only_internet_gateway()
                .and_then(|g| g.egress_only_internet_gateway_id())
                .ok_or_else(|| missing("EgressOnlyInternetGatewayId"))?;
            Ok(Outcome::created(g, "egress-only internet gateway"))
        }
        Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway,
        } => {
            let g = id(egress_only_internet_gateway)?;
            call.send(|| {
                client
                    .delete_egress_only_internet_gateway()
                    .egress_only_internet_gateway_id(g)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("deleted {g}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// Every owned gateway, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(
            ec2,
            describe_egress_only_internet_gateways,
            set_egress_only_internet_gateway_ids,
            token
        )
        .await?;
        for g in resp.egress_only_internet_gateways() {
            if !carries(g.tags(), None) {
                continue;
            }
            let id = g
                .egress_only_internet_gateway_id()
                .ok_or_else(|| missing("EgressOnlyInternetGatewayId"))?;
            let vpc = g
                .attachments()
                .iter()
                .find_map(|a| a.vpc_id())
                .ok_or_else(|| missing("Attachments.VpcId"))?;
            out.push(ObservedResource {
                cloud_id: id.to_string(),
                region: ec2.scope.region.clone(),
                spec: Spec::EgressOnlyInternetGateway(EgressOnlyInternetGatewaySpec {
                    vpc: vpc.to_string(),
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
