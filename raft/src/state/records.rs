//! The rules of what a process records about the cloud: bindings (a
//! declared resource's cloud id) and drift events (found, then healed).
//! Called by [`CanonState::apply`](super::CanonState::apply) for the
//! `Binding*` and `Drift*` commands.

use canon_model::{DetectedBy, DriftEvent, Fid, LogicalId, Region, ResourceKind, UnixMillis};

use super::{Binding, CanonState};
use crate::command::Rejection;

/// A `DriftOpened` command's fields, borrowed from it.
pub(super) struct OpenedDrift<'a> {
    pub fid: Fid,
    pub drift: u64,
    pub resource: LogicalId,
    pub kind: ResourceKind,
    pub cloud_id: &'a Option<String>,
    pub property: &'a String,
    pub declared: &'a Option<String>,
    pub observed: &'a Option<String>,
    pub violates: &'a [String],
    pub detected_by: DetectedBy,
}

impl CanonState {
    /// `BindingSet`: binds a live process's declared resource to a cloud
    /// resource (replacing an earlier binding of it).
    pub(super) fn set_binding(
        &mut self,
        at: UnixMillis,
        resource: LogicalId,
        kind: ResourceKind,
        cloud_id: &str,
        region: Option<&Region>,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&resource.fid)?;
        let before = p.bindings.insert(
            resource,
            Binding {
                resource,
                kind,
                cloud_id: cloud_id.to_string(),
                since: at,
                region: region.cloned(),
            },
        );
        if let Some(b) = before {
            self.bound.unbind(&b.cloud_id, resource);
        }
        self.bound.bind(cloud_id, resource);
        Ok(())
    }

    /// `BindingCleared`: the declared resource no longer has a cloud one.
    pub(super) fn clear_binding(&mut self, resource: LogicalId) -> Result<(), Rejection> {
        let p = self.get_mut(&resource.fid)?;
        let b = p
            .bindings
            .remove(&resource)
            .ok_or(Rejection::UnknownBinding(resource))?;
        self.bound.unbind(&b.cloud_id, resource);
        Ok(())
    }

    /// `DriftOpened`: drift found on a live process (each id once).
    pub(super) fn open_drift(
        &mut self,
        at: UnixMillis,
        d: OpenedDrift<'_>,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&d.fid)?;
        if p.drift.contains_key(&d.drift) {
            return Err(Rejection::DriftExists {
                fid: d.fid,
                drift: d.drift,
            });
        }
        p.drift.insert(
            d.drift,
            DriftEvent {
                id: d.drift,
                fid: d.fid,
                resource: d.resource,
                kind: d.kind,
                cloud_id: d.cloud_id.clone(),
                property: d.property.clone(),
                declared: d.declared.clone(),
                observed: d.observed.clone(),
                detected_at: at,
                healed_at: None,
                violates: d.violates.to_vec(),
                detected_by: d.detected_by.clone(),
            },
        );
        // The look an event asked for found this.
        if d.detected_by != DetectedBy::Tick {
            p.suspected = None;
            p.suspected_by = None;
        }
        Ok(())
    }

    /// `DriftSuspected`: an event named a resource of a live process;
    /// the earliest such event not yet looked into is kept.
    pub(super) fn suspect_drift(
        &mut self,
        fid: Fid,
        event_at: UnixMillis,
        by: Option<&str>,
    ) -> Result<(), Rejection> {
        let p = self.live_mut(&fid)?;
        if p.suspected.is_none_or(|s| event_at < s) {
            p.suspected = Some(event_at);
            p.suspected_by = by.map(str::to_string);
        }
        Ok(())
    }

    /// `SuspicionCleared`: the look found nothing.
    pub(super) fn clear_suspicion(&mut self, fid: Fid) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        p.suspected = None;
        p.suspected_by = None;
        Ok(())
    }

    /// `DriftHealed`: the heal of an open drift event finished.
    pub(super) fn heal_drift(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        drift: u64,
    ) -> Result<(), Rejection> {
        let p = self.get_mut(&fid)?;
        let d = p
            .drift
            .get_mut(&drift)
            .ok_or(Rejection::UnknownDrift { fid, drift })?;
        if d.healed_at.is_some() {
            return Err(Rejection::AlreadyHealed { fid, drift });
        }
        d.healed_at = Some(at);
        Ok(())
    }
}
