//! The planner: `plan(desired, observed, bindings)` decides what to do.
//!
//! It is one diff for every purpose — a first run (nothing observed), an
//! update (a new declaration), enforcement (drift found by a tick) and kill
//! (an empty declaration) — so there is exactly one place where Canon decides
//! which cloud calls to make. The steps:
//!
//! 1. **Match** each declared resource to the cloud resource it is bound to,
//!    or else to one carrying its ownership tag (an *adoption*: the cloud has
//!    it but the bindings lost it, e.g. after a crash between create and
//!    commit). Owned cloud resources matched to nothing are *orphans*.
//! 2. **Translate** observed references from cloud ids to logical ids through
//!    the matches, and compare with the declaration property by property.
//! 3. **Replace** a resource whose replacement-required property differs;
//!    references to a replaced resource then point at the old cloud id, so its
//!    dependents are compared against that and cascade as the cloud demands.
//! 4. **Order**: creates and in-place changes go in dependency order, deletes
//!    of orphans and replaced resources in reverse, after them
//!    (create-new-then-delete-old). Where the old resource would block the
//!    new one — a subnet whose range overlaps, a group with the same name in
//!    the same VPC — the old one is deleted first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::{
    DhcpOptionsSpec, InstanceSpec, InternetGatewaySpec, RouteTableSpec, SecurityGroupSpec,
    SubnetSpec, VpcSpec,
};
use crate::{
    Action, Bindings, CloudRef, DesiredSpec, DesiredState, LogicalId, ObservedResource,
    ObservedState, Peer, Ref, Request, Resource, ResourceKind, Rule, Spec, Tags, VpcAttribute,
    OWNERSHIP_TAG,
};

/// One difference between the declaration and the cloud, as data: what the
/// scheduler logs and alerts as drift while a process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub resource: LogicalId,
    pub kind: ResourceKind,
    /// The cloud resource concerned, if one exists.
    pub cloud_id: Option<String>,
    /// The property (`ingress`, `tags.Name`, `cidrBlock`, …), or `existence`
    /// when the whole resource is missing or unwanted.
    pub property: String,
    pub declared: Option<String>,
    pub observed: Option<String>,
}

/// What the planner decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The requests to execute, in order.
    pub requests: Vec<Request>,
    /// Every difference found, in declaration order.
    pub differences: Vec<Difference>,
    /// Cloud resources found by their ownership tag but missing from the
    /// bindings: the caller should bind them.
    pub adoptions: Vec<(LogicalId, String)>,
}

impl Plan {
    /// True when the cloud matches the declaration.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// The requests as the dry-run prints them.
    pub fn to_json(&self) -> Value {
        Value::Array(self.requests.iter().map(Request::to_json).collect())
    }
}

/// Plans the requests that make the cloud match `desired`.
///
/// `observed` may hold other processes' resources too; only those owned by
/// `desired.fid` (by tag) or bound in `bindings` are considered, so a plan
/// never touches anything the process does not own.
pub fn plan(desired: &DesiredState, observed: &ObservedState, bindings: &Bindings) -> Plan {
    Planner::new(desired, observed, bindings).run()
}

/// Plans the deletion of everything process `fid` owns: `kill`.
pub fn plan_kill(fid: crate::Fid, observed: &ObservedState, bindings: &Bindings) -> Plan {
    plan(&DesiredState::empty(fid), observed, bindings)
}

/// Where a request goes in the plan: phase, then rank within the phase, then
/// step within the kind, then generation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    phase: Phase,
    rank: usize,
    step: u8,
    seq: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Deletes that must precede creates (conflicting replacements).
    EarlyDelete,
    /// Creates and in-place changes, in dependency order.
    Apply,
    /// Deletes, in reverse dependency order.
    Delete,
}

// Steps within one kind in the Apply phase.
const STEP_CREATE: u8 = 0;
const STEP_ATTRIBUTES: u8 = 1;
const STEP_UNLINK: u8 = 2;
const STEP_LINK: u8 = 3;
const STEP_ASSOCIATE: u8 = 4;
const STEP_TAGS: u8 = 5;
// Steps within one kind in the delete phases.
const STEP_DETACH: u8 = 0;
const STEP_DELETE: u8 = 1;

struct Planner<'a> {
    desired: &'a DesiredState,
    /// Declared resource → the cloud resource it matches.
    matched: BTreeMap<LogicalId, &'a ObservedResource>,
    /// Cloud id → logical id, for matched resources.
    rev: HashMap<&'a str, LogicalId>,
    /// Owned cloud resources matched to nothing, with the logical id they
    /// serve(d).
    orphans: Vec<(LogicalId, &'a ObservedResource)>,
    adoptions: Vec<(LogicalId, String)>,
    /// Declared resources whose cloud resource must be replaced.
    replaced: BTreeSet<LogicalId>,
    /// Cloud ids deleted in the early phase.
    early: BTreeSet<&'a str>,
    /// Cloud ids this plan deletes, in any phase.
    doomed_ids: BTreeSet<&'a str>,
    out: Vec<(Slot, Request)>,
    differences: Vec<Difference>,
}

impl<'a> Planner<'a> {
    fn new(desired: &'a DesiredState, observed: &'a ObservedState, bindings: &Bindings) -> Self {
        let fid = desired.fid;
        // Everything this process may touch: tagged as its own, or bound.
        let mut candidates: HashMap<&'a str, &'a ObservedResource> = observed
            .owned_by(fid)
            .map(|o| (o.cloud_id.as_str(), o))
            .collect();
        for (_, cloud) in bindings.iter() {
            if let Some(o) = observed.get(cloud) {
                candidates.insert(o.cloud_id.as_str(), o);
            }
        }
        // Resources by the logical id in their ownership tag, for adoption;
        // built only if some declared resource is not bound (rare: parsing
        // every tag on every tick would dominate the planner's cost).
        let all_bound = desired.resources.keys().all(|l| {
            bindings
                .cloud_id(l)
                .is_some_and(|c| candidates.contains_key(c))
        });
        let mut by_owner: HashMap<LogicalId, Vec<&'a ObservedResource>> = HashMap::new();
        if !all_bound {
            for o in candidates.values() {
                if let Some(owner) = o.owner() {
                    by_owner.entry(owner).or_default().push(o);
                }
            }
        }

        let mut matched = BTreeMap::new();
        let mut rev = HashMap::new();
        let mut adoptions = Vec::new();
        for d in desired.resources.values() {
            let bound = bindings
                .cloud_id(&d.id)
                .and_then(|c| candidates.get(c))
                .filter(|o| o.kind() == d.kind() && !rev.contains_key(o.cloud_id.as_str()));
            let found = match bound {
                Some(o) => Some(*o),
                None => {
                    // Adopt the first (by cloud id) tagged resource of the right kind.
                    let tagged = by_owner.get(&d.id).and_then(|os| {
                        os.iter()
                            .filter(|o| {
                                o.kind() == d.kind() && !rev.contains_key(o.cloud_id.as_str())
                            })
                            .min_by(|a, b| a.cloud_id.cmp(&b.cloud_id))
                            .copied()
                    });
                    if let Some(o) = tagged {
                        adoptions.push((d.id, o.cloud_id.clone()));
                    }
                    tagged
                }
            };
            if let Some(o) = found {
                matched.insert(d.id, o);
                rev.insert(o.cloud_id.as_str(), d.id);
            }
        }

        let mut unmatched: Vec<&'a ObservedResource> = candidates
            .values()
            .filter(|o| !rev.contains_key(o.cloud_id.as_str()))
            .copied()
            .collect();
        unmatched.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
        let orphans = unmatched
            .into_iter()
            .filter_map(|o| {
                let serves = bindings.logical_id(&o.cloud_id).or_else(|| o.owner())?;
                Some((serves, o))
            })
            .collect();

        Planner {
            desired,
            matched,
            rev,
            orphans,
            adoptions,
            replaced: BTreeSet::new(),
            early: BTreeSet::new(),
            doomed_ids: BTreeSet::new(),
            out: Vec::new(),
            differences: Vec::new(),
        }
    }

    fn run(mut self) -> Plan {
        self.find_replacements();
        self.find_early_deletes();
        self.doomed_ids = self.doomed().iter().map(|o| o.cloud_id.as_str()).collect();

        let desired = self.desired;
        let mut order: Vec<&Resource> = desired.resources.values().collect();
        order.sort_by_key(|r| (r.kind().rank(), r.id));
        for d in order {
            match self.matched.get(&d.id).copied() {
                Some(o) if !self.replaced.contains(&d.id) => self.update(d, o),
                Some(o) => {
                    for (property, declared, observed) in
                        replace_differences(&d.spec, &self.translate(o))
                    {
                        self.differ(
                            d.id,
                            d.kind(),
                            Some(o),
                            property,
                            Some(declared),
                            Some(observed),
                        );
                    }
                    self.create(d);
                }
                None => {
                    self.differ(
                        d.id,
                        d.kind(),
                        None,
                        "existence".into(),
                        Some("present".into()),
                        None,
                    );
                    self.create(d);
                }
            }
        }

        let mut doomed: Vec<(LogicalId, &ObservedResource)> = self.orphans.clone();
        for (l, o) in &self.matched {
            if self.replaced.contains(l) {
                doomed.push((*l, o));
            }
        }
        doomed.sort_by_key(|(l, o)| (std::cmp::Reverse(o.kind().rank()), *l, o.cloud_id.clone()));
        let orphan_ids: BTreeSet<&str> = self
            .orphans
            .iter()
            .map(|(_, o)| o.cloud_id.as_str())
            .collect();
        for (l, o) in doomed {
            if orphan_ids.contains(o.cloud_id.as_str()) {
                self.differ(
                    l,
                    o.kind(),
                    Some(o),
                    "existence".into(),
                    None,
                    Some("present".into()),
                );
            }
            self.delete(l, o);
        }

        self.out.sort_by_key(|(slot, _)| *slot);
        Plan {
            requests: self.out.into_iter().map(|(_, r)| r).collect(),
            differences: self.differences,
            adoptions: self.adoptions,
        }
    }

    /// Marks replacements until nothing changes: replacing one resource can
    /// make its dependents' references stale.
    fn find_replacements(&mut self) {
        loop {
            let mut newly = Vec::new();
            for (l, o) in &self.matched {
                if self.replaced.contains(l) {
                    continue;
                }
                let Some(d) = self.desired.resources.get(l) else {
                    continue;
                };
                if self.needs_replacement(&d.spec, &o.spec) {
                    newly.push(*l);
                }
            }
            if newly.is_empty() {
                return;
            }
            self.replaced.extend(newly);
        }
    }

    /// Finds deletes that must happen before the creates: an old subnet whose
    /// range overlaps a new one in the same VPC, an old group with a new
    /// one's name in the same VPC; then whatever depends on those and goes
    /// too. An instance kept but using an early-deleted group is replaced.
    fn find_early_deletes(&mut self) {
        loop {
            let doomed: Vec<&'a ObservedResource> = self.doomed();
            let mut early: BTreeSet<&'a str> = BTreeSet::new();
            for d in self.desired.resources.values() {
                let creating = !self.matched.contains_key(&d.id) || self.replaced.contains(&d.id);
                if !creating {
                    continue;
                }
                for o in &doomed {
                    if self.conflicts(d, o) {
                        early.insert(o.cloud_id.as_str());
                    }
                }
            }
            // Whatever references an early delete and goes anyway goes early too.
            loop {
                let before = early.len();
                for o in &doomed {
                    if o.spec
                        .references()
                        .iter()
                        .any(|r| early.contains(r.as_str()))
                    {
                        early.insert(o.cloud_id.as_str());
                    }
                }
                if early.len() == before {
                    break;
                }
            }
            // Kept instances using an early-deleted group must be replaced.
            let mut forced = Vec::new();
            for (l, o) in &self.matched {
                if self.replaced.contains(l) {
                    continue;
                }
                if let Spec::Instance(i) = &o.spec {
                    if i.security_groups.iter().any(|g| early.contains(g.as_str())) {
                        forced.push(*l);
                    }
                }
            }
            self.early = early;
            if forced.is_empty() {
                return;
            }
            self.replaced.extend(forced);
            self.find_replacements();
        }
    }

    /// Cloud resources that this plan deletes: orphans and replaced ones.
    fn doomed(&self) -> Vec<&'a ObservedResource> {
        let mut v: Vec<&'a ObservedResource> = self.orphans.iter().map(|(_, o)| *o).collect();
        for (l, o) in &self.matched {
            if self.replaced.contains(l) {
                v.push(o);
            }
        }
        v
    }

    /// Whether creating `d` would collide with the still-existing `old`.
    fn conflicts(&self, d: &Resource, old: &ObservedResource) -> bool {
        match (&d.spec, &old.spec) {
            (Spec::Subnet(new), Spec::Subnet(old_s)) => {
                self.physical(&new.vpc) == Some(old_s.vpc.as_str())
                    && new.cidr_block.overlaps(old_s.cidr_block)
            }
            (Spec::SecurityGroup(new), Spec::SecurityGroup(old_g)) => {
                self.physical(&new.vpc) == Some(old_g.vpc.as_str())
                    && new.group_name == old_g.group_name
            }
            _ => false,
        }
    }

    /// The existing cloud resource a declared reference will point at, if it
    /// is kept (not created or replaced by this plan).
    fn physical<'r>(&self, r: &'r Ref) -> Option<&'r str>
    where
        'a: 'r,
    {
        match r {
            Ref::External(id) => Some(id),
            Ref::Managed(l) if !self.replaced.contains(l) => {
                self.matched.get(l).map(|o| o.cloud_id.as_str())
            }
            Ref::Managed(_) => None,
        }
    }

    /// An observed spec with references translated to the declaration's terms:
    /// a kept, matched resource by logical id; anything else by cloud id.
    fn translate(&self, o: &ObservedResource) -> DesiredSpec {
        o.spec.map_refs(|id| self.translate_id(id))
    }

    fn translate_id(&self, id: &str) -> Ref {
        match self.rev.get(id) {
            Some(l) if !self.replaced.contains(l) => Ref::Managed(*l),
            _ => Ref::External(id.to_string()),
        }
    }

    /// Whether the declared reference `want` and the observed cloud id
    /// `have` name the same thing (as `translate_id` would, without
    /// allocating).
    fn ref_eq(&self, want: &Ref, have: &str) -> bool {
        match (want, self.rev.get(have)) {
            (Ref::Managed(l), Some(h)) => l == h && !self.replaced.contains(l),
            (Ref::Managed(_), None) => false,
            (Ref::External(x), Some(h)) => x == have && self.replaced.contains(h),
            (Ref::External(x), None) => x == have,
        }
    }

    /// A rule in declared terms (allocates only for unmanaged peers).
    fn translate_rule(&self, r: &crate::Rule<String>) -> Rule<Ref> {
        r.map_peer(|g| self.translate_id(g))
    }

    /// Whether every in-place property (tags aside) already matches: the
    /// allocation-free check that lets a quiet tick skip the full diff.
    fn properties_unchanged(&self, want: &DesiredSpec, o: &ObservedResource) -> bool {
        match (want, &o.spec) {
            (Spec::DhcpOptions(_), Spec::DhcpOptions(_)) => true,
            (Spec::Vpc(w), Spec::Vpc(h)) => {
                let dhcp_ok = match (&w.dhcp_options, &h.dhcp_options) {
                    (Some(w), Some(h)) => self.ref_eq(w, h),
                    (Some(_), None) => false,
                    (None, Some(h)) => !self.doomed_ids.contains(h.as_str()),
                    (None, None) => true,
                };
                dhcp_ok
                    && w.enable_dns_support == h.enable_dns_support
                    && w.enable_dns_hostnames == h.enable_dns_hostnames
            }
            (Spec::InternetGateway(w), Spec::InternetGateway(h)) => match (&w.vpc, &h.vpc) {
                (Some(w), Some(h)) => self.ref_eq(w, h),
                (None, None) => true,
                _ => false,
            },
            (Spec::Subnet(w), Spec::Subnet(h)) => {
                w.map_public_ip_on_launch == h.map_public_ip_on_launch
            }
            (Spec::RouteTable(w), Spec::RouteTable(h)) => {
                w.routes.len() == h.routes.len()
                    && h.routes.iter().all(|r| {
                        w.routes.iter().any(|x| {
                            x.destination == r.destination && self.ref_eq(&x.target, &r.target)
                        })
                    })
                    && w.associations.len() == h.associations.len()
                    && h.associations
                        .iter()
                        .all(|a| w.associations.contains(&self.translate_id(a)))
            }
            (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
                w.ingress.len() == h.ingress.len()
                    && w.egress.len() == h.egress.len()
                    && h.ingress
                        .iter()
                        .all(|r| w.ingress.contains(&self.translate_rule(r)))
                    && h.egress
                        .iter()
                        .all(|r| w.egress.contains(&self.translate_rule(r)))
            }
            (Spec::Instance(w), Spec::Instance(h)) => {
                w.security_groups.len() == h.security_groups.len()
                    && h.security_groups
                        .iter()
                        .all(|g| w.security_groups.contains(&self.translate_id(g)))
            }
            _ => false,
        }
    }

    /// Whether a replacement-required property differs: the fast form of
    /// `replace_differences(..).is_empty()`, used on every tick.
    fn needs_replacement(&self, want: &DesiredSpec, have: &crate::ObservedSpec) -> bool {
        match (want, have) {
            (Spec::DhcpOptions(w), Spec::DhcpOptions(h)) => {
                w.domain_name != h.domain_name
                    || w.domain_name_servers != h.domain_name_servers
                    || w.ntp_servers != h.ntp_servers
            }
            (Spec::Vpc(w), Spec::Vpc(h)) => {
                w.cidr_block != h.cidr_block || w.instance_tenancy != h.instance_tenancy
            }
            (Spec::InternetGateway(_), Spec::InternetGateway(_)) => false,
            (Spec::Subnet(w), Spec::Subnet(h)) => {
                !self.ref_eq(&w.vpc, &h.vpc)
                    || w.cidr_block != h.cidr_block
                    || w.availability_zone != h.availability_zone
            }
            (Spec::RouteTable(w), Spec::RouteTable(h)) => !self.ref_eq(&w.vpc, &h.vpc),
            (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
                !self.ref_eq(&w.vpc, &h.vpc)
                    || w.group_name != h.group_name
                    || w.description != h.description
            }
            (Spec::Instance(w), Spec::Instance(h)) => {
                w.image_id != h.image_id
                    || w.instance_type != h.instance_type
                    || !self.ref_eq(&w.subnet, &h.subnet)
                    || w.key_name != h.key_name
                    || w.user_data != h.user_data
            }
            _ => true,
        }
    }

    /// A declared reference as a request parameter.
    fn cref(&self, r: &Ref) -> CloudRef {
        match r {
            Ref::External(id) => CloudRef::Id(id.clone()),
            Ref::Managed(l) => match self.matched.get(l) {
                Some(o) if !self.replaced.contains(l) => CloudRef::Id(o.cloud_id.clone()),
                _ => CloudRef::Pending(*l),
            },
        }
    }

    fn push(&mut self, phase: Phase, kind: ResourceKind, step: u8, request: Request) {
        let rank = match phase {
            Phase::Apply => kind.rank(),
            Phase::EarlyDelete | Phase::Delete => ResourceKind::ALL.len() - kind.rank(),
        };
        let seq = self.out.len();
        self.out.push((
            Slot {
                phase,
                rank,
                step,
                seq,
            },
            request,
        ));
    }

    fn apply(&mut self, d: &Resource, step: u8, part: Option<&str>, action: Action) {
        let request = Request {
            target: d.id,
            part: part.map(str::to_string),
            region: d.region.clone(),
            action,
        };
        self.push(Phase::Apply, d.kind(), step, request);
    }

    fn differ(
        &mut self,
        resource: LogicalId,
        kind: ResourceKind,
        o: Option<&ObservedResource>,
        property: String,
        declared: Option<String>,
        observed: Option<String>,
    ) {
        self.differences.push(Difference {
            resource,
            kind,
            cloud_id: o.map(|o| o.cloud_id.clone()),
            property,
            declared,
            observed,
        });
    }

    /// The requests that create `d` and bring it to its declared state.
    fn create(&mut self, d: &Resource) {
        let me = CloudRef::Pending(d.id);
        let tags = owned_tags(d);
        match &d.spec {
            Spec::DhcpOptions(s) => {
                let DhcpOptionsSpec {
                    domain_name,
                    domain_name_servers,
                    ntp_servers,
                    ..
                } = s;
                self.apply(
                    d,
                    STEP_CREATE,
                    None,
                    Action::CreateDhcpOptions {
                        domain_name: domain_name.clone(),
                        domain_name_servers: domain_name_servers.clone(),
                        ntp_servers: ntp_servers.clone(),
                        tags,
                    },
                );
            }
            Spec::Vpc(s) => {
                self.apply(
                    d,
                    STEP_CREATE,
                    None,
                    Action::CreateVpc {
                        cidr_block: s.cidr_block,
                        instance_tenancy: s.instance_tenancy,
                        tags,
                    },
                );
                // A new VPC has DNS support on and DNS hostnames off.
                self.vpc_dns(
                    d,
                    &me,
                    (true, false),
                    (s.enable_dns_support, s.enable_dns_hostnames),
                );
                if let Some(dopt) = &s.dhcp_options {
                    let dhcp_options = Some(self.cref(dopt));
                    self.apply(
                        d,
                        STEP_ATTRIBUTES,
                        Some("dhcp"),
                        Action::AssociateDhcpOptions {
                            vpc: me.clone(),
                            dhcp_options,
                        },
                    );
                }
            }
            Spec::InternetGateway(s) => {
                self.apply(d, STEP_CREATE, None, Action::CreateInternetGateway { tags });
                if let Some(vpc) = &s.vpc {
                    let vpc = self.cref(vpc);
                    self.apply(
                        d,
                        STEP_LINK,
                        Some("attachment"),
                        Action::AttachInternetGateway {
                            internet_gateway: me.clone(),
                            vpc,
                        },
                    );
                }
            }
            Spec::Subnet(s) => {
                let vpc = self.cref(&s.vpc);
                self.apply(
                    d,
                    STEP_CREATE,
                    None,
                    Action::CreateSubnet {
                        vpc,
                        cidr_block: s.cidr_block,
                        availability_zone: s.availability_zone.clone(),
                        tags,
                    },
                );
                if s.map_public_ip_on_launch {
                    self.apply(
                        d,
                        STEP_ATTRIBUTES,
                        Some("attributes"),
                        Action::ModifySubnetAttribute {
                            subnet: me.clone(),
                            map_public_ip_on_launch: true,
                        },
                    );
                }
            }
            Spec::RouteTable(s) => {
                let vpc = self.cref(&s.vpc);
                self.apply(d, STEP_CREATE, None, Action::CreateRouteTable { vpc, tags });
                for route in &s.routes {
                    let gateway = self.cref(&route.target);
                    self.apply(
                        d,
                        STEP_LINK,
                        Some("routes"),
                        Action::CreateRoute {
                            route_table: me.clone(),
                            destination: route.destination,
                            gateway,
                        },
                    );
                }
                for subnet in &s.associations {
                    let subnet = self.cref(subnet);
                    self.apply(
                        d,
                        STEP_ASSOCIATE,
                        Some("associations"),
                        Action::AssociateRouteTable {
                            route_table: me.clone(),
                            subnet,
                        },
                    );
                }
            }
            Spec::SecurityGroup(s) => {
                let vpc = self.cref(&s.vpc);
                self.apply(
                    d,
                    STEP_CREATE,
                    None,
                    Action::CreateSecurityGroup {
                        vpc,
                        group_name: s.group_name.clone(),
                        description: s.description.clone(),
                        tags,
                    },
                );
                // EC2 gives a new group the allow-all egress rule.
                let default_egress: BTreeSet<Rule<CloudRef>> =
                    [Rule::allow_all_egress()].into_iter().collect();
                let egress: BTreeSet<Rule<CloudRef>> = s
                    .egress
                    .iter()
                    .map(|r| r.map_peer(|g| self.cref(g)))
                    .collect();
                let ingress: BTreeSet<Rule<CloudRef>> = s
                    .ingress
                    .iter()
                    .map(|r| r.map_peer(|g| self.cref(g)))
                    .collect();
                self.rules(d, &me, Direction::Egress, &default_egress, &egress);
                self.rules(d, &me, Direction::Ingress, &BTreeSet::new(), &ingress);
            }
            Spec::Instance(s) => {
                let InstanceSpec {
                    image_id,
                    instance_type,
                    subnet,
                    key_name,
                    user_data,
                    security_groups,
                    ..
                } = s;
                let subnet = self.cref(subnet);
                let security_groups = security_groups.iter().map(|g| self.cref(g)).collect();
                self.apply(
                    d,
                    STEP_CREATE,
                    None,
                    Action::RunInstances {
                        image_id: image_id.clone(),
                        instance_type: instance_type.clone(),
                        subnet,
                        security_groups,
                        key_name: key_name.clone(),
                        user_data: user_data.clone(),
                        tags,
                    },
                );
            }
        }
    }

    /// Authorizes the rules in `want` but not `have`, revokes those in
    /// `have` but not `want` (revokes first).
    fn rules(
        &mut self,
        d: &Resource,
        group: &CloudRef,
        direction: Direction,
        have: &BTreeSet<Rule<CloudRef>>,
        want: &BTreeSet<Rule<CloudRef>>,
    ) {
        let revoke: BTreeSet<_> = have.difference(want).cloned().collect();
        let authorize: BTreeSet<_> = want.difference(have).cloned().collect();
        if !revoke.is_empty() {
            let action = direction.revoke(group.clone(), revoke);
            self.apply(d, STEP_UNLINK, Some("rules"), action);
        }
        if !authorize.is_empty() {
            let action = direction.authorize(group.clone(), authorize);
            self.apply(d, STEP_LINK, Some("rules"), action);
        }
    }

    /// Changes DNS attributes from `have` to `want` (support, hostnames), in
    /// the order EC2 accepts: hostnames need support.
    fn vpc_dns(&mut self, d: &Resource, vpc: &CloudRef, have: (bool, bool), want: (bool, bool)) {
        let support = (have.0 != want.0).then_some((VpcAttribute::EnableDnsSupport, want.0));
        let hostnames = (have.1 != want.1).then_some((VpcAttribute::EnableDnsHostnames, want.1));
        let order = if want.0 {
            [support, hostnames]
        } else {
            [hostnames, support]
        };
        for (attribute, value) in order.into_iter().flatten() {
            self.apply(
                d,
                STEP_ATTRIBUTES,
                Some("attributes"),
                Action::ModifyVpcAttribute {
                    vpc: vpc.clone(),
                    attribute,
                    value,
                },
            );
        }
    }

    /// The in-place changes that bring the kept resource `o` to `d`.
    fn update(&mut self, d: &'a Resource, o: &'a ObservedResource) {
        let me = CloudRef::Id(o.cloud_id.clone());
        if self.properties_unchanged(&d.spec, o) {
            self.update_tags(d, o, &me);
            return;
        }
        let have = self.translate(o);
        match (&d.spec, &have, &o.spec) {
            (Spec::DhcpOptions(_), Spec::DhcpOptions(_), _) => {}
            (Spec::Vpc(want), Spec::Vpc(h), _) => {
                let VpcSpec {
                    enable_dns_support,
                    enable_dns_hostnames,
                    dhcp_options,
                    ..
                } = want;
                if h.enable_dns_support != *enable_dns_support {
                    self.differ_value(
                        d,
                        o,
                        "enableDnsSupport",
                        enable_dns_support,
                        &h.enable_dns_support,
                    );
                }
                if h.enable_dns_hostnames != *enable_dns_hostnames {
                    self.differ_value(
                        d,
                        o,
                        "enableDnsHostnames",
                        enable_dns_hostnames,
                        &h.enable_dns_hostnames,
                    );
                }
                self.vpc_dns(
                    d,
                    &me,
                    (h.enable_dns_support, h.enable_dns_hostnames),
                    (*enable_dns_support, *enable_dns_hostnames),
                );
                let raw_dhcp = match &o.spec {
                    Spec::Vpc(raw) => raw.dhcp_options.as_deref(),
                    _ => None,
                };
                if let (None, Some(old)) = (dhcp_options, raw_dhcp) {
                    // Unmanaged, but a set this plan deletes cannot stay in
                    // use: fall back to the region's default.
                    if self.doomed_ids.contains(old) {
                        self.apply(
                            d,
                            STEP_ATTRIBUTES,
                            Some("dhcp"),
                            Action::AssociateDhcpOptions {
                                vpc: me.clone(),
                                dhcp_options: None,
                            },
                        );
                    }
                }
                if let Some(dopt) = dhcp_options {
                    if h.dhcp_options.as_ref() != Some(dopt) {
                        self.differ(
                            d.id,
                            d.kind(),
                            Some(o),
                            "dhcpOptions".into(),
                            Some(dopt.to_string()),
                            h.dhcp_options.as_ref().map(Ref::to_string),
                        );
                        let dhcp_options = Some(self.cref(dopt));
                        self.apply(
                            d,
                            STEP_ATTRIBUTES,
                            Some("dhcp"),
                            Action::AssociateDhcpOptions {
                                vpc: me.clone(),
                                dhcp_options,
                            },
                        );
                    }
                }
            }
            (Spec::InternetGateway(want), Spec::InternetGateway(h), Spec::InternetGateway(raw)) => {
                let InternetGatewaySpec { vpc, .. } = want;
                if h.vpc != *vpc {
                    self.differ(
                        d.id,
                        d.kind(),
                        Some(o),
                        "vpc".into(),
                        vpc.as_ref().map(Ref::to_string),
                        h.vpc.as_ref().map(Ref::to_string),
                    );
                    if let Some(old) = &raw.vpc {
                        self.apply(
                            d,
                            STEP_ATTRIBUTES,
                            Some("attachment"),
                            Action::DetachInternetGateway {
                                internet_gateway: me.clone(),
                                vpc: CloudRef::Id(old.clone()),
                            },
                        );
                    }
                    if let Some(new) = vpc {
                        let vpc = self.cref(new);
                        self.apply(
                            d,
                            STEP_LINK,
                            Some("attachment"),
                            Action::AttachInternetGateway {
                                internet_gateway: me.clone(),
                                vpc,
                            },
                        );
                    }
                }
            }
            (Spec::Subnet(want), Spec::Subnet(h), _) => {
                let SubnetSpec {
                    map_public_ip_on_launch,
                    ..
                } = want;
                if h.map_public_ip_on_launch != *map_public_ip_on_launch {
                    self.differ_value(
                        d,
                        o,
                        "mapPublicIpOnLaunch",
                        map_public_ip_on_launch,
                        &h.map_public_ip_on_launch,
                    );
                    self.apply(
                        d,
                        STEP_ATTRIBUTES,
                        Some("attributes"),
                        Action::ModifySubnetAttribute {
                            subnet: me.clone(),
                            map_public_ip_on_launch: *map_public_ip_on_launch,
                        },
                    );
                }
            }
            (Spec::RouteTable(want), Spec::RouteTable(h), Spec::RouteTable(raw)) => {
                self.update_route_table(d, o, &me, want, h, raw);
            }
            (Spec::SecurityGroup(want), Spec::SecurityGroup(h), Spec::SecurityGroup(raw)) => {
                self.update_security_group(d, o, &me, want, h, raw);
            }
            (Spec::Instance(want), Spec::Instance(h), _)
                if h.security_groups != want.security_groups =>
            {
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    "securityGroups".into(),
                    Some(join(&want.security_groups)),
                    Some(join(&h.security_groups)),
                );
                let security_groups = want.security_groups.iter().map(|g| self.cref(g)).collect();
                self.apply(
                    d,
                    STEP_LINK,
                    Some("groups"),
                    Action::ModifyInstanceSecurityGroups {
                        instance: me.clone(),
                        security_groups,
                    },
                );
            }
            // Matching guarantees equal kinds; nothing to do otherwise.
            _ => {}
        }
        self.update_tags(d, o, &me);
    }

    fn update_route_table(
        &mut self,
        d: &Resource,
        o: &ObservedResource,
        me: &CloudRef,
        want: &RouteTableSpec<Ref>,
        have: &RouteTableSpec<Ref>,
        raw: &RouteTableSpec<String>,
    ) {
        let want_routes: BTreeMap<_, _> = want
            .routes
            .iter()
            .map(|r| (r.destination, &r.target))
            .collect();
        let have_routes: BTreeMap<_, _> = have
            .routes
            .iter()
            .map(|r| (r.destination, &r.target))
            .collect();
        for (dest, target) in &have_routes {
            if !want_routes.contains_key(dest) {
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    format!("routes.{dest}"),
                    None,
                    Some(target.to_string()),
                );
                self.apply(
                    d,
                    STEP_UNLINK,
                    Some("routes"),
                    Action::DeleteRoute {
                        route_table: me.clone(),
                        destination: *dest,
                    },
                );
            }
        }
        for (dest, target) in &want_routes {
            let gateway = self.cref(target);
            match have_routes.get(dest) {
                Some(h) if h == target => {}
                Some(h) => {
                    self.differ(
                        d.id,
                        d.kind(),
                        Some(o),
                        format!("routes.{dest}"),
                        Some(target.to_string()),
                        Some(h.to_string()),
                    );
                    self.apply(
                        d,
                        STEP_LINK,
                        Some("routes"),
                        Action::ReplaceRoute {
                            route_table: me.clone(),
                            destination: *dest,
                            gateway,
                        },
                    );
                }
                None => {
                    self.differ(
                        d.id,
                        d.kind(),
                        Some(o),
                        format!("routes.{dest}"),
                        Some(target.to_string()),
                        None,
                    );
                    self.apply(
                        d,
                        STEP_LINK,
                        Some("routes"),
                        Action::CreateRoute {
                            route_table: me.clone(),
                            destination: *dest,
                            gateway,
                        },
                    );
                }
            }
        }
        for subnet in &raw.associations {
            let as_declared = self.translate_id(subnet);
            if want.associations.contains(&as_declared) {
                continue;
            }
            self.differ(
                d.id,
                d.kind(),
                Some(o),
                "associations".into(),
                None,
                Some(subnet.clone()),
            );
            if self.early.contains(subnet.as_str()) {
                // The subnet is deleted first; its association goes with it.
                continue;
            }
            if let Some(association_id) = o.association_ids.get(subnet) {
                self.apply(
                    d,
                    STEP_UNLINK,
                    Some("associations"),
                    Action::DisassociateRouteTable {
                        association_id: association_id.clone(),
                    },
                );
            }
        }
        for subnet in want.associations.difference(&have.associations) {
            self.differ(
                d.id,
                d.kind(),
                Some(o),
                "associations".into(),
                Some(subnet.to_string()),
                None,
            );
            let subnet = self.cref(subnet);
            self.apply(
                d,
                STEP_ASSOCIATE,
                Some("associations"),
                Action::AssociateRouteTable {
                    route_table: me.clone(),
                    subnet,
                },
            );
        }
    }

    fn update_security_group(
        &mut self,
        d: &Resource,
        o: &ObservedResource,
        me: &CloudRef,
        want: &SecurityGroupSpec<Ref>,
        have: &SecurityGroupSpec<Ref>,
        raw: &SecurityGroupSpec<String>,
    ) {
        for (direction, want_rules, have_rules, raw_rules) in [
            (
                Direction::Ingress,
                &want.ingress,
                &have.ingress,
                &raw.ingress,
            ),
            (Direction::Egress, &want.egress, &have.egress, &raw.egress),
        ] {
            // Revoke in the cloud's own terms, so the request names exactly
            // the rule that is there.
            let mut revoke_early = BTreeSet::new();
            let mut revoke = BTreeSet::new();
            for rule in raw_rules {
                let declared_form = rule.map_peer(|g| self.translate_id(g));
                if want_rules.contains(&declared_form) {
                    continue;
                }
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    direction.property().into(),
                    None,
                    Some(rule.to_string()),
                );
                let cloud_form = rule.map_peer(|g| CloudRef::Id(g.clone()));
                match &rule.peer {
                    Peer::Group(g) if self.early.contains(g.as_str()) => {
                        revoke_early.insert(cloud_form)
                    }
                    _ => revoke.insert(cloud_form),
                };
            }
            let mut authorize = BTreeSet::new();
            for rule in want_rules.difference(have_rules) {
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    direction.property().into(),
                    Some(rule.to_string()),
                    None,
                );
                authorize.insert(rule.map_peer(|g| self.cref(g)));
            }
            if !revoke_early.is_empty() {
                let request = Request {
                    target: d.id,
                    part: Some("rules".into()),
                    region: d.region.clone(),
                    action: direction.revoke(me.clone(), revoke_early),
                };
                self.push(
                    Phase::EarlyDelete,
                    ResourceKind::Instance,
                    STEP_DETACH,
                    request,
                );
            }
            if !revoke.is_empty() {
                self.apply(
                    d,
                    STEP_UNLINK,
                    Some("rules"),
                    direction.revoke(me.clone(), revoke),
                );
            }
            if !authorize.is_empty() {
                self.apply(
                    d,
                    STEP_LINK,
                    Some("rules"),
                    direction.authorize(me.clone(), authorize),
                );
            }
        }
    }

    fn update_tags(&mut self, d: &Resource, o: &ObservedResource, me: &CloudRef) {
        let declared = d.spec.tags();
        let have = o.spec.tags();
        let owner_ok = have
            .get(OWNERSHIP_TAG)
            .and_then(|v| v.parse::<LogicalId>().ok())
            == Some(d.id);
        let same = owner_ok
            && declared.iter().all(|(k, v)| have.get(k) == Some(v))
            && have
                .keys()
                .all(|k| k == OWNERSHIP_TAG || k.starts_with("aws:") || declared.contains_key(k));
        if same {
            return;
        }
        let want = owned_tags(d);
        let mut set = Tags::new();
        for (k, v) in &want {
            if have.get(k) != Some(v) {
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    format!("tags.{k}"),
                    Some(v.clone()),
                    have.get(k).cloned(),
                );
                set.insert(k.clone(), v.clone());
            }
        }
        let mut unset = BTreeSet::new();
        for (k, v) in have {
            // `aws:` tags belong to AWS and cannot be changed.
            if !want.contains_key(k) && !k.starts_with("aws:") {
                self.differ(
                    d.id,
                    d.kind(),
                    Some(o),
                    format!("tags.{k}"),
                    None,
                    Some(v.clone()),
                );
                unset.insert(k.clone());
            }
        }
        if !unset.is_empty() {
            self.apply(
                d,
                STEP_TAGS,
                Some("tags"),
                Action::DeleteTags {
                    resource: me.clone(),
                    keys: unset,
                },
            );
        }
        if !set.is_empty() {
            self.apply(
                d,
                STEP_TAGS,
                Some("tags"),
                Action::CreateTags {
                    resource: me.clone(),
                    tags: set,
                },
            );
        }
    }

    fn differ_value<T: ToString>(
        &mut self,
        d: &Resource,
        o: &ObservedResource,
        property: &str,
        declared: &T,
        observed: &T,
    ) {
        self.differ(
            d.id,
            d.kind(),
            Some(o),
            property.into(),
            Some(declared.to_string()),
            Some(observed.to_string()),
        );
    }

    /// The requests that delete the cloud resource `o`, which served `l`.
    fn delete(&mut self, l: LogicalId, o: &ObservedResource) {
        let phase = if self.early.contains(o.cloud_id.as_str()) {
            Phase::EarlyDelete
        } else {
            Phase::Delete
        };
        let me = CloudRef::Id(o.cloud_id.clone());
        let kind = o.kind();
        let emit = |planner: &mut Self, step: u8, part: Option<&str>, action: Action| {
            let request = Request {
                target: l,
                part: part.map(str::to_string),
                region: o.region.clone(),
                action,
            };
            planner.push(phase, kind, step, request);
        };
        match &o.spec {
            Spec::DhcpOptions(_) => emit(
                self,
                STEP_DELETE,
                None,
                Action::DeleteDhcpOptions { dhcp_options: me },
            ),
            Spec::Vpc(_) => emit(self, STEP_DELETE, None, Action::DeleteVpc { vpc: me }),
            Spec::InternetGateway(s) => {
                if let Some(vpc) = &s.vpc {
                    emit(
                        self,
                        STEP_DETACH,
                        Some("attachment"),
                        Action::DetachInternetGateway {
                            internet_gateway: me.clone(),
                            vpc: CloudRef::Id(vpc.clone()),
                        },
                    );
                }
                emit(
                    self,
                    STEP_DELETE,
                    None,
                    Action::DeleteInternetGateway {
                        internet_gateway: me,
                    },
                );
            }
            Spec::Subnet(_) => emit(self, STEP_DELETE, None, Action::DeleteSubnet { subnet: me }),
            Spec::RouteTable(_) => {
                for association_id in o.association_ids.values() {
                    emit(
                        self,
                        STEP_DETACH,
                        Some("associations"),
                        Action::DisassociateRouteTable {
                            association_id: association_id.clone(),
                        },
                    );
                }
                emit(
                    self,
                    STEP_DELETE,
                    None,
                    Action::DeleteRouteTable { route_table: me },
                );
            }
            Spec::SecurityGroup(s) => {
                // Rules naming other groups would block those groups' deletion.
                for (direction, rules) in [
                    (Direction::Ingress, &s.ingress),
                    (Direction::Egress, &s.egress),
                ] {
                    let by_group: BTreeSet<Rule<CloudRef>> = rules
                        .iter()
                        .filter(|r| matches!(r.peer, Peer::Group(_)))
                        .map(|r| r.map_peer(|g| CloudRef::Id(g.clone())))
                        .collect();
                    if !by_group.is_empty() {
                        emit(
                            self,
                            STEP_DETACH,
                            Some("rules"),
                            direction.revoke(me.clone(), by_group),
                        );
                    }
                }
                emit(
                    self,
                    STEP_DELETE,
                    None,
                    Action::DeleteSecurityGroup { group: me },
                );
            }
            Spec::Instance(_) => emit(
                self,
                STEP_DELETE,
                None,
                Action::TerminateInstances { instance: me },
            ),
        }
    }
}

/// Ingress or egress.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn property(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn authorize(self, group: CloudRef, rules: BTreeSet<Rule<CloudRef>>) -> Action {
        match self {
            Direction::Ingress => Action::AuthorizeSecurityGroupIngress { group, rules },
            Direction::Egress => Action::AuthorizeSecurityGroupEgress { group, rules },
        }
    }

    fn revoke(self, group: CloudRef, rules: BTreeSet<Rule<CloudRef>>) -> Action {
        match self {
            Direction::Ingress => Action::RevokeSecurityGroupIngress { group, rules },
            Direction::Egress => Action::RevokeSecurityGroupEgress { group, rules },
        }
    }
}

/// The declared tags plus the ownership tag.
pub fn owned_tags(d: &Resource) -> Tags {
    let mut tags = d.spec.tags().clone();
    tags.insert(OWNERSHIP_TAG.to_string(), d.id.to_string());
    tags
}

/// The replacement-required properties on which `want` and `have` differ,
/// as (property, declared, observed).
fn replace_differences(want: &DesiredSpec, have: &DesiredSpec) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut check = |property: &str, w: String, h: String| {
        if w != h {
            out.push((property.to_string(), w, h));
        }
    };
    match (want, have) {
        (Spec::DhcpOptions(w), Spec::DhcpOptions(h)) => {
            check(
                "domainName",
                format!("{:?}", w.domain_name),
                format!("{:?}", h.domain_name),
            );
            check(
                "domainNameServers",
                w.domain_name_servers.join(","),
                h.domain_name_servers.join(","),
            );
            check(
                "ntpServers",
                w.ntp_servers.join(","),
                h.ntp_servers.join(","),
            );
        }
        (Spec::Vpc(w), Spec::Vpc(h)) => {
            check(
                "cidrBlock",
                w.cidr_block.to_string(),
                h.cidr_block.to_string(),
            );
            check(
                "instanceTenancy",
                w.instance_tenancy.as_str().into(),
                h.instance_tenancy.as_str().into(),
            );
        }
        (Spec::InternetGateway(_), Spec::InternetGateway(_)) => {}
        (Spec::Subnet(w), Spec::Subnet(h)) => {
            check("vpc", w.vpc.to_string(), h.vpc.to_string());
            check(
                "cidrBlock",
                w.cidr_block.to_string(),
                h.cidr_block.to_string(),
            );
            check(
                "availabilityZone",
                w.availability_zone.clone(),
                h.availability_zone.clone(),
            );
        }
        (Spec::RouteTable(w), Spec::RouteTable(h)) => {
            check("vpc", w.vpc.to_string(), h.vpc.to_string());
        }
        (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
            check("vpc", w.vpc.to_string(), h.vpc.to_string());
            check("groupName", w.group_name.clone(), h.group_name.clone());
            check("description", w.description.clone(), h.description.clone());
        }
        (Spec::Instance(w), Spec::Instance(h)) => {
            check("imageId", w.image_id.clone(), h.image_id.clone());
            check(
                "instanceType",
                w.instance_type.clone(),
                h.instance_type.clone(),
            );
            check("subnet", w.subnet.to_string(), h.subnet.to_string());
            check(
                "keyName",
                format!("{:?}", w.key_name),
                format!("{:?}", h.key_name),
            );
            check(
                "userData",
                format!("{:?}", w.user_data),
                format!("{:?}", h.user_data),
            );
        }
        _ => check("kind", want.kind().to_string(), have.kind().to_string()),
    }
    out
}

fn join(set: &BTreeSet<Ref>) -> String {
    set.iter().map(Ref::to_string).collect::<Vec<_>>().join(",")
}
