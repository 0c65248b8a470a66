//! `canon release ALIAS`: the process stops being managed and nothing is
//! deleted. The API marks it Releasing and starts its RELEASE job; the
//! process actor on the shard leader removes the ownership tag from every
//! resource it owns, forgets the bindings and marks it Released, which
//! frees its alias. A dry run lists what would be released (kind, cloud
//! id) from a fresh observation and changes nothing. Authorised by
//! `process.release`.

use canon_model::{releases, JobKind, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_trust::Action;
use serde_json::Value;
use tonic::Status;

use super::intake::{valid_alias, Caller};
use super::shard::Signer;
use super::Api;
use crate::views::summary;

impl Api {
    pub(super) async fn release(
        &self,
        by: Caller<'_>,
        alias: &str,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(alias)?;
        match self.release_live(by, alias).await {
            // Released before we could answer (a retry whose first answer
            // was lost): the outcome, not "not found".
            Err(e) if e.code() == tonic::Code::NotFound && !by.dry_run => {
                match self.finished_ending(alias, by.id, JobKind::Release).await? {
                    Some(reply) => Ok(reply),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn release_live(&self, by: Caller<'_>, alias: &str) -> Result<pb::CommandReply, Status> {
        let p = self.live_process(alias).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessRelease,
                Some(&p.account),
                Some(alias),
            )
            .await?;
        if by.dry_run {
            return self.dry_run_release(&p).await;
        }
        let door = by.door(Action::ProcessRelease, decided, None);
        let signer = Signer {
            principal: by.principal,
            door: &door,
        };
        let to = (ProcessState::Releasing, JobKind::Release);
        let message = "the conductor is releasing the process; nothing is deleted";
        self.enter_with_job(signer, by.id, &p, to, message).await
    }

    /// What releasing process `p` would let go of, from a fresh
    /// observation: each resource that carries its ownership tag.
    async fn dry_run_release(&self, p: &ProcessRecord) -> Result<pb::CommandReply, Status> {
        let desired = self.desired(&p.composition, p.fid)?;
        let observed = self.observe_process(p, &desired).await?;
        let released = releases(p.fid, &observed);
        let listed = Value::Array(released.iter().map(|r| r.to_json()).collect());
        Ok(pb::CommandReply {
            process: Some(summary(p, self.node.shard_count())),
            job: 0,
            plan_json: listed.to_string(),
            message: format!(
                "would release {} resource(s) of {}; nothing is deleted",
                released.len(),
                p.alias
            ),
            policy_version: 0,
            log_index: 0,
        })
    }
}
