//! Subnets through EC2, with their IPv6 `/64` (in the describe's
//! association set, so observing it costs nothing more).

use aws_sdk_ec2::types::{SubnetCidrBlockStateCode, SubnetIpv6CidrBlockAssociation};
use canon_model::{
    Action, Ipv6Cidr, ObservedResource, ResourceKind, Spec, SubnetSpec, IPV6_ASSOCIATION,
};

use super::{Call, Ec2};
use crate::aws::convert::{bool_attr, cidr, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::Subnet;

/// Sends the call of one subnet action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateSubnet {
            vpc,
            cidr_block,
            availability_zone,
            ipv6_cidr_block,
            tags,
        } => {
            let v = id(vpc)?;
            let resp = call
                .send(|| {
                    client
                        .create_subnet()
                        .vpc_id(v)
                        .cidr_block(cidr_block.to_string())
                        .set_ipv6_cidr_block(ipv6_cidr_block.map(|b| b.to_string()))
                        .availability_zone(availability_zone)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let s = resp
                .subnet()
                .and_then(|s| s.subnet_id())
                .ok_or_else(|| missing("SubnetId"))?;
            Ok(Outcome::created(s, "subnet"))
        }
        Action::ModifySubnetAttribute {
            subnet,
            map_public_ip_on_launch,
        } => {
            let s = id(subnet)?;
            call.send(|| {
                client
                    .modify_subnet_attribute()
                    .subnet_id(s)
                    .map_public_ip_on_launch(bool_attr(*map_public_ip_on_launch))
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "set mapPublicIpOnLaunch of {s} to {map_public_ip_on_launch}"
            )]))
        }
        Action::AssociateSubnetCidrBlock {
            subnet,
            ipv6_cidr_block,
        } => {
            let s = id(subnet)?;
            call.send(|| {
                client
                    .associate_subnet_cidr_block()
                    .subnet_id(s)
                    .ipv6_cidr_block(ipv6_cidr_block.to_string())
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "associated {ipv6_cidr_block} with {s}"
            )]))
        }
        Action::DisassociateSubnetCidrBlock { association_id } => {
            call.send(|| {
                client
                    .disassociate_subnet_cidr_block()
                    .association_id(association_id)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "disassociated IPv6 block {association_id}"
            )]))
        }
        Action::DeleteSubnet { subnet } => {
            let s = id(subnet)?;
            call.send(|| client.delete_subnet().subnet_id(s).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {s}")]))
        }
        _ => Err(misrouted(action)),
    }
}

super::find_owned_by_tag!(describe_subnets, subnets, subnet_id);

/// Every owned subnet, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp =
            super::describe_owned_page!(ec2, describe_subnets, set_subnet_ids, token).await?;
        for s in resp.subnets() {
            let id = s.subnet_id().ok_or_else(|| missing("SubnetId"))?;
            let ipv6 = s.ipv6_cidr_block_association_set().iter().find(|a| live(a));
            out.push(ObservedResource {
                cloud_id: id.to_string(),
                region: ec2.scope.region.clone(),
                spec: Spec::Subnet(SubnetSpec {
                    vpc: s.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
                    cidr_block: cidr(s.cidr_block(), "CidrBlock")?,
                    availability_zone: s.availability_zone().unwrap_or("").to_string(),
                    map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
                    ipv6_index: None,
                    ipv6_cidr_block: ipv6
                        .and_then(|a| a.ipv6_cidr_block())
                        .and_then(|b| b.parse::<Ipv6Cidr>().ok()),
                    tags: tags_from(s.tags()),
                }),
                association_ids: ipv6
                    .and_then(|a| a.association_id())
                    .map(|a| (IPV6_ASSOCIATION.to_string(), a.to_string()))
                    .into_iter()
                    .collect(),
                pending: false,
                life: None,
            });
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// A `/64` the subnet has or is getting (one on its way out, or that
/// failed, is not).
fn live(a: &SubnetIpv6CidrBlockAssociation) -> bool {
    // A state EC2 does not send (moto writes a subnet's nested in
    // another, which reads as none) counts as the block's.
    !matches!(
        a.ipv6_cidr_block_state().and_then(|s| s.state()),
        Some(
            SubnetCidrBlockStateCode::Disassociating
                | SubnetCidrBlockStateCode::Disassociated
                | SubnetCidrBlockStateCode::Failing
                | SubnetCidrBlockStateCode::Failed
        )
    )
}
