//! The demo's network as a declaration built in Rust, without the language:
//! DHCP options, a VPC, an internet gateway, two public subnets, a public
//! route table and Sam's web-facing security group (80 and 443 from the
//! world, 22 too after the update).
//!
//! It exists so that the tests, benchmarks and simulations of every crate
//! speak of one network — the one in the demo script — instead of each
//! keeping its own copy. Each knob changes what a test needs (paths, names,
//! whether there are DHCP options); the defaults are the demo's.
//!
//! Beside it, the unit of the scale tests and benchmarks: a [`web_group`],
//! and a process of many ([`process_with_groups`]) in a VPC made outside
//! Canon; a network with NAT gateways ([`nat_network`]); a process of the
//! kinds issue #17 added ([`mixed_network`]); and
//! [`declaration`], which makes a fixture's (path, spec) pairs a process's
//! declaration.

mod mixed;
mod private;

pub use mixed::{mixed_network, vpc_acl_entry, MIXED_PATHS};
pub use private::nat_network;

use crate::sorted_vec::SortedVecSet;
use crate::{
    DesiredSpec, DesiredState, DhcpOptionsSpec, Fid, InternetGatewaySpec, IpCidr, Ipv4Cidr,
    LogicalId, ObservedResource, Peer, Protocol, Ref, Region, Resource, Route, RouteTableSpec,
    Rule, SecurityGroupSpec, Spec, StateError, SubnetSpec, Tags, Tenancy, VpcSpec, OWNERSHIP_TAG,
};

/// What to build; [`DemoNetwork::default`] is the demo's own network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoNetwork {
    /// Region of every resource; the subnets go in its zones `a` and `b`.
    pub region: String,
    /// Path prefix of the network's resources (`dev-network.vpc`, …).
    pub prefix: String,
    /// Path of the security group.
    pub group_path: String,
    /// The group's EC2 name.
    pub group_name: String,
    /// The `Name` tag of the network's resources.
    pub name_tag: String,
    /// The group's `Environment` tag.
    pub environment: String,
    /// DHCP options with this domain name; `None`: no DHCP options.
    pub dhcp_domain: Option<String>,
    /// Whether the group also lets SSH (tcp 22) in from the world.
    pub ssh: bool,
}

impl Default for DemoNetwork {
    fn default() -> Self {
        DemoNetwork {
            region: REGION.into(),
            prefix: "dev-network".into(),
            group_path: "dev-sam-sg".into(),
            group_name: "dev-sam-sg".into(),
            name_tag: "dev-network-sam".into(),
            environment: "dev-sam".into(),
            dhcp_domain: Some("us-west-2.compute.internal".into()),
            ssh: false,
        }
    }
}

/// The region of the demo, and of the fixtures below.
pub const REGION: &str = "us-west-2";

/// The declaration of process `fid` holding each (path, spec) of `specs`,
/// in [`REGION`], its references checked (`DesiredState::validate`).
pub fn declaration<P: AsRef<str>>(
    fid: Fid,
    specs: impl IntoIterator<Item = (P, DesiredSpec)>,
) -> Result<DesiredState, StateError> {
    let mut d = DesiredState::empty(fid);
    for (path, spec) in specs {
        let path = path.as_ref();
        d.insert(Resource {
            id: LogicalId::new(fid, path),
            name: path.into(),
            region: Region::new(REGION),
            spec,
        })?;
    }
    d.validate()?;
    Ok(d)
}

/// An ingress rule for tcp `port` from anywhere.
pub fn web_rule<R>(port: i32) -> Rule<R> {
    Rule::new(Protocol::Tcp, port, port, Peer::Cidr(Ipv4Cidr::ANY))
}

/// A security group in `vpc` named `name` that lets tcp `ports` in from
/// anywhere: description `web`, EC2's default egress, no tags.
pub fn web_group<R: Ord>(vpc: R, name: impl Into<String>, ports: &[i32]) -> SecurityGroupSpec<R> {
    SecurityGroupSpec {
        vpc,
        group_name: name.into(),
        description: "web".into(),
        ingress: ports.iter().map(|p| web_rule(*p)).collect(),
        egress: [Rule::allow_all_egress()].into_iter().collect(),
        tags: Tags::new(),
    }
}

/// A web group (no ports) in `vpc-0` as the cloud shows it, with
/// `owner`'s ownership tag: an observed resource of a process, for the
/// tests of what reads observations.
pub fn owned_web_group(cloud_id: &str, owner: LogicalId) -> ObservedResource {
    let mut spec = web_group("vpc-0".to_string(), cloud_id, &[]);
    spec.tags
        .insert(OWNERSHIP_TAG.to_string(), owner.to_string());
    ObservedResource {
        cloud_id: cloud_id.into(),
        region: Region::new(REGION),
        spec: Spec::SecurityGroup(spec),
        association_ids: Default::default(),
        pending: false,
        life: None,
    }
}

/// The declaration of process `fid`: `n` web groups (tcp `ports` from
/// anywhere) in `vpc`, the cloud id of a VPC Canon does not manage, in
/// [`REGION`]. Paths are `group0`, `group1`, …; EC2 names `{name_prefix}0`,
/// `{name_prefix}1`, ….
pub fn process_with_groups(
    fid: Fid,
    vpc: &str,
    n: usize,
    name_prefix: &str,
    ports: &[i32],
) -> Result<DesiredState, StateError> {
    declaration(
        fid,
        (0..n).map(|g| {
            let group = web_group(
                Ref::External(vpc.into()),
                format!("{name_prefix}{g}"),
                ports,
            );
            (format!("group{g}"), Spec::SecurityGroup(group))
        }),
    )
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl DemoNetwork {
    /// The same network with SSH allowed (the demo's update) or not.
    pub fn with_ssh(mut self, ssh: bool) -> Self {
        self.ssh = ssh;
        self
    }

    /// The declaration of process `fid`.
    pub fn build(&self, fid: Fid) -> Result<DesiredState, StateError> {
        let region = Region::new(&self.region);
        let mut d = DesiredState::empty(fid);
        let mut add = |path: &str, spec: DesiredSpec| -> Result<LogicalId, StateError> {
            let id = LogicalId::new(fid, path);
            d.insert(Resource {
                id,
                name: path.into(),
                region: region.clone(),
                spec,
            })?;
            Ok(id)
        };
        let p = &self.prefix;
        let name = tags(&[("Name", &self.name_tag)]);
        let dhcp = match &self.dhcp_domain {
            Some(domain) => Some(Ref::Managed(add(
                &format!("{p}.dhcpOptions"),
                Spec::DhcpOptions(DhcpOptionsSpec {
                    domain_name: Some(domain.clone()),
                    domain_name_servers: vec!["AmazonProvidedDNS".into()],
                    ntp_servers: vec![],
                    tags: name.clone(),
                }),
            )?)),
            None => None,
        };
        let vpc = add(
            &format!("{p}.vpc"),
            Spec::Vpc(VpcSpec {
                cidr_block: cidr(0, 16),
                instance_tenancy: Tenancy::Default,
                enable_dns_support: true,
                enable_dns_hostnames: true,
                ipv6: false,
                ipv6_cidr_block: None,
                dhcp_options: dhcp,
                tags: name.clone(),
            }),
        )?;
        let igw = add(
            &format!("{p}.igw"),
            Spec::InternetGateway(InternetGatewaySpec {
                vpc: Some(Ref::Managed(vpc)),
                tags: name.clone(),
            }),
        )?;
        let mut subnets = SortedVecSet::new();
        for (i, zone) in ["a", "b"].iter().enumerate() {
            subnets.insert(Ref::Managed(add(
                &format!("{p}.publicSubnets[{i}]"),
                Spec::Subnet(SubnetSpec {
                    vpc: Ref::Managed(vpc),
                    cidr_block: cidr(i as u8 + 1, 24),
                    availability_zone: format!("{}{zone}", self.region),
                    map_public_ip_on_launch: true,
                    ipv6_index: None,
                    ipv6_cidr_block: None,
                    tags: name.clone(),
                }),
            )?));
        }
        add(
            &format!("{p}.publicRouteTable"),
            Spec::RouteTable(RouteTableSpec {
                interfaces: Default::default(),
                vpc: Ref::Managed(vpc),
                routes: [Route {
                    destination: IpCidr::V4(Ipv4Cidr::ANY),
                    target: Ref::Managed(igw),
                }]
                .into_iter()
                .collect(),
                associations: subnets,
                tags: name.clone(),
            }),
        )?;
        let ports: &[i32] = if self.ssh { &[80, 443, 22] } else { &[80, 443] };
        let mut group = web_group(Ref::Managed(vpc), self.group_name.clone(), ports);
        group.description = "Allow http/s traffic from the Internet".into();
        group.tags = tags(&[("Environment", &self.environment)]);
        add(&self.group_path, Spec::SecurityGroup(group))?;
        d.validate()?;
        Ok(d)
    }
}

/// `10.0.<third>.0/<prefix>`.
fn cidr(third: u8, prefix: u8) -> Ipv4Cidr {
    // 10.0.x.0 has no host bits set for any prefix of 24 or less, and the
    // two prefixes used here are 16 and 24, so this cannot fail.
    Ipv4Cidr::new(std::net::Ipv4Addr::new(10, 0, third, 0), prefix).unwrap_or(Ipv4Cidr::ANY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_network_has_seven_resources_and_ssh_adds_one_rule() {
        let fid = Fid::random();
        let d = DemoNetwork::default().build(fid).unwrap();
        assert_eq!(d.resources.len(), 7);
        let sg = &d.resources[&LogicalId::new(fid, "dev-sam-sg")];
        let Spec::SecurityGroup(g) = &sg.spec else {
            panic!("not a group")
        };
        assert_eq!(g.ingress.len(), 2);
        let d = DemoNetwork::default().with_ssh(true).build(fid).unwrap();
        let Spec::SecurityGroup(g) = &d.resources[&LogicalId::new(fid, "dev-sam-sg")].spec else {
            panic!("not a group")
        };
        assert!(g.ingress.contains(&web_rule(22)));
        let no_dhcp = DemoNetwork {
            dhcp_domain: None,
            ..DemoNetwork::default()
        };
        assert_eq!(no_dhcp.build(fid).unwrap().resources.len(), 6);
    }

    #[test]
    fn a_process_with_groups_has_one_web_group_per_path_in_the_given_vpc() {
        let fid = Fid::random();
        let d = process_with_groups(fid, "vpc-1", 3, "p7-g", &[80, 443]).unwrap();
        assert_eq!(d.resources.len(), 3);
        let g = &d.resources[&LogicalId::new(fid, "group2")];
        assert_eq!(g.region, Region::new(REGION));
        let Spec::SecurityGroup(g) = &g.spec else {
            panic!("not a group")
        };
        assert_eq!(g.group_name, "p7-g2");
        assert_eq!(g.vpc, Ref::External("vpc-1".into()));
        assert_eq!(g.ingress, [web_rule(80), web_rule(443)].into());
        assert_eq!(g.egress, [Rule::allow_all_egress()].into());
    }
}
