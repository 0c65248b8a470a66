//! Route tables, their routes and subnet associations through EC2. A
//! create takes the request's client token. A route refused as existing is
//! done if it goes through the same gateway; an association refused as
//! existing is done (with its id) if it is with the table asked for.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::RouteOrigin;
use canon_model::{
    Action, Hop, IpCidr, ObservedResource, ResourceKind, Route, RouteTableSpec, Spec,
};

use super::{Call, Ec2};
use crate::aws::convert::{by_family, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::{misrouted, BAD_RESPONSE};
use crate::refs::id;
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::RouteTable;

/// Sets a route's table, destination (in the parameter of its family) and
/// target (in the parameter of its hop) on a create or a replace of a
/// route (the two builders share no trait).
macro_rules! route {
    ($builder:expr, $table:expr, $destination:expr, ($target:expr, $hop:expr)) => {{
        let (v4, v6) = by_family($destination);
        let b = $builder
            .route_table_id($table)
            .set_destination_cidr_block(v4)
            .set_destination_ipv6_cidr_block(v6);
        match $hop {
            Hop::InternetGateway => b.gateway_id($target),
            Hop::NatGateway => b.nat_gateway_id($target),
            Hop::EgressOnlyInternetGateway => b.egress_only_internet_gateway_id($target),
            Hop::Instance => b.instance_id($target),
            Hop::VpcPeeringConnection => b.vpc_peering_connection_id($target),
            Hop::NetworkInterface => b.network_interface_id($target),
        }
    }};
}

/// Sends the call of one route-table action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    let client = call.ec2.client;
    match action {
        Action::CreateRouteTable { vpc, tags } => {
            let v = id(vpc)?;
            let resp = call
                .send(|| {
                    client
                        .create_route_table()
                        .vpc_id(v)
                        .client_token(call.token)
                        .set_tag_specifications(tag_specs(KIND, tags))
                        .send()
                })
                .await?;
            let r = resp
                .route_table()
                .and_then(|t| t.route_table_id())
                .ok_or_else(|| missing("RouteTableId"))?;
            Ok(Outcome::created(r, "route table"))
        }
        Action::CreateRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => {
            let (r, g) = (id(route_table)?, id(gateway)?);
            call.send(|| route!(client.create_route(), r, destination, (g, hop)).send())
                .await?;
            Ok(Outcome::changed([format!(
                "route {destination} via {g} in {r}"
            )]))
        }
        Action::ReplaceRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => {
            let (r, g) = (id(route_table)?, id(gateway)?);
            call.send(|| route!(client.replace_route(), r, destination, (g, hop)).send())
                .await?;
            Ok(Outcome::changed([format!(
                "route {destination} via {g} in {r}"
            )]))
        }
        Action::DeleteRoute {
            route_table,
            destination,
        } => {
            let r = id(route_table)?;
            call.send(|| {
                let (v4, v6) = by_family(destination);
                client
                    .delete_route()
                    .route_table_id(r)
                    .set_destination_cidr_block(v4)
                    .set_destination_ipv6_cidr_block(v6)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "deleted route {destination} from {r}"
            )]))
        }
        Action::AssociateRouteTable {
            route_table,
            subnet,
        } => {
            let (r, s) = (id(route_table)?, id(subnet)?);
            let resp = call
                .send(|| {
                    client
                        .associate_route_table()
                        .route_table_id(r)
                        .subnet_id(s)
                        .send()
                })
                .await?;
            let a = resp
                .association_id()
                .ok_or_else(|| missing("AssociationId"))?;
            let mut o = Outcome::changed([format!("associated {s} with {r} ({a})")]);
            o.association_id = Some(a.to_string());
            Ok(o)
        }
        Action::DisassociateRouteTable { association_id } => {
            call.send(|| {
                client
                    .disassociate_route_table()
                    .association_id(association_id)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "disassociated {association_id}"
            )]))
        }
        Action::DeleteRouteTable { route_table } => {
            let r = id(route_table)?;
            call.send(|| client.delete_route_table().route_table_id(r).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {r}")]))
        }
        _ => Err(misrouted(action)),
    }
}

/// Table `r` as EC2 describes it now.
async fn describe_one(
    ec2: &Ec2<'_>,
    r: &str,
) -> Result<aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput, CloudError> {
    ec2.describe(KIND, || {
        ec2.client.describe_route_tables().route_table_ids(r).send()
    })
    .await
}

/// A route to `destination` via `g` in table `r` refused with `e` (it
/// exists): done if the existing route goes through `g`, else `e`.
pub(in crate::aws) async fn route_exists(
    ec2: &Ec2<'_>,
    r: &str,
    destination: IpCidr,
    g: &str,
    e: CloudError,
) -> Result<Outcome, CloudError> {
    let resp = describe_one(ec2, r).await?;
    let dest = destination.to_string();
    let same = resp
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .any(|rt| destination_of(rt) == Some(dest.as_str()) && target_of(rt) == g);
    if same {
        Ok(Outcome::already_done(
            None,
            format!("route {dest} via {g} exists"),
        ))
    } else {
        Err(e)
    }
}

/// An association of subnet `s` with table `r` refused with `e` (already
/// associated): done, with the association's id, if the subnet is
/// associated with `r`, else `e`.
pub(in crate::aws) async fn associated_already(
    ec2: &Ec2<'_>,
    r: &str,
    s: &str,
    e: CloudError,
) -> Result<Outcome, CloudError> {
    let resp = describe_one(ec2, r).await?;
    let assoc = resp
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.subnet_id() == Some(s))
        .and_then(|a| a.route_table_association_id())
        .map(String::from);
    match assoc {
        Some(a) => {
            let mut o = Outcome::already_done(None, format!("{s} already associated with {r}"));
            o.association_id = Some(a);
            Ok(o)
        }
        None => Err(e),
    }
}

/// Every owned table, page by page.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp =
            super::describe_owned_page!(ec2, describe_route_tables, set_route_table_ids, token)
                .await?;
        for t in resp.route_tables() {
            out.push(observed(ec2, t)?);
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// A described route's destination, IPv4 or IPv6 (none for a prefix
/// list's).
fn destination_of(r: &aws_sdk_ec2::types::Route) -> Option<&str> {
    r.destination_cidr_block()
        .or(r.destination_ipv6_cidr_block())
}

/// A described route's target, whatever its kind.
fn target_of(r: &aws_sdk_ec2::types::Route) -> &str {
    r.gateway_id()
        .or(r.nat_gateway_id())
        .or(r.egress_only_internet_gateway_id())
        .or(r.instance_id())
        .or(r.transit_gateway_id())
        .or(r.vpc_peering_connection_id())
        .or(r.network_interface_id())
        .unwrap_or("")
}

/// One described table in Canon's terms: the routes Canon manages (not the
/// local routes, nor propagated ones, nor prefix-list routes) and the live
/// associations of its subnets, with their ids.
fn observed(
    ec2: &Ec2<'_>,
    t: &aws_sdk_ec2::types::RouteTable,
) -> Result<ObservedResource, CloudError> {
    let id = t.route_table_id().ok_or_else(|| missing("RouteTableId"))?;
    let mut routes = BTreeSet::new();
    let mut interfaces = BTreeMap::new();
    for r in t.routes() {
        if r.origin() == Some(&RouteOrigin::CreateRouteTable)
            || r.origin() == Some(&RouteOrigin::EnableVgwRoutePropagation)
            || r.gateway_id() == Some("local")
        {
            continue;
        }
        let Some(dest) = destination_of(r) else {
            // Prefix-list routes are outside the model.
            continue;
        };
        let destination = dest
            .parse()
            .map_err(|e| CloudError::terminal(BAD_RESPONSE, format!("route {dest}: {e}")))?;
        // EC2 names both an instance and its interface for a route made
        // through either: the target is the instance, the interface kept
        // beside it.
        if let (Some(_), Some(eni)) = (r.instance_id(), r.network_interface_id()) {
            interfaces.insert(destination, eni.to_string());
        }
        routes.insert(Route {
            destination,
            target: target_of(r).to_string(),
        });
    }
    let mut associations = BTreeSet::new();
    let mut association_ids = BTreeMap::new();
    for a in t.associations() {
        if a.main().unwrap_or(false) {
            continue;
        }
        let state = a
            .association_state()
            .and_then(|s| s.state())
            .map(|s| s.as_str().to_string());
        if matches!(
            state.as_deref(),
            Some("disassociating") | Some("disassociated") | Some("failed")
        ) {
            continue;
        }
        if let (Some(subnet), Some(assoc)) = (a.subnet_id(), a.route_table_association_id()) {
            associations.insert(subnet.to_string());
            association_ids.insert(subnet.to_string(), assoc.to_string());
        }
    }
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: ec2.scope.region.clone(),
        spec: Spec::RouteTable(RouteTableSpec {
            interfaces: interfaces.into(),
            vpc: t.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
            routes: routes.into(),
            associations: associations.into(),
            tags: tags_from(t.tags()),
        }),
        association_ids,
        pending: false,
        life: None,
    })
}
