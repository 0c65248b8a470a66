//! VPC peering connections through EC2, within one account and region. A
//! create takes no client token, so the look-up by ownership tag comes
//! first; it is `pending-acceptance` until `AcceptVpcPeeringConnection`,
//! then `provisioning` briefly, then `active`. A `deleted`, `rejected`,
//! `expired` or `failed` connection is gone to Canon (EC2 keeps showing it
//! for a while): observation and the look-up keep the live states only,
//! checked here as well as filtered, and mark one that is not `active`
//! pending (routes through it wait); one still `pending-acceptance` is
//! observed unaccepted, which the planner accepts again.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, VpcPeeringConnection, VpcPeeringConnectionStateReasonCode as Code,
};
use canon_model::{Action, ObservedResource, ResourceKind, Spec, VpcPeeringConnectionSpec};

use super::{Call, Ec2};
use crate::aws::convert::{carries, owned_pair, owners_filter, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::VpcPeeringConnection;

/// The states in which a connection still exists.
const LIVE: [&str; 4] = [
    "initiating-request",
    "pending-acceptance",
    "provisioning",
    "active",
];

/// Sends the call of one peering-connection action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateVpcPeeringConnection {
            vpc,
            peer_vpc,
            tags,
        } => {
            let (v, p) = (id(vpc)?, id(peer_vpc)?);
            let resp = call
                .send(|| {
                    client
                        .create_vpc_peering_connection()
                        .vpc_id(v)
                        .peer_vpc_id(p)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let c = resp
                .vpc_peering_connection()
                .and_then(|c| c.vpc_peering_connection_id())
                .ok_or_else(|| missing("VpcPeeringConnectionId"))?;
            Ok(Outcome::created(c, "VPC peering connection"))
        }
        Action::AcceptVpcPeeringConnection {
            vpc_peering_connection,
        } => {
            let c = id(vpc_peering_connection)?;
            call.send(|| {
                client
                    .accept_vpc_peering_connection()
                    .vpc_peering_connection_id(c)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("accepted {c}")]))
        }
        Action::DeleteVpcPeeringConnection {
            vpc_peering_connection,
        } => {
            let c = id(vpc_peering_connection)?;
            call.send(|| {
                client
                    .delete_vpc_peering_connection()
                    .vpc_peering_connection_id(c)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!("deleted {c}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// The filter on the live states.
fn live_filter() -> Filter {
    let mut f = Filter::builder().name("status-code");
    for s in LIVE {
        f = f.values(s);
    }
    f.build()
}

/// A connection's status code, if EC2 gave one.
fn code(c: &VpcPeeringConnection) -> Option<&Code> {
    c.status().and_then(|s| s.code())
}

/// Whether it still exists (a live state).
fn live(c: &VpcPeeringConnection) -> bool {
    code(c).is_some_and(|s| LIVE.contains(&s.as_str()))
}

/// The live connections carrying an ownership tag among `owners`, as
/// (owner, id).
pub(in crate::aws) async fn find_owned(
    ec2: &Ec2<'_>,
    owners: &[String],
) -> Result<Vec<(String, String)>, CloudError> {
    let resp = ec2
        .describe(KIND, || {
            ec2.client
                .describe_vpc_peering_connections()
                .filters(owners_filter(owners))
                .filters(live_filter())
                .send()
        })
        .await?;
    Ok(resp
        .vpc_peering_connections()
        .iter()
        .filter(|c| live(c))
        .filter_map(|c| owned_pair(c.tags(), owners, c.vpc_peering_connection_id()))
        .collect())
}

/// Every owned live connection, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(
            ec2,
            describe_vpc_peering_connections,
            set_vpc_peering_connection_ids,
            token,
            live_filter()
        )
        .await?;
        for c in resp.vpc_peering_connections() {
            if !live(c) || (ec2.owned_only() && !carries(c.tags(), None)) {
                continue;
            }
            out.push(observed(ec2, c)?);
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// One described connection in Canon's terms.
fn observed(ec2: &Ec2<'_>, c: &VpcPeeringConnection) -> Result<ObservedResource, CloudError> {
    let id = c
        .vpc_peering_connection_id()
        .ok_or_else(|| missing("VpcPeeringConnectionId"))?;
    let vpc = c
        .requester_vpc_info()
        .and_then(|i| i.vpc_id())
        .ok_or_else(|| missing("RequesterVpcInfo.VpcId"))?;
    let peer_vpc = c
        .accepter_vpc_info()
        .and_then(|i| i.vpc_id())
        .ok_or_else(|| missing("AccepterVpcInfo.VpcId"))?;
    let status = code(c);
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::VpcPeeringConnection(VpcPeeringConnectionSpec {
            vpc: vpc.to_string(),
            peer_vpc: peer_vpc.to_string(),
            accepted: status != Some(&Code::PendingAcceptance),
            tags: tags_from(c.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: status != Some(&Code::Active),
        life: None,
    })
}
