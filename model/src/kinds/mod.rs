//! One module per resource kind, holding what the model knows about that
//! kind beyond the shape of its spec (`spec.rs`): which of its properties
//! change in place, the dry-run parameters of its requests, and its
//! planning rules. This module is the dispatch: one short `match` per
//! question, by kind or by action, into the kind's module.
//!
//! Adding a kind is adding a module here and an arm to each dispatch
//! (`docs/adding-a-resource-kind.md` lists the other layers).

mod associations;
mod dhcp_options;
mod egress_only_internet_gateway;
mod elastic_ip;
mod instance;
mod internet_gateway;
mod nat_gateway;
mod network_acl;
mod route_table;
mod security_group;
mod subnet;
mod tags;
mod volume;
mod vpc;
mod vpc_endpoint;
mod vpc_peering_connection;

use serde_json::{Map, Value};

use crate::draft::{Draft, Going, Kept};
use crate::{
    CloudRef, DesiredSpec, LogicalId, Mutability, ObservedResource, ObservedSpec, Request,
    Resource, ResourceKind, Spec, Tags,
};

impl ResourceKind {
    /// The properties of this kind and how each may change.
    pub fn properties(self) -> &'static [(&'static str, Mutability)] {
        match self {
            ResourceKind::DhcpOptions => dhcp_options::PROPERTIES,
            ResourceKind::Vpc => vpc::PROPERTIES,
            ResourceKind::InternetGateway => internet_gateway::PROPERTIES,
            ResourceKind::EgressOnlyInternetGateway => egress_only_internet_gateway::PROPERTIES,
            ResourceKind::ElasticIp => elastic_ip::PROPERTIES,
            ResourceKind::Subnet => subnet::PROPERTIES,
            ResourceKind::NatGateway => nat_gateway::PROPERTIES,
            ResourceKind::VpcPeeringConnection => vpc_peering_connection::PROPERTIES,
            ResourceKind::RouteTable => route_table::PROPERTIES,
            ResourceKind::VpcEndpoint => vpc_endpoint::PROPERTIES,
            ResourceKind::NetworkAcl => network_acl::PROPERTIES,
            ResourceKind::SecurityGroup => security_group::PROPERTIES,
            ResourceKind::Instance => instance::PROPERTIES,
            ResourceKind::Volume => volume::PROPERTIES,
        }
    }

    /// How `property` of this kind may change; properties not in the table
    /// (there should be none) are treated as replacement-required, the safe
    /// choice.
    pub fn mutability(self, property: &str) -> Mutability {
        self.properties()
            .iter()
            .find(|(name, _)| *name == property)
            .map(|(_, m)| *m)
            .unwrap_or(Mutability::Replace)
    }
}

impl Request {
    /// The parameters in EC2's own names, as the dry-run prints them; each
    /// kind writes those of its own actions.
    pub fn params(&self) -> Value {
        let mut p = Params::default();
        let action = &self.action;
        match action.resource_kind() {
            Some(ResourceKind::DhcpOptions) => dhcp_options::params(action, &mut p),
            Some(ResourceKind::Vpc) => vpc::params(action, &mut p),
            Some(ResourceKind::InternetGateway) => internet_gateway::params(action, &mut p),
            Some(ResourceKind::EgressOnlyInternetGateway) => {
                egress_only_internet_gateway::params(action, &mut p)
            }
            Some(ResourceKind::ElasticIp) => elastic_ip::params(action, &mut p),
            Some(ResourceKind::Subnet) => subnet::params(action, &mut p),
            Some(ResourceKind::NatGateway) => nat_gateway::params(action, &mut p),
            Some(ResourceKind::VpcPeeringConnection) => {
                vpc_peering_connection::params(action, &mut p)
            }
            Some(ResourceKind::RouteTable) => route_table::params(action, &mut p),
            Some(ResourceKind::VpcEndpoint) => vpc_endpoint::params(action, &self.region, &mut p),
            Some(ResourceKind::NetworkAcl) => network_acl::params(action, &mut p),
            Some(ResourceKind::SecurityGroup) => security_group::params(action, &mut p),
            Some(ResourceKind::Instance) => instance::params(action, &mut p),
            Some(ResourceKind::Volume) => volume::params(action, &mut p),
            None => tags::params(action, &mut p),
        }
        Value::Object(p.0)
    }
}

/// A request's parameters by EC2's names; a `Map` keeps its keys sorted, as
/// the golden files expect.
#[derive(Default)]
struct Params(Map<String, Value>);

impl Params {
    fn put(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_string(), value);
    }

    /// The tags of a create, if there are any (EC2 takes them as a
    /// `TagSpecification`; the dry-run shows them as `Tags`).
    fn put_tags(&mut self, tags: &Tags) {
        if !tags.is_empty() {
            self.put("Tags", tags::to_json(tags));
        }
    }
}

/// The requests that create `d` and bring it to its declared state.
pub(crate) fn create(draft: &mut Draft<'_>, d: &Resource) {
    let tags = tags::owned(d);
    match &d.spec {
        Spec::DhcpOptions(s) => dhcp_options::create(draft, d, s, tags),
        Spec::Vpc(s) => vpc::create(draft, d, s, tags),
        Spec::InternetGateway(s) => internet_gateway::create(draft, d, s, tags),
        Spec::EgressOnlyInternetGateway(s) => {
            egress_only_internet_gateway::create(draft, d, s, tags)
        }
        Spec::ElasticIp(_) => elastic_ip::create(draft, d, tags),
        Spec::Subnet(s) => subnet::create(draft, d, s, tags),
        Spec::NatGateway(s) => nat_gateway::create(draft, d, s, tags),
        Spec::VpcPeeringConnection(s) => vpc_peering_connection::create(draft, d, s, tags),
        Spec::RouteTable(s) => route_table::create(draft, d, s, tags),
        Spec::VpcEndpoint(s) => vpc_endpoint::create(draft, d, s, tags),
        Spec::NetworkAcl(s) => network_acl::create(draft, d, s, tags),
        Spec::SecurityGroup(s) => security_group::create(draft, d, s, tags),
        Spec::Instance(s) => instance::create(draft, d, s, tags),
        Spec::Volume(s) => volume::create(draft, d, s, tags),
    }
}

/// The in-place changes that bring `o`, which `d` keeps, to `d`'s
/// declaration; its tags last.
pub(crate) fn update(draft: &mut Draft<'_>, d: &Resource, o: &ObservedResource) {
    let k = Kept {
        d,
        o,
        me: CloudRef::Id(o.cloud_id.clone()),
    };
    if !unchanged(draft, &d.spec, o) {
        let have = draft.translate(o);
        match (&d.spec, &have, &o.spec) {
            // Nothing about a DHCP options set, an address, a NAT gateway
            // or an egress-only gateway changes in place (tags aside).
            (Spec::DhcpOptions(_), _, _)
            | (Spec::ElasticIp(_), _, _)
            | (Spec::NatGateway(_), _, _)
            | (Spec::EgressOnlyInternetGateway(_), _, _) => {}
            (Spec::Vpc(want), Spec::Vpc(have), Spec::Vpc(raw)) => {
                vpc::update(draft, &k, want, have, raw)
            }
            (
                Spec::InternetGateway(want),
                Spec::InternetGateway(have),
                Spec::InternetGateway(raw),
            ) => internet_gateway::update(draft, &k, want, have, raw),
            (Spec::Subnet(want), Spec::Subnet(have), Spec::Subnet(raw)) => {
                subnet::update(draft, &k, want, have, raw)
            }
            (Spec::VpcPeeringConnection(want), Spec::VpcPeeringConnection(have), _) => {
                vpc_peering_connection::update(draft, &k, want, have)
            }
            (Spec::RouteTable(want), Spec::RouteTable(have), Spec::RouteTable(raw)) => {
                route_table::update(draft, &k, want, have, raw)
            }
            (Spec::VpcEndpoint(want), _, Spec::VpcEndpoint(raw)) => {
                vpc_endpoint::update(draft, &k, want, raw)
            }
            (Spec::NetworkAcl(want), Spec::NetworkAcl(have), Spec::NetworkAcl(raw)) => {
                network_acl::update(draft, &k, want, have, raw)
            }
            (Spec::SecurityGroup(want), Spec::SecurityGroup(have), Spec::SecurityGroup(raw)) => {
                security_group::update(draft, &k, want, have, raw)
            }
            (Spec::Instance(want), Spec::Instance(have), _) => {
                instance::update(draft, &k, want, have)
            }
            (Spec::Volume(want), Spec::Volume(have), Spec::Volume(raw)) => {
                volume::update(draft, &k, want, have, raw)
            }
            // Matching guarantees equal kinds; nothing to do otherwise.
            _ => {}
        }
    }
    tags::update(draft, &k);
}

/// The requests that delete the cloud resource `o`, which served `serves`.
pub(crate) fn delete(draft: &mut Draft<'_>, serves: LogicalId, o: &ObservedResource) {
    let g = Going {
        serves,
        o,
        me: CloudRef::Id(o.cloud_id.clone()),
    };
    match &o.spec {
        Spec::DhcpOptions(_) => dhcp_options::delete(draft, &g),
        Spec::Vpc(_) => vpc::delete(draft, &g),
        Spec::InternetGateway(s) => internet_gateway::delete(draft, &g, s),
        Spec::EgressOnlyInternetGateway(_) => egress_only_internet_gateway::delete(draft, &g),
        Spec::ElasticIp(_) => elastic_ip::delete(draft, &g),
        Spec::Subnet(_) => subnet::delete(draft, &g),
        Spec::NatGateway(_) => nat_gateway::delete(draft, &g),
        Spec::VpcPeeringConnection(_) => vpc_peering_connection::delete(draft, &g),
        Spec::RouteTable(_) => route_table::delete(draft, &g),
        Spec::VpcEndpoint(_) => vpc_endpoint::delete(draft, &g),
        Spec::NetworkAcl(s) => network_acl::delete(draft, &g, s),
        Spec::SecurityGroup(s) => security_group::delete(draft, &g, s),
        Spec::Instance(_) => instance::delete(draft, &g),
        Spec::Volume(s) => volume::delete(draft, &g, s),
    }
}

/// Whether every in-place property (tags aside) already matches: the
/// allocation-free check that lets a quiet tick skip the full diff.
pub(crate) fn unchanged(draft: &Draft<'_>, want: &DesiredSpec, o: &ObservedResource) -> bool {
    match (want, &o.spec) {
        (Spec::DhcpOptions(_), Spec::DhcpOptions(_))
        | (Spec::ElasticIp(_), Spec::ElasticIp(_))
        | (Spec::NatGateway(_), Spec::NatGateway(_))
        | (Spec::EgressOnlyInternetGateway(_), Spec::EgressOnlyInternetGateway(_)) => true,
        (Spec::Vpc(w), Spec::Vpc(h)) => vpc::unchanged(draft, w, h),
        (Spec::InternetGateway(w), Spec::InternetGateway(h)) => {
            internet_gateway::unchanged(draft, w, h)
        }
        (Spec::Subnet(w), Spec::Subnet(h)) => subnet::unchanged(draft, w, h),
        (Spec::VpcPeeringConnection(w), Spec::VpcPeeringConnection(h)) => {
            vpc_peering_connection::unchanged(w, h)
        }
        (Spec::RouteTable(w), Spec::RouteTable(h)) => route_table::unchanged(draft, w, h),
        (Spec::VpcEndpoint(w), Spec::VpcEndpoint(h)) => vpc_endpoint::unchanged(draft, w, h),
        (Spec::NetworkAcl(w), Spec::NetworkAcl(h)) => network_acl::unchanged(draft, w, h),
        (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => security_group::unchanged(draft, w, h),
        (Spec::Instance(w), Spec::Instance(h)) => instance::unchanged(draft, w, h),
        (Spec::Volume(w), Spec::Volume(h)) => volume::unchanged(draft, w, h),
        _ => false,
    }
}

/// Whether a replacement-required property differs: the fast form of
/// `replace_differences(..).is_empty()`, used on every tick.
pub(crate) fn needs_replacement(
    draft: &Draft<'_>,
    want: &DesiredSpec,
    have: &ObservedSpec,
) -> bool {
    match (want, have) {
        (Spec::DhcpOptions(w), Spec::DhcpOptions(h)) => dhcp_options::needs_replacement(w, h),
        (Spec::Vpc(w), Spec::Vpc(h)) => vpc::needs_replacement(w, h),
        // Nothing about a gateway or an address is fixed.
        (Spec::InternetGateway(_), Spec::InternetGateway(_))
        | (Spec::ElasticIp(_), Spec::ElasticIp(_)) => false,
        (Spec::EgressOnlyInternetGateway(w), Spec::EgressOnlyInternetGateway(h)) => {
            egress_only_internet_gateway::needs_replacement(draft, w, h)
        }
        (Spec::Subnet(w), Spec::Subnet(h)) => subnet::needs_replacement(draft, w, h),
        (Spec::NatGateway(w), Spec::NatGateway(h)) => nat_gateway::needs_replacement(draft, w, h),
        (Spec::VpcPeeringConnection(w), Spec::VpcPeeringConnection(h)) => {
            vpc_peering_connection::needs_replacement(draft, w, h)
        }
        (Spec::RouteTable(w), Spec::RouteTable(h)) => route_table::needs_replacement(draft, w, h),
        (Spec::VpcEndpoint(w), Spec::VpcEndpoint(h)) => {
            vpc_endpoint::needs_replacement(draft, w, h)
        }
        (Spec::NetworkAcl(w), Spec::NetworkAcl(h)) => network_acl::needs_replacement(draft, w, h),
        (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
            security_group::needs_replacement(draft, w, h)
        }
        (Spec::Instance(w), Spec::Instance(h)) => instance::needs_replacement(draft, w, h),
        (Spec::Volume(w), Spec::Volume(h)) => volume::needs_replacement(w, h),
        _ => true,
    }
}

/// The replacement-required properties on which `want` and `have` (in
/// declared terms) differ, as (property, declared, observed).
pub(crate) fn replace_differences(
    want: &DesiredSpec,
    have: &DesiredSpec,
) -> Vec<(String, String, String)> {
    let mut out = Changes::default();
    match (want, have) {
        (Spec::DhcpOptions(w), Spec::DhcpOptions(h)) => {
            dhcp_options::replace_differences(w, h, &mut out)
        }
        (Spec::Vpc(w), Spec::Vpc(h)) => vpc::replace_differences(w, h, &mut out),
        (Spec::InternetGateway(_), Spec::InternetGateway(_))
        | (Spec::ElasticIp(_), Spec::ElasticIp(_)) => {}
        (Spec::EgressOnlyInternetGateway(w), Spec::EgressOnlyInternetGateway(h)) => {
            egress_only_internet_gateway::replace_differences(w, h, &mut out)
        }
        (Spec::Subnet(w), Spec::Subnet(h)) => subnet::replace_differences(w, h, &mut out),
        (Spec::NatGateway(w), Spec::NatGateway(h)) => {
            nat_gateway::replace_differences(w, h, &mut out)
        }
        (Spec::VpcPeeringConnection(w), Spec::VpcPeeringConnection(h)) => {
            vpc_peering_connection::replace_differences(w, h, &mut out)
        }
        (Spec::RouteTable(w), Spec::RouteTable(h)) => {
            route_table::replace_differences(w, h, &mut out)
        }
        (Spec::VpcEndpoint(w), Spec::VpcEndpoint(h)) => {
            vpc_endpoint::replace_differences(w, h, &mut out)
        }
        (Spec::NetworkAcl(w), Spec::NetworkAcl(h)) => {
            network_acl::replace_differences(w, h, &mut out)
        }
        (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
            security_group::replace_differences(w, h, &mut out)
        }
        (Spec::Instance(w), Spec::Instance(h)) => instance::replace_differences(w, h, &mut out),
        (Spec::Volume(w), Spec::Volume(h)) => volume::replace_differences(w, h, &mut out),
        _ => out.compare("kind", want.kind().to_string(), have.kind().to_string()),
    }
    out.0
}

/// Whether creating `d` would collide with `old`, which this plan deletes:
/// then `old` must go first.
pub(crate) fn conflicts(draft: &Draft<'_>, d: &Resource, old: &ObservedResource) -> bool {
    match (&d.spec, &old.spec) {
        (Spec::Subnet(new), Spec::Subnet(old)) => subnet::conflicts(draft, new, old),
        (Spec::NatGateway(new), Spec::NatGateway(old)) => nat_gateway::conflicts(draft, new, old),
        (Spec::SecurityGroup(new), Spec::SecurityGroup(old)) => {
            security_group::conflicts(draft, new, old)
        }
        _ => false,
    }
}

/// Whether the doomed resource `old` must be deleted before the creates and
/// in-place changes, because one of those cannot happen while it exists.
pub(crate) fn must_go_first(draft: &Draft<'_>, old: &ObservedResource) -> bool {
    match &old.spec {
        Spec::NatGateway(n) => nat_gateway::must_go_first(draft, n),
        // An attached volume that goes holds its device, which a new
        // volume may be declared on.
        Spec::Volume(v) => v.attachment.is_some(),
        _ => false,
    }
}

/// Differences in replacement-required properties, as (property, declared,
/// observed).
#[derive(Default)]
struct Changes(Vec<(String, String, String)>);

impl Changes {
    /// Records `property` if `declared` and `observed` differ.
    fn compare(&mut self, property: &str, declared: String, observed: String) {
        if declared != observed {
            self.0.push((property.to_string(), declared, observed));
        }
    }
}
