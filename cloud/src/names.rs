//! EC2 action names, as the API and the call counters spell them.

use canon_model::ResourceKind;

/// The EC2 action of a request type: `aws.ec2.create_vpc` → `CreateVpc`.
pub fn ec2_action(request_type: &str) -> String {
    let op = request_type.rsplit('.').next().unwrap_or(request_type);
    op.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The describe action that lists resources of `kind`.
pub fn describe_action(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::DhcpOptions => "DescribeDhcpOptions",
        ResourceKind::Vpc => "DescribeVpcs",
        ResourceKind::InternetGateway => "DescribeInternetGateways",
        ResourceKind::EgressOnlyInternetGateway => "DescribeEgressOnlyInternetGateways",
        ResourceKind::ElasticIp => "DescribeAddresses",
        ResourceKind::Subnet => "DescribeSubnets",
        ResourceKind::NatGateway => "DescribeNatGateways",
        ResourceKind::VpcPeeringConnection => "DescribeVpcPeeringConnections",
        ResourceKind::RouteTable => "DescribeRouteTables",
        ResourceKind::VpcEndpoint => "DescribeVpcEndpoints",
        ResourceKind::NetworkAcl => "DescribeNetworkAcls",
        ResourceKind::SecurityGroup => "DescribeSecurityGroups",
        ResourceKind::Instance => "DescribeInstances",
        ResourceKind::Volume => "DescribeVolumes",
    }
}

/// The request type string of the describe of `kind`, for classification.
pub fn describe_request_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::DhcpOptions => "aws.ec2.describe_dhcp_options",
        ResourceKind::Vpc => "aws.ec2.describe_vpcs",
        ResourceKind::InternetGateway => "aws.ec2.describe_internet_gateways",
        ResourceKind::EgressOnlyInternetGateway => "aws.ec2.describe_egress_only_internet_gateways",
        ResourceKind::ElasticIp => "aws.ec2.describe_addresses",
        ResourceKind::Subnet => "aws.ec2.describe_subnets",
        ResourceKind::NatGateway => "aws.ec2.describe_nat_gateways",
        ResourceKind::VpcPeeringConnection => "aws.ec2.describe_vpc_peering_connections",
        ResourceKind::RouteTable => "aws.ec2.describe_route_tables",
        ResourceKind::VpcEndpoint => "aws.ec2.describe_vpc_endpoints",
        ResourceKind::NetworkAcl => "aws.ec2.describe_network_acls",
        ResourceKind::SecurityGroup => "aws.ec2.describe_security_groups",
        ResourceKind::Instance => "aws.ec2.describe_instances",
        ResourceKind::Volume => "aws.ec2.describe_volumes",
    }
}

/// EC2's largest page (`MaxResults`) for the describe of `kind`.
/// `DescribeAddresses` has no pages: one call answers every address (an
/// account has few, five by default), which the simulated cloud mirrors
/// with a page as large as its describe.
pub fn max_results(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::RouteTable => 100,
        ResourceKind::EgressOnlyInternetGateway => 255,
        ResourceKind::Volume => 500,
        ResourceKind::ElasticIp => usize::MAX,
        _ => 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ec2_action("aws.ec2.create_vpc"), "CreateVpc");
        assert_eq!(
            ec2_action("aws.ec2.create_dhcp_options"),
            "CreateDhcpOptions"
        );
        assert_eq!(
            ec2_action("aws.ec2.authorize_security_group_ingress"),
            "AuthorizeSecurityGroupIngress"
        );
    }
}
