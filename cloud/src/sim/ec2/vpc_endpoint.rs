//! Simulated gateway VPC endpoints (S3 and DynamoDB): created with a
//! client token in a VPC (`vpce-` ids, `available` at once), routed from
//! route tables of the same VPC. EC2 adds a route to the service's prefix
//! list, via the endpoint, to each of its tables, and takes it away when
//! the table leaves the endpoint or the endpoint is deleted; a table holds
//! one such route per prefix list. Those routes are kept apart from the
//! table's own (`Rtb::endpoint_routes`): a describe of the table in
//! Canon's terms leaves them out, as the AWS adapter does. A deleted
//! endpoint is gone; a deleted route table leaves its endpoints; a VPC
//! with an endpoint is not deleted.

use std::collections::BTreeSet;

use canon_model::{
    Action, CloudRef, EndpointService, ObservedSpec, Region, ResourceKind, Spec, Tags,
    VpcEndpointSpec,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, not_found, Applied, Call, Meta, RegionState};
use crate::CloudError;

const KIND: ResourceKind = ResourceKind::VpcEndpoint;

/// A stored endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Vpce {
    pub meta: Meta,
    pub vpc: String,
    pub service: EndpointService,
    pub route_tables: BTreeSet<String>,
}

impl Vpce {
    /// The endpoint as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: self.vpc.clone(),
            service: self.service,
            route_tables: self.route_tables.clone(),
            tags: self.meta.tags.clone(),
        })
    }
}

/// The id of the prefix list of `service` in `region` (one per service
/// and region, as on EC2; made from their names, so stable).
pub(crate) fn prefix_list(region: &Region, service: EndpointService) -> String {
    let name = service.service_name(region);
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("pl-{:08x}", h & 0xffff_ffff)
}

/// Applies one endpoint action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateVpcEndpoint {
            vpc,
            service,
            route_tables,
            tags,
        } => create(region, action, (vpc, *service, route_tables), tags, call),
        Action::ModifyVpcEndpoint {
            vpc_endpoint,
            add_route_tables,
            remove_route_tables,
        } => {
            let e = id(vpc_endpoint)?.to_string();
            let add = add_route_tables
                .iter()
                .map(|t| id(t).map(str::to_string))
                .collect::<Result<BTreeSet<_>, _>>()?;
            modify(region, &e, &add, remove_route_tables)
        }
        Action::DeleteVpcEndpoint { vpc_endpoint } => delete(region, id(vpc_endpoint)?),
        _ => Err(misrouted(action)),
    }
}

/// EC2's error for a route table the endpoint cannot use: unknown, or of
/// another VPC than `vpc`.
fn check_table(region: &RegionState, vpc: &str, t: &str) -> Result<(), CloudError> {
    match region.rtbs.get(t) {
        None => Err(err(
            "InvalidRouteTableId.NotFound",
            format!("The routeTable ID '{t}' does not exist"),
        )),
        Some(r) if r.vpc != vpc => Err(err(
            "InvalidParameter",
            format!("route table {t} is not in {vpc}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Puts the endpoint `e`'s route to prefix list `pl` in table `t`; a
/// table already routing `pl` through another endpoint refuses it.
fn add_route(region: &mut RegionState, t: &str, pl: &str, e: &str) -> Result<(), CloudError> {
    let Some(rtb) = region.rtbs.get_mut(t) else {
        return Err(not_found(ResourceKind::RouteTable, t));
    };
    match rtb.endpoint_routes.get(pl) {
        Some(other) if other != e => Err(err(
            "RouteAlreadyExists",
            format!("route table {t} already has a route to {pl} (via {other})"),
        )),
        _ => {
            rtb.endpoint_routes.insert(pl.to_string(), e.to_string());
            Ok(())
        }
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    (vpc, service, route_tables): (&CloudRef, EndpointService, &BTreeSet<CloudRef>),
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let v = id(vpc)?.to_string();
    region.vpc(&v)?;
    // A rerun with the same token answers the first endpoint, whose
    // routes are in its tables already.
    if let Some(replayed) = region.replay(call.token, &format!("{action:?}"))? {
        return Ok(replayed);
    }
    let mut tables = BTreeSet::new();
    for t in route_tables {
        let t = id(t)?;
        check_table(region, &v, t)?;
        tables.insert(t.to_string());
    }
    let pl = prefix_list(&region.region, service);
    if let Some(t) = tables.iter().find(|t| {
        region
            .rtbs
            .get(*t)
            .is_some_and(|r| r.endpoint_routes.contains_key(&pl))
    }) {
        return Err(err(
            "RouteAlreadyExists",
            format!("route table {t} already has a route to {pl}"),
        ));
    }
    let store = |region: &mut RegionState, rid: &str, meta, vpc| {
        for t in &tables {
            if let Some(r) = region.rtbs.get_mut(t) {
                r.endpoint_routes.insert(pl.clone(), rid.to_string());
            }
        }
        let endpoint = Vpce {
            meta,
            vpc,
            service,
            route_tables: tables.clone(),
        };
        region.vpces.insert(rid.to_string(), endpoint);
    };
    region.create_in_vpc(action, (vpc, tags), ("vpce", "VPC endpoint"), call, store)
}

/// Adds the tables `add` (of the endpoint's VPC) to endpoint `e` and
/// removes `remove`; a table already added, or not there to remove, is
/// no error. Every table is checked before anything changes.
fn modify(
    region: &mut RegionState,
    e: &str,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
) -> Result<Applied, CloudError> {
    let vpce = region.vpces.get(e).ok_or_else(|| not_found(KIND, e))?;
    let (vpc, service) = (vpce.vpc.clone(), vpce.service);
    for t in add.iter().chain(remove) {
        check_table(region, &vpc, t)?;
    }
    let pl = prefix_list(&region.region, service);
    for t in add {
        if let Some(other) = region
            .rtbs
            .get(t)
            .and_then(|r| r.endpoint_routes.get(&pl))
            .filter(|other| *other != e)
        {
            return Err(err(
                "RouteAlreadyExists",
                format!("route table {t} already has a route to {pl} (via {other})"),
            ));
        }
    }
    for t in add {
        add_route(region, t, &pl, e)?;
    }
    for t in remove {
        if let Some(r) = region.rtbs.get_mut(t) {
            if r.endpoint_routes.get(&pl).map(String::as_str) == Some(e) {
                r.endpoint_routes.remove(&pl);
            }
        }
    }
    let vpce = region.vpces.get_mut(e).ok_or_else(|| not_found(KIND, e))?;
    let before = vpce.route_tables.clone();
    vpce.route_tables.extend(add.iter().cloned());
    vpce.route_tables.retain(|t| !remove.contains(t));
    let line = changed(format!(
        "{e}: route tables {}",
        vpce.route_tables
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    ));
    if vpce.route_tables == before {
        return Ok(Applied::unchanged(line, Some(e.to_string())));
    }
    Ok(Applied::mutated(line, Some(e.to_string())))
}

fn delete(region: &mut RegionState, e: &str) -> Result<Applied, CloudError> {
    let vpce = region.vpces.remove(e).ok_or_else(|| not_found(KIND, e))?;
    let pl = prefix_list(&region.region, vpce.service);
    for t in &vpce.route_tables {
        if let Some(r) = region.rtbs.get_mut(t) {
            if r.endpoint_routes.get(&pl).map(String::as_str) == Some(e) {
                r.endpoint_routes.remove(&pl);
            }
        }
    }
    Ok(Applied::mutated(
        changed(format!("deleted {e}")),
        Some(e.to_string()),
    ))
}

impl RegionState {
    /// Takes route table `t`, being deleted, off every endpoint.
    pub(crate) fn forget_endpoint_table(&mut self, t: &str) {
        for e in self.vpces.values_mut() {
            e.route_tables.remove(t);
        }
    }
}
