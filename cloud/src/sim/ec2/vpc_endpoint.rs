//! Simulated VPC endpoints, created with a client token in a VPC (`vpce-`
//! ids, `available` at once).
//!
//! Interface endpoints: in subnets of the VPC, one per zone (two of one
//! zone: `DuplicateSubnetsInSameZone`), guarded by groups of the VPC (the
//! VPC's default group when none is given, as EC2 does); private DNS only
//! in a VPC with DNS support and hostnames; a subnet or group an
//! endpoint is in is not deleted (`DependencyViolation`). A policy is
//! kept as parsed JSON and shown reformatted (pretty-printed), and an
//! endpoint without one shows EC2's full-access default, as EC2 does,
//! so that the planner's canonical comparison is exercised.
//!
//! Gateway endpoints (S3 and DynamoDB): routed from
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
    endpoint_policy, Action, CloudRef, EndpointService, EndpointType, ObservedSpec, Region,
    ResourceKind, Spec, VpcEndpointSpec,
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
    #[serde(default)]
    pub endpoint_type: EndpointType,
    #[serde(default)]
    pub subnets: BTreeSet<String>,
    #[serde(default)]
    pub security_groups: BTreeSet<String>,
    #[serde(default)]
    pub private_dns: bool,
    /// The policy set, parsed; none is the default.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
}

/// EC2's default endpoint policy, as a describe shows it.
const DEFAULT_POLICY: &str = r#"{
  "Version" : "2008-10-17",
  "Statement" : [ {
    "Effect" : "Allow",
    "Principal" : "*",
    "Action" : "*",
    "Resource" : "*"
  } ]
}"#;

impl Vpce {
    /// The endpoint as a describe shows it.
    pub fn spec(&self) -> ObservedSpec {
        let policy = match &self.policy {
            Some(doc) => serde_json::to_string_pretty(doc).unwrap_or_else(|_| doc.to_string()),
            None => DEFAULT_POLICY.to_string(),
        };
        Spec::VpcEndpoint(VpcEndpointSpec {
            vpc: self.vpc.clone(),
            service: self.service,
            endpoint_type: self.endpoint_type,
            route_tables: self.route_tables.clone().into(),
            subnets: self.subnets.clone().into(),
            security_groups: self.security_groups.clone().into(),
            private_dns: self.private_dns,
            policy: Some(policy),
            tags: self.meta.tags.clone(),
        })
    }
}

/// The parts of an interface endpoint a create or modify names.
struct Interface {
    subnets: BTreeSet<String>,
    groups: BTreeSet<String>,
}

/// The cloud ids of `refs`.
fn ids(refs: &BTreeSet<CloudRef>) -> Result<BTreeSet<String>, CloudError> {
    refs.iter().map(|r| id(r).map(str::to_string)).collect()
}

/// EC2's error for a policy document that does not parse.
fn parse_policy(text: &str) -> Result<serde_json::Value, CloudError> {
    endpoint_policy::parse(text).map_err(|why| {
        err(
            "InvalidPolicyDocument",
            format!("The policy document is malformed: {why}"),
        )
    })
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
        Action::CreateVpcEndpoint { .. } => create(region, action, call),
        Action::ModifyVpcEndpoint {
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
        } => {
            let e = id(vpc_endpoint)?.to_string();
            let policy = match policy {
                Some(text) => Some(Some(parse_policy(text)?)),
                None if *reset_policy => Some(None),
                None => None,
            };
            let add = Interface {
                subnets: ids(add_subnets)?,
                groups: ids(add_security_groups)?,
            };
            let remove = Interface {
                subnets: remove_subnets.clone(),
                groups: remove_security_groups.clone(),
            };
            modify_interface(region, &e, (&add, &remove), *private_dns, policy)?;
            modify(region, &e, &ids(add_route_tables)?, remove_route_tables)
        }
        Action::DeleteVpcEndpoint { vpc_endpoint } => delete(region, id(vpc_endpoint)?),
        _ => Err(misrouted(action)),
    }
}

/// EC2's errors for an interface endpoint's subnets and groups in `vpc`:
/// unknown, of another VPC, two subnets of one zone; and for private DNS
/// in a VPC without DNS support and hostnames.
fn check_interface(
    region: &RegionState,
    vpc: &str,
    i: &Interface,
    private_dns: bool,
) -> Result<(), CloudError> {
    let mut zones = BTreeSet::new();
    for s in &i.subnets {
        let subnet = region.subnets.get(s).ok_or_else(|| {
            err(
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{s}' does not exist"),
            )
        })?;
        if subnet.vpc != vpc {
            return Err(err(
                "InvalidParameter",
                format!("subnet {s} is not in {vpc}"),
            ));
        }
        if !zones.insert(subnet.az.clone()) {
            return Err(err(
                "DuplicateSubnetsInSameZone",
                format!("Found another VPC endpoint subnet in the availability zone of {s}"),
            ));
        }
    }
    for g in &i.groups {
        match region.sgs.get(g) {
            None => {
                return Err(err(
                    "InvalidGroup.NotFound",
                    format!("The security group '{g}' does not exist"),
                ))
            }
            Some(sg) if sg.vpc != vpc => {
                return Err(err(
                    "InvalidParameter",
                    format!("group {g} is not in {vpc}"),
                ))
            }
            Some(_) => {}
        }
    }
    let v = region.vpc(vpc)?;
    if private_dns && !(v.dns_support && v.dns_hostnames) {
        return Err(err(
            "InvalidParameter",
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC \
             attributes set to true for "
                .to_string()
                + vpc,
        ));
    }
    Ok(())
}

/// Applies the interface part of a modify (subnets, groups, private DNS)
/// and the policy to endpoint `e`, after checking all of it.
fn modify_interface(
    region: &mut RegionState,
    e: &str,
    (add, remove): (&Interface, &Interface),
    private_dns: Option<bool>,
    policy: Option<Option<serde_json::Value>>,
) -> Result<(), CloudError> {
    let vpce = region.vpces.get(e).ok_or_else(|| not_found(KIND, e))?;
    let mut after = Interface {
        subnets: vpce.subnets.clone(),
        groups: vpce.security_groups.clone(),
    };
    after.subnets.retain(|s| !remove.subnets.contains(s));
    after.subnets.extend(add.subnets.iter().cloned());
    after.groups.retain(|g| !remove.groups.contains(g));
    after.groups.extend(add.groups.iter().cloned());
    let dns = private_dns.unwrap_or(vpce.private_dns);
    let interface = vpce.endpoint_type == EndpointType::Interface;
    let untouched = [&add.subnets, &add.groups, &remove.subnets, &remove.groups]
        .iter()
        .all(|s| s.is_empty());
    let touched = !untouched || private_dns.is_some();
    if touched && !interface {
        return Err(err(
            "InvalidParameter",
            format!("{e} is a gateway endpoint: it has no subnets, groups or private DNS"),
        ));
    }
    if interface {
        check_interface(
            region,
            &vpce.vpc.clone(),
            &after,
            dns && private_dns.is_some(),
        )?;
    }
    let vpce = region.vpces.get_mut(e).ok_or_else(|| not_found(KIND, e))?;
    vpce.subnets = after.subnets;
    vpce.security_groups = after.groups;
    vpce.private_dns = dns;
    if let Some(p) = policy {
        vpce.policy = p;
    }
    Ok(())
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
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
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
    let (service, endpoint_type) = (*service, *endpoint_type);
    let v = id(vpc)?.to_string();
    region.vpc(&v)?;
    // A rerun with the same token answers the first endpoint, whose
    // routes are in its tables already.
    if let Some(replayed) = region.replay(call.token, &format!("{action:?}"))? {
        return Ok(replayed);
    }
    if !service.offers(endpoint_type) {
        return Err(err(
            "InvalidServiceName",
            format!(
                "The Vpc Endpoint Service '{}' does not exist",
                service.service_name(&region.region)
            ),
        ));
    }
    let policy = policy.as_deref().map(parse_policy).transpose()?;
    let mut interface = Interface {
        subnets: ids(subnets)?,
        groups: ids(security_groups)?,
    };
    let private_dns = endpoint_type == EndpointType::Interface && *private_dns;
    if endpoint_type == EndpointType::Interface {
        check_interface(region, &v, &interface, private_dns)?;
        if interface.groups.is_empty() {
            interface.groups.insert(region.vpc(&v)?.default_sg.clone());
        }
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
            endpoint_type,
            subnets: interface.subnets,
            security_groups: interface.groups,
            private_dns,
            policy,
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
    /// Whether an endpoint has an interface in subnet `s` or is guarded by
    /// group `s` (either blocks the delete: EC2's `DependencyViolation`).
    pub(crate) fn endpoint_uses(&self, s: &str) -> bool {
        self.vpces
            .values()
            .any(|e| e.subnets.contains(s) || e.security_groups.contains(s))
    }

    /// Takes route table `t`, being deleted, off every endpoint.
    pub(crate) fn forget_endpoint_table(&mut self, t: &str) {
        for e in self.vpces.values_mut() {
            e.route_tables.remove(t);
        }
    }
}
