//! Observation through EC2: one tag-filtered describe per kind per page
//! (each kind's in its file under `ec2/`), translated into `canon_model`
//! data. The only per-resource calls are for what EC2's describes do not
//! return: VPC DNS attributes (cached, see `AwsConfig::vpc_attribute_ttl`)
//! and instance user data (read once per instance). Both caches forget
//! resources an observation no longer sees. The describes are joined: an
//! address a NAT gateway holds shows no association of its own (the
//! gateway's hold ends with the gateway).

use std::collections::BTreeSet;
use std::future::Future;

use canon_model::{ObservedResource, ObservedState, ResourceKind, Spec};

use super::ec2::{
    dhcp_options, egress_only_internet_gateway, elastic_ip, instance, internet_gateway,
    nat_gateway, network_acl, route_table, security_group, subnet, volume, vpc, Ec2,
};
use super::AwsCloud;
use crate::names::max_results;
use crate::{CloudError, Scope};

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
    pub(super) async fn observe_scope(&self, scope: &Scope) -> Result<ObservedState, CloudError> {
        let client = self.client(scope).await?;
        let ec2 = Ec2 {
            cloud: self,
            scope,
            client: &client,
            ids: None,
            select: None,
        };
        let (dhcp, vpcs, igws, eigws, eips, subnets, nats, rtbs, acls, sgs, instances, volumes) = tokio::join!(
            dhcp_options::observe(&ec2),
            vpc::observe(&ec2),
            internet_gateway::observe(&ec2),
            egress_only_internet_gateway::observe(&ec2),
            elastic_ip::observe(&ec2),
            subnet::observe(&ec2),
            nat_gateway::observe(&ec2),
            route_table::observe(&ec2),
            network_acl::observe(&ec2),
            security_group::observe(&ec2),
            instance::observe(&ec2),
            volume::observe(&ec2),
        );
        let dhcp = dhcp?;
        let mut vpcs = vpcs?;
        // A VPC on the account's default DHCP set reads as `None`.
        let owned_dhcp: BTreeSet<&str> = dhcp.iter().map(|r| r.cloud_id.as_str()).collect();
        let foreign: BTreeSet<String> = vpcs
            .iter()
            .filter_map(|v| match &v.spec {
                Spec::Vpc(s) => s.dhcp_options.clone(),
                _ => None,
            })
            .filter(|d| !owned_dhcp.contains(d.as_str()))
            .collect();
        let defaults = dhcp_options::default_sets(&ec2, &foreign).await?;
        for v in &mut vpcs {
            if let Spec::Vpc(s) = &mut v.spec {
                if s.dhcp_options
                    .as_ref()
                    .is_some_and(|d| defaults.contains(d))
                {
                    s.dhcp_options = None;
                }
            }
        }
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
            .chain(rtbs?)
            .chain(acls?)
            .chain(sgs?)
            .chain(instances)
            .chain(volumes?)
        {
            out.insert(r);
        }
        Ok(out)
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
