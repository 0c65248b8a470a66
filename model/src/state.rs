//! Desired state (what a compiled composition declares), observed state (what
//! the cloud has, as plain data) and bindings (logical id ↔ cloud id).

mod endpoint_rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    DesiredSpec, Fid, InstanceLife, LogicalId, ObservedSpec, Ref, Region, ResourceKind, Spec,
    VpcPeeringConnectionSpec, OWNERSHIP_TAG,
};

/// One declared resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: LogicalId,
    /// Its path in the composition (`dev-network.publicSubnets[0]`), for people.
    pub name: String,
    pub region: Region,
    pub spec: DesiredSpec,
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        self.spec.kind()
    }
}

/// Everything one process declares: the compiler's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    pub fid: Fid,
    pub resources: BTreeMap<LogicalId, Resource>,
    /// The cloud ids the composition names for adoption (`importId`), by
    /// declared resource: what `canon run --import` adopts first
    /// (`crate::import`). Plain runs ignore them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub import_ids: BTreeMap<LogicalId, String>,
    /// Cloud ids named external that no declared resource refers to any
    /// more: what a kill's emptied declaration ([`DesiredState::emptied`])
    /// keeps, so the kill leaves them alone as the run did.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub externals: BTreeSet<String>,
}

impl DesiredState {
    /// An empty declaration; planning against it is `kill`.
    pub fn empty(fid: Fid) -> Self {
        DesiredState {
            fid,
            resources: BTreeMap::new(),
            import_ids: BTreeMap::new(),
            externals: BTreeSet::new(),
        }
    }

    /// The declaration a kill plans against: nothing declared, but the
    /// external resources the process refers to are still external.
    pub fn emptied(&self) -> Self {
        DesiredState {
            externals: self.external_ids(),
            ..DesiredState::empty(self.fid)
        }
    }

    /// Every cloud id the declaration names as external: never matched,
    /// adopted, changed or deleted by a plan.
    pub fn external_ids(&self) -> BTreeSet<String> {
        let mut ids = self.externals.clone();
        for r in self.resources.values() {
            for target in r.spec.references() {
                if let Ref::External(id) = target {
                    ids.insert(id.clone());
                }
            }
        }
        ids
    }

    /// Adds a resource, checking it belongs to this process and is new.
    pub fn insert(&mut self, resource: Resource) -> Result<(), StateError> {
        if resource.id.fid != self.fid {
            return Err(StateError::ForeignResource {
                id: resource.id,
                fid: self.fid,
            });
        }
        if self.resources.contains_key(&resource.id) {
            return Err(StateError::DuplicateId(resource.id));
        }
        self.resources.insert(resource.id, resource);
        Ok(())
    }

    /// Checks that every managed reference names a declared resource of a
    /// kind that may be referenced from there, and that nothing refers
    /// forward in dependency order but for the exceptions
    /// [`ResourceKind::may_refer_forward`] names.
    pub fn validate(&self) -> Result<(), StateError> {
        for r in self.resources.values() {
            for target in r.spec.references() {
                if let Ref::Managed(t) = target {
                    let Some(to) = self.resources.get(t) else {
                        return Err(StateError::DanglingRef { from: r.id, to: *t });
                    };
                    if to.kind() >= r.kind() && !r.kind().may_refer_forward(to.kind()) {
                        return Err(StateError::BadRefKind {
                            from: r.id,
                            from_kind: r.kind(),
                            to: *t,
                            to_kind: to.kind(),
                        });
                    }
                }
            }
            if let Spec::VpcPeeringConnection(p) = &r.spec {
                self.validate_peering(r.id, p)?;
            }
            if let Spec::VpcEndpoint(e) = &r.spec {
                endpoint_rules::validate(self, r.id, e)?;
            }
        }
        Ok(())
    }

    /// EC2's rules for a peering connection's two VPCs: two different
    /// VPCs, whose IPv4 blocks do not overlap (checked when both are
    /// declared here).
    fn validate_peering(
        &self,
        id: LogicalId,
        p: &VpcPeeringConnectionSpec<Ref>,
    ) -> Result<(), StateError> {
        if p.vpc == p.peer_vpc {
            return Err(StateError::SelfPeering { id });
        }
        let block = |r: &Ref| match r {
            Ref::Managed(l) => match self.resources.get(l).map(|v| &v.spec) {
                Some(Spec::Vpc(v)) => Some(v.cidr_block),
                _ => None,
            },
            Ref::External(_) => None,
        };
        match (block(&p.vpc), block(&p.peer_vpc)) {
            (Some(a), Some(b)) if a.overlaps(b) => Err(StateError::PeeringOverlap {
                id,
                requester: a.to_string(),
                accepter: b.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// The key under which an observed VPC's or subnet's `association_ids`
/// keeps the association id of its IPv6 block (the VPC's Amazon-provided
/// `/56`, a subnet's `/64`), which is what `Disassociate…CidrBlock` takes.
pub const IPV6_ASSOCIATION: &str = "ipv6";

/// A resource as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedResource {
    /// The cloud's id (`vpc-3e9e5e59`).
    pub cloud_id: String,
    pub region: Region,
    /// Properties as observed; references are cloud ids. Tags include the
    /// ownership tag when present.
    pub spec: ObservedSpec,
    /// The association ids Canon may end, keyed by what is associated: for
    /// route tables each associated subnet (by its cloud id); for an
    /// Elastic IP whatever holds it (an instance or a network interface; a
    /// NAT gateway's hold is the gateway's and is not shown). Empty for
    /// other kinds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub association_ids: BTreeMap<String, String>,
    /// The cloud shows it, but it cannot be used yet (a NAT gateway still
    /// `pending`): what needs it waits (`Plan::waiting`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// An instance's launch time, state and status checks (None for other
    /// kinds, and where the cloud does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<InstanceLife>,
}

impl ObservedResource {
    pub fn kind(&self) -> ResourceKind {
        self.spec.kind()
    }

    /// The logical id in the ownership tag, if it has a well-formed one.
    pub fn owner(&self) -> Option<LogicalId> {
        self.spec.tags().get(OWNERSHIP_TAG)?.parse().ok()
    }
}

/// What one observation found: every resource Canon owns in a scope (an
/// account and region), plus any other resource the observer was asked about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<ObservedResource>", into = "Vec<ObservedResource>")]
pub struct ObservedState {
    /// Each resource boxed: a map node has room for eleven entries and is
    /// about half full when a describe's pages arrive in id order, so an
    /// unboxed resource (368 bytes) would cost some 700 in the map; every
    /// node holds its scope's observation, a million resources at 100,000
    /// processes (issue #19, memory per node).
    resources: BTreeMap<String, Box<ObservedResource>>,
    by_fid: HashMap<Fid, BTreeSet<String>>,
}

impl ObservedState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a resource (keyed by cloud id).
    pub fn insert(&mut self, resource: ObservedResource) {
        self.insert_boxed(Box::new(resource));
    }

    fn insert_boxed(&mut self, resource: Box<ObservedResource>) {
        self.remove(&resource.cloud_id.clone());
        if let Some(owner) = resource.owner() {
            self.by_fid
                .entry(owner.fid)
                .or_default()
                .insert(resource.cloud_id.clone());
        }
        self.resources.insert(resource.cloud_id.clone(), resource);
    }

    pub fn remove(&mut self, cloud_id: &str) -> Option<ObservedResource> {
        let old = *self.resources.remove(cloud_id)?;
        if let Some(owner) = old.owner() {
            if let Some(set) = self.by_fid.get_mut(&owner.fid) {
                set.remove(cloud_id);
                if set.is_empty() {
                    self.by_fid.remove(&owner.fid);
                }
            }
        }
        Some(old)
    }

    pub fn get(&self, cloud_id: &str) -> Option<&ObservedResource> {
        self.resources.get(cloud_id).map(|r| &**r)
    }

    /// Mutable access for tests and simulators; keep the ownership tag as it
    /// is or re-`insert` so the owner index stays right.
    pub fn get_mut(&mut self, cloud_id: &str) -> Option<&mut ObservedResource> {
        self.resources.get_mut(cloud_id).map(|r| &mut **r)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ObservedResource> {
        self.resources.values().map(|r| &**r)
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Cloud ids of the resources whose ownership tag names process `fid`.
    pub fn owned_by(&self, fid: Fid) -> impl Iterator<Item = &ObservedResource> {
        self.by_fid
            .get(&fid)
            .into_iter()
            .flatten()
            .filter_map(|id| self.get(id))
    }

    /// The processes whose owned resources differ between what was last
    /// seen of the scope and this observation: a resource of theirs
    /// appeared, went, or shows anything changed (its properties, tags,
    /// associations, readiness). What was last seen is `earlier`, the
    /// previous whole observation, updated by `seen_since`: resources
    /// looked at by id after it (`None`: looked for and found gone). A
    /// resource whose ownership tag changed counts for both owners;
    /// unowned resources name nobody.
    pub fn owners_changed_since(
        &self,
        earlier: &ObservedState,
        seen_since: &BTreeMap<String, Option<ObservedResource>>,
    ) -> BTreeSet<Fid> {
        let mut owners = BTreeSet::new();
        let mut note = |r: Option<&ObservedResource>| {
            if let Some(owner) = r.and_then(ObservedResource::owner) {
                owners.insert(owner.fid);
            }
        };
        let last_seen = |id: &str| match seen_since.get(id) {
            Some(seen) => seen.as_ref(),
            None => earlier.get(id),
        };
        for (id, now) in &self.resources {
            let now = &**now;
            let then = last_seen(id);
            if then != Some(now) {
                note(then);
                note(Some(now));
            }
        }
        let gone = earlier
            .resources
            .iter()
            .filter(|(id, _)| !seen_since.contains_key(*id))
            .map(|(id, r)| (id, &**r))
            .chain(
                seen_since
                    .iter()
                    .filter_map(|(id, r)| Some((id, r.as_ref()?))),
            )
            .filter(|(id, _)| !self.resources.contains_key(*id));
        for (_, then) in gone {
            note(Some(then));
        }
        owners
    }

    /// Merges another observation (e.g. of another page) into this one.
    pub fn extend(&mut self, other: ObservedState) {
        for r in other.resources.into_values() {
            self.insert_boxed(r);
        }
    }
}

impl From<Vec<ObservedResource>> for ObservedState {
    fn from(v: Vec<ObservedResource>) -> Self {
        v.into_iter().collect()
    }
}

impl From<ObservedState> for Vec<ObservedResource> {
    fn from(s: ObservedState) -> Self {
        s.resources.into_values().map(|r| *r).collect()
    }
}

impl FromIterator<ObservedResource> for ObservedState {
    fn from_iter<I: IntoIterator<Item = ObservedResource>>(iter: I) -> Self {
        let mut s = ObservedState::new();
        for r in iter {
            s.insert(r);
        }
        s
    }
}

/// Which cloud resource each logical resource of a process is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<LogicalId, String>",
    into = "BTreeMap<LogicalId, String>"
)]
pub struct Bindings {
    by_logical: BTreeMap<LogicalId, String>,
    by_cloud: HashMap<String, LogicalId>,
}

impl Bindings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `logical` to `cloud_id`, replacing any earlier binding of either.
    pub fn bind(&mut self, logical: LogicalId, cloud_id: impl Into<String>) {
        let cloud_id = cloud_id.into();
        self.unbind(&logical);
        if let Some(old) = self.by_cloud.remove(&cloud_id) {
            self.by_logical.remove(&old);
        }
        self.by_cloud.insert(cloud_id.clone(), logical);
        self.by_logical.insert(logical, cloud_id);
    }

    pub fn unbind(&mut self, logical: &LogicalId) -> Option<String> {
        let cloud = self.by_logical.remove(logical)?;
        self.by_cloud.remove(&cloud);
        Some(cloud)
    }

    pub fn cloud_id(&self, logical: &LogicalId) -> Option<&str> {
        self.by_logical.get(logical).map(String::as_str)
    }

    pub fn logical_id(&self, cloud_id: &str) -> Option<LogicalId> {
        self.by_cloud.get(cloud_id).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LogicalId, &str)> {
        self.by_logical.iter().map(|(l, c)| (l, c.as_str()))
    }

    pub fn len(&self) -> usize {
        self.by_logical.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_logical.is_empty()
    }
}

impl From<BTreeMap<LogicalId, String>> for Bindings {
    fn from(m: BTreeMap<LogicalId, String>) -> Self {
        m.into_iter().collect()
    }
}

impl From<Bindings> for BTreeMap<LogicalId, String> {
    fn from(b: Bindings) -> Self {
        b.by_logical
    }
}

impl FromIterator<(LogicalId, String)> for Bindings {
    fn from_iter<I: IntoIterator<Item = (LogicalId, String)>>(iter: I) -> Self {
        let mut b = Bindings::new();
        for (l, c) in iter {
            b.bind(l, c);
        }
        b
    }
}

/// A desired state that breaks the model's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("resource {id} does not belong to process {fid}")]
    ForeignResource { id: LogicalId, fid: Fid },
    #[error("resource {0} is declared twice")]
    DuplicateId(LogicalId),
    #[error("resource {from} refers to {to}, which is not declared")]
    DanglingRef { from: LogicalId, to: LogicalId },
    #[error("a {from_kind} ({from}) cannot refer to a {to_kind} ({to})")]
    BadRefKind {
        from: LogicalId,
        from_kind: ResourceKind,
        to: LogicalId,
        to_kind: ResourceKind,
    },
    #[error(
        "VPC endpoint {id} in {vpc} names route table {route_table} of another VPC \
         ({table_vpc}): EC2 refuses it"
    )]
    EndpointRouteTableOtherVpc {
        id: LogicalId,
        route_table: LogicalId,
        vpc: String,
        table_vpc: String,
    },
    #[error(
        "VPC endpoint {id} in {vpc} names subnet {member} of another VPC ({member_vpc}): \
         EC2 refuses it"
    )]
    EndpointSubnetOtherVpc {
        id: LogicalId,
        member: LogicalId,
        vpc: String,
        member_vpc: String,
    },
    #[error(
        "VPC endpoint {id} in {vpc} names security group {member} of another VPC \
         ({member_vpc}): EC2 refuses it"
    )]
    EndpointGroupOtherVpc {
        id: LogicalId,
        member: LogicalId,
        vpc: String,
        member_vpc: String,
    },
    #[error(
        "VPC endpoint {id} names subnets {first} and {second} of one zone ({zone}): EC2 \
         refuses it (DuplicateSubnetsInSameZone); keep one subnet per zone"
    )]
    EndpointSubnetsSameZone {
        id: LogicalId,
        first: LogicalId,
        second: LogicalId,
        zone: String,
    },
    #[error(
        "VPC endpoint {id} has private DNS but its VPC {vpc} lacks DNS support or DNS \
         hostnames: EC2 refuses it; enable both on the VPC or turn private DNS off"
    )]
    EndpointPrivateDnsWithoutVpcDns { id: LogicalId, vpc: LogicalId },
    #[error("VPC endpoint {id}: {service} is not offered by {endpoint_type} endpoints")]
    EndpointServiceType {
        id: LogicalId,
        service: crate::EndpointService,
        endpoint_type: crate::EndpointType,
    },
    #[error(
        "gateway endpoints {id} and {other} both route {service} from route table \
         {route_table}: EC2 refuses the second (RouteAlreadyExists); give the table to one"
    )]
    EndpointTableTwice {
        id: LogicalId,
        other: LogicalId,
        service: crate::EndpointService,
        route_table: LogicalId,
    },
    #[error("peering connection {id} peers a VPC with itself")]
    SelfPeering { id: LogicalId },
    #[error(
        "peering connection {id} peers VPCs whose IPv4 blocks overlap \
         ({requester} and {accepter}): EC2 refuses it"
    )]
    PeeringOverlap {
        id: LogicalId,
        requester: String,
        accepter: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::owned_web_group;
    use crate::{Ipv4Cidr, Peer, Protocol, Rule, Spec};

    /// Four processes' groups and an unowned one, before and after: `a`'s
    /// group gains a rogue rule, `b`'s goes, `c` gains one, `d`'s is
    /// untouched, and one group passes from `e` to `f` by its tag.
    #[test]
    fn the_owners_of_whatever_changed_are_named_and_nobody_else() {
        let [a, b, c, d, e, f] = [(); 6].map(|_| Fid::random());
        let group = |id: &str, fid: Fid| owned_web_group(id, LogicalId::new(fid, "g"));
        let mut unowned = group("sg-9", a);
        if let Spec::SecurityGroup(g) = &mut unowned.spec {
            g.tags.clear();
        }
        let before: ObservedState = [
            group("sg-1", a),
            group("sg-2", b),
            group("sg-4", d),
            group("sg-5", e),
            unowned.clone(),
        ]
        .into_iter()
        .collect();
        let nothing_since = BTreeMap::new();
        assert!(before
            .owners_changed_since(&before, &nothing_since)
            .is_empty());

        let mut rogue = group("sg-1", a);
        if let Spec::SecurityGroup(g) = &mut rogue.spec {
            g.ingress
                .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
        }
        let mut unowned_changed = unowned;
        if let Spec::SecurityGroup(g) = &mut unowned_changed.spec {
            g.description = "changed".into();
        }
        let after: ObservedState = [
            rogue,
            group("sg-3", c),
            group("sg-4", d),
            group("sg-5", f),
            unowned_changed,
        ]
        .into_iter()
        .collect();
        let changed = after.owners_changed_since(&before, &nothing_since);
        assert_eq!(changed, BTreeSet::from([a, b, c, e, f]));
        assert_eq!(
            before.owners_changed_since(&after, &nothing_since),
            changed,
            "the same differences, seen the other way"
        );
        assert_eq!(
            after.owners_changed_since(&ObservedState::new(), &nothing_since),
            BTreeSet::from([a, c, d, f])
        );
    }

    /// Looks by id since the earlier observation update what was last
    /// seen: `a`'s rogue rule was healed and the heal seen by id, then the
    /// same rule came back (the two whole observations are alike, but not
    /// what `a` last saw); `b`'s new group was seen by id as it is now
    /// (nothing to tell); `c`'s group was seen gone by id, and is gone.
    /// `d`'s group was seen by id and has gone since.
    #[test]
    fn what_was_seen_by_id_since_counts_as_last_seen() {
        let [a, b, c, d] = [(); 4].map(|_| Fid::random());
        let group = |id: &str, fid: Fid| owned_web_group(id, LogicalId::new(fid, "g"));
        let mut rogue = group("sg-1", a);
        if let Spec::SecurityGroup(g) = &mut rogue.spec {
            g.ingress
                .insert(Rule::new(Protocol::All, -1, -1, Peer::Cidr(Ipv4Cidr::ANY)));
        }
        let before: ObservedState = [rogue.clone(), group("sg-3", c)].into_iter().collect();
        let after: ObservedState = [rogue, group("sg-2", b)].into_iter().collect();
        let seen_since = BTreeMap::from([
            ("sg-1".to_string(), Some(group("sg-1", a))),
            ("sg-2".to_string(), Some(group("sg-2", b))),
            ("sg-3".to_string(), None),
            ("sg-4".to_string(), Some(group("sg-4", d))),
        ]);
        assert_eq!(
            after.owners_changed_since(&before, &seen_since),
            BTreeSet::from([a, d])
        );
    }
}
