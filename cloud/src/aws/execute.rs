//! Execution through EC2: one SDK call per request (plus the idempotency
//! look-ups), with already-done outcomes for effects already in place.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{AttributeBooleanValue, InstanceType, NewDhcpConfiguration, Tag, Tenancy};
use aws_sdk_ec2::Client;
use canon_model::{
    Action, CloudRef, Request, ResourceKind, Rule, Spec, VpcAttribute, OWNERSHIP_TAG,
};

use super::convert::{owner_filter, permission_to, tag_specs, tags_to};
use super::observe::group_resource;
use super::{missing, AwsCloud};
use crate::error::UNRESOLVED;
use crate::idempotency::{client_token, has_client_token};
use crate::names::ec2_action;
use crate::refs::id;
use crate::rules::to_permissions;
use crate::sim::create_tags;
use crate::{CloudError, ErrorClass, ExecContext, Outcome, Scope};

impl AwsCloud {
    pub(super) async fn execute_request(
        &self,
        request: &Request,
        ctx: &ExecContext,
    ) -> Result<Outcome, CloudError> {
        if let Err(u) = request.resolve(|_| None) {
            return Err(CloudError::terminal(UNRESOLVED, u.to_string()));
        }
        let scope = ctx.scope(request);
        tracing::debug!(
            request = request.request_type(),
            guid = %request.guid(),
            job = %ctx.job_id,
            node = ctx.node_id,
            term = ctx.term,
            "executing"
        );
        let client = self.client(&scope).await;
        let action = &request.action;
        if let Some(kind) = action.creates() {
            if !has_client_token(kind) {
                if let Some(owner) = create_tags(action).and_then(|t| t.get(OWNERSHIP_TAG)) {
                    if let Some(existing) = self.find_owned(&scope, &client, kind, owner).await? {
                        return Ok(Outcome::already_done(
                            Some(existing.clone()),
                            format!("{kind} {existing} already carries {OWNERSHIP_TAG}={owner}"),
                        ));
                    }
                }
            }
        }
        let token = client_token(&ctx.job_id, request);
        match self.run(&scope, &client, action, &token).await {
            Ok(o) => Ok(o),
            Err(e) => self.recover(&scope, &client, action, &token, e).await,
        }
    }

    /// Turns errors whose effect may already be in place into outcomes.
    async fn recover(
        &self,
        scope: &Scope,
        client: &Client,
        action: &Action,
        token: &str,
        e: CloudError,
    ) -> Result<Outcome, CloudError> {
        match (action, e.code.as_str()) {
            (
                Action::AuthorizeSecurityGroupIngress { group, rules }
                | Action::AuthorizeSecurityGroupEgress { group, rules },
                "InvalidPermission.Duplicate",
            ) => {
                let ingress = matches!(action, Action::AuthorizeSecurityGroupIngress { .. });
                let gid = id(group)?;
                let have = self.group_rules(scope, client, gid, ingress).await?;
                let missing: BTreeSet<Rule<CloudRef>> = rules
                    .iter()
                    .filter(|r| {
                        !have.contains(&r.map_peer(|g| g.id().unwrap_or_default().to_string()))
                    })
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(Outcome::already_done(
                        None,
                        format!("every rule already on {gid}"),
                    ));
                }
                let retry = if ingress {
                    Action::AuthorizeSecurityGroupIngress {
                        group: group.clone(),
                        rules: missing,
                    }
                } else {
                    Action::AuthorizeSecurityGroupEgress {
                        group: group.clone(),
                        rules: missing,
                    }
                };
                self.run(scope, client, &retry, token).await
            }
            (
                Action::AttachInternetGateway {
                    internet_gateway,
                    vpc,
                },
                "Resource.AlreadyAssociated",
            ) => {
                let (i, v) = (id(internet_gateway)?, id(vpc)?);
                let resp = self
                    .call(
                        scope,
                        "DescribeInternetGateways",
                        "aws.ec2.describe_internet_gateways",
                        || {
                            client
                                .describe_internet_gateways()
                                .internet_gateway_ids(i)
                                .send()
                        },
                    )
                    .await?;
                let attached = resp
                    .internet_gateways()
                    .iter()
                    .flat_map(|g| g.attachments())
                    .any(|a| a.vpc_id() == Some(v));
                if attached {
                    Ok(Outcome::already_done(
                        None,
                        format!("{i} already attached to {v}"),
                    ))
                } else {
                    Err(e)
                }
            }
            (
                Action::CreateRoute {
                    route_table,
                    destination,
                    gateway,
                },
                "RouteAlreadyExists",
            ) => {
                let (r, g) = (id(route_table)?, id(gateway)?);
                let resp = self
                    .call(
                        scope,
                        "DescribeRouteTables",
                        "aws.ec2.describe_route_tables",
                        || client.describe_route_tables().route_table_ids(r).send(),
                    )
                    .await?;
                let dest = destination.to_string();
                let same = resp
                    .route_tables()
                    .iter()
                    .flat_map(|t| t.routes())
                    .any(|rt| {
                        rt.destination_cidr_block() == Some(dest.as_str())
                            && rt.gateway_id() == Some(g)
                    });
                if same {
                    Ok(Outcome::already_done(
                        None,
                        format!("route {dest} via {g} exists"),
                    ))
                } else {
                    Err(e)
                }
            }
            (
                Action::AssociateRouteTable {
                    route_table,
                    subnet,
                },
                "Resource.AlreadyAssociated",
            ) => {
                let (r, s) = (id(route_table)?, id(subnet)?);
                let resp = self
                    .call(
                        scope,
                        "DescribeRouteTables",
                        "aws.ec2.describe_route_tables",
                        || client.describe_route_tables().route_table_ids(r).send(),
                    )
                    .await?;
                let assoc = resp
                    .route_tables()
                    .iter()
                    .flat_map(|t| t.associations())
                    .find(|a| a.subnet_id() == Some(s))
                    .and_then(|a| a.route_table_association_id())
                    .map(String::from);
                match assoc {
                    Some(a) => {
                        let mut o =
                            Outcome::already_done(None, format!("{s} already associated with {r}"));
                        o.association_id = Some(a);
                        Ok(o)
                    }
                    None => Err(e),
                }
            }
            _ if e.class == ErrorClass::AlreadyDone => Ok(Outcome::already_done(
                None,
                format!("{}: {}", e.code, e.message),
            )),
            _ => Err(e),
        }
    }

    /// Some EC2 emulators (moto's CreateDhcpOptions) ignore
    /// `TagSpecifications`: if the create's answer lacks tags we sent, add
    /// them with `CreateTags` so the ownership tag is never missing. Costs
    /// nothing on EC2 itself, which answers with the tags.
    async fn ensure_tags(
        &self,
        scope: &Scope,
        client: &Client,
        resource: &str,
        wanted: &canon_model::Tags,
        answered: &[Tag],
    ) -> Result<(), CloudError> {
        let have = super::convert::tags_from(answered);
        if wanted.iter().all(|(k, v)| have.get(k) == Some(v)) {
            return Ok(());
        }
        self.call(scope, "CreateTags", "aws.ec2.create_tags", || {
            client
                .create_tags()
                .resources(resource)
                .set_tags(Some(tags_to(wanted)))
                .send()
        })
        .await?;
        Ok(())
    }

    /// The current rules of one group, one direction.
    async fn group_rules(
        &self,
        scope: &Scope,
        client: &Client,
        gid: &str,
        ingress: bool,
    ) -> Result<BTreeSet<Rule<String>>, CloudError> {
        let resp = self
            .call(
                scope,
                "DescribeSecurityGroups",
                "aws.ec2.describe_security_groups",
                || client.describe_security_groups().group_ids(gid).send(),
            )
            .await?;
        let g = resp
            .security_groups()
            .first()
            .ok_or_else(|| missing("SecurityGroups"))?;
        match group_resource(scope, gid, g)?.spec {
            Spec::SecurityGroup(s) => Ok(if ingress { s.ingress } else { s.egress }),
            _ => Err(missing("SecurityGroup")),
        }
    }

    /// The resource of `kind` carrying ownership tag `owner`, if EC2 shows
    /// one (the look-up before creates of kinds without client tokens).
    async fn find_owned(
        &self,
        scope: &Scope,
        client: &Client,
        kind: ResourceKind,
        owner: &str,
    ) -> Result<Option<String>, CloudError> {
        let rt = crate::names::describe_request_type(kind);
        let action = crate::names::describe_action(kind);
        let found = match kind {
            ResourceKind::DhcpOptions => self
                .call(scope, action, rt, || {
                    client
                        .describe_dhcp_options()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .dhcp_options()
                .iter()
                .find_map(|d| d.dhcp_options_id().map(String::from)),
            ResourceKind::Vpc => self
                .call(scope, action, rt, || {
                    client.describe_vpcs().filters(owner_filter(owner)).send()
                })
                .await?
                .vpcs()
                .iter()
                .find_map(|v| v.vpc_id().map(String::from)),
            ResourceKind::InternetGateway => self
                .call(scope, action, rt, || {
                    client
                        .describe_internet_gateways()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .internet_gateways()
                .iter()
                .find_map(|g| g.internet_gateway_id().map(String::from)),
            ResourceKind::Subnet => self
                .call(scope, action, rt, || {
                    client
                        .describe_subnets()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .subnets()
                .iter()
                .find_map(|s| s.subnet_id().map(String::from)),
            ResourceKind::RouteTable => self
                .call(scope, action, rt, || {
                    client
                        .describe_route_tables()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .route_tables()
                .iter()
                .find_map(|t| t.route_table_id().map(String::from)),
            ResourceKind::SecurityGroup => self
                .call(scope, action, rt, || {
                    client
                        .describe_security_groups()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .security_groups()
                .iter()
                .find_map(|g| g.group_id().map(String::from)),
            ResourceKind::Instance => self
                .call(scope, action, rt, || {
                    client
                        .describe_instances()
                        .filters(owner_filter(owner))
                        .send()
                })
                .await?
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find(|i| {
                    !matches!(
                        i.state().and_then(|s| s.name()).map(|n| n.as_str()),
                        Some("terminated") | Some("shutting-down")
                    )
                })
                .and_then(|i| i.instance_id().map(String::from)),
        };
        Ok(found)
    }

    /// Sends the one call `action` maps to.
    async fn run(
        &self,
        scope: &Scope,
        client: &Client,
        action: &Action,
        token: &str,
    ) -> Result<Outcome, CloudError> {
        let rt = action.request_type();
        let name = ec2_action(rt);
        let name = name.as_str();
        let bool_attr = |v: bool| AttributeBooleanValue::builder().value(v).build();
        match action {
            Action::CreateDhcpOptions {
                domain_name,
                domain_name_servers,
                ntp_servers,
                tags,
            } => {
                let mut confs = Vec::new();
                let mut conf = |key: &str, values: Vec<String>| {
                    if !values.is_empty() {
                        confs.push(
                            NewDhcpConfiguration::builder()
                                .key(key)
                                .set_values(Some(values))
                                .build(),
                        );
                    }
                };
                conf("domain-name", domain_name.iter().cloned().collect());
                conf("domain-name-servers", domain_name_servers.clone());
                conf("ntp-servers", ntp_servers.clone());
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_dhcp_options()
                            .set_dhcp_configurations(Some(confs.clone()))
                            .set_tag_specifications(tag_specs(ResourceKind::DhcpOptions, tags))
                            .send()
                    })
                    .await?;
                let created = resp.dhcp_options().ok_or_else(|| missing("DhcpOptions"))?;
                let d = created
                    .dhcp_options_id()
                    .ok_or_else(|| missing("DhcpOptionsId"))?;
                self.ensure_tags(scope, client, d, tags, created.tags())
                    .await?;
                Ok(Outcome::created(d, "dhcp options"))
            }
            Action::DeleteDhcpOptions { dhcp_options } => {
                let d = id(dhcp_options)?;
                self.call(scope, name, rt, || {
                    client.delete_dhcp_options().dhcp_options_id(d).send()
                })
                .await?;
                Ok(Outcome::changed([format!("deleted {d}")]))
            }
            Action::AssociateDhcpOptions { vpc, dhcp_options } => {
                let v = id(vpc)?;
                let d = match dhcp_options {
                    Some(d) => id(d)?,
                    None => "default",
                };
                self.call(scope, name, rt, || {
                    client
                        .associate_dhcp_options()
                        .vpc_id(v)
                        .dhcp_options_id(d)
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!("associated {d} with {v}")]))
            }
            Action::CreateVpc {
                cidr_block,
                instance_tenancy,
                tags,
            } => {
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_vpc()
                            .cidr_block(cidr_block.to_string())
                            .instance_tenancy(Tenancy::from(instance_tenancy.as_str()))
                            .set_tag_specifications(tag_specs(ResourceKind::Vpc, tags))
                            .send()
                    })
                    .await?;
                let v = resp
                    .vpc()
                    .and_then(|v| v.vpc_id())
                    .ok_or_else(|| missing("VpcId"))?;
                Ok(Outcome::created(v, "vpc"))
            }
            Action::ModifyVpcAttribute {
                vpc,
                attribute,
                value,
            } => {
                let v = id(vpc)?;
                self.call(scope, name, rt, || {
                    let b = client.modify_vpc_attribute().vpc_id(v);
                    match attribute {
                        VpcAttribute::EnableDnsSupport => b.enable_dns_support(bool_attr(*value)),
                        VpcAttribute::EnableDnsHostnames => {
                            b.enable_dns_hostnames(bool_attr(*value))
                        }
                    }
                    .send()
                })
                .await?;
                if let Some((mut s, mut h)) = self.cached_vpc_dns(scope, v) {
                    match attribute {
                        VpcAttribute::EnableDnsSupport => s = *value,
                        VpcAttribute::EnableDnsHostnames => h = *value,
                    }
                    self.remember_vpc_dns(scope, v, s, h);
                }
                Ok(Outcome::changed([format!(
                    "set {attribute:?} of {v} to {value}"
                )]))
            }
            Action::DeleteVpc { vpc } => {
                let v = id(vpc)?;
                self.call(scope, name, rt, || client.delete_vpc().vpc_id(v).send())
                    .await?;
                Ok(Outcome::changed([format!("deleted {v}")]))
            }
            Action::CreateInternetGateway { tags } => {
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_internet_gateway()
                            .set_tag_specifications(tag_specs(ResourceKind::InternetGateway, tags))
                            .send()
                    })
                    .await?;
                let i = resp
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .ok_or_else(|| missing("InternetGatewayId"))?;
                Ok(Outcome::created(i, "internet gateway"))
            }
            Action::AttachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let (i, v) = (id(internet_gateway)?, id(vpc)?);
                self.call(scope, name, rt, || {
                    client
                        .attach_internet_gateway()
                        .internet_gateway_id(i)
                        .vpc_id(v)
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!("attached {i} to {v}")]))
            }
            Action::DetachInternetGateway {
                internet_gateway,
                vpc,
            } => {
                let (i, v) = (id(internet_gateway)?, id(vpc)?);
                self.call(scope, name, rt, || {
                    client
                        .detach_internet_gateway()
                        .internet_gateway_id(i)
                        .vpc_id(v)
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!("detached {i} from {v}")]))
            }
            Action::DeleteInternetGateway { internet_gateway } => {
                let i = id(internet_gateway)?;
                self.call(scope, name, rt, || {
                    client
                        .delete_internet_gateway()
                        .internet_gateway_id(i)
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!("deleted {i}")]))
            }
            Action::CreateSubnet {
                vpc,
                cidr_block,
                availability_zone,
                tags,
            } => {
                let v = id(vpc)?;
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_subnet()
                            .vpc_id(v)
                            .cidr_block(cidr_block.to_string())
                            .availability_zone(availability_zone)
                            .set_tag_specifications(tag_specs(ResourceKind::Subnet, tags))
                            .send()
                    })
                    .await?;
                let s = resp
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .ok_or_else(|| missing("SubnetId"))?;
                Ok(Outcome::created(s, "subnet"))
            }
            Action::ModifySubnetAttribute {
                subnet,
                map_public_ip_on_launch,
            } => {
                let s = id(subnet)?;
                self.call(scope, name, rt, || {
                    client
                        .modify_subnet_attribute()
                        .subnet_id(s)
                        .map_public_ip_on_launch(bool_attr(*map_public_ip_on_launch))
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!(
                    "set mapPublicIpOnLaunch of {s} to {map_public_ip_on_launch}"
                )]))
            }
            Action::DeleteSubnet { subnet } => {
                let s = id(subnet)?;
                self.call(scope, name, rt, || {
                    client.delete_subnet().subnet_id(s).send()
                })
                .await?;
                Ok(Outcome::changed([format!("deleted {s}")]))
            }
            Action::CreateRouteTable { vpc, tags } => {
                let v = id(vpc)?;
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_route_table()
                            .vpc_id(v)
                            .client_token(token)
                            .set_tag_specifications(tag_specs(ResourceKind::RouteTable, tags))
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
            } => {
                let (r, g) = (id(route_table)?, id(gateway)?);
                self.call(scope, name, rt, || {
                    client
                        .create_route()
                        .route_table_id(r)
                        .destination_cidr_block(destination.to_string())
                        .gateway_id(g)
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!(
                    "route {destination} via {g} in {r}"
                )]))
            }
            Action::ReplaceRoute {
                route_table,
                destination,
                gateway,
            } => {
                let (r, g) = (id(route_table)?, id(gateway)?);
                self.call(scope, name, rt, || {
                    client
                        .replace_route()
                        .route_table_id(r)
                        .destination_cidr_block(destination.to_string())
                        .gateway_id(g)
                        .send()
                })
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
                self.call(scope, name, rt, || {
                    client
                        .delete_route()
                        .route_table_id(r)
                        .destination_cidr_block(destination.to_string())
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
                let resp = self
                    .call(scope, name, rt, || {
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
                self.call(scope, name, rt, || {
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
                self.call(scope, name, rt, || {
                    client.delete_route_table().route_table_id(r).send()
                })
                .await?;
                Ok(Outcome::changed([format!("deleted {r}")]))
            }
            Action::CreateSecurityGroup {
                vpc,
                group_name,
                description,
                tags,
            } => {
                let v = id(vpc)?;
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .create_security_group()
                            .vpc_id(v)
                            .group_name(group_name)
                            .description(description)
                            .set_tag_specifications(tag_specs(ResourceKind::SecurityGroup, tags))
                            .send()
                    })
                    .await?;
                let g = resp.group_id().ok_or_else(|| missing("GroupId"))?;
                Ok(Outcome::created(g, "security group"))
            }
            Action::AuthorizeSecurityGroupIngress { group, rules }
            | Action::AuthorizeSecurityGroupEgress { group, rules } => {
                let g = id(group)?;
                let perms: Vec<_> = to_permissions(rules)?.iter().map(permission_to).collect();
                let ingress = matches!(action, Action::AuthorizeSecurityGroupIngress { .. });
                if ingress {
                    self.call(scope, name, rt, || {
                        client
                            .authorize_security_group_ingress()
                            .group_id(g)
                            .set_ip_permissions(Some(perms.clone()))
                            .send()
                    })
                    .await?;
                } else {
                    self.call(scope, name, rt, || {
                        client
                            .authorize_security_group_egress()
                            .group_id(g)
                            .set_ip_permissions(Some(perms.clone()))
                            .send()
                    })
                    .await?;
                }
                let dir = if ingress { "ingress" } else { "egress" };
                Ok(Outcome::changed(
                    rules.iter().map(|r| format!("authorized {dir} {r} on {g}")),
                ))
            }
            Action::RevokeSecurityGroupIngress { group, rules }
            | Action::RevokeSecurityGroupEgress { group, rules } => {
                let g = id(group)?;
                let perms: Vec<_> = to_permissions(rules)?.iter().map(permission_to).collect();
                let ingress = matches!(action, Action::RevokeSecurityGroupIngress { .. });
                let unknown = if ingress {
                    self.call(scope, name, rt, || {
                        client
                            .revoke_security_group_ingress()
                            .group_id(g)
                            .set_ip_permissions(Some(perms.clone()))
                            .send()
                    })
                    .await?
                    .unknown_ip_permissions()
                    .len()
                } else {
                    self.call(scope, name, rt, || {
                        client
                            .revoke_security_group_egress()
                            .group_id(g)
                            .set_ip_permissions(Some(perms.clone()))
                            .send()
                    })
                    .await?
                    .unknown_ip_permissions()
                    .len()
                };
                let dir = if ingress { "ingress" } else { "egress" };
                if unknown > 0 && unknown >= perms.len() {
                    return Ok(Outcome::already_done(None, format!("no such rules on {g}")));
                }
                Ok(Outcome::changed(
                    rules.iter().map(|r| format!("revoked {dir} {r} on {g}")),
                ))
            }
            Action::DeleteSecurityGroup { group } => {
                let g = id(group)?;
                self.call(scope, name, rt, || {
                    client.delete_security_group().group_id(g).send()
                })
                .await?;
                Ok(Outcome::changed([format!("deleted {g}")]))
            }
            Action::RunInstances {
                image_id,
                instance_type,
                subnet,
                security_groups,
                key_name,
                user_data,
                tags,
            } => {
                let s = id(subnet)?;
                let groups = security_groups
                    .iter()
                    .map(|g| id(g).map(String::from))
                    .collect::<Result<Vec<_>, _>>()?;
                let user_data = user_data.as_ref().map(aws_smithy_types::base64::encode);
                let resp = self
                    .call(scope, name, rt, || {
                        client
                            .run_instances()
                            .image_id(image_id)
                            .instance_type(InstanceType::from(instance_type.as_str()))
                            .subnet_id(s)
                            .set_security_group_ids((!groups.is_empty()).then(|| groups.clone()))
                            .set_key_name(key_name.clone())
                            .set_user_data(user_data.clone())
                            .min_count(1)
                            .max_count(1)
                            .client_token(token)
                            .set_tag_specifications(tag_specs(ResourceKind::Instance, tags))
                            .send()
                    })
                    .await?;
                let i = resp
                    .instances()
                    .first()
                    .and_then(|i| i.instance_id())
                    .ok_or_else(|| missing("InstanceId"))?;
                Ok(Outcome::created(i, "instance"))
            }
            Action::ModifyInstanceSecurityGroups {
                instance,
                security_groups,
            } => {
                let i = id(instance)?;
                let groups = security_groups
                    .iter()
                    .map(|g| id(g).map(String::from))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(scope, name, rt, || {
                    client
                        .modify_instance_attribute()
                        .instance_id(i)
                        .set_groups(Some(groups.clone()))
                        .send()
                })
                .await?;
                Ok(Outcome::changed([format!("replaced the groups of {i}")]))
            }
            Action::TerminateInstances { instance } => {
                let i = id(instance)?;
                self.call(scope, name, rt, || {
                    client.terminate_instances().instance_ids(i).send()
                })
                .await?;
                Ok(Outcome::changed([format!("terminated {i}")]))
            }
            Action::CreateTags { resource, tags } => {
                let r = id(resource)?;
                self.call(scope, name, rt, || {
                    client
                        .create_tags()
                        .resources(r)
                        .set_tags(Some(tags_to(tags)))
                        .send()
                })
                .await?;
                Ok(Outcome::changed(
                    tags.iter().map(|(k, v)| format!("tagged {r} {k}={v}")),
                ))
            }
            Action::DeleteTags { resource, keys } => {
                let r = id(resource)?;
                let tags: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
                self.call(scope, name, rt, || {
                    client
                        .delete_tags()
                        .resources(r)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await?;
                Ok(Outcome::changed(
                    keys.iter().map(|k| format!("untagged {r} {k}")),
                ))
            }
        }
    }
}
