//! Idempotent creates (decision 0005), written once for both clouds: the
//! client tokens of creates, derived from the job and the logical id so
//! that a job re-run after a crash (by this or a new leader) sends the same
//! token and EC2 returns the first result instead of a duplicate; and, for
//! kinds without client tokens, the ownership-tag look-up before a create.

use std::collections::{BTreeMap, BTreeSet};

use canon_model::{Action, Request, ResourceKind, Tags, OWNERSHIP_TAG};
use sha2::{Digest, Sha256};

use crate::Outcome;

/// EC2 accepts client tokens of up to 64 ASCII characters.
const MAX_TOKEN: usize = 64;

/// The client token of `request` in job `job_id`: a hash of the job, the
/// request's guid (logical id and part) and its request type.
pub fn client_token(job_id: &str, request: &Request) -> String {
    let mut h = Sha256::new();
    h.update(job_id.as_bytes());
    h.update([0]);
    h.update(request.guid().as_bytes());
    h.update([0]);
    h.update(request.request_type().as_bytes());
    let mut token = hex::encode(h.finalize());
    token.truncate(MAX_TOKEN);
    token
}

/// Whether EC2 takes a client token when creating `kind`. For the others,
/// the adapter looks for the ownership tag before creating.
pub fn has_client_token(kind: ResourceKind) -> bool {
    matches!(
        kind,
        ResourceKind::EgressOnlyInternetGateway
            | ResourceKind::RouteTable
            | ResourceKind::VpcEndpoint
            | ResourceKind::NetworkAcl
            | ResourceKind::Instance
            | ResourceKind::Volume
    )
}

/// The tags a create carries (its ownership tag among them).
fn create_tags(action: &Action) -> Option<&Tags> {
    match action {
        Action::CreateDhcpOptions { tags, .. }
        | Action::CreateVpc { tags, .. }
        | Action::CreateInternetGateway { tags }
        | Action::CreateEgressOnlyInternetGateway { tags, .. }
        | Action::AllocateAddress { tags }
        | Action::CreateSubnet { tags, .. }
        | Action::CreateNatGateway { tags, .. }
        | Action::CreateVpcPeeringConnection { tags, .. }
        | Action::CreateRouteTable { tags, .. }
        | Action::CreateVpcEndpoint { tags, .. }
        | Action::CreateNetworkAcl { tags, .. }
        | Action::CreateSecurityGroup { tags, .. }
        | Action::RunInstances { tags, .. }
        | Action::CreateVolume { tags, .. } => Some(tags),
        _ => None,
    }
}

/// What to look for before sending `action`, if it creates a kind without
/// client tokens: the kind, and the logical id its ownership tag names.
/// A resource of that kind carrying that tag is the create's result
/// already.
pub fn owner_to_find(action: &Action) -> Option<(ResourceKind, &str)> {
    let kind = action.creates().filter(|k| !has_client_token(*k))?;
    let owner = create_tags(action)?.get(OWNERSHIP_TAG)?;
    Some((kind, owner))
}

/// What one look-up before a pass's creates found: for each kind looked
/// up, which of the owners asked about already have a resource (and its
/// id). A create whose kind was looked up needs no look-up of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OwnedLookups {
    /// The (kind, owner) pairs asked about.
    asked: BTreeSet<(ResourceKind, String)>,
    /// The ones found, with the resource's id.
    found: BTreeMap<(ResourceKind, String), String>,
}

impl OwnedLookups {
    /// Records the answer for `owners` of `kind`: `pairs` (owner, id).
    pub fn record(&mut self, kind: ResourceKind, owners: &[String], pairs: Vec<(String, String)>) {
        for o in owners {
            self.asked.insert((kind, o.clone()));
        }
        for (owner, id) in pairs {
            self.found.entry((kind, owner)).or_insert(id);
        }
    }

    /// The answer for a create of `kind` owned by `owner`: `None` if it
    /// was not asked about, `Some(None)` if nothing carries the tag,
    /// `Some(Some(id))` if `id` does.
    pub fn answer(&self, kind: ResourceKind, owner: &str) -> Option<Option<&str>> {
        let key = (kind, owner.to_string());
        self.asked
            .contains(&key)
            .then(|| self.found.get(&key).map(String::as_str))
    }

    /// How many owners were asked about.
    pub fn len(&self) -> usize {
        self.asked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }
}

/// The outcome of a create whose look-up found `existing`.
pub fn found_owned(kind: ResourceKind, existing: String, owner: &str) -> Outcome {
    let why = format!("{kind} {existing} already carries {OWNERSHIP_TAG}={owner}");
    Outcome::already_done(Some(existing), why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_model::{Action, Fid, LogicalId, Region, Tags};

    #[test]
    fn tokens_are_stable_per_job_and_target() {
        let fid = Fid::random();
        let req = |path: &str| Request {
            target: LogicalId::new(fid, path),
            part: None,
            region: Region::new("us-west-2"),
            action: Action::CreateInternetGateway { tags: Tags::new() },
        };
        let a = client_token("job-1", &req("igw"));
        assert_eq!(a, client_token("job-1", &req("igw")));
        assert_ne!(a, client_token("job-2", &req("igw")));
        assert_ne!(a, client_token("job-1", &req("igw2")));
        assert_eq!(a.len(), 64);
        assert!(has_client_token(ResourceKind::Instance));
        assert!(!has_client_token(ResourceKind::SecurityGroup));
    }
}
