//! An import's candidates through EC2: the kind's own describe (the one
//! observation uses, in `ec2/<kind>.rs`) with the lookup's filters in
//! place of the ownership tag's, so EC2 narrows the answer to one id, one
//! VPC or one subnet. What EC2 cannot filter on is narrowed here by the
//! lookup itself (`Lookup::admits`); which candidate matches is decided in
//! `canon_model::import`.

use aws_sdk_ec2::types::Filter;
use canon_model::import::Lookup;
use canon_model::{ObservedResource, ResourceKind};

use super::ec2::{
    dhcp_options, egress_only_internet_gateway, elastic_ip, instance, internet_gateway,
    nat_gateway, network_acl, route_table, security_group, subnet, volume, vpc, vpc_endpoint,
    vpc_peering_connection, Ec2,
};
use super::AwsCloud;
use crate::{CloudError, Scope};

/// The describe filter naming a resource of `kind` by id, where EC2 has
/// one (egress-only gateways are narrowed after the answer).
pub(super) fn id_filter(kind: ResourceKind) -> Option<&'static str> {
    Some(match kind {
        ResourceKind::DhcpOptions => "dhcp-options-id",
        ResourceKind::Vpc => "vpc-id",
        ResourceKind::InternetGateway => "internet-gateway-id",
        ResourceKind::ElasticIp => "allocation-id",
        ResourceKind::Subnet => "subnet-id",
        ResourceKind::NatGateway => "nat-gateway-id",
        ResourceKind::VpcPeeringConnection => "vpc-peering-connection-id",
        ResourceKind::RouteTable => "route-table-id",
        ResourceKind::VpcEndpoint => "vpc-endpoint-id",
        ResourceKind::NetworkAcl => "network-acl-id",
        ResourceKind::SecurityGroup => "group-id",
        ResourceKind::Instance => "instance-id",
        ResourceKind::Volume => "volume-id",
        ResourceKind::EgressOnlyInternetGateway => return None,
    })
}

/// The describe filter naming where a resource of `kind` lives (its VPC,
/// or the VPC it is attached to).
fn vpc_filter(kind: ResourceKind) -> Option<&'static str> {
    match kind {
        ResourceKind::InternetGateway => Some("attachment.vpc-id"),
        ResourceKind::VpcPeeringConnection => Some("requester-vpc-info.vpc-id"),
        ResourceKind::Subnet
        | ResourceKind::RouteTable
        | ResourceKind::VpcEndpoint
        | ResourceKind::NetworkAcl
        | ResourceKind::SecurityGroup => Some("vpc-id"),
        _ => None,
    }
}

/// The filters that narrow `kind`'s describe to what `lookup` admits, as
/// far as EC2 can.
fn filters(kind: ResourceKind, lookup: &Lookup) -> Vec<Filter> {
    let one = |name: Option<&str>, value: &str| {
        name.map(|n| Filter::builder().name(n).values(value).build())
    };
    match lookup {
        Lookup::Id(id) => one(id_filter(kind), id),
        Lookup::Region => None,
        Lookup::InVpc(v) => one(vpc_filter(kind), v),
        Lookup::InSubnet(s) => one(Some("subnet-id"), s),
    }
    .into_iter()
    .collect()
}

impl AwsCloud {
    pub(super) async fn find_candidates(
        &self,
        scope: &Scope,
        kind: ResourceKind,
        lookup: &Lookup,
    ) -> Result<Vec<ObservedResource>, CloudError> {
        let client = self.client(scope).await?;
        let selected = filters(kind, lookup);
        let ec2 = Ec2 {
            cloud: self,
            scope,
            client: &client,
            ids: None,
            select: Some(&selected),
            asked: None,
        };
        let found = observe_kind(&ec2, kind).await?;
        Ok(found.into_iter().filter(|o| lookup.admits(o)).collect())
    }
}

/// The resources of `kind` that `ec2`'s selection picks, through the
/// kind's own describe.
pub(super) async fn observe_kind(
    ec2: &Ec2<'_>,
    kind: ResourceKind,
) -> Result<Vec<ObservedResource>, CloudError> {
    Ok(match kind {
        ResourceKind::DhcpOptions => dhcp_options::observe(ec2).await?,
        ResourceKind::Vpc => vpc::observe(ec2).await?,
        ResourceKind::InternetGateway => internet_gateway::observe(ec2).await?,
        ResourceKind::EgressOnlyInternetGateway => {
            egress_only_internet_gateway::observe(ec2).await?
        }
        ResourceKind::ElasticIp => elastic_ip::observe(ec2).await?,
        ResourceKind::Subnet => subnet::observe(ec2).await?,
        ResourceKind::NatGateway => nat_gateway::observe(ec2).await?.gateways,
        ResourceKind::VpcPeeringConnection => vpc_peering_connection::observe(ec2).await?,
        ResourceKind::RouteTable => route_table::observe(ec2).await?,
        ResourceKind::VpcEndpoint => vpc_endpoint::observe(ec2).await?,
        ResourceKind::NetworkAcl => network_acl::observe(ec2).await?,
        ResourceKind::SecurityGroup => security_group::observe(ec2).await?,
        ResourceKind::Instance => instance::observe(ec2).await?,
        ResourceKind::Volume => volume::observe(ec2).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_becomes_the_filter_ec2_narrows_by() {
        let f = filters(ResourceKind::Subnet, &Lookup::InVpc("vpc-1".into()));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name(), Some("vpc-id"));
        assert_eq!(f[0].values(), ["vpc-1".to_string()]);
        let f = filters(
            ResourceKind::InternetGateway,
            &Lookup::InVpc("vpc-1".into()),
        );
        assert_eq!(f[0].name(), Some("attachment.vpc-id"));
        let f = filters(ResourceKind::SecurityGroup, &Lookup::Id("sg-1".into()));
        assert_eq!(f[0].name(), Some("group-id"));
        assert!(filters(ResourceKind::Vpc, &Lookup::Region).is_empty());
        assert!(filters(
            ResourceKind::EgressOnlyInternetGateway,
            &Lookup::Id("eigw-1".into())
        )
        .is_empty());
    }
}
