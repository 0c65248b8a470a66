//! Release (`canon release ALIAS`): a process lets go of what it owns
//! without deleting anything. Every resource the cloud shows with the
//! process's ownership tag loses that tag, one `DeleteTags` each; nothing
//! else about it changes. Untagged, it is no process's: no plan touches it
//! again (plans touch only what their process owns or has bound), and
//! another process may import it.
//!
//! Like the planner, this is a pure function of an observation: a pass
//! after a partial release (a new leader, a failed call) finds only the
//! resources still tagged and releases those.

use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    Action, CloudRef, Fid, LogicalId, ObservedState, Plan, Region, Request, ResourceKind,
    OWNERSHIP_TAG,
};

/// One resource a release lets go of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Released {
    /// The logical id its ownership tag names.
    pub resource: LogicalId,
    pub kind: ResourceKind,
    pub cloud_id: String,
    pub region: Region,
}

impl Released {
    /// The one request that releases it: its ownership tag deleted.
    pub fn request(&self) -> Request {
        Request {
            target: self.resource,
            part: Some("release".into()),
            region: self.region.clone(),
            action: Action::DeleteTags {
                resource: CloudRef::Id(self.cloud_id.clone()),
                keys: [OWNERSHIP_TAG.to_string()].into_iter().collect(),
            },
        }
    }

    /// As a dry run lists it: kind, cloud id, logical id, region.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.to_string(),
            "cloud_id": self.cloud_id,
            "logical_id": self.resource.to_string(),
            "region": self.region.to_string(),
        })
    }
}

/// What releasing process `fid` lets go of: every resource `observed`
/// shows with its ownership tag, in cloud-id order.
pub fn releases(fid: Fid, observed: &ObservedState) -> Vec<Released> {
    observed
        .owned_by(fid)
        .filter_map(|r| {
            Some(Released {
                resource: r.owner()?,
                kind: r.kind(),
                cloud_id: r.cloud_id.clone(),
                region: r.region.clone(),
            })
        })
        .collect()
}

/// The requests that release process `fid`, as a plan (no differences,
/// adoptions or waits): empty once nothing carries its tag.
pub fn release_plan(fid: Fid, observed: &ObservedState) -> Plan {
    Plan {
        requests: releases(fid, observed)
            .iter()
            .map(Released::request)
            .collect(),
        ..Plan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    #[test]
    fn only_the_processs_own_resources_lose_their_tag() {
        let (mine, theirs) = (Fid::random(), Fid::random());
        let mut observed = ObservedState::new();
        observed.insert(demo::owned_web_group("sg-2", LogicalId::new(mine, "b")));
        observed.insert(demo::owned_web_group("sg-1", LogicalId::new(mine, "a")));
        observed.insert(demo::owned_web_group("sg-3", LogicalId::new(theirs, "a")));
        let plan = release_plan(mine, &observed);
        let touched: Vec<String> = plan
            .requests
            .iter()
            .map(|r| match &r.action {
                Action::DeleteTags { resource, keys } => {
                    assert_eq!(keys.iter().collect::<Vec<_>>(), vec![OWNERSHIP_TAG]);
                    resource.to_string()
                }
                other => panic!("a release only deletes tags: {other:?}"),
            })
            .collect();
        assert_eq!(touched, vec!["sg-1", "sg-2"]);
        assert!(plan.differences.is_empty() && plan.adoptions.is_empty());
        let listed = releases(mine, &observed);
        assert_eq!(listed[0].kind, ResourceKind::SecurityGroup);
        assert_eq!(listed[0].to_json()["cloud_id"], "sg-1");
        assert!(release_plan(Fid::random(), &observed).is_empty());
    }
}
