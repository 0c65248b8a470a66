//! Simulated network ACLs. Every VPC has a default ACL, made with it and
//! deleted with it (entry 100 allows all traffic each way, 32767 denies
//! the rest), and every subnet is in exactly one ACL of its VPC: its
//! VPC's default from its creation, until an association is replaced. A
//! new ACL denies everything (only its 32767 entries). Entries are named
//! by direction and number, 1 to 32766 (32767 is EC2's own): a second one
//! with the same name is `NetworkAclEntryAlreadyExists`, a replace or a
//! delete of a missing one `InvalidNetworkAclEntry.NotFound`. An ACL that
//! holds subnets is not deleted, and a default one never alone.

use std::collections::BTreeMap;

use canon_model::{
    AclAction, AclEntry, Action, CloudRef, IpCidr, Ipv4Cidr, NetworkAclSpec, ObservedSpec,
    Protocol, ResourceKind, Spec, Tags, RULE_NUMBERS,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{changed, err, new_id, not_found, Applied, Call, Meta, RegionState};
use crate::{CloudError, Outcome};

const KIND: ResourceKind = ResourceKind::NetworkAcl;

/// EC2's own last entry of each direction, denying what no other matched.
pub(crate) const LAST_RULE: u16 = 32767;

/// A stored network ACL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Acl {
    pub meta: Meta,
    pub vpc: String,
    /// The VPC's default ACL (untagged, so never observed as Canon's).
    pub default: bool,
    /// Every entry, EC2's own 32767 ones included.
    pub entries: Vec<AclEntry>,
    /// Subnet → association id.
    pub assoc: BTreeMap<String, String>,
}

impl Acl {
    /// A new ACL of `vpc`: a default one allows all traffic (entries 100),
    /// any other none; both end with EC2's deny-all entries.
    fn new(meta: Meta, vpc: String, default: bool) -> Self {
        let any = IpCidr::V4(Ipv4Cidr::ANY);
        let all = |egress, number, action| {
            AclEntry::new(egress, number, Protocol::All, action, any, (-1, -1))
        };
        let mut entries = vec![
            all(false, LAST_RULE, AclAction::Deny),
            all(true, LAST_RULE, AclAction::Deny),
        ];
        if default {
            entries.push(all(false, 100, AclAction::Allow));
            entries.push(all(true, 100, AclAction::Allow));
        }
        Acl {
            meta,
            vpc,
            default,
            entries,
            assoc: BTreeMap::new(),
        }
    }

    /// The ACL as a describe shows it to Canon: its entries but EC2's own.
    pub fn spec(&self) -> ObservedSpec {
        Spec::NetworkAcl(NetworkAclSpec {
            vpc: self.vpc.clone(),
            entries: self
                .entries
                .iter()
                .filter(|e| e.rule_number != LAST_RULE)
                .cloned()
                .collect(),
            associations: self.assoc.keys().cloned().collect(),
            tags: self.meta.tags.clone(),
        })
    }

    fn entry(&self, egress: bool, number: u16) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.key() == (egress, number))
    }
}

impl RegionState {
    /// The ACL `n`, or EC2's not-found error.
    pub(crate) fn acl(&self, n: &str) -> Result<&Acl, CloudError> {
        self.acls.get(n).ok_or_else(|| not_found(KIND, n))
    }

    /// Makes `vpc`'s default ACL; returns its id.
    pub(crate) fn make_default_acl<R: Rng + ?Sized>(
        &mut self,
        vpc: &str,
        visible_at: u64,
        rng: &mut R,
    ) -> String {
        let rid = new_id(rng, "acl");
        let meta = Meta::new(&Tags::new(), visible_at);
        self.acls
            .insert(rid.clone(), Acl::new(meta, vpc.to_string(), true));
        rid
    }

    /// The id of `vpc`'s default ACL, if it has one.
    pub(crate) fn default_acl_of(&self, vpc: &str) -> Option<&String> {
        self.acls
            .iter()
            .find(|(_, a)| a.default && a.vpc == vpc)
            .map(|(n, _)| n)
    }

    /// The default ACL of `vpc`, made now if the VPC predates ACLs (a
    /// state saved before they existed).
    fn default_acl<R: Rng + ?Sized>(&mut self, vpc: &str, rng: &mut R) -> String {
        match self.default_acl_of(vpc) {
            Some(n) => n.clone(),
            None => self.make_default_acl(vpc, 0, rng),
        }
    }

    /// Puts the new subnet `s` of `vpc` in the VPC's default ACL.
    pub(crate) fn join_default_acl<R: Rng + ?Sized>(&mut self, s: &str, vpc: &str, rng: &mut R) {
        let n = self.default_acl(vpc, rng);
        let a = new_id(rng, "aclassoc");
        if let Some(acl) = self.acls.get_mut(&n) {
            acl.assoc.insert(s.to_string(), a);
        }
    }

    /// Takes the deleted subnet `s` out of its ACL.
    pub(crate) fn leave_acl(&mut self, s: &str) {
        for acl in self.acls.values_mut() {
            acl.assoc.remove(s);
        }
    }

    /// The ACL holding subnet `s` and the association's id. A subnet of
    /// a state saved before ACLs existed is in none: it joins its VPC's
    /// default now.
    fn holder_of<R: Rng + ?Sized>(&mut self, s: &str, rng: &mut R) -> Option<(String, String)> {
        let find = |region: &RegionState| {
            region
                .acls
                .iter()
                .find_map(|(n, acl)| acl.assoc.get(s).map(|a| (n.clone(), a.clone())))
        };
        if let Some(found) = find(self) {
            return Some(found);
        }
        let vpc = self.subnets.get(s)?.vpc.clone();
        self.join_default_acl(s, &vpc, rng);
        find(self)
    }
}

/// Applies one network-ACL action.
pub(crate) fn apply<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    match action {
        Action::CreateNetworkAcl { vpc, tags } => create(region, action, vpc, tags, call),
        Action::CreateNetworkAclEntry { network_acl, entry } => {
            put_entry(region, network_acl, entry, false)
        }
        Action::ReplaceNetworkAclEntry { network_acl, entry } => {
            put_entry(region, network_acl, entry, true)
        }
        Action::DeleteNetworkAclEntry {
            network_acl,
            egress,
            rule_number,
        } => delete_entry(region, network_acl, *egress, *rule_number),
        Action::ReplaceNetworkAclAssociation {
            subnet,
            network_acl,
        } => move_subnet(region, subnet, network_acl.as_ref(), call.rng),
        Action::DeleteNetworkAcl { network_acl } => delete(region, network_acl),
        _ => Err(misrouted(action)),
    }
}

fn create<R: Rng + ?Sized>(
    region: &mut RegionState,
    action: &Action,
    vpc: &CloudRef,
    tags: &Tags,
    call: Call<'_, R>,
) -> Result<Applied, CloudError> {
    let store = |region: &mut RegionState, rid: &str, meta, vpc| {
        region
            .acls
            .insert(rid.to_string(), Acl::new(meta, vpc, false));
    };
    region.create_in_vpc(action, (vpc, tags), ("acl", "network ACL"), call, store)
}

fn entry_not_found(number: u16, n: &str) -> CloudError {
    err(
        "InvalidNetworkAclEntry.NotFound",
        format!("The network acl entry identified by {number} does not exist in {n}"),
    )
}

/// CreateNetworkAclEntry (`replace` false) or ReplaceNetworkAclEntry.
fn put_entry(
    region: &mut RegionState,
    network_acl: &CloudRef,
    entry: &AclEntry,
    replace: bool,
) -> Result<Applied, CloudError> {
    let n = id(network_acl)?.to_string();
    if !RULE_NUMBERS.contains(&entry.rule_number) {
        return Err(err(
            "InvalidParameterValue",
            format!(
                "Value ({}) for parameter ruleNumber is invalid: it must be between 1 and 32766",
                entry.rule_number
            ),
        ));
    }
    let acl = region.acls.get_mut(&n).ok_or_else(|| not_found(KIND, &n))?;
    match (replace, acl.entry(entry.egress, entry.rule_number)) {
        (false, Some(_)) => {
            return Err(err(
                "NetworkAclEntryAlreadyExists",
                format!(
                    "The network acl entry identified by {} already exists.",
                    entry.rule_number
                ),
            ))
        }
        (true, None) => return Err(entry_not_found(entry.rule_number, &n)),
        (true, Some(i)) => acl.entries[i] = entry.clone(),
        (false, None) => acl.entries.push(entry.clone()),
    }
    let line = format!(
        "{} {}: {entry} in {n}",
        entry.direction(),
        entry.rule_number
    );
    Ok(Applied::mutated(changed(line), Some(n)))
}

fn delete_entry(
    region: &mut RegionState,
    network_acl: &CloudRef,
    egress: bool,
    number: u16,
) -> Result<Applied, CloudError> {
    let n = id(network_acl)?.to_string();
    let acl = region.acls.get_mut(&n).ok_or_else(|| not_found(KIND, &n))?;
    let i = acl
        .entry(egress, number)
        .filter(|_| number != LAST_RULE)
        .ok_or_else(|| entry_not_found(number, &n))?;
    let gone = acl.entries.remove(i);
    let line = format!("deleted {} {number} from {n}", gone.direction());
    Ok(Applied::mutated(changed(line), Some(n)))
}

/// Canon's `ReplaceNetworkAclAssociation`: EC2's call (see
/// [`replace_association`]) on the subnet's current association, into
/// `target` or (`None`) the VPC's default ACL. Done already if the subnet
/// is there, or, going back to the default, if it is gone.
fn move_subnet<R: Rng + ?Sized>(
    region: &mut RegionState,
    subnet: &CloudRef,
    target: Option<&CloudRef>,
    rng: &mut R,
) -> Result<Applied, CloudError> {
    let s = id(subnet)?.to_string();
    let Some((holder, association)) = region.holder_of(&s, rng) else {
        if target.is_none() {
            let why = format!("{s} is gone, and its association with it");
            return Ok(Applied::unchanged(Outcome::already_done(None, why), None));
        }
        return Err(not_found(ResourceKind::Subnet, &s));
    };
    let target = match target {
        Some(t) => id(t)?.to_string(),
        None => {
            let vpc = region.acl(&holder)?.vpc.clone();
            region.default_acl(&vpc, rng)
        }
    };
    if holder == target {
        let mut o = Outcome::already_done(None, format!("{s} is in {target} already"));
        o.association_id = Some(association);
        return Ok(Applied::unchanged(o, Some(target)));
    }
    replace_association(region, &association, &target, rng)
}

/// EC2's `ReplaceNetworkAclAssociation`: moves the subnet of association
/// `association` into ACL `target` (of the same VPC), under a new
/// association id.
fn replace_association<R: Rng + ?Sized>(
    region: &mut RegionState,
    association: &str,
    target: &str,
    rng: &mut R,
) -> Result<Applied, CloudError> {
    let found = region.acls.iter().find_map(|(n, acl)| {
        acl.assoc
            .iter()
            .find(|(_, a)| *a == association)
            .map(|(s, _)| (n.clone(), s.clone()))
    });
    let Some((holder, s)) = found else {
        return Err(err(
            "InvalidAssociationID.NotFound",
            format!("The association ID '{association}' does not exist"),
        ));
    };
    let target_vpc = region.acl(target)?.vpc.clone();
    if region.acl(&holder)?.vpc != target_vpc {
        return Err(err(
            "InvalidParameterValue",
            format!("Network ACL {target} and subnet {s} belong to different networks"),
        ));
    }
    let a = new_id(rng, "aclassoc");
    if let Some(acl) = region.acls.get_mut(&holder) {
        acl.assoc.remove(&s);
    }
    if let Some(acl) = region.acls.get_mut(target) {
        acl.assoc.insert(s.clone(), a.clone());
    }
    let mut o = changed(format!("moved {s} from {holder} to {target} ({a})"));
    o.association_id = Some(a);
    Ok(Applied::mutated(o, Some(target.to_string())))
}

fn delete(region: &mut RegionState, network_acl: &CloudRef) -> Result<Applied, CloudError> {
    let n = id(network_acl)?.to_string();
    let acl = region.acl(&n)?;
    if acl.default {
        return Err(err(
            "InvalidParameterValue",
            format!("cannot delete default network ACL {n}"),
        ));
    }
    if !acl.assoc.is_empty() {
        return Err(err(
            "DependencyViolation",
            format!("The networkAcl '{n}' has dependencies and cannot be deleted."),
        ));
    }
    region.acls.remove(&n);
    Ok(Applied::mutated(changed(format!("deleted {n}")), Some(n)))
}
