//! Simulated tags, on any kind: EC2's limits (50 a resource, key and value
//! lengths, the reserved `aws:` prefix), checked on creates and on
//! `CreateTags` alike.

use std::collections::BTreeSet;

use canon_model::{Action, CloudRef, ResourceKind, Tags};

use crate::error::misrouted;
use crate::refs::id;
use crate::sim::region::{err, not_found_code, Applied, RegionState};
use crate::{CloudError, Outcome};

/// Refuses tags EC2 would refuse.
pub(crate) fn check_tags(tags: &Tags) -> Result<(), CloudError> {
    if tags.len() > 50 {
        return Err(err(
            "TagLimitExceeded",
            "The maximum number of tags (50) for a resource has been exceeded",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(err(
                "InvalidParameterValue",
                format!("Tag key or value has an invalid length: {k:?}"),
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(err(
                "InvalidParameterValue",
                format!("Tag keys starting with 'aws:' are reserved for internal use: {k:?}"),
            ));
        }
    }
    Ok(())
}

impl RegionState {
    /// The tags of any resource by id.
    pub fn tags_mut(&mut self, rid: &str) -> Result<&mut Tags, CloudError> {
        let t = if let Some(r) = self.dhcp.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.vpcs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.igws.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.eigws.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.eips.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.subnets.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.nats.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.pcxs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.rtbs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.vpces.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.acls.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.sgs.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.instances.get_mut(rid) {
            &mut r.meta.tags
        } else if let Some(r) = self.vols.get_mut(rid) {
            &mut r.meta.tags
        } else {
            let prefix = rid.split('-').next();
            let kind = ResourceKind::ALL
                .into_iter()
                .find(|k| prefix == Some(k.id_prefix()));
            let code = kind.map_or("InvalidID", not_found_code);
            return Err(err(code, format!("The ID '{rid}' does not exist")));
        };
        Ok(t)
    }
}

/// Applies one tag action.
pub(crate) fn apply(region: &mut RegionState, action: &Action) -> Result<Applied, CloudError> {
    match action {
        Action::CreateTags { resource, tags } => create(region, resource, tags),
        Action::DeleteTags { resource, keys } => delete(region, resource, keys),
        _ => Err(misrouted(action)),
    }
}

fn create(
    region: &mut RegionState,
    resource: &CloudRef,
    tags: &Tags,
) -> Result<Applied, CloudError> {
    let rid = id(resource)?.to_string();
    let t = region.tags_mut(&rid)?;
    let mut merged = t.clone();
    merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    check_tags(&merged)?;
    *t = merged;
    Ok(Applied::mutated(
        Outcome::changed(tags.iter().map(|(k, v)| format!("tagged {rid} {k}={v}"))),
        Some(rid),
    ))
}

fn delete(
    region: &mut RegionState,
    resource: &CloudRef,
    keys: &BTreeSet<String>,
) -> Result<Applied, CloudError> {
    let rid = id(resource)?.to_string();
    let t = region.tags_mut(&rid)?;
    for k in keys {
        t.remove(k);
    }
    Ok(Applied::mutated(
        Outcome::changed(keys.iter().map(|k| format!("untagged {rid} {k}"))),
        Some(rid),
    ))
}
