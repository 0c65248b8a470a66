//! The node's shared observer: one batched observation per account and
//! region per tick window, shared by every process actor on the node, with
//! concurrent requests coalesced into one call.
//!
//! This is what makes the cost of enforcement grow with the number of pages
//! of resources rather than the number of processes: a thousand actors that
//! tick within one window cause one observation of their scope. Looks at a
//! process's own ids go through it too, coalesced ([`IdLooks`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use canon_cloud::{Cloud, CloudError, Scope};
use canon_model::ObservedState;
use tokio::time::Instant;

use crate::id_looks::IdLooks;

/// An observation and when it was started.
#[derive(Clone)]
pub struct Observation {
    pub state: Arc<ObservedState>,
    /// When the describe calls began: everything done before this instant
    /// is reflected (up to the cloud's own consistency).
    pub started: Instant,
}

#[derive(Default)]
struct Slot {
    latest: Option<Observation>,
}

/// Shared, coalescing observer over one cloud.
pub struct SharedObserver {
    cloud: Arc<dyn Cloud>,
    slots: Mutex<HashMap<Scope, Arc<tokio::sync::Mutex<Slot>>>>,
    ids: Arc<IdLooks>,
}

impl SharedObserver {
    pub fn new(cloud: Arc<dyn Cloud>) -> Self {
        SharedObserver {
            ids: IdLooks::new(cloud.clone()),
            cloud,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.cloud
    }

    /// The resources among `ids` in `scope`, from a look started after
    /// this call and shared with the actors that asked meanwhile.
    pub async fn observe_ids(
        &self,
        scope: &Scope,
        ids: &BTreeSet<String>,
    ) -> Result<ObservedState, CloudError> {
        self.ids.observe_ids(scope, ids).await
    }

    /// An observation of `scope` started no earlier than `not_before`.
    ///
    /// If one exists it is returned at once; otherwise one observation is
    /// made, and every caller waiting meanwhile gets that same one.
    pub async fn observe(
        &self,
        scope: &Scope,
        not_before: Instant,
    ) -> Result<Observation, CloudError> {
        let slot = {
            // The map lock is held only to find the slot; a poisoned lock
            // means another thread panicked mid-insert, and the map is still
            // a valid map, so keep using it.
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(scope.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(o) = &slot.latest {
            if o.started >= not_before {
                return Ok(o.clone());
            }
        }
        let started = Instant::now();
        let state = self.cloud.observe(scope).await?;
        let o = Observation {
            state: Arc::new(state),
            started,
        };
        slot.latest = Some(o.clone());
        Ok(o)
    }
}
