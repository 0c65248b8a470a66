//! A fresh look at the cloud for one process: its declaration decoded from
//! the composition, and an observation of every region it declares or
//! still holds something in. Dry
//! runs plan against it; `canon status ALIAS` looks its bound resources
//! up by id. Neither changes anything.

use std::collections::BTreeSet;

use canon_cloud::Scope;
use canon_model::{DesiredState, Fid, ObservedState, Region};
use canon_raft::state::ProcessRecord;
use canon_raft::Composition;
use tonic::Status;

use super::grpc_status::bad;
use super::Api;

impl Api {
    /// The declaration of process `fid` running `c`.
    pub(super) fn desired(&self, c: &Composition, fid: Fid) -> Result<DesiredState, Status> {
        (self.decoder)(c, fid).map_err(|e| bad(&format!("composition: {e}")))
    }

    /// Observes every region `desired` declares, in `account`: a process
    /// to be.
    pub(super) async fn observe(
        &self,
        account: &str,
        desired: &DesiredState,
    ) -> Result<ObservedState, Status> {
        let regions = desired.resources.values().map(|r| r.region.clone());
        self.observe_regions(account, regions.collect()).await
    }

    /// Observes everywhere process `p` declares (`desired`) or still holds
    /// something.
    pub(super) async fn observe_process(
        &self,
        p: &ProcessRecord,
        desired: &DesiredState,
    ) -> Result<ObservedState, Status> {
        self.observe_regions(&p.account, p.regions(desired)).await
    }

    /// What the cloud shows of the resources process `p` has bound (the
    /// only ones `canon status ALIAS` shows an observation of), looked up
    /// by id in each region it declares or holds something in: the cost
    /// of the process, not of the estate it shares a region with.
    pub(super) async fn observe_bound(
        &self,
        p: &ProcessRecord,
        desired: &DesiredState,
    ) -> Result<ObservedState, Status> {
        let mut merged = ObservedState::new();
        for region in p.regions(desired) {
            // A binding from before bindings named their region may be in
            // any of them.
            let ids: BTreeSet<String> = p
                .bindings
                .values()
                .filter(|b| b.region.as_ref().is_none_or(|r| *r == region))
                .map(|b| b.cloud_id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let scope = Scope {
                account: p.account.clone(),
                region,
            };
            let o = self
                .cloud
                .observe_ids(&scope, &ids)
                .await
                .map_err(|e| Status::unavailable(format!("observing {scope}: {e}")))?;
            merged.extend(o);
        }
        Ok(merged)
    }

    async fn observe_regions(
        &self,
        account: &str,
        regions: BTreeSet<Region>,
    ) -> Result<ObservedState, Status> {
        let mut merged = ObservedState::new();
        for region in regions {
            let scope = Scope {
                account: account.to_string(),
                region: region.clone(),
            };
            let o = self
                .cloud
                .observe(&scope)
                .await
                .map_err(|e| Status::unavailable(format!("observing {scope}: {e}")))?;
            merged.extend(o);
        }
        Ok(merged)
    }
}
