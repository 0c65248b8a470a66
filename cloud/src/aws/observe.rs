//! Observation through EC2: one tag-filtered describe per kind per page,
//! translated into `canon_model` data. The only per-resource calls are for
//! what EC2's describes do not return: VPC DNS attributes (cached, see
//! `AwsConfig::vpc_attribute_ttl`) and instance user data (read once per
//! instance). Both caches forget resources an observation no longer sees.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Filter, InstanceAttributeName, InstanceStateName, RouteOrigin, VpcAttributeName,
};
use aws_sdk_ec2::Client;
use canon_model::{
    DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec, Ipv4Cidr, ObservedResource, ObservedState,
    Route, RouteTableSpec, SecurityGroupSpec, Spec, SubnetSpec, Tenancy, VpcSpec, OWNERSHIP_TAG,
};

use super::convert::{owned_filter, permission_from, tags_from};
use super::{missing, AwsCloud};
use crate::rules::{from_permissions, Permission};
use crate::{CloudError, Scope};

/// EC2's page sizes (route tables allow at most 100).
const PAGE: i32 = 1000;
const RTB_PAGE: i32 = 100;

fn cidr(s: Option<&str>, what: &str) -> Result<Ipv4Cidr, CloudError> {
    s.ok_or_else(|| missing(what))?
        .parse()
        .map_err(|e| CloudError::terminal(crate::error::BAD_RESPONSE, format!("{what}: {e}")))
}

fn next(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(String::from)
}

/// True for a DHCP option set that only says what the account's default
/// set says (Amazon's DNS, the region's internal domain).
fn looks_default(domain: &Option<String>, servers: &[String], ntp: &[String]) -> bool {
    let domain_ok = domain
        .as_deref()
        .is_none_or(|d| d.ends_with(".compute.internal") || d == "ec2.internal");
    domain_ok && ntp.is_empty() && servers.iter().all(|s| s == "AmazonProvidedDNS")
}

type DhcpConfig = (Option<String>, Vec<String>, Vec<String>);

fn dhcp_config(d: &aws_sdk_ec2::types::DhcpOptions) -> DhcpConfig {
    let mut domain = None;
    let mut servers = Vec::new();
    let mut ntp = Vec::new();
    for c in d.dhcp_configurations() {
        let values: Vec<String> = c
            .values()
            .iter()
            .filter_map(|v| v.value().map(String::from))
            .collect();
        match c.key() {
            Some("domain-name") => domain = values.into_iter().next(),
            Some("domain-name-servers") => servers = values,
            Some("ntp-servers") => ntp = values,
            _ => {}
        }
    }
    (domain, servers, ntp)
}

impl AwsCloud {
    pub(super) async fn observe_scope(&self, scope: &Scope) -> Result<ObservedState, CloudError> {
        let client = self.client(scope).await;
        let c = &client;
        let (dhcp, vpcs, igws, subnets, rtbs, sgs, instances) = tokio::join!(
            self.observe_dhcp(scope, c),
            self.observe_vpcs(scope, c),
            self.observe_igws(scope, c),
            self.observe_subnets(scope, c),
            self.observe_route_tables(scope, c),
            self.observe_groups(scope, c),
            self.observe_instances(scope, c),
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
        let defaults = self.default_dhcp_sets(scope, c, &foreign).await?;
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
        let mut out = ObservedState::new();
        for r in dhcp
            .into_iter()
            .chain(vpcs)
            .chain(igws?)
            .chain(subnets?)
            .chain(rtbs?)
            .chain(sgs?)
            .chain(instances)
        {
            out.insert(r);
        }
        Ok(out)
    }

    /// Which of `ids` (DHCP sets not owned by Canon) are the account's
    /// default set; remembered per scope, so this costs one batched describe
    /// the first time.
    async fn default_dhcp_sets(
        &self,
        scope: &Scope,
        client: &Client,
        ids: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, CloudError> {
        let known = self
            .default_dhcp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(scope)
            .cloned()
            .unwrap_or_default();
        let unknown: Vec<String> = ids
            .iter()
            .filter(|i| !known.contains(*i))
            .cloned()
            .collect();
        let mut found = known;
        for chunk in unknown.chunks(200) {
            let resp = self
                .call(
                    scope,
                    "DescribeDhcpOptions",
                    "aws.ec2.describe_dhcp_options",
                    || {
                        client
                            .describe_dhcp_options()
                            .filters(
                                Filter::builder()
                                    .name("dhcp-options-id")
                                    .set_values(Some(chunk.to_vec()))
                                    .build(),
                            )
                            .send()
                    },
                )
                .await?;
            for d in resp.dhcp_options() {
                let (domain, servers, ntp) = dhcp_config(d);
                let owned = d.tags().iter().any(|t| t.key() == Some(OWNERSHIP_TAG));
                if !owned && looks_default(&domain, &servers, &ntp) {
                    if let Some(id) = d.dhcp_options_id() {
                        found.insert(id.to_string());
                    }
                }
            }
        }
        self.default_dhcp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.clone(), found.clone());
        Ok(found)
    }

    async fn observe_dhcp(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(
                    scope,
                    "DescribeDhcpOptions",
                    "aws.ec2.describe_dhcp_options",
                    || {
                        client
                            .describe_dhcp_options()
                            .filters(owned_filter())
                            .max_results(PAGE)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            for d in resp.dhcp_options() {
                let id = d
                    .dhcp_options_id()
                    .ok_or_else(|| missing("DhcpOptionsId"))?;
                let (domain_name, domain_name_servers, ntp_servers) = dhcp_config(d);
                out.push(ObservedResource {
                    cloud_id: id.to_string(),
                    region: scope.region.clone(),
                    spec: Spec::DhcpOptions(DhcpOptionsSpec {
                        domain_name,
                        domain_name_servers,
                        ntp_servers,
                        tags: tags_from(d.tags()),
                    }),
                    association_ids: BTreeMap::new(),
                });
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn observe_vpcs(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(scope, "DescribeVpcs", "aws.ec2.describe_vpcs", || {
                    client
                        .describe_vpcs()
                        .filters(owned_filter())
                        .max_results(PAGE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            for v in resp.vpcs() {
                let id = v.vpc_id().ok_or_else(|| missing("VpcId"))?;
                let (dns_support, dns_hostnames) = self.vpc_dns(scope, client, id).await?;
                let tenancy = match v.instance_tenancy().map(|t| t.as_str()) {
                    Some("dedicated") => Tenancy::Dedicated,
                    _ => Tenancy::Default,
                };
                out.push(ObservedResource {
                    cloud_id: id.to_string(),
                    region: scope.region.clone(),
                    spec: Spec::Vpc(VpcSpec {
                        cidr_block: cidr(v.cidr_block(), "CidrBlock")?,
                        instance_tenancy: tenancy,
                        enable_dns_support: dns_support,
                        enable_dns_hostnames: dns_hostnames,
                        dhcp_options: v
                            .dhcp_options_id()
                            .filter(|d| *d != "default" && !d.is_empty())
                            .map(String::from),
                        tags: tags_from(v.tags()),
                    }),
                    association_ids: BTreeMap::new(),
                });
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// A VPC's DNS attributes, from the cache while fresh.
    async fn vpc_dns(
        &self,
        scope: &Scope,
        client: &Client,
        vpc: &str,
    ) -> Result<(bool, bool), CloudError> {
        let key = (scope.clone(), vpc.to_string());
        let ttl = self.config.vpc_attribute_ttl;
        if let Some((s, h, at)) = self
            .vpc_attrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied()
        {
            if at.elapsed() < ttl {
                return Ok((s, h));
            }
        }
        let support = self
            .call(
                scope,
                "DescribeVpcAttribute",
                "aws.ec2.describe_vpc_attribute",
                || {
                    client
                        .describe_vpc_attribute()
                        .vpc_id(vpc)
                        .attribute(VpcAttributeName::EnableDnsSupport)
                        .send()
                },
            )
            .await?
            .enable_dns_support()
            .and_then(|a| a.value())
            .unwrap_or(true);
        let hostnames = self
            .call(
                scope,
                "DescribeVpcAttribute",
                "aws.ec2.describe_vpc_attribute",
                || {
                    client
                        .describe_vpc_attribute()
                        .vpc_id(vpc)
                        .attribute(VpcAttributeName::EnableDnsHostnames)
                        .send()
                },
            )
            .await?
            .enable_dns_hostnames()
            .and_then(|a| a.value())
            .unwrap_or(false);
        self.remember_vpc_dns(scope, vpc, support, hostnames);
        Ok((support, hostnames))
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

    /// An instance's user data. It cannot change while the instance runs
    /// and Canon replaces rather than edits it, so it is read once per
    /// instance and remembered.
    async fn user_data(
        &self,
        scope: &Scope,
        client: &Client,
        instance: &str,
    ) -> Result<Option<String>, CloudError> {
        let key = (scope.clone(), instance.to_string());
        if let Some(known) = self
            .user_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(known.clone());
        }
        let value = self
            .call(
                scope,
                "DescribeInstanceAttribute",
                "aws.ec2.describe_instance_attribute",
                || {
                    client
                        .describe_instance_attribute()
                        .instance_id(instance)
                        .attribute(InstanceAttributeName::UserData)
                        .send()
                },
            )
            .await?
            .user_data()
            .and_then(|u| u.value())
            .filter(|v| !v.is_empty())
            .map(|v| {
                aws_smithy_types::base64::decode(v)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_else(|| v.to_string())
            });
        self.user_data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value.clone());
        Ok(value)
    }

    pub(super) fn remember_vpc_dns(
        &self,
        scope: &Scope,
        vpc: &str,
        support: bool,
        hostnames: bool,
    ) {
        self.vpc_attrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (scope.clone(), vpc.to_string()),
                (support, hostnames, tokio::time::Instant::now()),
            );
    }

    pub(super) fn cached_vpc_dns(&self, scope: &Scope, vpc: &str) -> Option<(bool, bool)> {
        self.vpc_attrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(scope.clone(), vpc.to_string()))
            .map(|(s, h, _)| (*s, *h))
    }

    async fn observe_igws(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(
                    scope,
                    "DescribeInternetGateways",
                    "aws.ec2.describe_internet_gateways",
                    || {
                        client
                            .describe_internet_gateways()
                            .filters(owned_filter())
                            .max_results(PAGE)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            for g in resp.internet_gateways() {
                let id = g
                    .internet_gateway_id()
                    .ok_or_else(|| missing("InternetGatewayId"))?;
                let vpc = g
                    .attachments()
                    .iter()
                    .find(|a| {
                        !matches!(
                            a.state().map(|s| s.as_str()),
                            Some("detaching") | Some("detached")
                        )
                    })
                    .and_then(|a| a.vpc_id())
                    .map(String::from);
                out.push(ObservedResource {
                    cloud_id: id.to_string(),
                    region: scope.region.clone(),
                    spec: Spec::InternetGateway(InternetGatewaySpec {
                        vpc,
                        tags: tags_from(g.tags()),
                    }),
                    association_ids: BTreeMap::new(),
                });
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn observe_subnets(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(scope, "DescribeSubnets", "aws.ec2.describe_subnets", || {
                    client
                        .describe_subnets()
                        .filters(owned_filter())
                        .max_results(PAGE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            for s in resp.subnets() {
                let id = s.subnet_id().ok_or_else(|| missing("SubnetId"))?;
                out.push(ObservedResource {
                    cloud_id: id.to_string(),
                    region: scope.region.clone(),
                    spec: Spec::Subnet(SubnetSpec {
                        vpc: s.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
                        cidr_block: cidr(s.cidr_block(), "CidrBlock")?,
                        availability_zone: s.availability_zone().unwrap_or("").to_string(),
                        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
                        tags: tags_from(s.tags()),
                    }),
                    association_ids: BTreeMap::new(),
                });
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn observe_route_tables(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(
                    scope,
                    "DescribeRouteTables",
                    "aws.ec2.describe_route_tables",
                    || {
                        client
                            .describe_route_tables()
                            .filters(owned_filter())
                            .max_results(RTB_PAGE)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            for t in resp.route_tables() {
                let id = t.route_table_id().ok_or_else(|| missing("RouteTableId"))?;
                let mut routes = BTreeSet::new();
                for r in t.routes() {
                    if r.origin() == Some(&RouteOrigin::CreateRouteTable)
                        || r.origin() == Some(&RouteOrigin::EnableVgwRoutePropagation)
                        || r.gateway_id() == Some("local")
                    {
                        continue;
                    }
                    let Some(dest) = r.destination_cidr_block() else {
                        // IPv6 and prefix-list routes are outside the model.
                        continue;
                    };
                    let target = r
                        .gateway_id()
                        .or(r.nat_gateway_id())
                        .or(r.instance_id())
                        .or(r.transit_gateway_id())
                        .or(r.vpc_peering_connection_id())
                        .or(r.network_interface_id())
                        .unwrap_or("")
                        .to_string();
                    routes.insert(Route {
                        destination: cidr(Some(dest), "DestinationCidrBlock")?,
                        target,
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
                    if let (Some(subnet), Some(assoc)) =
                        (a.subnet_id(), a.route_table_association_id())
                    {
                        associations.insert(subnet.to_string());
                        association_ids.insert(subnet.to_string(), assoc.to_string());
                    }
                }
                out.push(ObservedResource {
                    cloud_id: id.to_string(),
                    region: scope.region.clone(),
                    spec: Spec::RouteTable(RouteTableSpec {
                        vpc: t.vpc_id().ok_or_else(|| missing("VpcId"))?.to_string(),
                        routes,
                        associations,
                        tags: tags_from(t.tags()),
                    }),
                    association_ids,
                });
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn observe_groups(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(
                    scope,
                    "DescribeSecurityGroups",
                    "aws.ec2.describe_security_groups",
                    || {
                        client
                            .describe_security_groups()
                            .filters(owned_filter())
                            .max_results(PAGE)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            for g in resp.security_groups() {
                let id = g.group_id().ok_or_else(|| missing("GroupId"))?;
                out.push(group_resource(scope, id, g)?);
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn observe_instances(
        &self,
        scope: &Scope,
        client: &Client,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .call(
                    scope,
                    "DescribeInstances",
                    "aws.ec2.describe_instances",
                    || {
                        client
                            .describe_instances()
                            .filters(owned_filter())
                            .filters(
                                Filter::builder()
                                    .name("instance-state-name")
                                    .values("pending")
                                    .values("running")
                                    .values("stopping")
                                    .values("stopped")
                                    .build(),
                            )
                            .max_results(PAGE)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            for res in resp.reservations() {
                for i in res.instances() {
                    let state = i.state().and_then(|s| s.name());
                    if matches!(
                        state,
                        Some(InstanceStateName::Terminated) | Some(InstanceStateName::ShuttingDown)
                    ) {
                        continue;
                    }
                    let id = i.instance_id().ok_or_else(|| missing("InstanceId"))?;
                    let user_data = self.user_data(scope, client, id).await?;
                    out.push(ObservedResource {
                        cloud_id: id.to_string(),
                        region: scope.region.clone(),
                        spec: Spec::Instance(InstanceSpec {
                            image_id: i.image_id().unwrap_or("").to_string(),
                            instance_type: i
                                .instance_type()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or_default(),
                            subnet: i.subnet_id().unwrap_or("").to_string(),
                            key_name: i.key_name().map(String::from),
                            user_data,
                            security_groups: i
                                .security_groups()
                                .iter()
                                .filter_map(|g| g.group_id().map(String::from))
                                .collect(),
                            tags: tags_from(i.tags()),
                        }),
                        association_ids: BTreeMap::new(),
                    });
                }
            }
            token = next(resp.next_token());
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}

/// The observed form of one described security group.
pub(super) fn group_resource(
    scope: &Scope,
    id: &str,
    g: &aws_sdk_ec2::types::SecurityGroup,
) -> Result<ObservedResource, CloudError> {
    let perms = |ps: &[aws_sdk_ec2::types::IpPermission]| -> Vec<Permission> {
        ps.iter().map(permission_from).collect()
    };
    let (ingress, bad_in) = from_permissions(&perms(g.ip_permissions()));
    let (egress, bad_out) = from_permissions(&perms(g.ip_permissions_egress()));
    for rule in bad_in.iter().chain(&bad_out) {
        tracing::warn!(
            group = id,
            rule,
            "security-group rule outside Canon's model (ignored)"
        );
    }
    Ok(ObservedResource {
        cloud_id: id.to_string(),
        region: scope.region.clone(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc: g.vpc_id().unwrap_or("").to_string(),
            group_name: g.group_name().unwrap_or("").to_string(),
            description: g.description().unwrap_or("").to_string(),
            ingress,
            egress,
            tags: tags_from(g.tags()),
        }),
        association_ids: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::looks_default;

    #[test]
    fn default_dhcp_sets_are_recognised() {
        let amazon = vec!["AmazonProvidedDNS".to_string()];
        assert!(looks_default(
            &Some("us-west-2.compute.internal".into()),
            &amazon,
            &[]
        ));
        assert!(looks_default(&Some("ec2.internal".into()), &amazon, &[]));
        assert!(!looks_default(&Some("corp.example".into()), &amazon, &[]));
        assert!(!looks_default(
            &Some("ec2.internal".into()),
            &["10.0.0.2".to_string()],
            &[]
        ));
        assert!(!looks_default(&None, &amazon, &["10.0.0.1".to_string()]));
    }
}
