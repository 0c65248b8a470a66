//! NAT gateways through EC2. `DescribeNatGateways` takes its filters as
//! `Filter` (not `Filters`), so its describes are written here rather than
//! with the shared macros. Observation asks for the gateways that still
//! exist (`pending`, `available`, `deleting`): the first two are the
//! observed gateways (a `pending` one marked so, for the routes that wait
//! for it); every one of them, `deleting` included, still holds its
//! address, which the address observation must not show as an association
//! Canon could end. A `failed` gateway is gone to Canon (EC2 deletes it
//! within the hour), so the next pass makes a new one.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{ConnectivityType, Filter, NatGatewayState};
use canon_model::{Action, NatGatewaySpec, ObservedResource, ResourceKind, Spec};

use super::{Call, Ec2};
use crate::aws::convert::{carries, owned_pair, owners_filter, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{gather_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::NatGateway;

/// Sends the call of one NAT-gateway action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateNatGateway {
            subnet,
            allocation,
            tags,
        } => {
            let s = id(subnet)?;
            let a = allocation.as_ref().map(id).transpose()?;
            let connectivity = if a.is_some() {
                ConnectivityType::Public
            } else {
                ConnectivityType::Private
            };
            let resp = call
                .send(|| {
                    client
                        .create_nat_gateway()
                        .subnet_id(s)
                        .set_allocation_id(a.map(String::from))
                        .connectivity_type(connectivity.clone())
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let n = resp
                .nat_gateway()
                .and_then(|g| g.nat_gateway_id())
                .ok_or_else(|| missing("NatGatewayId"))?;
            Ok(Outcome::created(n, "NAT gateway"))
        }
        Action::DeleteNatGateway { nat_gateway } => {
            let n = id(nat_gateway)?;
            call.send(|| client.delete_nat_gateway().nat_gateway_id(n).send())
                .await?;
            Ok(Outcome::changed([format!("deleting {n}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// The states in which a gateway still exists.
fn states(with_deleting: bool) -> Filter {
    let mut f = Filter::builder()
        .name("state")
        .values("pending")
        .values("available");
    if with_deleting {
        f = f.values("deleting");
    }
    f.build()
}

/// The live gateways carrying an ownership tag among `owners`, as (owner,
/// id) (the look-up before creates: a `failed` or deleted gateway is not
/// one).
pub(in crate::aws) async fn find_owned(
    ec2: &Ec2<'_>,
    owners: &[String],
) -> Result<Vec<(String, String)>, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_nat_gateways()
                .filter(owners_filter(owners))
                .filter(states(false))
                .send()
        })
        .await?;
    Ok(resp
        .nat_gateways()
        .iter()
        .filter(|g| live(g))
        .filter_map(|g| owned_pair(g.tags(), owners, g.nat_gateway_id()))
        .collect())
}

/// What one observation of NAT gateways found: the gateways, and the
/// addresses that gateways (deleting ones too) hold.
#[derive(Default)]
pub(in crate::aws) struct Seen {
    pub gateways: Vec<ObservedResource>,
    pub held: BTreeSet<String>,
}

/// Every owned gateway that still exists, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Seen, CloudError> {
    gather_pages(|mut seen: Seen, token| async move {
        let resp = ec2
            .describe(KIND, || {
                ec2.client
                    .describe_nat_gateways()
                    .set_filter(Some(ec2.selection()))
                    .filter(states(true))
                    .set_nat_gateway_ids(ec2.asked_ids())
                    .set_max_results(ec2.page_limit(KIND))
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        // moto ignores tag filters here: keep only what Canon owns (an
        // observation's selection).
        for g in resp
            .nat_gateways()
            .iter()
            .filter(|g| !ec2.owned_only() || carries(g.tags(), None))
        {
            seen.held.extend(
                g.nat_gateway_addresses()
                    .iter()
                    .filter_map(|a| a.allocation_id().map(String::from)),
            );
            if live(g) {
                seen.gateways.push(observed(ec2, g)?);
            }
        }
        Ok((seen, next(resp.next_token())))
    })
    .await
}

/// `pending` or `available`.
fn live(g: &aws_sdk_ec2::types::NatGateway) -> bool {
    matches!(
        g.state(),
        Some(NatGatewayState::Pending) | Some(NatGatewayState::Available)
    )
}

/// One described gateway in Canon's terms: its subnet, the primary
/// address of a public one, and whether it is still `pending`.
fn observed(
    ec2: &Ec2<'_>,
    g: &aws_sdk_ec2::types::NatGateway,
) -> Result<ObservedResource, CloudError> {
    let id = g.nat_gateway_id().ok_or_else(|| missing("NatGatewayId"))?;
    let public = g.connectivity_type() != Some(&ConnectivityType::Private);
    let allocation = public
        .then(|| {
            g.nat_gateway_addresses()
                .iter()
                .find(|a| a.is_primary().unwrap_or(true))
                .and_then(|a| a.allocation_id())
                .map(String::from)
        })
        .flatten();
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::NatGateway(NatGatewaySpec {
            subnet: g
                .subnet_id()
                .ok_or_else(|| missing("SubnetId"))?
                .to_string(),
            allocation,
            tags: tags_from(g.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: g.state() == Some(&NatGatewayState::Pending),
        life: None,
    })
}
