//! VPCs through EC2. `DescribeVpcs` does not return the DNS attributes:
//! they cost one call each per VPC, so they are cached (see
//! `AwsConfig::vpc_attribute_ttl`) and the cache follows Canon's own
//! changes. The Amazon-provided IPv6 `/56` does come with the describe
//! (its association set), so it costs nothing more.

use aws_sdk_ec2::operation::describe_vpc_attribute::DescribeVpcAttributeOutput;
use aws_sdk_ec2::types::{
    Tenancy as Ec2Tenancy, VpcAttributeName, VpcCidrBlockStateCode, VpcIpv6CidrBlockAssociation,
};
use canon_model::{
    Action, Ipv4Cidr, Ipv6Cidr, ObservedResource, ResourceKind, Spec, Tags, Tenancy, VpcAttribute,
    VpcSpec, IPV6_ASSOCIATION,
};

use super::{Call, Ec2};
use crate::aws::convert::{bool_attr, cidr, tag_specs, tags_from};
use crate::aws::missing;
use crate::aws::observe::{all_pages, next};
use crate::error::misrouted;
use crate::refs::id;
use crate::{CloudError, Outcome, Scope};

const KIND: ResourceKind = ResourceKind::Vpc;

/// Sends the call of one VPC action.
pub(in crate::aws) async fn run(call: &Call<'_>, action: &Action) -> Result<Outcome, CloudError> {
    match action {
        Action::CreateVpc {
            cidr_block,
            instance_tenancy,
            amazon_provided_ipv6_cidr_block,
            tags,
        } => {
            let ipv6 = *amazon_provided_ipv6_cidr_block;
            create(call, *cidr_block, *instance_tenancy, ipv6, tags).await
        }
        Action::AssociateVpcCidrBlock { vpc } => {
            let v = id(vpc)?;
            call.send(|| {
                call.ec2
                    .client
                    .associate_vpc_cidr_block()
                    .vpc_id(v)
                    .amazon_provided_ipv6_cidr_block(true)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "associated an Amazon-provided IPv6 block with {v}"
            )]))
        }
        Action::DisassociateVpcCidrBlock { association_id } => {
            call.send(|| {
                call.ec2
                    .client
                    .disassociate_vpc_cidr_block()
                    .association_id(association_id)
                    .send()
            })
            .await?;
            Ok(Outcome::changed([format!(
                "disassociated IPv6 block {association_id}"
            )]))
        }
        Action::ModifyVpcAttribute {
            vpc,
            attribute,
            value,
        } => modify_attribute(call, id(vpc)?, *attribute, *value).await,
        Action::DeleteVpc { vpc } => {
            let v = id(vpc)?;
            call.send(|| call.ec2.client.delete_vpc().vpc_id(v).send())
                .await?;
            Ok(Outcome::changed([format!("deleted {v}")]))
        }
        _ => Err(misrouted(action)),
    }
}

async fn create(
    call: &Call<'_>,
    cidr_block: Ipv4Cidr,
    instance_tenancy: Tenancy,
    ipv6: bool,
    tags: &Tags,
) -> Result<Outcome, CloudError> {
    let resp = call
        .send(|| {
            call.ec2
                .client
                .create_vpc()
                .cidr_block(cidr_block.to_string())
                .instance_tenancy(Ec2Tenancy::from(instance_tenancy.as_str()))
                .set_amazon_provided_ipv6_cidr_block(ipv6.then_some(true))
                .set_tag_specifications(tag_specs(KIND, tags))
                .send()
        })
        .await?;
    let v = resp
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or_else(|| missing("VpcId"))?;
    // A VPC CreateVpc makes resolves DNS and gives no hostnames (EC2's
    // defaults, which CreateVpc cannot change): known without the two
    // `DescribeVpcAttribute` reads its first observation would make.
    remember_dns(call.ec2.cloud, call.ec2.scope, v, true, false);
    Ok(Outcome::created(v, "vpc"))
}

async fn modify_attribute(
    call: &Call<'_>,
    v: &str,
    attribute: VpcAttribute,
    value: bool,
) -> Result<Outcome, CloudError> {
    call.send(|| {
        let b = call.ec2.client.modify_vpc_attribute().vpc_id(v);
        match attribute {
            VpcAttribute::EnableDnsSupport => b.enable_dns_support(bool_attr(value)),
            VpcAttribute::EnableDnsHostnames => b.enable_dns_hostnames(bool_attr(value)),
        }
        .send()
    })
    .await?;
    let (cloud, scope) = (call.ec2.cloud, call.ec2.scope);
    if let Some((mut s, mut h)) = cached_dns(cloud, scope, v) {
        match attribute {
            VpcAttribute::EnableDnsSupport => s = value,
            VpcAttribute::EnableDnsHostnames => h = value,
        }
        remember_dns(cloud, scope, v, s, h);
    }
    Ok(Outcome::changed([format!(
        "set {attribute:?} of {v} to {value}"
    )]))
}

super::find_owned_by_tag!(describe_vpcs, vpcs, vpc_id);

/// Every owned VPC, page by page, with its DNS attributes.
pub(in crate::aws) async fn observe(ec2: &Ec2<'_>) -> Result<Vec<ObservedResource>, CloudError> {
    all_pages(|mut out, token| async move {
        let resp = super::describe_owned_page!(ec2, describe_vpcs, set_vpc_ids, token).await?;
        for v in resp.vpcs() {
            let id = v.vpc_id().ok_or_else(|| missing("VpcId"))?;
            let (dns_support, dns_hostnames) = dns(ec2, id).await?;
            let tenancy = match v.instance_tenancy().map(|t| t.as_str()) {
                Some("dedicated") => Tenancy::Dedicated,
                _ => Tenancy::Default,
            };
            let ipv6 = v.ipv6_cidr_block_association_set().iter().find(|a| live(a));
            out.push(ObservedResource {
                cloud_id: id.to_string(),
                region: ec2.scope.region.clone(),
                spec: Spec::Vpc(VpcSpec {
                    cidr_block: cidr(v.cidr_block(), "CidrBlock")?,
                    instance_tenancy: tenancy,
                    enable_dns_support: dns_support,
                    enable_dns_hostnames: dns_hostnames,
                    ipv6: ipv6.is_some(),
                    ipv6_cidr_block: ipv6
                        .and_then(|a| a.ipv6_cidr_block())
                        .and_then(|b| b.parse::<Ipv6Cidr>().ok()),
                    dhcp_options: v
                        .dhcp_options_id()
                        .filter(|d| *d != "default" && !d.is_empty())
                        .map(String::from),
                    tags: tags_from(v.tags()),
                }),
                association_ids: ipv6
                    .and_then(|a| a.association_id())
                    .map(|a| (IPV6_ASSOCIATION.to_string(), a.to_string()))
                    .into_iter()
                    .collect(),
                pending: false,
                life: None,
            });
        }
        Ok((out, next(resp.next_token())))
    })
    .await
}

/// An IPv6 block the VPC has or is getting (one on its way out, or that
/// failed, is not the VPC's).
fn live(a: &VpcIpv6CidrBlockAssociation) -> bool {
    // A state the answer does not carry counts as the block's (as for
    // subnets, whose state moto nests where the SDK does not read it).
    !matches!(
        a.ipv6_cidr_block_state().and_then(|s| s.state()),
        Some(
            VpcCidrBlockStateCode::Disassociating
                | VpcCidrBlockStateCode::Disassociated
                | VpcCidrBlockStateCode::Failing
                | VpcCidrBlockStateCode::Failed
        )
    )
}

/// A VPC's DNS attributes, from the cache while fresh.
async fn dns(ec2: &Ec2<'_>, vpc: &str) -> Result<(bool, bool), CloudError> {
    let key = (ec2.scope.clone(), vpc.to_string());
    let ttl = ec2.cloud.config.vpc_attribute_ttl;
    if let Some((s, h, at)) = ec2
        .cloud
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
    let support = attribute(ec2, vpc, VpcAttributeName::EnableDnsSupport)
        .await?
        .enable_dns_support()
        .and_then(|a| a.value())
        .unwrap_or(true);
    let hostnames = attribute(ec2, vpc, VpcAttributeName::EnableDnsHostnames)
        .await?
        .enable_dns_hostnames()
        .and_then(|a| a.value())
        .unwrap_or(false);
    remember_dns(ec2.cloud, ec2.scope, vpc, support, hostnames);
    Ok((support, hostnames))
}

/// One `DescribeVpcAttribute` call: VPC `vpc`'s attribute `name`.
async fn attribute(
    ec2: &Ec2<'_>,
    vpc: &str,
    name: VpcAttributeName,
) -> Result<DescribeVpcAttributeOutput, CloudError> {
    ec2.call(
        "DescribeVpcAttribute",
        "aws.ec2.describe_vpc_attribute",
        || {
            ec2.client
                .describe_vpc_attribute()
                .vpc_id(vpc)
                .attribute(name.clone())
                .send()
        },
    )
    .await
}

fn remember_dns(cloud: &crate::AwsCloud, scope: &Scope, vpc: &str, support: bool, hostnames: bool) {
    cloud
        .vpc_attrs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            (scope.clone(), vpc.to_string()),
            (support, hostnames, tokio::time::Instant::now()),
        );
}

fn cached_dns(cloud: &crate::AwsCloud, scope: &Scope, vpc: &str) -> Option<(bool, bool)> {
    cloud
        .vpc_attrs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(scope.clone(), vpc.to_string()))
        .map(|(s, h, _)| (*s, *h))
}
