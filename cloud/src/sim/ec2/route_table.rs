//! Simulated route tables: creates take a client token; routes go through
//! an internet gateway attached to the table's VPC, an `available` NAT
//! gateway or a live instance in it, named in the parameter of their kind (never over the
//! local route); a subnet has one association at a time; main tables and tables
//! with associations are not deleted.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{
    Action, CloudRef, Hop, IpCidr, ObservedSpec, ResourceKind, Route, RouteTableSpec, Spec, Tags,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::network_interface::{self, Eni};
use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::RouteTable;

/// A stored route table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Rtb {
    pub meta: Meta,
    pub vpc: String,
    pub main: bool,
    /// Destination → gateway, without the implicit local route.
    pub routes: BTreeMap<IpCidr, String>,
    /// Subnet → association id.
    pub assoc: BTreeMap<String, String>,
    /// The routes gateway endpoints put here: prefix list → endpoint
    /// (absent in states saved before endpoints existed). They belong to
    /// the endpoint: the table's describe in Canon's terms leaves them out.
    #[serde(default)]
    pub endpoint_routes: BTreeMap<String, String>,
}

impl Rtb {
    /// The table as a describe shows it. A route through a network
    /// interface (of `enis`) that is attached to an instance names the
    /// instance as its target, and the interface beside it, as EC2's
    /// describe does.
    pub fn spec(&self, enis: &BTreeMap<String, Eni>) -> ObservedSpec {
        let mut interfaces = BTreeMap::new();
        let mut routes = BTreeSet::new();
        for (d, t) in &self.routes {
            let attached = enis.get(t).and_then(|e| e.instance.as_ref());
            let target = match attached {
                Some(instance) => {
                    interfaces.insert(*d, t.clone());
                    instance.clone()
                }
                None => t.clone(),
            };
            routes.insert(Route {
                destination: *d,
                target,
            });
        }
        Spec::RouteTable(RouteTableSpec {
            interfaces: interfaces.into(),
            vpc: self.vpc.clone(),
            routes: routes.into(),
            associations: self.assoc.keys().cloned().collect(),
            tags: self.meta.tags.clone(),
        })
    }
}

fn route_not_found(destination: IpCidr, r: &str) -> CloudError {
    err(
        "InvalidRoute.NotFound",
        format!("no route with destination-cidr-block {destination} in route table {r}"),
    )
}

/// Applies one route-table action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateRouteTable { vpc, tags } => create(region, action, vpc, tags, call),
        Action::CreateRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => put_route(
            region,
            route_table,
            *destination,
            (gateway, *hop),
            call.timing.now,
            false,
        ),
        Action::ReplaceRoute {
            route_table,
            destination,
            gateway,
            hop,
        } => put_route(
            region,
            route_table,
            *destination,
            (gateway, *hop),
            call.timing.now,
            true,
        ),
        Action::DeleteRoute {
            route_table,
            destination,
        } => delete_route(region, route_table, *destination),
        Action::AssociateRouteTable {
            route_table,
            subnet,
        } => associate(region, route_table, subnet, call),
        Action::DisassociateRouteTable { association_id } => disassociate(region, association_id),
        Action::DeleteRouteTable { route_table } => delete(region, route_table),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    vpc: &CloudRef,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let store = |region: &mut RegionState, rid: &str, meta, vpc| {
        let table = Rtb {
            meta,
            vpc,
            main: false,
            routes: BTreeMap::new(),
            assoc: BTreeMap::new(),
            endpoint_routes: BTreeMap::new(),
        };
        region.rtbs.insert(rid.to_string(), table);
    };
    region.create_in_vpc(action, (vpc, tags), ("rtb", "route table"), call, store)
}

/// The VPC of route target `g`, named as `hop`: an internet gateway's VPC
/// (if attached), an available NAT gateway's, an egress-only gateway's,
/// a live instance's (its subnet's), or for an active peering connection
/// the table's own VPC `table_vpc` if it is one of its ends.
fn target_vpc(
    region: &RegionState,
    g: &str,
    (hop, table_vpc): (Hop, &str),
    now: u64,
) -> Result<Option<String>, CloudError> {
    match hop {
        Hop::InternetGateway => match region.igws.get(g) {
            Some(igw) => Ok(igw.vpc.clone()),
            None => Err(err(
                "InvalidGatewayID.NotFound",
                format!("The gateway ID '{g}' does not exist"),
            )),
        },
        Hop::NatGateway => Ok(Some(region.available_nat(g, now)?.vpc.clone())),
        Hop::EgressOnlyInternetGateway => Ok(Some(region.eigw(g)?.vpc.clone())),
        Hop::VpcPeeringConnection => region.peering_vpc(g, table_vpc),
        Hop::NetworkInterface => network_interface::vpc_of(region, g),
        Hop::Instance => match region.instances.get(g) {
            Some(i) if i.state.live(now) => {
                Ok(region.subnets.get(&i.subnet).map(|s| s.vpc.clone()))
            }
            _ => Err(not_found(ResourceKind::Instance, g)),
        },
    }
}

/// CreateRoute (`replace` false) or ReplaceRoute (`replace` true).
fn put_route(
    region: &mut RegionState,
    route_table: &CloudRef,
    destination: IpCidr,
    (gateway, hop): (&CloudRef, Hop),
    now: u64,
    replace: bool,
) -> Result<Applied, CloudError> {
    let r = id(route_table)?.to_string();
    let g = id(gateway)?.to_string();
    let rtb = region.rtbs.get(&r).ok_or_else(|| not_found(KIND, &r))?;
    if target_vpc(region, &g, (hop, &rtb.vpc), now)?.as_deref() != Some(rtb.vpc.as_str()) {
        return Err(err(
            "InvalidParameterValue",
            format!("route table {r} and network gateway {g} belong to different networks"),
        ));
    }
    if let Some(family) = hop.refuses(&destination) {
        return Err(err(
            "InvalidParameterValue",
            format!("route to {destination} through {g}: it takes an {family} destination"),
        ));
    }
    let vpc_cidr = region.vpc(&rtb.vpc)?.cidr;
    if IpCidr::V4(vpc_cidr) == destination {
        return Err(err(
            "InvalidParameterValue",
            format!("The destination CIDR block {destination} is equal to the local route"),
        ));
    }
    match (replace, rtb.routes.get(&destination)) {
        (false, Some(existing)) if *existing == g => {
            return Ok(Applied::unchanged(
                Outcome::already_done(None, format!("route {destination} via {g} exists")),
                Some(r),
            ))
        }
        (false, Some(_)) => {
            return Err(err(
                "RouteAlreadyExists",
                format!("The route identified by {destination} already exists."),
            ))
        }
        (true, None) => return Err(route_not_found(destination, &r)),
        _ => {}
    }
    if let Some(rtb) = region.rtbs.get_mut(&r) {
        rtb.routes.insert(destination, g.clone());
    }
    Ok(Applied::mutated(
        changed(format!("route {destination} via {g} in {r}")),
        Some(r),
    ))
}

fn delete_route(
    region: &mut RegionState,
    route_table: &CloudRef,
    destination: IpCidr,
) -> Result<Applied, CloudError> {
    let r = id(route_table)?.to_string();
    let rtb = region.rtbs.get_mut(&r).ok_or_else(|| not_found(KIND, &r))?;
    if rtb.routes.remove(&destination).is_none() {
        return Err(route_not_found(destination, &r));
    }
    Ok(Applied::mutated(
        changed(format!("deleted route {destination} from {r}")),
        Some(r),
    ))
}

fn associate<R: Rng + ?Sized>(
    region: &mut RegionState,
    route_table: &CloudRef,
    subnet: &CloudRef,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let r = id(route_table)?.to_string();
    let s = id(subnet)?.to_string();
    let rtb = region.rtbs.get(&r).ok_or_else(|| not_found(KIND, &r))?;
    let sub = region.subnet(&s)?;
    if sub.vpc != rtb.vpc {
        return Err(err(
            "InvalidParameterValue",
            format!("Route table {r} and subnet {s} belong to different networks"),
        ));
    }
    if let Some(a) = rtb.assoc.get(&s) {
        let mut o = Outcome::already_done(None, format!("{s} already associated with {r}"));
        o.association_id = Some(a.clone());
        return Ok(Applied::unchanged(o, Some(r)));
    }
    if region.rtbs.values().any(|t| t.assoc.contains_key(&s)) {
        return Err(err(
            "Resource.AlreadyAssociated",
            format!("the specified association for route table {r} conflicts with an existing association"),
        ));
    }
    let a = new_id(call.rng, "rtbassoc");
    if let Some(rtb) = region.rtbs.get_mut(&r) {
        rtb.assoc.insert(s.clone(), a.clone());
    }
    let mut o = changed(format!("associated {s} with {r} ({a})"));
    o.association_id = Some(a);
    Ok(Applied::mutated(o, Some(r)))
}

fn disassociate(region: &mut RegionState, association_id: &str) -> Result<Applied, CloudError> {
    for (r, rtb) in region.rtbs.iter_mut() {
        let hit = rtb
            .assoc
            .iter()
            .find(|(_, a)| *a == association_id)
            .map(|(s, _)| s.clone());
        if let Some(s) = hit {
            rtb.assoc.remove(&s);
            return Ok(Applied::mutated(
                changed(format!("disassociated {s} from {r}")),
                Some(r.clone()),
            ));
        }
    }
    Err(err(
        "InvalidAssociationID.NotFound",
        format!("The association ID '{association_id}' does not exist"),
    ))
}

fn delete(region: &mut RegionState, route_table: &CloudRef) -> Result<Applied, CloudError> {
    let r = id(route_table)?.to_string();
    let rtb = region.rtbs.get(&r).ok_or_else(|| not_found(KIND, &r))?;
    if rtb.main || !rtb.assoc.is_empty() {
        return Err(err(
            "DependencyViolation",
            format!("The routeTable '{r}' has dependencies and cannot be deleted."),
        ));
    }
    region.rtbs.remove(&r);
    region.forget_endpoint_table(&r);
    Ok(Applied::mutated(changed(format!("deleted {r}")), Some(r)))
}
