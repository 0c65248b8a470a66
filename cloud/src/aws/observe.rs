//! Observation through EC2: one tag-filtered describe per kind per page
//! (each kind's in its file under `ec2/`), translated into `canon_model`
//! data; a look by id asks the same describes for the ids themselves. The
//! only per-resource calls are for what EC2's describes do not return: VPC
//! DNS attributes (cached, see `AwsConfig::vpc_attribute_ttl`) and instance
//! user data (read once per instance). Both caches forget
//! resources an observation no longer sees. The describes are joined: an
//! address a NAT gateway holds shows no association of its own (the
//! gateway's hold ends with the gateway).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use aws_sdk_ec2::types::Filter;
use canon_model::{ObservedResource, ObservedState, ResourceKind, Spec, OWNERSHIP_TAG};

use super::candidates::{id_filter, observe_kind};
use super::convert::owned_filter;
use super::ec2::{
    dhcp_options, egress_only_internet_gateway, elastic_ip, instance, internet_gateway,
    nat_gateway, network_acl, route_table, security_group, subnet, volume, vpc, vpc_endpoint,
    vpc_peering_connection, Ec2,
};
use super::AwsCloud;
use crate::names::max_results;
use crate::{CloudError, Scope};

/// The most ids one look by id names: the most values one describe
/// filter takes (what a look falls back to), and within what EC2's
/// describes take as their id parameter.
const IDS_PER_LOOK: usize = 200;

/// What a look at some ids of one kind found: the owned resources, and the
/// addresses NAT gateways among them hold.
type Looked = (Vec<ObservedResource>, BTreeSet<String>);

/// The owned resources of `kind` that `ec2` selects (and the addresses
/// the NAT gateways among them hold).
async fn look_kind(ec2: &Ec2<'_>, kind: ResourceKind) -> Result<Looked, CloudError> {
    if kind == ResourceKind::NatGateway {
        let seen = nat_gateway::observe(ec2).await?;
        return Ok((seen.gateways, seen.held));
    }
    Ok((observe_kind(ec2, kind).await?, BTreeSet::new()))
}

/// Whether a describe by id failed because an id it names does not exist
/// (`InvalidGroup.NotFound`, `InvalidVpcID.NotFound`, `NatGatewayNotFound`,
/// …) or is not an id of its kind at all (`….Malformed`): the ids EC2
/// does show are then asked for by filter.
fn names_a_missing_id(e: &CloudError) -> bool {
    e.code.contains("NotFound") || e.code.ends_with(".Malformed")
}

/// A VPC on the account's default DHCP set reads as `None`: the sets in
/// `vpcs` that are not among Canon's own (`owned_dhcp`) are asked about.
async fn default_dhcp_reads_none(
    ec2: &Ec2<'_>,
    owned_dhcp: &BTreeSet<&str>,
    vpcs: &mut [ObservedResource],
) -> Result<(), CloudError> {
    let foreign: BTreeSet<String> = vpcs
        .iter()
        .filter_map(|v| match &v.spec {
            Spec::Vpc(s) => s.dhcp_options.clone(),
            _ => None,
        })
        .filter(|d| !owned_dhcp.contains(d.as_str()))
        .collect();
    let defaults = dhcp_options::default_sets(ec2, &foreign).await?;
    for v in vpcs {
        if let Spec::Vpc(s) = &mut v.spec {
            if s.dhcp_options
                .as_ref()
                .is_some_and(|d| defaults.contains(d))
            {
                s.dhcp_options = None;
            }
        }
    }
    Ok(())
}

/// EC2's largest page (`MaxResults`) for the describe of `kind`.
pub(super) fn page_size(kind: ResourceKind) -> i32 {
    i32::try_from(max_results(kind)).unwrap_or(i32::MAX)
}

/// The next page's token, if the answer names one.
pub(super) fn next(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(String::from)
}

/// Every page of one describe. `page` sends the describe of a page (`None`
/// for the first) and adds what it shows to the list it is handed, then
/// hands the list back with the next page's token.
pub(super) async fn all_pages<F, Fut>(page: F) -> Result<Vec<ObservedResource>, CloudError>
where
    F: FnMut(Vec<ObservedResource>, Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<ObservedResource>, Option<String>), CloudError>>,
{
    gather_pages(page).await
}

/// [`all_pages`] for a kind that gathers more than a list of resources
/// from its pages (NAT gateways: the addresses they hold, too).
pub(super) async fn gather_pages<T, F, Fut>(mut page: F) -> Result<T, CloudError>
where
    T: Default,
    F: FnMut(T, Option<String>) -> Fut,
    Fut: Future<Output = Result<(T, Option<String>), CloudError>>,
{
    let mut out = T::default();
    let mut token = None;
    loop {
        let (seen, next) = page(out, token).await?;
        out = seen;
        token = next;
        if token.is_none() {
            return Ok(out);
        }
    }
}

impl AwsCloud {
    /// [`Cloud::observe_where`](crate::Cloud::observe_where). `keep` is
    /// applied once every kind is read (a VPC's DHCP set, the addresses NAT
    /// gateways hold and the caches need the whole of them), before the
    /// resources are indexed: what it refuses is held only as the
    /// describes' parsed lists, never in the observation.
    pub(super) async fn observe_scope(
        &self,
        scope: &Scope,
        keep: crate::Keep<'_>,
    ) -> Result<ObservedState, CloudError> {
        let client = self.client(scope).await?;
        let ec2 = Ec2 {
            cloud: self,
            scope,
            client: &client,
            ids: None,
            select: None,
            asked: None,
        };
        let (
            dhcp,
            vpcs,
            igws,
            eigws,
            eips,
            subnets,
            nats,
            pcxs,
            rtbs,
            vpces,
            acls,
            sgs,
            instances,
            volumes,
        ) = tokio::join!(
            dhcp_options::observe(&ec2),
            vpc::observe(&ec2),
            internet_gateway::observe(&ec2),
            egress_only_internet_gateway::observe(&ec2),
            elastic_ip::observe(&ec2),
            subnet::observe(&ec2),
            nat_gateway::observe(&ec2),
            vpc_peering_connection::observe(&ec2),
            route_table::observe(&ec2),
            vpc_endpoint::observe(&ec2),
            network_acl::observe(&ec2),
            security_group::observe(&ec2),
            instance::observe(&ec2),
            volume::observe(&ec2),
        );
        let dhcp = dhcp?;
        let mut vpcs = vpcs?;
        let owned_dhcp = dhcp.iter().map(|r| r.cloud_id.as_str()).collect();
        default_dhcp_reads_none(&ec2, &owned_dhcp, &mut vpcs).await?;
        let instances = instances?;
        self.forget_unseen(scope, &vpcs, &instances);
        let nats = nats?;
        let mut eips = eips?;
        for a in &mut eips {
            if nats.held.contains(&a.cloud_id) {
                a.association_ids.clear();
            }
        }
        let mut out = ObservedState::new();
        for r in dhcp
            .into_iter()
            .chain(vpcs)
            .chain(igws?)
            .chain(eigws?)
            .chain(eips)
            .chain(subnets?)
            .chain(nats.gateways)
            .chain(pcxs?)
            .chain(rtbs?)
            .chain(vpces?)
            .chain(acls?)
            .chain(sgs?)
            .chain(instances)
            .chain(volumes?)
            .filter(|r| keep(r))
        {
            out.insert(r);
        }
        Ok(out)
    }

    /// [`Cloud::observe_ids`](crate::Cloud::observe_ids): each kind's
    /// describe asked for its ids (and the ownership tag; see
    /// [`AwsCloud::look_by_ids`]), the kinds at once, at most
    /// [`IDS_PER_LOOK`] ids a call; read as
    /// `observe_scope` reads (a VPC's default DHCP set as `None`, an
    /// address a NAT gateway holds with no association). The caches are
    /// left alone: a look at some ids says nothing of the others.
    pub(super) async fn observe_by_ids(
        &self,
        scope: &Scope,
        ids: &BTreeSet<String>,
    ) -> Result<ObservedState, CloudError> {
        let client = self.client(scope).await?;
        let mut by_kind: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        for id in ids {
            if let Some(kind) = ResourceKind::of_cloud_id(id) {
                by_kind.entry(kind).or_default().push(id.clone());
            }
        }
        let looks = by_kind.iter().flat_map(|(kind, ids)| {
            ids.chunks(IDS_PER_LOOK)
                .map(|chunk| self.look_by_ids(scope, &client, *kind, chunk))
        });
        let mut found = Vec::new();
        let mut held = BTreeSet::new();
        for (resources, holds) in futures::future::try_join_all(looks).await? {
            found.extend(resources);
            held.extend(holds);
        }
        found.retain(|r| ids.contains(&r.cloud_id) && r.spec.tags().contains_key(OWNERSHIP_TAG));
        let (mut vpcs, rest): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|r| r.kind() == ResourceKind::Vpc);
        let owned_dhcp: BTreeSet<&str> = rest
            .iter()
            .filter(|r| r.kind() == ResourceKind::DhcpOptions)
            .map(|r| r.cloud_id.as_str())
            .collect();
        let ec2 = Ec2 {
            cloud: self,
            scope,
            client: &client,
            ids: None,
            select: None,
            asked: None,
        };
        default_dhcp_reads_none(&ec2, &owned_dhcp, &mut vpcs).await?;
        let mut out: ObservedState = rest.into_iter().chain(vpcs).collect();
        for a in &held {
            if let Some(address) = out.get_mut(a) {
                address.association_ids.clear();
            }
        }
        Ok(out)
    }

    /// The owned resources of `kind` among `ids`, and the addresses NAT
    /// gateways among them hold: asked by id (the describe's id parameter,
    /// a direct look-up; a filter on the ids walks the region). EC2 fails
    /// such a describe as a whole when one of the ids is gone, where a
    /// filter leaves it out, so the batch is then asked again by filter.
    async fn look_by_ids(
        &self,
        scope: &Scope,
        client: &aws_sdk_ec2::Client,
        kind: ResourceKind,
        ids: &[String],
    ) -> Result<Looked, CloudError> {
        let owned = [owned_filter()];
        let by_id = Ec2 {
            cloud: self,
            scope,
            client,
            ids: None,
            select: Some(&owned),
            asked: Some(ids),
        };
        match look_kind(&by_id, kind).await {
            Err(e) if names_a_missing_id(&e) => {
                tracing::debug!(%kind, code = %e.code, "an id is gone: looking by filter");
            }
            looked => return looked,
        }
        let mut selected = vec![owned_filter()];
        if let Some(name) = id_filter(kind) {
            selected.push(
                Filter::builder()
                    .name(name)
                    .set_values(Some(ids.to_vec()))
                    .build(),
            );
        }
        let by_filter = Ec2 {
            select: Some(&selected),
            asked: None,
            ..by_id
        };
        look_kind(&by_filter, kind).await
    }

    /// Drops cached attributes of VPCs and instances no longer observed.
    fn forget_unseen(
        &self,
        scope: &Scope,
        vpcs: &[ObservedResource],
        instances: &[ObservedResource],
    ) {
        let vpc_ids: BTreeSet<&str> = vpcs.iter().map(|r| r.cloud_id.as_str()).collect();
        let instance_ids: BTreeSet<&str> = instances.iter().map(|r| r.cloud_id.as_str()).collect();
        self.vpc_attrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(s, id), _| s != scope || vpc_ids.contains(id.as_str()));
        self.user_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(s, id), _| s != scope || instance_ids.contains(id.as_str()));
    }
}
