//! Import (`canon run --import`): which existing cloud resource each
//! declaration adopts, decided before anything is tagged.
//!
//! Declarations are matched in dependency order, so a subnet is looked for
//! in the VPC its VPC declaration adopted (or in the external VPC it names).
//! For each one:
//!
//! 1. an explicit id (`importId`) names the resource: it must exist and be
//!    of the declaration's kind;
//! 2. otherwise the kind's identifying properties ([`Lookup`] says where
//!    the cloud is asked, [`identifies`] which of its answers match): a
//!    VPC by CIDR and Name tag, a subnet by CIDR within its VPC, a group by
//!    name within its VPC, an internet gateway by its attachment, a route
//!    table or network ACL by Name tag within its VPC, an instance or NAT
//!    gateway by Name tag within its subnet. Kinds with no identity
//!    (DHCP options, Elastic IPs) and declarations missing the Name tag
//!    their kind is known by need an `importId`: an error says so.
//!
//! Two candidates for one declaration, a candidate owned by another
//! process, or one cloud resource claimed twice refuse the whole import
//! ([`ImportError`]); nothing is tagged. Nothing found means the
//! declaration is created as in a plain run.
//!
//! Adoption itself is tagging: [`adoption_requests`] writes each adopted
//! resource's ownership tag, after which the planner's own adoption (by
//! tag, `matching`) binds it and enforces the declaration on it. A leader
//! that dies between tagging and recording leaves tagged resources the
//! next observation finds, so nothing is adopted twice or created beside.
//!
//! Like the planner, everything here is a pure function of its arguments;
//! the cloud is asked by the caller (`canon_cloud::import`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    Action, Bindings, CloudRef, DesiredState, Fid, LogicalId, ObservedResource, ObservedState, Ref,
    Region, Request, Resource, ResourceKind, Spec, OWNERSHIP_TAG,
};

/// The tag whose value names a resource for people (and for import).
pub const NAME_TAG: &str = "Name";

/// Where the cloud is asked for a declaration's candidates: the resources
/// of its kind in its region that this admits (owned or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// The one resource with this id.
    Id(String),
    /// Every resource of the kind in the region (VPCs).
    Region,
    /// Those in (or, for gateways, attached to) this VPC.
    InVpc(String),
    /// Those in this subnet.
    InSubnet(String),
}

impl Lookup {
    /// Whether `o` is within this lookup (the cloud adapters' filter, which
    /// the AWS adapter asks EC2 to apply).
    pub fn admits(&self, o: &ObservedResource) -> bool {
        match self {
            Lookup::Id(id) => &o.cloud_id == id,
            Lookup::Region => true,
            Lookup::InVpc(vpc) => vpc_of(&o.spec) == Some(vpc.as_str()),
            Lookup::InSubnet(subnet) => subnet_of(&o.spec) == Some(subnet.as_str()),
        }
    }
}

/// The VPC a resource lives in (or an internet gateway is attached to).
fn vpc_of(spec: &Spec<String>) -> Option<&str> {
    match spec {
        Spec::InternetGateway(s) => s.vpc.as_deref(),
        Spec::EgressOnlyInternetGateway(s) => Some(&s.vpc),
        // A peering connection is looked for in its requester's VPC.
        Spec::VpcPeeringConnection(s) => Some(&s.vpc),
        Spec::Subnet(s) => Some(&s.vpc),
        Spec::RouteTable(s) => Some(&s.vpc),
        Spec::VpcEndpoint(s) => Some(&s.vpc),
        Spec::NetworkAcl(s) => Some(&s.vpc),
        Spec::SecurityGroup(s) => Some(&s.vpc),
        _ => None,
    }
}

/// The subnet a resource lives in.
fn subnet_of(spec: &Spec<String>) -> Option<&str> {
    match spec {
        Spec::NatGateway(s) => Some(&s.subnet),
        Spec::Instance(s) => Some(&s.subnet),
        _ => None,
    }
}

/// Why an import is refused. Each names the declaration by its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{resource}: a {kind} cannot be recognised by its properties ({why}); give it an importId"
    )]
    NoIdentity {
        resource: String,
        kind: ResourceKind,
        why: &'static str,
    },
    #[error("{resource}: importId {cloud_id} names no {kind} in {region}")]
    NotFound {
        resource: String,
        kind: ResourceKind,
        cloud_id: String,
        region: Region,
    },
    #[error("{resource}: ambiguous, {} match: {}", candidates.len(), candidates.join(" and "))]
    Ambiguous {
        resource: String,
        candidates: Vec<String>,
    },
    /// `owner` is the owning process's FID; the node names its alias.
    #[error("{resource}: {cloud_id} is owned by process {owner}")]
    Owned {
        resource: String,
        cloud_id: String,
        owner: Fid,
    },
    #[error("{cloud_id} would be adopted twice: by {first} and by {second}")]
    Twice {
        cloud_id: String,
        first: String,
        second: String,
    },
}

/// One declaration an import adopts an existing resource for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adoption {
    pub resource: LogicalId,
    /// Its path in the composition.
    pub name: String,
    pub kind: ResourceKind,
    pub cloud_id: String,
    pub region: Region,
}

impl Adoption {
    /// The request that adopts it: its ownership tag written.
    pub fn request(&self) -> Request {
        Request {
            target: self.resource,
            part: Some("import".into()),
            region: self.region.clone(),
            action: Action::CreateTags {
                resource: CloudRef::Id(self.cloud_id.clone()),
                tags: [(OWNERSHIP_TAG.to_string(), self.resource.to_string())]
                    .into_iter()
                    .collect(),
            },
        }
    }
}

/// What an import decided, declaration by declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    /// Declarations that adopt an existing resource, in dependency order.
    pub adopted: Vec<Adoption>,
    /// Declarations nothing matched: created as in a plain run.
    pub created: Vec<(LogicalId, String, ResourceKind)>,
}

impl ImportPlan {
    /// Declaration → adopted cloud id, what the run command records.
    pub fn mapping(&self) -> BTreeMap<LogicalId, String> {
        self.adopted
            .iter()
            .map(|a| (a.resource, a.cloud_id.clone()))
            .collect()
    }

    /// Per declaration, what a dry run prints: the resource it adopts or
    /// that it is created.
    pub fn to_json(&self) -> Value {
        let mut rows: Vec<Value> = self
            .adopted
            .iter()
            .map(|a| json!({"resource": a.name, "kind": a.kind.to_string(), "adopts": a.cloud_id}))
            .collect();
        rows.extend(self.created.iter().map(|(_, name, kind)| {
            json!({"resource": name, "kind": kind.to_string(), "adopts": null, "created": true})
        }));
        Value::Array(rows)
    }
}

/// Declarations in the order they are matched (dependency order, then
/// logical id).
pub fn in_order(desired: &DesiredState) -> Vec<&Resource> {
    let mut order: Vec<&Resource> = desired.resources.values().collect();
    order.sort_by_key(|r| (r.kind().rank(), r.id));
    order
}

/// The cloud id a reference stands for during an import: an external
/// one's own, a declared one's if that declaration adopted something
/// (`None`: it is created, so nothing in the cloud can be inside it yet).
fn resolved<'a>(r: &'a Ref, adopted: &'a BTreeMap<LogicalId, String>) -> Option<&'a str> {
    match r {
        Ref::External(id) => Some(id),
        Ref::Managed(l) => adopted.get(l).map(String::as_str),
    }
}

/// Where to look for declaration `d`'s candidates, given what the
/// declarations before it adopted; `Ok(None)` when nothing can match (its
/// VPC or subnet is created).
pub fn lookup(
    desired: &DesiredState,
    d: &Resource,
    adopted: &BTreeMap<LogicalId, String>,
) -> Result<Option<Lookup>, ImportError> {
    if let Some(id) = desired.import_ids.get(&d.id) {
        return Ok(Some(Lookup::Id(id.clone())));
    }
    let no_identity = |why| ImportError::NoIdentity {
        resource: d.name.clone(),
        kind: d.kind(),
        why,
    };
    let named = d.spec.tags().contains_key(NAME_TAG);
    let in_vpc = |vpc: &Ref| resolved(vpc, adopted).map(|v| Lookup::InVpc(v.to_string()));
    let in_subnet = |s: &Ref| resolved(s, adopted).map(|v| Lookup::InSubnet(v.to_string()));
    Ok(match &d.spec {
        Spec::DhcpOptions(_) => {
            return Err(no_identity("DHCP options have no identifying property"))
        }
        Spec::ElasticIp(_) => {
            return Err(no_identity(
                "EC2 chooses an address; nothing declared identifies it",
            ))
        }
        Spec::Vpc(_) => Some(Lookup::Region),
        Spec::InternetGateway(s) => match &s.vpc {
            Some(vpc) => in_vpc(vpc),
            None => {
                return Err(no_identity(
                    "an unattached gateway has no identifying property",
                ))
            }
        },
        Spec::EgressOnlyInternetGateway(s) => in_vpc(&s.vpc),
        Spec::VpcPeeringConnection(s) => in_vpc(&s.vpc),
        Spec::VpcEndpoint(s) => in_vpc(&s.vpc),
        Spec::Subnet(s) => in_vpc(&s.vpc),
        Spec::SecurityGroup(s) => in_vpc(&s.vpc),
        Spec::RouteTable(s) if named => in_vpc(&s.vpc),
        Spec::NetworkAcl(s) if named => in_vpc(&s.vpc),
        Spec::RouteTable(_) | Spec::NetworkAcl(_) => {
            return Err(no_identity(
                "it is recognised by its Name tag within its VPC, and declares none",
            ))
        }
        Spec::NatGateway(s) if named => in_subnet(&s.subnet),
        Spec::Instance(s) if named => in_subnet(&s.subnet),
        Spec::NatGateway(_) | Spec::Instance(_) => {
            return Err(no_identity(
                "it is recognised by its Name tag within its subnet, and declares none",
            ))
        }
        Spec::Volume(_) if named => Some(Lookup::Region),
        Spec::Volume(_) => {
            return Err(no_identity(
                "it is recognised by its Name tag within its zone, and declares none",
            ))
        }
    })
}

/// Whether observed `o` is what declaration `d` describes by its kind's
/// identifying properties (references through `adopted`).
pub fn identifies(
    d: &Resource,
    adopted: &BTreeMap<LogicalId, String>,
    o: &ObservedResource,
) -> bool {
    let same_ref = |want: &Ref, have: &str| resolved(want, adopted) == Some(have);
    let same_name = d.spec.tags().get(NAME_TAG) == o.spec.tags().get(NAME_TAG);
    match (&d.spec, &o.spec) {
        (Spec::Vpc(w), Spec::Vpc(h)) => w.cidr_block == h.cidr_block && same_name,
        (Spec::Subnet(w), Spec::Subnet(h)) => {
            w.cidr_block == h.cidr_block && same_ref(&w.vpc, &h.vpc)
        }
        (Spec::SecurityGroup(w), Spec::SecurityGroup(h)) => {
            w.group_name == h.group_name && same_ref(&w.vpc, &h.vpc)
        }
        (Spec::InternetGateway(w), Spec::InternetGateway(h)) => match (&w.vpc, &h.vpc) {
            (Some(wv), Some(hv)) => same_ref(wv, hv),
            _ => false,
        },
        (Spec::EgressOnlyInternetGateway(w), Spec::EgressOnlyInternetGateway(h)) => {
            same_ref(&w.vpc, &h.vpc)
        }
        (Spec::VpcPeeringConnection(w), Spec::VpcPeeringConnection(h)) => {
            same_ref(&w.vpc, &h.vpc) && same_ref(&w.peer_vpc, &h.peer_vpc)
        }
        (Spec::VpcEndpoint(w), Spec::VpcEndpoint(h)) => {
            w.service == h.service && w.endpoint_type == h.endpoint_type && same_ref(&w.vpc, &h.vpc)
        }
        (Spec::RouteTable(w), Spec::RouteTable(h)) => same_name && same_ref(&w.vpc, &h.vpc),
        (Spec::NetworkAcl(w), Spec::NetworkAcl(h)) => same_name && same_ref(&w.vpc, &h.vpc),
        (Spec::NatGateway(w), Spec::NatGateway(h)) => same_name && same_ref(&w.subnet, &h.subnet),
        (Spec::Instance(w), Spec::Instance(h)) => same_name && same_ref(&w.subnet, &h.subnet),
        (Spec::Volume(w), Spec::Volume(h)) => {
            same_name && w.availability_zone == h.availability_zone
        }
        _ => false,
    }
}

/// Which of `candidates` (what the cloud answered `lookup` with)
/// declaration `d` of process `fid` adopts: `Ok(None)` if none matches.
pub fn choose<'a>(
    fid: Fid,
    d: &Resource,
    lookup: &Lookup,
    adopted: &BTreeMap<LogicalId, String>,
    candidates: &'a [ObservedResource],
) -> Result<Option<&'a ObservedResource>, ImportError> {
    let of_kind = candidates
        .iter()
        .filter(|o| o.kind() == d.kind() && lookup.admits(o));
    let mut matching: Vec<&ObservedResource> = match lookup {
        Lookup::Id(_) => of_kind.collect(),
        _ => of_kind.filter(|o| identifies(d, adopted, o)).collect(),
    };
    matching.sort_by(|a, b| a.cloud_id.cmp(&b.cloud_id));
    matching.dedup_by(|a, b| a.cloud_id == b.cloud_id);
    match matching.as_slice() {
        [] => match lookup {
            Lookup::Id(id) => Err(ImportError::NotFound {
                resource: d.name.clone(),
                kind: d.kind(),
                cloud_id: id.clone(),
                region: d.region.clone(),
            }),
            _ => Ok(None),
        },
        [one] => match one.owner() {
            Some(owner) if owner.fid != fid => Err(ImportError::Owned {
                resource: d.name.clone(),
                cloud_id: one.cloud_id.clone(),
                owner: owner.fid,
            }),
            _ => Ok(Some(*one)),
        },
        many => Err(ImportError::Ambiguous {
            resource: d.name.clone(),
            candidates: many.iter().map(|o| o.cloud_id.clone()).collect(),
        }),
    }
}

/// Records `d`'s choice in `plan` (and `adopted`), refusing a cloud id
/// another declaration already took.
pub fn record(
    plan: &mut ImportPlan,
    adopted: &mut BTreeMap<LogicalId, String>,
    d: &Resource,
    chosen: Option<&ObservedResource>,
) -> Result<(), ImportError> {
    let Some(o) = chosen else {
        plan.created.push((d.id, d.name.clone(), d.kind()));
        return Ok(());
    };
    if let Some(first) = plan.adopted.iter().find(|a| a.cloud_id == o.cloud_id) {
        return Err(ImportError::Twice {
            cloud_id: o.cloud_id.clone(),
            first: first.name.clone(),
            second: d.name.clone(),
        });
    }
    adopted.insert(d.id, o.cloud_id.clone());
    plan.adopted.push(Adoption {
        resource: d.id,
        name: d.name.clone(),
        kind: d.kind(),
        cloud_id: o.cloud_id.clone(),
        region: o.region.clone(),
    });
    Ok(())
}

/// The ownership tags still to write for a process's recorded imports
/// (`imports`: declaration → adopted cloud id): those not bound yet and
/// not yet shown by the cloud with this declaration's tag. Empty once the
/// planner has adopted them all; a repeated tag is harmless.
pub fn adoption_requests(
    desired: &DesiredState,
    imports: &BTreeMap<LogicalId, String>,
    observed: &ObservedState,
    bindings: &Bindings,
) -> Vec<Request> {
    imports
        .iter()
        .filter(|(l, _)| bindings.cloud_id(l).is_none())
        .filter(|(l, cloud_id)| {
            observed.get(cloud_id).and_then(ObservedResource::owner) != Some(**l)
        })
        .filter_map(|(l, cloud_id)| {
            let d = desired.resources.get(l)?;
            Some(
                Adoption {
                    resource: *l,
                    name: d.name.clone(),
                    kind: d.kind(),
                    cloud_id: cloud_id.clone(),
                    region: d.region.clone(),
                }
                .request(),
            )
        })
        .collect()
}

/// The recorded imports, not bound yet, that another process took after
/// this import was accepted (two imports of one resource racing, or a
/// hand-written tag): the resources the cloud now shows with another
/// process's ownership tag, which this process must not tag over.
pub fn taken_since(
    desired: &DesiredState,
    imports: &BTreeMap<LogicalId, String>,
    observed: &ObservedState,
    bindings: &Bindings,
) -> Vec<ImportError> {
    imports
        .iter()
        .filter(|(l, _)| bindings.cloud_id(l).is_none())
        .filter_map(|(l, cloud_id)| {
            let owner = observed.get(cloud_id)?.owner()?;
            (owner.fid != l.fid).then(|| ImportError::Owned {
                resource: desired
                    .resources
                    .get(l)
                    .map_or_else(|| l.to_string(), |d| d.name.clone()),
                cloud_id: cloud_id.clone(),
                owner: owner.fid,
            })
        })
        .collect()
}

/// `observed` as it will be once `adopted` are tagged: what a dry run
/// plans against to show the changes adoption leads to.
pub fn as_adopted(
    observed: &ObservedState,
    adopted: &[(Adoption, ObservedResource)],
) -> ObservedState {
    let mut out = observed.clone();
    for (a, o) in adopted {
        let mut tagged = o.clone();
        tagged
            .spec
            .tags_mut()
            .insert(OWNERSHIP_TAG.to_string(), a.resource.to_string());
        out.insert(tagged);
    }
    out
}

#[cfg(test)]
mod tests;
