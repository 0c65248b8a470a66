//! Gateway VPC endpoints (S3 and DynamoDB) through EC2. A create takes the
//! request's client token (`VpcEndpointType=Gateway`); its route tables
//! change with `ModifyVpcEndpoint`; a delete is `DeleteVpcEndpoints` of one
//! id, whose refusals come back as unsuccessful items (made errors here,
//! so that a `.NotFound` one counts as done). A `deleted` or `deleting`
//! endpoint is gone to Canon (EC2 and moto keep showing it for a while):
//! observation keeps the live states only. The prefix-list routes EC2 adds
//! to the tables belong to the endpoint; the route tables' observation
//! leaves them out (`route_table::observed`).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{State, VpcEndpoint, VpcEndpointType};
use canon_model::{Action, EndpointService, ObservedResource, ResourceKind, Spec, VpcEndpointSpec};

use super::{Call, Ec2};
use crate::aws::convert::{carries, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::{misrouted, BAD_RESPONSE};
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::VpcEndpoint;

/// Sends the call of one endpoint action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateVpcEndpoint {
            vpc,
            service,
            route_tables,
            tags,
        } => {
            let v = id(vpc)?;
            let tables = route_tables
                .iter()
                .map(|t| id(t).map(String::from))
                .collect::<Result<Vec<_>, _>>()?;
            let name = service.service_name(&call.ec2.scope.region);
            let resp = call
                .send(|| {
                    client
                        .create_vpc_endpoint()
                        .vpc_id(v)
                        .service_name(&name)
                        .vpc_endpoint_type(VpcEndpointType::Gateway)
                        .set_route_table_ids(Some(tables.clone()))
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let e = resp
                .vpc_endpoint()
                .and_then(|e| e.vpc_endpoint_id())
                .ok_or_else(|| missing("VpcEndpointId"))?;
            Ok(Outcome::created(e, "VPC endpoint"))
        }
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
        } => {
            let e = id(vpc_endpoint)?;
            let add = add_route_tables
                .iter()
                .map(|t| id(t).map(String::from))
                .collect::<Result<Vec<_>, _>>()?;
            let remove: Vec<String> = remove_route_tables.iter().cloned().collect();
            call.send(|| {
                client
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(e)
                    .set_add_route_table_ids((!add.is_empty()).then(|| add.clone()))
                    .set_remove_route_table_ids((!remove.is_empty()).then(|| remove.clone()))
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "{e}: route tables +[{}] -[{}]",
                add.join(","),
                remove.join(",")
            )]))
        }
        Action::DeleteVpcEndpoint { vpc_endpoint } => {
            let e = id(vpc_endpoint)?;
            let resp = call
                .send(|| client.delete_vpc_endpoints().vpc_endpoint_ids(e).send())
                .await?;
            if let Some(refused) = resp.unsuccessful().first() {
                let err = refused.error();
                let code = err.and_then(|x| x.code()).unwrap_or(BAD_RESPONSE);
                let message = err.and_then(|x| x.message()).unwrap_or("refused");
                return Err(CloudError::classified(call.request_type, code, message));
            }
            Ok(Outcome::changed([format!("deleted {e}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// The states in which an endpoint is gone, or going.
const GONE: [&str; 5] = ["deleted", "deleting", "failed", "expired", "rejected"];

/// Whether it still exists (neither `deleted` nor `deleting`, nor failed,
/// expired or rejected). EC2 (and moto) write the state in lower case,
/// which the SDK's `State` (`Deleted`, …) does not parse: the text is
/// compared, in either case.
fn live(e: &VpcEndpoint) -> bool {
    let state = e.state().map(State::as_str).unwrap_or_default();
    !GONE.iter().any(|g| g.eq_ignore_ascii_case(state))
}

/// Every owned live gateway endpoint, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(ec2, describe_vpc_endpoints, token).await?;
        for e in resp.vpc_endpoints() {
            if !live(e) || (ec2.owned_only() && !carries(e.tags(), None)) {
                continue;
            }
            if let Some(o) = observed(ec2, e)? {
                out.push(o);
            }
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// One described endpoint in Canon's terms; none for an endpoint that is
/// not a gateway to a service Canon knows (Canon makes no other).
fn observed(ec2: &Ec2<'_>, e: &VpcEndpoint) -> Result<Option<ObservedResource>, CloudError> {
    let id = e
        .vpc_endpoint_id()
        .ok_or_else(|| missing("VpcEndpointId"))?;
    if e.vpc_endpoint_type()
        .is_some_and(|t| *t != VpcEndpointType::Gateway)
    {
        return Ok(None);
    }
    let name = e.service_name().ok_or_else(|| missing("ServiceName"))?;
    let Some(service) = EndpointService::from_service_name(name, &ec2.scope.region) else {
        return Ok(None);
    };
    Ok(Some(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: e.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
            service,
            route_tables: e.route_table_ids().iter().cloned().collect(),
            tags: tags_from(e.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: None,
    }))
}
