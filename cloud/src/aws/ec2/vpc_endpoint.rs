//! VPC endpoints through EC2, gateway (S3 and DynamoDB) and interface. A
//! create takes the request's client token, the type, the gateway's route
//! tables or the interface's subnets, groups and private DNS, and the
//! policy; all of those change with one `ModifyVpcEndpoint` (the policy
//! by `PolicyDocument`, or `ResetPolicy` to EC2's default); a delete is `DeleteVpcEndpoints` of one
//! id, whose refusals come back as unsuccessful items (made errors here,
//! so that a `.NotFound` one counts as done). A `deleted` or `deleting`
//! endpoint is gone to Canon (EC2 and moto keep showing it for a while):
//! observation keeps the live states only. The prefix-list routes EC2 adds
//! to the tables belong to the endpoint; the route tables' observation
//! leaves them out (`route_table::observed`).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{State, VpcEndpoint, VpcEndpointType};
use canon_model::{
    Action, CloudRef, EndpointService, EndpointType, ObservedResource, ResourceKind, Spec,
    VpcEndpointSpec,
};

use super::{Call, Ec2};
use crate::aws::convert::{carries, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::{misrouted, BAD_RESPONSE};
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::VpcEndpoint;

/// The cloud ids of `refs`, as the SDK takes them.
fn ids(refs: &BTreeSet<CloudRef>) -> Result<Vec<String>, CloudError> {
    refs.iter().map(|t| id(t).map(String::from)).collect()
}

/// A list parameter, sent only when it has members.
fn some(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// `CreateVpcEndpoint` of the action's endpoint.
async fn create(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let Action::CreateVpcEndpoint {
        vpc,
        service,
        endpoint_type,
        route_tables,
        subnets,
        security_groups,
        private_dns,
        policy,
        tags,
    } = action
    else {
        return Err(misrouted(action));
    };
    let client = call.ec2.client;
    let v = id(vpc)?;
    let (tables, subnets, groups) = (ids(route_tables)?, ids(subnets)?, ids(security_groups)?);
    let interface = *endpoint_type == EndpointType::Interface;
    let name = service.service_name(&call.ec2.scope.region);
    let resp = call
        .send(|| {
            let kind = if interface {
                VpcEndpointType::Interface
            } else {
                VpcEndpointType::Gateway
            };
            client
                .create_vpc_endpoint()
                .vpc_id(v)
                .service_name(&name)
                .vpc_endpoint_type(kind)
                .set_route_table_ids((!interface).then(|| tables.clone()))
                .set_subnet_ids(some(&subnets))
                .set_security_group_ids(some(&groups))
                .set_private_dns_enabled(interface.then_some(*private_dns))
                .set_policy_document(policy.clone())
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

/// One `ModifyVpcEndpoint` of everything the action changes.
async fn modify(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let Action::ModifyVpcEndpoint {
        vpc_endpoint,
        add_route_tables,
        remove_route_tables,
        add_subnets,
        remove_subnets,
        add_security_groups,
        remove_security_groups,
        private_dns,
        policy,
        reset_policy,
    } = action
    else {
        return Err(misrouted(action));
    };
    let client = call.ec2.client;
    let e = id(vpc_endpoint)?;
    let add = (
        ids(add_route_tables)?,
        ids(add_subnets)?,
        ids(add_security_groups)?,
    );
    let plain = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    let remove = (
        plain(remove_route_tables),
        plain(remove_subnets),
        plain(remove_security_groups),
    );
    call.send(|| {
        client
            .modify_vpc_endpoint()
            .vpc_endpoint_id(e)
            .set_add_route_table_ids(some(&add.0))
            .set_remove_route_table_ids(some(&remove.0))
            .set_add_subnet_ids(some(&add.1))
            .set_remove_subnet_ids(some(&remove.1))
            .set_add_security_group_ids(some(&add.2))
            .set_remove_security_group_ids(some(&remove.2))
            .set_private_dns_enabled(*private_dns)
            .set_policy_document(policy.clone())
            .set_reset_policy(reset_policy.then_some(true))
            .send()
    })
    .await?;
    Ok(Outcome::changed([format!(
        "{e}: route tables +[{}] -[{}], subnets +[{}] -[{}], groups +[{}] -[{}]{}{}",
        add.0.join(","),
        remove.0.join(","),
        add.1.join(","),
        remove.1.join(","),
        add.2.join(","),
        remove.2.join(","),
        private_dns.map_or(String::new(), |on| format!(", private DNS {on}")),
        if policy.is_some() || *reset_policy {
            ", policy"
        } else {
            ""
        },
    )]))
}

/// Sends the call of one endpoint action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateVpcEndpoint { .. } => create(call, action).await,
        Action::ModifyVpcEndpoint { .. } => modify(call, action).await,
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
        let resp =
            super::describe_owned_page!(ec2, describe_vpc_endpoints, set_vpc_endpoint_ids, token)
                .await?;
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
/// not of a type and service Canon knows (Canon makes no other).
fn observed(ec2: &Ec2<'_>, e: &VpcEndpoint) -> Result<Option<ObservedResource>, CloudError> {
    let id = e
        .vpc_endpoint_id()
        .ok_or_else(|| missing("VpcEndpointId"))?;
    let endpoint_type = match e.vpc_endpoint_type() {
        None | Some(VpcEndpointType::Gateway) => EndpointType::Gateway,
        Some(VpcEndpointType::Interface) => EndpointType::Interface,
        Some(_) => return Ok(None),
    };
    let name = e.service_name().ok_or_else(|| missing("ServiceName"))?;
    let Some(service) = EndpointService::from_service_name(name, &ec2.scope.region) else {
        return Ok(None);
    };
    let interface = endpoint_type == EndpointType::Interface;
    Ok(Some(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: e.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
            service,
            endpoint_type,
            route_tables: e.route_table_ids().iter().cloned().collect(),
            subnets: e.subnet_ids().iter().cloned().collect(),
            security_groups: e
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from))
                .collect(),
            private_dns: interface && e.private_dns_enabled().unwrap_or(false),
            policy: e.policy_document().map(String::from),
            tags: tags_from(e.tags()),
        }),
        association_ids: BTreeMap::new(),
        pending: false,
        life: None,
    }))
}
