//! The simulated EC2 of one account and region: its resources, kept per
//! kind, and [`RegionState::apply`], which routes each action to the file
//! of its kind under `ec2/` (where the semantics and error codes of every
//! call Canon makes live). What every kind shares is here: metadata,
//! timing, the client-token replay, describes by page and by id, and the
//! index of ownership tags the look-up before a create reads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use canon_model::import::Lookup;
use canon_model::{Action, CloudRef, ObservedResource, Region, ResourceKind, Tags, OWNERSHIP_TAG};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ec2::dhcp_options::{self, Dopt};
use super::ec2::egress_only_internet_gateway::{self, Eigw};
use super::ec2::elastic_ip::{self, Eip};
use super::ec2::instance::{self, Inst};
use super::ec2::internet_gateway::{self, Igw};
use super::ec2::nat_gateway::{self, Nat};
use super::ec2::network_acl::{self, Acl};
use super::ec2::network_interface::Eni;
use super::ec2::route_table::{self, Rtb};
use super::ec2::security_group::{self, Sg};
use super::ec2::subnet::{self, Subnet};
use super::ec2::tags::{self, check_tags};
use super::ec2::volume::{self, Vol};
use super::ec2::vpc::{self, Vpc};
use super::ec2::vpc_endpoint::{self, Vpce};
use super::ec2::vpc_peering_connection::{self, Pcx};
use crate::refs::id;
use crate::{CloudError, Outcome};

/// What every resource has: tags and the time it becomes visible to
/// describes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub tags: Tags,
    pub visible_at: u64,
}

impl Meta {
    /// The metadata of a resource created with `tags`.
    pub fn new(tags: &Tags, visible_at: u64) -> Self {
        Meta {
            tags: tags.clone(),
            visible_at,
        }
    }

    /// Visible at `now` and carrying an ownership tag (what observation
    /// describes).
    pub fn shows_owned(&self, now: u64) -> bool {
        self.visible_at <= now && self.tags.contains_key(OWNERSHIP_TAG)
    }
}

/// The times one call works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub now: u64,
    /// When resources it creates become visible to describes.
    pub visible_at: u64,
    /// How long a terminated instance keeps blocking deletes.
    pub shutdown_ms: u64,
    /// How long a NAT gateway is `pending` after its create and `deleting`
    /// after its delete.
    pub nat_ms: u64,
    /// How long a new instance is `pending`.
    pub boot_ms: u64,
    /// How long a running instance's status checks are `initializing`.
    pub checks_ms: u64,
}

impl Timing {
    /// The times of a call at `now` whose creates show from `visible_at`,
    /// with the delays `faults` sets.
    pub fn new(now: u64, visible_at: u64, faults: &crate::sim::Faults) -> Timing {
        use super::ms;
        Timing {
            now,
            visible_at,
            shutdown_ms: ms(faults.shutdown_delay),
            nat_ms: ms(faults.nat_gateway_delay),
            boot_ms: ms(faults.instance_boot_delay),
            checks_ms: ms(faults.status_check_delay),
        }
    }
}

/// What one call brings besides its action: the client token (for the
/// creates that take one), its times, and the generator of new ids.
pub(crate) struct Call<'a, R: ?Sized> {
    pub token: Option<&'a str>,
    pub timing: Timing,
    pub rng: &'a mut R,
}

/// One account and region of the simulated EC2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegionState {
    pub region: Region,
    pub default_dhcp: String,
    pub dhcp: BTreeMap<String, Dopt>,
    pub vpcs: BTreeMap<String, Vpc>,
    pub igws: BTreeMap<String, Igw>,
    /// Egress-only internet gateways, by id (absent in states saved
    /// before they existed).
    #[serde(default)]
    pub eigws: BTreeMap<String, Eigw>,
    /// Elastic IP addresses, by allocation id (absent in states saved
    /// before addresses existed).
    #[serde(default)]
    pub eips: BTreeMap<String, Eip>,
    pub subnets: BTreeMap<String, Subnet>,
    /// NAT gateways, by id (absent in states saved before they existed).
    #[serde(default)]
    pub nats: BTreeMap<String, Nat>,
    /// VPC peering connections, by id, deleted ones among them (absent in
    /// states saved before they existed).
    #[serde(default)]
    pub pcxs: BTreeMap<String, Pcx>,
    pub rtbs: BTreeMap<String, Rtb>,
    /// Gateway VPC endpoints, by id (absent in states saved before they
    /// existed).
    #[serde(default)]
    pub vpces: BTreeMap<String, Vpce>,
    /// Network ACLs, by id, each VPC's default among them (absent in
    /// states saved before they existed).
    #[serde(default)]
    pub acls: BTreeMap<String, Acl>,
    pub sgs: BTreeMap<String, Sg>,
    pub instances: BTreeMap<String, Inst>,
    /// Network interfaces made outside Canon, by id (absent in states
    /// saved before they existed).
    #[serde(default)]
    pub enis: BTreeMap<String, Eni>,
    /// EBS volumes, by id (absent in states saved before they existed).
    #[serde(default)]
    pub vols: BTreeMap<String, Vol>,
    /// Client token → (fingerprint of the request, id it created).
    pub tokens: HashMap<String, (String, String)>,
    /// (VPC, group name) of every non-default group, for the duplicate-name
    /// check without a scan.
    pub sg_names: HashSet<(String, String)>,
    /// Who carries which ownership tag, for the look-up before a create
    /// without a scan ([`OwnerIndex`]). Not saved: rebuilt from the
    /// resources when first needed.
    #[serde(skip)]
    owners: Option<OwnerIndex>,
}

/// The resources of the kinds whose creates take no client token (those
/// the look-up before a create asks about, `idempotency::owner_to_find`),
/// by kind and the value of their ownership tag: the look-up reads the ids
/// under its owner instead of scanning the kind (issue #19 §3). A resource
/// gets a tag only from the call that creates it or a `CreateTags`, and
/// both pass through [`RegionState::apply`], which files the resource they
/// touch under its tag; an entry is checked against the resource when
/// read, so one deleted or untagged since is skipped (and dropped), and
/// the answer is the scan's: the first matching id in id order.
#[derive(Debug, Clone, Default)]
struct OwnerIndex {
    ids: HashMap<(ResourceKind, String), BTreeSet<String>>,
}

impl OwnerIndex {
    /// Files `rid` of `kind` under `owner`.
    fn file(&mut self, kind: ResourceKind, owner: &str, rid: &str) {
        self.ids
            .entry((kind, owner.to_string()))
            .or_default()
            .insert(rid.to_string());
    }
}

/// The kinds [`OwnerIndex`] keeps: those without client tokens.
fn indexed(kind: ResourceKind) -> bool {
    !crate::idempotency::has_client_token(kind)
}

/// What applying one action did.
pub(crate) struct Applied {
    pub outcome: Outcome,
    /// The resource touched, for the mutation log.
    pub resource: Option<String>,
    /// False when nothing changed (an idempotent replay).
    pub mutated: bool,
}

impl Applied {
    /// An action that changed `resource`.
    pub fn mutated(outcome: Outcome, resource: Option<String>) -> Self {
        Applied {
            outcome,
            resource,
            mutated: true,
        }
    }

    /// An action whose effect was already in place: nothing changed.
    pub fn unchanged(outcome: Outcome, resource: Option<String>) -> Self {
        Applied {
            outcome,
            resource,
            mutated: false,
        }
    }
}

/// An EC2 error; classified later, against the request type.
pub(crate) fn err(code: &str, message: impl Into<String>) -> CloudError {
    CloudError::terminal(code, message)
}

/// EC2's not-found error code for an id of `kind`.
pub(crate) fn not_found_code(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::DhcpOptions => "InvalidDhcpOptionID.NotFound",
        ResourceKind::Vpc => "InvalidVpcID.NotFound",
        ResourceKind::InternetGateway => "InvalidInternetGatewayID.NotFound",
        ResourceKind::EgressOnlyInternetGateway => "InvalidGatewayID.NotFound",
        ResourceKind::ElasticIp => "InvalidAllocationID.NotFound",
        ResourceKind::Subnet => "InvalidSubnetID.NotFound",
        ResourceKind::NatGateway => "InvalidNatGatewayID.NotFound",
        ResourceKind::VpcPeeringConnection => "InvalidVpcPeeringConnectionID.NotFound",
        ResourceKind::RouteTable => "InvalidRouteTableID.NotFound",
        ResourceKind::VpcEndpoint => "InvalidVpcEndpointId.NotFound",
        ResourceKind::NetworkAcl => "InvalidNetworkAclID.NotFound",
        ResourceKind::SecurityGroup => "InvalidGroup.NotFound",
        ResourceKind::Instance => "InvalidInstanceID.NotFound",
        ResourceKind::Volume => "InvalidVolume.NotFound",
    }
}

/// EC2's error for `rid`, an id of `kind` it does not know: the one place
/// the simulated kinds take their not-found codes and wording from.
pub(crate) fn not_found(kind: ResourceKind, rid: &str) -> CloudError {
    let what = match kind {
        ResourceKind::DhcpOptions => "dhcpOption ID",
        ResourceKind::Vpc => "vpc ID",
        ResourceKind::InternetGateway => "internetGateway ID",
        ResourceKind::EgressOnlyInternetGateway => "egressOnlyInternetGateway ID",
        ResourceKind::ElasticIp => "allocation ID",
        ResourceKind::Subnet => "subnet ID",
        ResourceKind::NatGateway => "natGateway ID",
        ResourceKind::VpcPeeringConnection => "vpcPeeringConnection ID",
        ResourceKind::RouteTable => "routeTable ID",
        ResourceKind::VpcEndpoint => "VpcEndpoint Id",
        ResourceKind::NetworkAcl => "networkAcl ID",
        ResourceKind::SecurityGroup => "security group",
        ResourceKind::Instance => "instance ID",
        ResourceKind::Volume => "volume",
    };
    err(
        not_found_code(kind),
        format!("The {what} '{rid}' does not exist"),
    )
}

/// A new id in EC2's long format: prefix, dash, 17 hex digits.
pub(crate) fn new_id<R: Rng + ?Sized>(rng: &mut R, prefix: &str) -> String {
    let n: u128 = rng.random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

/// The outcome of a change described by one line.
pub(crate) fn changed(line: String) -> Outcome {
    Outcome::changed([line])
}

impl RegionState {
    pub fn new<R: Rng + ?Sized>(region: Region, rng: &mut R) -> Self {
        let default_dhcp = new_id(rng, "dopt");
        let mut dhcp = BTreeMap::new();
        let domain = if region.as_str() == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{region}.compute.internal")
        };
        dhcp.insert(
            default_dhcp.clone(),
            Dopt {
                meta: Meta::default(),
                domain_name: Some(domain),
                servers: vec!["AmazonProvidedDNS".into()],
                ntp: vec![],
            },
        );
        RegionState {
            region,
            default_dhcp,
            dhcp,
            vpcs: BTreeMap::new(),
            igws: BTreeMap::new(),
            eigws: BTreeMap::new(),
            eips: BTreeMap::new(),
            subnets: BTreeMap::new(),
            nats: BTreeMap::new(),
            pcxs: BTreeMap::new(),
            rtbs: BTreeMap::new(),
            vpces: BTreeMap::new(),
            acls: BTreeMap::new(),
            sgs: BTreeMap::new(),
            instances: BTreeMap::new(),
            enis: BTreeMap::new(),
            vols: BTreeMap::new(),
            tokens: HashMap::new(),
            sg_names: HashSet::new(),
            owners: None,
        }
    }

    /// Applies one action, in the file of its kind. `call` brings the client
    /// token, the times and the id generator.
    pub fn apply<R: Rng + ?Sized>(
        &mut self,
        action: &Action,
        call: Call<'_, R>,
    ) -> Result<Applied, CloudError> {
        nat_gateway::purge(self, call.timing.now);
        let applied = self.route(action, call)?;
        if let Some(rid) = &applied.resource {
            self.file_owner(rid);
        }
        Ok(applied)
    }

    /// [`RegionState::apply`]'s routing of `action` to its kind's file.
    fn route<R: Rng + ?Sized>(
        &mut self,
        action: &Action,
        call: Call<'_, R>,
    ) -> Result<Applied, CloudError> {
        match action {
            Action::CreateDhcpOptions { .. }
            | Action::DeleteDhcpOptions { .. }
            | Action::AssociateDhcpOptions { .. } => dhcp_options::apply(self, action, call),
            Action::CreateVpc { .. }
            | Action::ModifyVpcAttribute { .. }
            | Action::AssociateVpcCidrBlock { .. }
            | Action::DisassociateVpcCidrBlock { .. }
            | Action::DeleteVpc { .. } => vpc::apply(self, action, call),
            Action::CreateInternetGateway { .. }
            | Action::AttachInternetGateway { .. }
            | Action::DetachInternetGateway { .. }
            | Action::DeleteInternetGateway { .. } => internet_gateway::apply(self, action, call),
            Action::CreateEgressOnlyInternetGateway { .. }
            | Action::DeleteEgressOnlyInternetGateway { .. } => {
                egress_only_internet_gateway::apply(self, action, call)
            }
            Action::AllocateAddress { .. }
            | Action::DisassociateAddress { .. }
            | Action::ReleaseAddress { .. } => elastic_ip::apply(self, action, call),
            Action::CreateSubnet { .. }
            | Action::ModifySubnetAttribute { .. }
            | Action::AssociateSubnetCidrBlock { .. }
            | Action::DisassociateSubnetCidrBlock { .. }
            | Action::DeleteSubnet { .. } => subnet::apply(self, action, call),
            Action::CreateNatGateway { .. } | Action::DeleteNatGateway { .. } => {
                nat_gateway::apply(self, action, call)
            }
            Action::CreateVpcPeeringConnection { .. }
            | Action::AcceptVpcPeeringConnection { .. }
            | Action::DeleteVpcPeeringConnection { .. } => {
                vpc_peering_connection::apply(self, action, call)
            }
            Action::CreateRouteTable { .. }
            | Action::CreateRoute { .. }
            | Action::ReplaceRoute { .. }
            | Action::DeleteRoute { .. }
            | Action::AssociateRouteTable { .. }
            | Action::DisassociateRouteTable { .. }
            | Action::DeleteRouteTable { .. } => route_table::apply(self, action, call),
            Action::CreateVpcEndpoint { .. }
            | Action::ModifyVpcEndpoint { .. }
            | Action::DeleteVpcEndpoint { .. } => vpc_endpoint::apply(self, action, call),
            Action::CreateNetworkAcl { .. }
            | Action::CreateNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclEntry { .. }
            | Action::DeleteNetworkAclEntry { .. }
            | Action::ReplaceNetworkAclAssociation { .. }
            | Action::DeleteNetworkAcl { .. } => network_acl::apply(self, action, call),
            Action::CreateSecurityGroup { .. }
            | Action::AuthorizeSecurityGroupIngress { .. }
            | Action::AuthorizeSecurityGroupEgress { .. }
            | Action::RevokeSecurityGroupIngress { .. }
            | Action::RevokeSecurityGroupEgress { .. }
            | Action::DeleteSecurityGroup { .. } => security_group::apply(self, action, call),
            Action::RunInstances { .. }
            | Action::ModifyInstanceSecurityGroups { .. }
            | Action::ModifyInstanceSourceDestCheck { .. }
            | Action::TerminateInstances { .. } => instance::apply(self, action, call),
            Action::CreateVolume { .. }
            | Action::ModifyVolume { .. }
            | Action::AttachVolume { .. }
            | Action::DetachVolume { .. }
            | Action::DeleteVolume { .. } => volume::apply(self, action, call),
            Action::CreateTags { .. } | Action::DeleteTags { .. } => tags::apply(self, action),
        }
    }

    /// The answer to a create whose client token was used before: the first
    /// result for the same request (`fingerprint`), EC2's refusal for
    /// another; `None` for a new token or none.
    pub(crate) fn replay(
        &self,
        token: Option<&str>,
        fingerprint: &str,
    ) -> Result<Option<Applied>, CloudError> {
        let Some((fp, existing)) = token.and_then(|t| self.tokens.get(t)) else {
            return Ok(None);
        };
        if fp != fingerprint {
            return Err(err(
                "IdempotentParameterMismatch",
                "The client token has been used with different parameters",
            ));
        }
        Ok(Some(Applied::unchanged(
            Outcome::already_done(
                Some(existing.clone()),
                format!("client token already used: {existing}"),
            ),
            Some(existing.clone()),
        )))
    }

    /// A create, with a client token, of a resource of VPC `vpc` tagged
    /// `tags` (`what`, under a new `prefix-…` id): the checks every such
    /// create makes, the first result again for a replayed token, else
    /// `store` keeps the new resource (by id, with its metadata and VPC).
    pub(crate) fn create_in_vpc<R: Rng + ?Sized>(
        &mut self,
        action: &Action,
        (vpc, tags): (&CloudRef, &Tags),
        (prefix, what): (&str, &str),
        call: Call<'_, R>,
        store: impl FnOnce(&mut RegionState, &str, Meta, String),
    ) -> Result<Applied, CloudError> {
        check_tags(tags)?;
        let v = id(vpc)?.to_string();
        self.vpc(&v)?;
        let fingerprint = format!("{action:?}");
        if let Some(replayed) = self.replay(call.token, &fingerprint)? {
            return Ok(replayed);
        }
        let rid = new_id(call.rng, prefix);
        store(self, &rid, Meta::new(tags, call.timing.visible_at), v);
        self.remember_token(call.token, fingerprint, &rid);
        Ok(Applied::mutated(Outcome::created(&rid, what), Some(rid)))
    }

    /// Records that the create with client `token` made `rid`.
    pub(crate) fn remember_token(&mut self, token: Option<&str>, fingerprint: String, rid: &str) {
        if let Some(t) = token {
            self.tokens
                .insert(t.to_string(), (fingerprint, rid.to_string()));
        }
    }

    /// Files `rid` (just created or tagged) under its ownership tag in the
    /// index, if the index is built and keeps its kind.
    fn file_owner(&mut self, rid: &str) {
        let Some(kind) = ResourceKind::of_cloud_id(rid).filter(|k| indexed(*k)) else {
            return;
        };
        if self.owners.is_none() {
            return;
        }
        let owner = self
            .tags_mut(rid)
            .ok()
            .and_then(|t| t.get(OWNERSHIP_TAG).cloned());
        if let (Some(owner), Some(index)) = (owner, self.owners.as_mut()) {
            index.file(kind, &owner, rid);
        }
    }

    /// The index of every resource of the indexed kinds now: built once,
    /// when first read (a new region, or one loaded from a file).
    fn built_owner_index(&self) -> OwnerIndex {
        fn add<T>(
            index: &mut OwnerIndex,
            kind: ResourceKind,
            m: &BTreeMap<String, T>,
            meta: impl Fn(&T) -> &Meta,
        ) {
            for (rid, r) in m {
                if let Some(owner) = meta(r).tags.get(OWNERSHIP_TAG) {
                    index.file(kind, owner, rid);
                }
            }
        }
        let mut index = OwnerIndex::default();
        add(&mut index, ResourceKind::DhcpOptions, &self.dhcp, |r| {
            &r.meta
        });
        add(&mut index, ResourceKind::Vpc, &self.vpcs, |r| &r.meta);
        add(&mut index, ResourceKind::InternetGateway, &self.igws, |r| {
            &r.meta
        });
        add(&mut index, ResourceKind::ElasticIp, &self.eips, |r| &r.meta);
        add(&mut index, ResourceKind::Subnet, &self.subnets, |r| &r.meta);
        add(&mut index, ResourceKind::NatGateway, &self.nats, |r| {
            &r.meta
        });
        add(
            &mut index,
            ResourceKind::VpcPeeringConnection,
            &self.pcxs,
            |r| &r.meta,
        );
        add(&mut index, ResourceKind::SecurityGroup, &self.sgs, |r| {
            &r.meta
        });
        index
    }

    /// Whether resource `rid` of `kind` is visible and live at `now` and
    /// carries the ownership tag `owner`; `None` if it no longer carries
    /// that tag at all (gone, or untagged): its index entry can go.
    fn owned_now(&self, kind: ResourceKind, rid: &str, owner: &str, now: u64) -> Option<bool> {
        fn hit<'m, T>(
            m: &'m BTreeMap<String, T>,
            rid: &str,
            owner: &str,
            meta: impl Fn(&T) -> &Meta,
        ) -> Option<&'m T> {
            m.get(rid)
                .filter(|r| meta(r).tags.get(OWNERSHIP_TAG).map(String::as_str) == Some(owner))
        }
        let visible = |m: &Meta| m.visible_at <= now;
        match kind {
            ResourceKind::DhcpOptions => {
                hit(&self.dhcp, rid, owner, |r| &r.meta).map(|r| visible(&r.meta))
            }
            ResourceKind::Vpc => hit(&self.vpcs, rid, owner, |r| &r.meta).map(|r| visible(&r.meta)),
            ResourceKind::InternetGateway => {
                hit(&self.igws, rid, owner, |r| &r.meta).map(|r| visible(&r.meta))
            }
            ResourceKind::ElasticIp => {
                hit(&self.eips, rid, owner, |r| &r.meta).map(|r| visible(&r.meta))
            }
            ResourceKind::Subnet => {
                hit(&self.subnets, rid, owner, |r| &r.meta).map(|r| visible(&r.meta))
            }
            ResourceKind::NatGateway => {
                hit(&self.nats, rid, owner, |r| &r.meta).map(|g| g.live(now) && visible(&g.meta))
            }
            ResourceKind::VpcPeeringConnection => {
                hit(&self.pcxs, rid, owner, |r| &r.meta).map(|p| p.live() && visible(&p.meta))
            }
            ResourceKind::SecurityGroup => {
                hit(&self.sgs, rid, owner, |r| &r.meta).map(|r| visible(&r.meta))
            }
            // Their creates take a client token: never looked up.
            ResourceKind::EgressOnlyInternetGateway
            | ResourceKind::RouteTable
            | ResourceKind::VpcEndpoint
            | ResourceKind::NetworkAcl
            | ResourceKind::Instance
            | ResourceKind::Volume => None,
        }
    }

    /// The id of a visible, owned resource of `kind` whose ownership tag is
    /// `owner` (the pre-create lookup of the kinds whose creates take no
    /// client token, `idempotency::owner_to_find`), if any: the first by id,
    /// read from the index of owners ([`OwnerIndex`]), not a scan.
    pub fn find_owned(&mut self, kind: ResourceKind, owner: &str, now: u64) -> Option<String> {
        if !indexed(kind) {
            return None;
        }
        if self.owners.is_none() {
            self.owners = Some(self.built_owner_index());
        }
        let key = (kind, owner.to_string());
        let filed: Vec<String> = self
            .owners
            .as_ref()
            .and_then(|index| index.ids.get(&key))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        let mut found = None;
        let mut gone = Vec::new();
        for rid in filed {
            match self.owned_now(kind, &rid, owner, now) {
                Some(true) => {
                    found = Some(rid);
                    break;
                }
                Some(false) => {}
                None => gone.push(rid),
            }
        }
        if let Some(index) = self.owners.as_mut() {
            if let Some(ids) = index.ids.get_mut(&key) {
                for rid in &gone {
                    ids.remove(rid);
                }
                if ids.is_empty() {
                    index.ids.remove(&key);
                }
            }
        }
        found
    }

    /// One page of owned, visible resources of `kind` after `after`, at most
    /// `max` of them, and whether more follow.
    pub fn page(
        &self,
        kind: ResourceKind,
        after: Option<&str>,
        max: usize,
        now: u64,
    ) -> (Vec<ObservedResource>, Option<String>) {
        self.page_of(kind, after, max, now, Meta::shows_owned)
    }

    /// Those of `ids` (of `kind`) that [`RegionState::page`] would show:
    /// owned, visible and live at `now`.
    pub fn by_ids(&self, kind: ResourceKind, ids: &[&str], now: u64) -> Vec<ObservedResource> {
        ids.iter()
            .filter(|id| self.shows(kind, id, now))
            .filter_map(|id| self.observed(id, now))
            .collect()
    }

    /// Whether an observation at `now` shows resource `rid` of `kind`: as
    /// `page_of`'s filters, for one id.
    fn shows(&self, kind: ResourceKind, rid: &str, now: u64) -> bool {
        fn owned<T>(
            m: &BTreeMap<String, T>,
            rid: &str,
            now: u64,
            meta: impl Fn(&T) -> &Meta,
        ) -> bool {
            m.get(rid).is_some_and(|r| meta(r).shows_owned(now))
        }
        match kind {
            ResourceKind::DhcpOptions => owned(&self.dhcp, rid, now, |r| &r.meta),
            ResourceKind::Vpc => owned(&self.vpcs, rid, now, |r| &r.meta),
            ResourceKind::InternetGateway => owned(&self.igws, rid, now, |r| &r.meta),
            ResourceKind::EgressOnlyInternetGateway => owned(&self.eigws, rid, now, |r| &r.meta),
            ResourceKind::ElasticIp => owned(&self.eips, rid, now, |r| &r.meta),
            ResourceKind::Subnet => owned(&self.subnets, rid, now, |r| &r.meta),
            ResourceKind::NatGateway => self
                .nats
                .get(rid)
                .is_some_and(|g| g.live(now) && g.meta.shows_owned(now)),
            ResourceKind::VpcPeeringConnection => self
                .pcxs
                .get(rid)
                .is_some_and(|p| p.live() && p.meta.shows_owned(now)),
            ResourceKind::RouteTable => owned(&self.rtbs, rid, now, |r| &r.meta),
            ResourceKind::VpcEndpoint => owned(&self.vpces, rid, now, |r| &r.meta),
            ResourceKind::NetworkAcl => owned(&self.acls, rid, now, |r| &r.meta),
            ResourceKind::SecurityGroup => owned(&self.sgs, rid, now, |r| &r.meta),
            ResourceKind::Instance => self
                .instances
                .get(rid)
                .is_some_and(|i| i.state.live(now) && i.meta.shows_owned(now)),
            ResourceKind::Volume => owned(&self.vols, rid, now, |r| &r.meta),
        }
    }

    /// Every visible resource of `kind` that `lookup` admits, owned by
    /// anyone or no one: an import's candidates.
    pub fn candidates(
        &self,
        kind: ResourceKind,
        lookup: &Lookup,
        now: u64,
    ) -> Vec<ObservedResource> {
        let visible = |m: &Meta, now: u64| m.visible_at <= now;
        let (all, _) = self.page_of(kind, None, usize::MAX, now, visible);
        all.into_iter().filter(|o| lookup.admits(o)).collect()
    }

    /// [`RegionState::page`] of the resources whose metadata `shows` at
    /// `now`.
    fn page_of(
        &self,
        kind: ResourceKind,
        after: Option<&str>,
        max: usize,
        now: u64,
        shows: impl Fn(&Meta, u64) -> bool,
    ) -> (Vec<ObservedResource>, Option<String>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, |a| Excluded(a.to_string()));
        let mut out = Vec::new();
        let mut last = None;
        macro_rules! scan {
            ($map:expr, $ok:expr) => {{
                for (k, r) in $map.range::<String, _>((lower.clone(), Unbounded)) {
                    if !shows(&r.meta, now) {
                        continue;
                    }
                    #[allow(clippy::redundant_closure_call)]
                    if !($ok)(r) {
                        continue;
                    }
                    if out.len() == max {
                        return (out, last);
                    }
                    if let Some(o) = self.observed(k, now) {
                        out.push(o);
                    }
                    last = Some(k.clone());
                }
            }};
        }
        match kind {
            ResourceKind::DhcpOptions => scan!(self.dhcp, |_: &Dopt| true),
            ResourceKind::Vpc => scan!(self.vpcs, |_: &Vpc| true),
            ResourceKind::InternetGateway => scan!(self.igws, |_: &Igw| true),
            ResourceKind::EgressOnlyInternetGateway => scan!(self.eigws, |_: &Eigw| true),
            ResourceKind::ElasticIp => scan!(self.eips, |_: &Eip| true),
            ResourceKind::Subnet => scan!(self.subnets, |_: &Subnet| true),
            ResourceKind::NatGateway => scan!(self.nats, |g: &Nat| g.live(now)),
            ResourceKind::VpcPeeringConnection => scan!(self.pcxs, Pcx::live),
            ResourceKind::RouteTable => scan!(self.rtbs, |_: &Rtb| true),
            ResourceKind::VpcEndpoint => scan!(self.vpces, |_: &Vpce| true),
            ResourceKind::NetworkAcl => scan!(self.acls, |_: &Acl| true),
            ResourceKind::SecurityGroup => scan!(self.sgs, |_: &Sg| true),
            ResourceKind::Instance => {
                scan!(self.instances, |i: &Inst| i.state.live(now))
            }
            ResourceKind::Volume => scan!(self.vols, |_: &Vol| true),
        }
        (out, None)
    }

    /// The observed form of resource `rid` at `now` (None if it does not
    /// exist).
    pub fn observed(&self, rid: &str, now: u64) -> Option<ObservedResource> {
        // Each kind's spec and the association ids it shows (route tables'
        // and network ACLs' subnets, an address's holder), found in one
        // pass over the kinds' maps.
        let none = BTreeMap::new;
        let (spec, association_ids) = if let Some(d) = self.dhcp.get(rid) {
            (d.spec(), none())
        } else if let Some(v) = self.vpcs.get(rid) {
            (
                v.spec(&self.default_dhcp),
                vpc::ipv6_association_ids(v.ipv6.as_ref()),
            )
        } else if let Some(i) = self.igws.get(rid) {
            (i.spec(), none())
        } else if let Some(g) = self.eigws.get(rid) {
            (g.spec(), none())
        } else if let Some(a) = self.eips.get(rid) {
            (a.spec(), elastic_ip::association_ids(self, a))
        } else if let Some(s) = self.subnets.get(rid) {
            (s.spec(), vpc::ipv6_association_ids(s.ipv6.as_ref()))
        } else if let Some(g) = self.nats.get(rid) {
            (g.spec(), none())
        } else if let Some(p) = self.pcxs.get(rid) {
            (p.spec(), none())
        } else if let Some(r) = self.rtbs.get(rid) {
            (r.spec(&self.enis), r.assoc.clone())
        } else if let Some(e) = self.vpces.get(rid) {
            (e.spec(), none())
        } else if let Some(a) = self.acls.get(rid) {
            (a.spec(), a.assoc.clone())
        } else if let Some(g) = self.sgs.get(rid) {
            (g.spec(), none())
        } else if let Some(i) = self.instances.get(rid) {
            (i.spec(), none())
        } else if let Some(v) = self.vols.get(rid) {
            (v.spec(), none())
        } else {
            return None;
        };
        Some(ObservedResource {
            cloud_id: rid.to_string(),
            region: self.region.clone(),
            spec,
            association_ids,
            pending: self
                .nats
                .get(rid)
                .is_some_and(|g| g.state(now) == nat_gateway::NatState::Pending)
                || self.pcxs.get(rid).is_some_and(|p| {
                    p.status == vpc_peering_connection::PcxStatus::PendingAcceptance
                }),
            life: self.instances.get(rid).map(|i| i.life(now)),
        })
    }
}
