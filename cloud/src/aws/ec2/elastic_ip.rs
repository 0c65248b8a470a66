//! Elastic IP addresses through EC2, in the VPC domain. `DescribeAddresses`
//! has no pages: one tag-filtered call shows every owned address, with its
//! association (what holds it is the observed `association_ids`).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::DomainType;
use canon_model::{Action, ElasticIpSpec, ObservedResource, ResourceKind, Spec};

use super::{Call, Ec2};
use crate::aws::convert::{tag_specs, tags_from};
use crate::aws::missing;
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::ElasticIp;

/// Sends the call of one address action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::AllocateAddress { tags } => {
            let resp = call
                .send(|| {
                    client
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let a = resp
                .allocation_id()
                .ok_or_else(|| missing("AllocationId"))?;
            Ok(Outcome::created(a, "address"))
        }
        Action::DisassociateAddress { association_id } => {
            call.send(|| {
                client
                    .disassociate_address()
                    .association_id(association_id)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "disassociated {association_id}"
            )]))
        }
        Action::ReleaseAddress { allocation } => {
            let a = id(allocation)?;
            call.send(|| client.release_address().allocation_id(a).send())
                .await?;
            Ok(Outcome::changed([format!("released {a}")]))
        }
        _ => Err(misrouted(action)),
    }
}

super::find_owned_by_tag!(describe_addresses, addresses, allocation_id);

/// Every owned address in the VPC domain, in one call, with what holds it.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    let domain = aws_sdk_ec2::types::Filter::builder()
        .name("domain")
        .values("vpc")
        .build();
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_addresses()
                .set_filters(Some(ec2.selection()))
                .filters(domain.clone())
                .set_allocation_ids(ec2.asked_ids())
                .send()
        })
        .await?;
    let mut out = Vec::new();
    for a in resp.addresses() {
        let id = a.allocation_id().ok_or_else(|| missing("AllocationId"))?;
        let mut association_ids = BTreeMap::new();
        if let Some(association) = a.association_id() {
            let holder = a
                .instance_id()
                .or(a.network_interface_id())
                .unwrap_or(association);
            association_ids.insert(holder.to_string(), association.to_string());
        }
        out.push(ObservedResource {
            cloud_id: id.to_string(),
            region: ec2.scope.region.clone(),
            spec: Spec::ElasticIp(ElasticIpSpec {
                tags: tags_from(a.tags()),
            }),
            association_ids,
            pending: false,
            life: None,
        });
    }
    Ok(out)
}
