//! What an executed request did.

use serde::{Deserialize, Serialize};

/// The result of one executed request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// For creates: the cloud id of the new (or already existing) resource.
    pub cloud_id: Option<String>,
    /// For route-table associations: the association id.
    pub association_id: Option<String>,
    /// True when the effect was already in place (a resource found by its
    /// ownership tag or client token, a rule already there or already gone).
    pub already_done: bool,
    /// What changed, one line each, for the job log.
    pub changes: Vec<String>,
    /// The cloud's ids of the calls made to carry the request out, in
    /// order (see `crate::request_ids`); empty where the cloud gave none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
}

impl Outcome {
    /// A request that changed what `changes` says.
    pub fn changed(changes: impl IntoIterator<Item = String>) -> Self {
        Outcome {
            changes: changes.into_iter().collect(),
            ..Outcome::default()
        }
    }

    /// A create that made `cloud_id`.
    pub fn created(cloud_id: impl Into<String>, what: impl Into<String>) -> Self {
        let cloud_id = cloud_id.into();
        Outcome {
            changes: vec![format!("created {} {cloud_id}", what.into())],
            cloud_id: Some(cloud_id),
            ..Outcome::default()
        }
    }

    /// A request whose effect was already in place.
    pub fn already_done(cloud_id: Option<String>, why: impl Into<String>) -> Self {
        Outcome {
            cloud_id,
            already_done: true,
            changes: vec![why.into()],
            ..Outcome::default()
        }
    }
}
