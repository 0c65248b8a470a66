//! `canon run --import`: before a run is proposed, which existing cloud
//! resource each declaration adopts (`canon_cloud::import::find`). A
//! refusal (two candidates, another process's resource, a kind without
//! identity) answers FAILED_PRECONDITION with every reason, the owner
//! named by its alias, and nothing is proposed or tagged. A dry run
//! answers with the mapping and the plan made against the cloud as it will
//! be once the adopted resources carry the process's tag. What another
//! live process's import adopts and has not tagged yet is refused too (the
//! log shows that claim before the cloud does).

use std::collections::BTreeMap;

use canon_cloud::import::{find, Found, ImportFailure};
use canon_model::import::{as_adopted, ImportError};
use canon_model::{plan, Bindings, DesiredState};
use canon_proto::canon::api::v1 as pb;
use canon_scheduler::reconcile::adopting;
use serde_json::json;
use tonic::Status;

use super::Api;

impl Api {
    /// What importing `desired` in `account` adopts, or why it cannot.
    pub(super) async fn find_imports(
        &self,
        account: &str,
        desired: &DesiredState,
    ) -> Result<Found, Status> {
        match find(self.cloud.as_ref(), account, desired).await {
            Ok(found) => {
                self.unclaimed(&found).await?;
                Ok(found)
            }
            Err(ImportFailure::Cloud(e)) => Err(Status::unavailable(format!(
                "import: asking the cloud for candidates: {e}"
            ))),
            Err(ImportFailure::Refused(reasons)) => {
                let owners = self.every_summary(true).await.unwrap_or_default();
                let said: Vec<String> = reasons
                    .iter()
                    .map(|r| match r {
                        ImportError::Owned {
                            resource,
                            cloud_id,
                            owner,
                        } => {
                            let fid = owner.to_string();
                            let alias = owners
                                .iter()
                                .find(|p| p.fid == fid)
                                .map_or(fid.clone(), |p| p.alias.clone());
                            format!("{resource}: {cloud_id} is owned by process {alias}")
                        }
                        other => other.to_string(),
                    })
                    .collect();
                Err(Status::failed_precondition(format!(
                    "import refused, nothing adopted: {}",
                    said.join("; ")
                )))
            }
        }
    }

    /// Refuses an import of what another live process's import adopts
    /// and has not tagged yet (its RUN job in progress): the cloud does not
    /// show that claim, the log does.
    async fn unclaimed(&self, found: &Found) -> Result<(), Status> {
        let wanted: BTreeMap<&str, &str> = found
            .plan
            .adopted
            .iter()
            .map(|a| (a.cloud_id.as_str(), a.name.as_str()))
            .collect();
        let claims = self
            .each_process(|p| {
                let pending = p
                    .imports
                    .iter()
                    .filter(|(l, _)| adopting(p) && !p.bindings.contains_key(l))
                    .filter_map(|(_, id)| wanted.get(id.as_str()).map(|name| (*name, id.clone())));
                let said: Vec<String> = pending
                    .map(|(name, id)| {
                        format!("{name}: {id} is being adopted by process {}", p.alias)
                    })
                    .collect();
                (!said.is_empty()).then_some(said)
            })
            .await?;
        let claims: Vec<String> = claims.into_iter().flatten().collect();
        if claims.is_empty() {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "import refused, nothing adopted: {}",
            claims.join("; ")
        )))
    }

    /// A dry run of an import: per declaration what it adopts (or that it
    /// is created), then the requests: the adopting tags, and the changes
    /// that bring the adopted resources to the declaration.
    pub(super) async fn dry_run_import(
        &self,
        account: &str,
        desired: &DesiredState,
        found: &Found,
    ) -> Result<pb::CommandReply, Status> {
        let observed = self.observe(account, desired).await?;
        let planned = plan(
            desired,
            &as_adopted(&observed, &found.adopted),
            &Bindings::new(),
        );
        let mut requests: Vec<serde_json::Value> = found
            .plan
            .adopted
            .iter()
            .map(|a| a.request().to_json())
            .collect();
        requests.extend(planned.requests.iter().map(|r| r.to_json()));
        Ok(pb::CommandReply {
            process: None,
            job: 0,
            plan_json: json!({"import": found.plan.to_json(), "requests": requests}).to_string(),
            message: format!(
                "{} adopted, {} created, {} requests",
                found.plan.adopted.len(),
                found.plan.created.len(),
                requests.len()
            ),
            policy_version: 0,
            log_index: 0,
        })
    }
}
