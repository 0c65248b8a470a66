//! A reference interpreter: applies requests to an `ObservedState` with the
//! EC2 rules that matter for ordering (a create needs what it refers to; a
//! delete fails while something depends on the resource; one gateway per
//! VPC; subnets inside their VPC and not overlapping; duplicate rules and
//! routes are errors; revoking a missing rule is a no-op). If the planner's
//! order is wrong, applying its plan fails here.
//!
//! Each kind's rules are in its own module, written from EC2's behaviour,
//! not from the planner's code: this is the oracle the planner is tested
//! against.

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

use std::collections::BTreeMap;

use canon_model::{
    Action, Bindings, CloudRef, DesiredState, ObservedResource, ObservedState, Plan, Ref, Region,
    Request, Spec, VpcSpec, IPV6_ASSOCIATION, OWNERSHIP_TAG,
};

pub struct RefCloud {
    pub state: ObservedState,
    next: u64,
    /// Cloud ids touched by each executed request.
    pub touched: Vec<String>,
}

fn id(r: &CloudRef) -> Result<String, String> {
    match r {
        CloudRef::Id(i) => Ok(i.clone()),
        CloudRef::Pending(l) => Err(format!("unresolved reference to {l}")),
    }
}

impl Default for RefCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl RefCloud {
    pub fn new() -> Self {
        RefCloud {
            state: ObservedState::new(),
            next: 1,
            touched: Vec::new(),
        }
    }

    pub(super) fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{:08x}", self.next)
    }

    pub fn add(&mut self, cloud_id: String, spec: Spec<String>) {
        self.state.insert(ObservedResource {
            cloud_id,
            region: Region::new("us-west-2"),
            spec,
            association_ids: BTreeMap::new(),
            pending: false,
            life: None,
        });
    }

    /// Time passes: every NAT gateway still pending becomes available,
    /// and every accepted peering connection active (one still waiting
    /// for acceptance waits on).
    pub fn settle(&mut self) {
        let waiting =
            |r: &ObservedResource| matches!(&r.spec, Spec::VpcPeeringConnection(p) if !p.accepted);
        let pending: Vec<ObservedResource> = self
            .state
            .iter()
            .filter(|r| r.pending && !waiting(r))
            .cloned()
            .collect();
        for mut r in pending {
            r.pending = false;
            self.state.insert(r);
        }
    }

    /// The NAT gateway holding address `a`, if one does.
    pub fn nat_holding(&self, a: &str) -> Option<String> {
        self.state
            .iter()
            .find(|r| matches!(&r.spec, Spec::NatGateway(n) if n.allocation.as_deref() == Some(a)))
            .map(|r| r.cloud_id.clone())
    }

    /// Whether an internet gateway is attached to VPC `v`.
    fn gateway_attached(&self, v: &str) -> bool {
        self.state
            .iter()
            .any(|r| matches!(&r.spec, Spec::InternetGateway(g) if g.vpc.as_deref() == Some(v)))
    }

    /// Whether a public NAT gateway sits in a subnet of VPC `v`.
    fn public_nat_in(&self, v: &str) -> bool {
        self.state.iter().any(|r| match &r.spec {
            Spec::NatGateway(n) if n.allocation.is_some() => matches!(
                self.state.get(&n.subnet).map(|s| &s.spec),
                Some(Spec::Subnet(s)) if s.vpc == v
            ),
            _ => false,
        })
    }

    /// Applies a plan the way the scheduler will: record adoptions, resolve
    /// each request's pending references, execute, bind what it created.
    pub fn apply_plan(&mut self, plan: &Plan, bindings: &mut Bindings) -> Result<(), String> {
        for (l, c) in &plan.adoptions {
            bindings.bind(*l, c.clone());
        }
        for (i, req) in plan.requests.iter().enumerate() {
            let resolved = req
                .resolve(|l| bindings.cloud_id(l).map(str::to_string))
                .map_err(|e| format!("request {i} ({}): {e}", req.request_type()))?;
            let created = self
                .execute(&resolved)
                .map_err(|e| format!("request {i} ({} {}): {e}", req.request_type(), req.guid()))?;
            if let Some(c) = created {
                bindings.bind(req.target, c);
            }
        }
        Ok(())
    }

    fn get(&self, cid: &str) -> Result<&ObservedResource, String> {
        self.state
            .get(cid)
            .ok_or_else(|| format!("{cid} does not exist"))
    }

    fn vpc(&self, cid: &str) -> Result<&VpcSpec<String>, String> {
        match &self.get(cid)?.spec {
            Spec::Vpc(v) => Ok(v),
            _ => Err(format!("{cid} is not a VPC")),
        }
    }

    /// The VPC or subnet whose IPv6 block has the association `id`.
    fn ipv6_holder(&self, id: &str) -> Result<String, String> {
        self.state
            .iter()
            .find(|r| r.association_ids.get(IPV6_ASSOCIATION).map(String::as_str) == Some(id))
            .map(|r| r.cloud_id.clone())
            .ok_or_else(|| format!("InvalidAssociationID.NotFound: {id}"))
    }

    fn update<F>(&mut self, cid: &str, f: F) -> Result<(), String>
    where
        F: FnOnce(&mut ObservedResource) -> Result<(), String>,
    {
        let mut r = self.get(cid)?.clone();
        f(&mut r)?;
        self.state.insert(r);
        Ok(())
    }

    fn remove(&mut self, cid: &str) -> Result<(), String> {
        self.get(cid)?;
        self.state.remove(cid);
        Ok(())
    }

    /// Creates a resource with a fresh cloud id (`prefix-…`); returns the id.
    fn create(&mut self, region: &Region, prefix: &str, spec: Spec<String>) -> String {
        let cid = self.fresh(prefix);
        self.state.insert(ObservedResource {
            cloud_id: cid.clone(),
            region: region.clone(),
            spec,
            association_ids: BTreeMap::new(),
            pending: false,
            life: None,
        });
        self.touched.push(cid.clone());
        cid
    }

    /// Executes one resolved request; returns the cloud id of what it created.
    pub fn execute(&mut self, req: &Request) -> Result<Option<String>, String> {
        for r in refs_of(&req.action) {
            if let CloudRef::Id(c) = r {
                self.touched.push(c.clone());
            }
        }
        // Sorted by kind here, independently of the planner's own
        // `Action::resource_kind`.
        match &req.action {
            Action::CreateDhcpOptions { .. } | Action::DeleteDhcpOptions { .. } => {
                dhcp_options::execute(self, req)
            }
            Action::CreateVpc { .. }
            | Action::ModifyVpcAttribute { .. }
            | Action::AssociateDhcpOptions { .. }
            | Action::AssociateVpcCidrBlock { .. }
            | Action::DisassociateVpcCidrBlock { .. }
            | Action::DeleteVpc { .. } => vpc::execute(self, req),
            Action::CreateInternetGateway { .. }
            | Action::AttachInternetGateway { .. }
            | Action::DetachInternetGateway { .. }
            | Action::DeleteInternetGateway { .. } => internet_gateway::execute(self, req),
            Action::CreateEgressOnlyInternetGateway { .. }
            | Action::DeleteEgressOnlyInternetGateway { .. } => {
                egress_only_internet_gateway::execute(self, req)
            }
            Action::AllocateAddress { .. }
            | Action::DisassociateAddress { .. }
            | Action::ReleaseAddress { .. } => elastic_ip::execute(self, req),
            Action::CreateSubnet { .. }
            | Action::ModifySubnetAttribute { .. }
            | Action::AssociateSubnetCidrBlock { .. }
            | Action::DisassociateSubnetCidrBlock { .. }
            | Action::DeleteSubnet { .. } => subnet::execute(self, req),
            Action::CreateNatGateway { .. } | Action::DeleteNatGateway { .. } => {
                nat_gateway::execute(self, req)
            }
            Action::CreateVpcPeeringConnection { .. }
            | Action::AcceptVpcPeeringConnection { .. }
            | Action::DeleteVpcPeeringConnection { .. } => {
                vpc_peering_connection::execute(self, req)
            }
            Action::CreateRouteTable { .. }
            | Action::CreateRoute { .. }
            | Action::ReplaceRoute { .. }
            | Action::DeleteRoute { .. }
            | Action::AssociateRouteTable { .. }
            | Action::DisassociateRouteTable { .. }
            | Action::DeleteRouteTable { .. } => route_table::execute(self, req),
            Action::CreateVpcEndpoint { .. }
            | Action::ModifyVpcEndpoint { .. }
            | Action::DeleteVpcEndpoint { .. } => vpc_endpoint::execute(self, req),
            Action::CreateNetworkAcl { .. }
            | Action::CreateNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclEntry { .. }
            | Action::DeleteNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclAssociation { .. }
            | Action::DeleteNetworkAcl { .. } => network_acl::execute(self, req),
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeSecurityGroupIngress { .. }
            | Action::RevokeSecurityGroupIngress { .. }
            | Action::AuthorizeSecurityGroupEgress { .. }
            | Action::RevokeSecurityGroupEgress { .. }
            | Action::DeleteSecurityGroup { .. } => security_group::execute(self, req),
            Action::RunInstances { .. }
            | Action::ModifyInstanceSecurityGroups { .. }
            | Action::ModifyInstanceSourceDestCheck { .. }
            | Action::TerminateInstances { .. } => instance::execute(self, req),
            Action::CreateVolume { .. }
            | Action::ModifyVolume { .. }
            | Action::AttachVolume { .. }
            | Action::DetachVolume { .. }
            | Action::DeleteVolume { .. } => volume::execute(self, req),
            Action::CreateTags { .. } | Action::DeleteTags { .. } => tags::execute(self, req),
        }
    }
}

/// The error for a request sent to the wrong kind's module.
fn not_mine(kind: &str, req: &Request) -> String {
    format!("{} is not a {kind} request", req.request_type())
}

/// The top-level references of an action (enough for touch tracking).
fn refs_of(a: &Action) -> Vec<&CloudRef> {
    match a {
        Action::DeleteDhcpOptions { dhcp_options: r }
        | Action::DeleteVpc { vpc: r }
        | Action::DeleteInternetGateway {
            internet_gateway: r,
        }
        | Action::DeleteEgressOnlyInternetGateway {
            egress_only_internet_gateway: r,
        }
        | Action::CreateEgressOnlyInternetGateway { vpc: r, .. }
        | Action::DeleteSubnet { subnet: r }
        | Action::DeleteNatGateway { nat_gateway: r }
        | Action::CreateNatGateway { subnet: r, .. }
        | Action::AcceptVpcPeeringConnection {
            vpc_peering_connection: r,
        }
        | Action::DeleteVpcPeeringConnection {
            vpc_peering_connection: r,
        }
        | Action::ReleaseAddress { allocation: r }
        | Action::DeleteRouteTable { route_table: r }
        | Action::CreateVpcEndpoint { vpc: r, .. }
        | Action::ModifyVpcEndpoint {
            vpc_endpoint: r, ..
        }
        | Action::DeleteVpcEndpoint { vpc_endpoint: r }
        | Action::DeleteNetworkAcl { network_acl: r }
        | Action::CreateNetworkAclEntry { network_acl: r, .. }
        | Action::ReplaceNetworkAclEntry { network_acl: r, .. }
        | Action::DeleteNetworkAclEntry { network_acl: r, .. }
        | Action::ReplaceNetworkAclAssociation { subnet: r, .. }
        | Action::DeleteSecurityGroup { group: r }
        | Action::TerminateInstances { instance: r }
        | Action::ModifyVolume { volume: r, .. }
        | Action::AttachVolume { volume: r, .. }
        | Action::DetachVolume { volume: r, .. }
        | Action::DeleteVolume { volume: r }
        | Action::CreateTags { resource: r, .. }
        | Action::DeleteTags { resource: r, .. }
        | Action::ModifyVpcAttribute { vpc: r, .. }
        | Action::ModifySubnetAttribute { subnet: r, .. }
        | Action::AssociateVpcCidrBlock { vpc: r }
        | Action::AssociateSubnetCidrBlock { subnet: r, .. }
        | Action::AuthorizeSecurityGroupIngress { group: r, .. }
        | Action::AuthorizeSecurityGroupEgress { group: r, .. }
        | Action::RevokeSecurityGroupIngress { group: r, .. }
        | Action::RevokeSecurityGroupEgress { group: r, .. }
        | Action::ModifyInstanceSecurityGroups { instance: r, .. }
        | Action::ModifyInstanceSourceDestCheck { instance: r, .. }
        | Action::DeleteRoute { route_table: r, .. }
        | Action::CreateRoute { route_table: r, .. }
        | Action::ReplaceRoute { route_table: r, .. }
        | Action::AssociateRouteTable { route_table: r, .. } => vec![r],
        Action::AttachInternetGateway {
            internet_gateway, ..
        }
        | Action::DetachInternetGateway {
            internet_gateway, ..
        } => vec![internet_gateway],
        Action::AssociateDhcpOptions { vpc, .. } => vec![vpc],
        Action::CreateVpcPeeringConnection { vpc, peer_vpc, .. } => vec![vpc, peer_vpc],
        _ => vec![],
    }
}

/// Checks that the cloud holds exactly what `desired` declares for its
/// process, through `bindings`; returns the first mismatch.
pub fn check_converged(
    desired: &DesiredState,
    cloud: &ObservedState,
    bindings: &Bindings,
) -> Result<(), String> {
    for d in desired.resources.values() {
        let cid = bindings
            .cloud_id(&d.id)
            .ok_or_else(|| format!("{} ({}) is not bound", d.name, d.id))?;
        let o = cloud
            .get(cid)
            .ok_or_else(|| format!("{} bound to missing {cid}", d.name))?;
        let translated = o.spec.map_refs(|c| match bindings.logical_id(c) {
            Some(l) if desired.resources.contains_key(&l) => Ref::Managed(l),
            _ => Ref::External(c.clone()),
        });
        let mut want = d.spec.clone();
        want.tags_mut()
            .insert(OWNERSHIP_TAG.into(), d.id.to_string());
        if let (Spec::Vpc(w), Spec::Vpc(h)) = (&mut want, &translated) {
            if w.dhcp_options.is_none() {
                w.dhcp_options = h.dhcp_options.clone();
            }
            // The `/56` is EC2's pick.
            w.ipv6_cidr_block = h.ipv6_cidr_block;
        }
        // A subnet's `/64` is the one its index names in its VPC's `/56`.
        if let (Spec::Subnet(w), Spec::Subnet(h), Spec::Subnet(raw)) =
            (&mut want, &translated, &o.spec)
        {
            if let Some(i) = w.ipv6_index.take() {
                let vpc_block = cloud.get(&raw.vpc).and_then(|v| match &v.spec {
                    Spec::Vpc(v) => v.ipv6_cidr_block,
                    _ => None,
                });
                let expected = vpc_block.and_then(|b| b.subnet64(i));
                if expected.is_none() || expected != h.ipv6_cidr_block {
                    return Err(format!(
                        "{}: /64 number {i} of {vpc_block:?} declared, {:?} observed",
                        d.name, h.ipv6_cidr_block
                    ));
                }
            }
            w.ipv6_cidr_block = h.ipv6_cidr_block;
        }
        // A lifetime and a fleet's rules are the conductor's, not EC2's.
        if let Spec::Instance(w) = &mut want {
            w.max_age_secs = None;
            w.fleet = None;
        }
        // EC2 gives a policy back reformatted: the same document is no
        // difference.
        if let (Spec::VpcEndpoint(w), Spec::VpcEndpoint(h)) = (&mut want, &translated) {
            if canon_model::endpoint_policy::same(w.policy.as_deref(), h.policy.as_deref()) {
                w.policy = h.policy.clone();
            }
        }
        // Undeclared IOPS are EC2's default for the type.
        if let (Spec::Volume(w), Spec::Volume(h)) = (&mut want, &translated) {
            if w.iops.is_none() {
                w.iops = h.iops;
            }
        }
        if want != translated {
            return Err(format!(
                "{} differs:\n declared {want:?}\n observed {translated:?}",
                d.name
            ));
        }
    }
    let owned: Vec<_> = cloud.owned_by(desired.fid).collect();
    if owned.len() != desired.resources.len() {
        return Err(format!(
            "process owns {} resources, declares {}: {:?}",
            owned.len(),
            desired.resources.len(),
            owned.iter().map(|o| &o.cloud_id).collect::<Vec<_>>()
        ));
    }
    Ok(())
}
