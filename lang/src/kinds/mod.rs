//! One file per resource kind: how a value of the standard library's
//! `resource type` (`Vpc`, …) becomes a `canon_model` spec — re-checking the
//! cloud's rules for values built with raw constructors — and how that spec
//! is written to and read from the compiled composition's protobuf. The
//! shared pieces are [`lowering`] and [`encoding`]; this module only
//! dispatches on the kind.

mod dhcp_options;
mod egress_only_internet_gateway;
mod elastic_ip;
mod encoding;
mod instance;
mod internet_gateway;
pub(crate) mod lowering;
mod named;
mod nat_gateway;
mod network_acl;
mod route_table;
mod security_group;
mod subnet;
mod volume;
mod vpc;
mod vpc_endpoint;
mod vpc_peering_connection;

use canon_model::{Region, ResourceKind, Spec};
use canon_proto::canon::composition::v1::resource::Spec as ProtoSpec;

use crate::diag::Diagnostic;
use crate::value::ResourceVal;
use lowering::{Lowering, Paths};
pub(crate) use named::{external_path, id_problem, kind_named, reference};

/// A resource value lowered: its region, its spec and the id it is
/// imported from, if it names one (`importId`).
pub(crate) struct LoweredResource {
    pub(crate) region: Region,
    pub(crate) spec: Spec<String>,
    pub(crate) import_id: Option<String>,
}

/// Lowers one resource value to its region and spec; references to other
/// resources become their paths. Errors are runtime diagnostics at the code
/// that built the offending value.
pub(crate) fn lower(
    r: &ResourceVal<'_>,
    paths: &Paths,
) -> Result<LoweredResource, Vec<Diagnostic>> {
    let mut l = Lowering::new(r, paths);
    let import_id = named::import_id(&mut l);
    let lowered = match r.kind {
        dhcp_options::NAME => dhcp_options::lower(&mut l),
        vpc::NAME => vpc::lower(&mut l),
        internet_gateway::NAME => internet_gateway::lower(&mut l),
        egress_only_internet_gateway::NAME => egress_only_internet_gateway::lower(&mut l),
        elastic_ip::NAME => elastic_ip::lower(&mut l),
        subnet::NAME => subnet::lower(&mut l),
        nat_gateway::NAME => nat_gateway::lower(&mut l),
        vpc_peering_connection::NAME => vpc_peering_connection::lower(&mut l),
        route_table::NAME => route_table::lower(&mut l),
        vpc_endpoint::NAME => vpc_endpoint::lower(&mut l),
        network_acl::NAME => network_acl::lower(&mut l),
        security_group::NAME => security_group::lower(&mut l),
        instance::NAME => instance::lower(&mut l),
        volume::NAME => volume::lower(&mut l),
        other => {
            l.error(format!("internal: unknown resource type {other}"));
            None
        }
    };
    let (region, spec) = l.finish(lowered)?;
    Ok(LoweredResource {
        region,
        spec,
        import_id,
    })
}

/// The standard library's name of a kind's resource type (`Vpc`).
pub(crate) fn type_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::DhcpOptions => dhcp_options::NAME,
        ResourceKind::Vpc => vpc::NAME,
        ResourceKind::InternetGateway => internet_gateway::NAME,
        ResourceKind::EgressOnlyInternetGateway => egress_only_internet_gateway::NAME,
        ResourceKind::ElasticIp => elastic_ip::NAME,
        ResourceKind::Subnet => subnet::NAME,
        ResourceKind::NatGateway => nat_gateway::NAME,
        ResourceKind::VpcPeeringConnection => vpc_peering_connection::NAME,
        ResourceKind::RouteTable => route_table::NAME,
        ResourceKind::VpcEndpoint => vpc_endpoint::NAME,
        ResourceKind::NetworkAcl => network_acl::NAME,
        ResourceKind::SecurityGroup => security_group::NAME,
        ResourceKind::Instance => instance::NAME,
        ResourceKind::Volume => volume::NAME,
    }
}

/// The rules that span resources, checked once every resource lowered
/// cleanly. `resources` are in the order they received paths.
pub(crate) fn check_together(resources: &[&ResourceVal<'_>], paths: &Paths) -> Vec<Diagnostic> {
    let mut errs = subnet::check_overlaps(resources, paths);
    errs.extend(subnet::check_ipv6_indexes(resources, paths));
    errs.extend(nat_gateway::check_public(resources, paths));
    errs.extend(network_acl::check_subnets(resources, paths));
    errs.extend(vpc_endpoint::check_tables_once(resources, paths));
    errs
}

pub(crate) fn to_proto(spec: &Spec<String>) -> ProtoSpec {
    match spec {
        Spec::DhcpOptions(s) => ProtoSpec::DhcpOptions(dhcp_options::to_proto(s)),
        Spec::Vpc(s) => ProtoSpec::Vpc(vpc::to_proto(s)),
        Spec::InternetGateway(s) => ProtoSpec::InternetGateway(internet_gateway::to_proto(s)),
        Spec::EgressOnlyInternetGateway(s) => {
            ProtoSpec::EgressOnlyInternetGateway(egress_only_internet_gateway::to_proto(s))
        }
        Spec::ElasticIp(s) => ProtoSpec::ElasticIp(elastic_ip::to_proto(s)),
        Spec::Subnet(s) => ProtoSpec::Subnet(subnet::to_proto(s)),
        Spec::NatGateway(s) => ProtoSpec::NatGateway(nat_gateway::to_proto(s)),
        Spec::VpcPeeringConnection(s) => {
            ProtoSpec::VpcPeeringConnection(vpc_peering_connection::to_proto(s))
        }
        Spec::RouteTable(s) => ProtoSpec::RouteTable(route_table::to_proto(s)),
        Spec::VpcEndpoint(s) => ProtoSpec::VpcEndpoint(vpc_endpoint::to_proto(s)),
        Spec::NetworkAcl(s) => ProtoSpec::NetworkAcl(network_acl::to_proto(s)),
        Spec::SecurityGroup(s) => ProtoSpec::SecurityGroup(security_group::to_proto(s)),
        Spec::Instance(s) => ProtoSpec::Instance(instance::to_proto(s)),
        Spec::Volume(s) => ProtoSpec::Volume(volume::to_proto(s)),
    }
}

/// The spec a protobuf message describes; the error is what is wrong with
/// it.
pub(crate) fn from_proto(spec: ProtoSpec) -> Result<Spec<String>, String> {
    Ok(match spec {
        ProtoSpec::DhcpOptions(s) => Spec::DhcpOptions(dhcp_options::from_proto(s)?),
        ProtoSpec::Vpc(s) => Spec::Vpc(vpc::from_proto(s)?),
        ProtoSpec::InternetGateway(s) => Spec::InternetGateway(internet_gateway::from_proto(s)?),
        ProtoSpec::EgressOnlyInternetGateway(s) => {
            Spec::EgressOnlyInternetGateway(egress_only_internet_gateway::from_proto(s)?)
        }
        ProtoSpec::ElasticIp(s) => Spec::ElasticIp(elastic_ip::from_proto(s)?),
        ProtoSpec::Subnet(s) => Spec::Subnet(subnet::from_proto(s)?),
        ProtoSpec::NatGateway(s) => Spec::NatGateway(nat_gateway::from_proto(s)?),
        ProtoSpec::VpcPeeringConnection(s) => {
            Spec::VpcPeeringConnection(vpc_peering_connection::from_proto(s)?)
        }
        ProtoSpec::RouteTable(s) => Spec::RouteTable(route_table::from_proto(s)?),
        ProtoSpec::VpcEndpoint(s) => Spec::VpcEndpoint(vpc_endpoint::from_proto(s)?),
        ProtoSpec::NetworkAcl(s) => Spec::NetworkAcl(network_acl::from_proto(s)?),
        ProtoSpec::SecurityGroup(s) => Spec::SecurityGroup(security_group::from_proto(s)?),
        ProtoSpec::Instance(s) => Spec::Instance(instance::from_proto(s)?),
        ProtoSpec::Volume(s) => Spec::Volume(volume::from_proto(s)?),
    })
}
