//! The commands that change a process (run, update, kill, suspend, resume):
//! each proposes its change to the alias's shard, starts the job the
//! conductor then carries out, and answers with the process as it now
//! stands. Intake hands commands here once they are checked.

use canon_model::{Fid, JobKind, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{Command, CommandId};
use canon_trust::Action;
use tonic::Status;

use super::grpc_status::bad;
use super::intake::{composition_of, tick_interval, valid_alias, Caller};
use super::job_ids::Started;
use super::properties::refuse_if_locked;
use super::shard::Signer;
use super::Api;
use crate::views::summary;

impl Api {
    /// The answer to a command that started job `started.job` (0: none)
    /// after committing its change at `index` (0: none).
    pub(super) async fn reply_for(
        &self,
        alias: &str,
        (started, index): (Started, u64),
        message: String,
    ) -> Result<pb::CommandReply, Status> {
        let p = self.process_or_gone(alias).await?;
        Ok(pb::CommandReply {
            process: p.as_ref().map(|p| summary(p, self.node.shard_count())),
            job: started.job,
            plan_json: String::new(),
            message,
            policy_version: 0,
            log_index: started.index.max(index),
        })
    }

    pub(super) async fn run(
        &self,
        by: Caller<'_>,
        run: pb::Run,
    ) -> Result<pb::CommandReply, Status> {
        let (id, dry_run) = (by.id, by.dry_run);
        valid_alias(&run.alias)?;
        let tick = tick_interval(run.tick_interval_ms)?;
        let fid = Fid(run.fid.parse().map_err(|_| bad("fid is not a UUID"))?);
        let composition = composition_of(run.composition)?;
        let account = self.checked_account(&run.account).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessRun,
                Some(&account),
                Some(&run.alias),
            )
            .await?;
        let desired = self.desired(&composition, fid)?;
        self.validate(&composition).await?;
        let imported = match run.import {
            true => Some(self.find_imports(&account, &desired).await?),
            false => None,
        };
        if dry_run {
            return match &imported {
                Some(found) => self.dry_run_import(&account, &desired, found).await,
                None => self.dry_run_new(&run.alias, fid, &account, &desired).await,
            };
        }
        let door = by.door(Action::ProcessRun, decided, regions(&desired));
        let signer = Signer {
            principal: by.principal,
            door: &door,
        };
        let created = Command::ProcessCreated {
            imports: imported.map(|f| f.plan.mapping()).unwrap_or_default(),
            fid,
            alias: run.alias.clone(),
            account,
            composition,
            tick_interval_ms: tick,
        };
        let index = self
            .propose_applied(signer, &run.alias, CommandId(id), created)
            .await?;
        let job = self
            .start_job(signer, &run.alias, id, fid, JobKind::Run)
            .await?;
        let message = "process created and running".into();
        self.reply_for(&run.alias, (job, index), message).await
    }

    pub(super) async fn update(
        &self,
        by: Caller<'_>,
        u: pb::Update,
    ) -> Result<pb::CommandReply, Status> {
        let (id, dry_run) = (by.id, by.dry_run);
        valid_alias(&u.alias)?;
        let tick = tick_interval(u.tick_interval_ms)?;
        let composition = composition_of(u.composition)?;
        let p = self.live_process(&u.alias).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessUpdate,
                Some(&p.account),
                Some(&u.alias),
            )
            .await?;
        refuse_if_locked(&p, "update")?;
        let desired = self.desired(&composition, p.fid)?;
        self.validate(&composition).await?;
        if dry_run {
            return self.dry_run_update(&p, &desired).await;
        }
        let door = by.door(Action::ProcessUpdate, decided, regions(&desired));
        let signer = Signer {
            principal: by.principal,
            door: &door,
        };
        let updated = Command::ProcessUpdated {
            fid: p.fid,
            composition,
            tick_interval_ms: tick,
        };
        let index = self
            .propose_applied(signer, &u.alias, CommandId(id), updated)
            .await?;
        let job = self
            .start_job(signer, &u.alias, id, p.fid, JobKind::Update)
            .await?;
        self.reply_for(&u.alias, (job, index), "process updated".into())
            .await
    }

    pub(super) async fn kill(
        &self,
        by: Caller<'_>,
        alias: &str,
    ) -> Result<pb::CommandReply, Status> {
        let (id, dry_run) = (by.id, by.dry_run);
        valid_alias(alias)?;
        match self.kill_live(by, alias).await {
            // The conductor finished this kill before we could answer (a
            // retry whose first answer was lost, or a fast kill): the
            // outcome, not "not found".
            Err(e) if e.code() == tonic::Code::NotFound && !dry_run => {
                match self.finished_ending(alias, id, JobKind::Kill).await? {
                    Some(reply) => Ok(reply),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn kill_live(&self, by: Caller<'_>, alias: &str) -> Result<pb::CommandReply, Status> {
        let (id, dry_run) = (by.id, by.dry_run);
        let p = self.live_process(alias).await?;
        let decided = self
            .authorise(
                by.asker(),
                Action::ProcessKill,
                Some(&p.account),
                Some(alias),
            )
            .await?;
        refuse_if_locked(&p, "kill")?;
        if dry_run {
            return self.dry_run_kill(&p).await;
        }
        let door = by.door(Action::ProcessKill, decided, None);
        let signer = Signer {
            principal: by.principal,
            door: &door,
        };
        let to = (ProcessState::Killing, JobKind::Kill);
        let message = "the conductor is killing the process";
        self.enter_with_job(signer, id, &p, to, message).await
    }

    /// Moves `p` into `state` (unless it is there already: a retried
    /// command) and starts its `kind` job, both sent by `signer` under
    /// command `id`; answers with `message`. A kill and a release.
    pub(super) async fn enter_with_job(
        &self,
        signer: Signer<'_>,
        id: uuid::Uuid,
        p: &ProcessRecord,
        (state, kind): (ProcessState, JobKind),
        message: &str,
    ) -> Result<pb::CommandReply, Status> {
        let alias = p.alias.as_str();
        let mut index = 0;
        if p.state != state {
            let entered = Command::ProcessStateChanged { fid: p.fid, state };
            index = self
                .propose_applied(signer, alias, CommandId(id), entered)
                .await?;
        }
        let job = self.start_job(signer, alias, id, p.fid, kind).await?;
        self.reply_for(alias, (job, index), message.to_string())
            .await
    }

    /// Suspends or resumes `alias`.
    pub(super) async fn set_state(
        &self,
        by: Caller<'_>,
        alias: &str,
        state: ProcessState,
    ) -> Result<pb::CommandReply, Status> {
        let (id, dry_run) = (by.id, by.dry_run);
        valid_alias(alias)?;
        let p = self.live_process(alias).await?;
        let action = if state == ProcessState::Suspended {
            Action::ProcessSuspend
        } else {
            Action::ProcessResume
        };
        let decided = self
            .authorise(by.asker(), action, Some(&p.account), Some(alias))
            .await?;
        if dry_run {
            return Ok(self.dry_run_state(&p, state));
        }
        let door = by.door(action, decided, None);
        let mut index = 0;
        if p.state != state {
            let signer = Signer {
                principal: by.principal,
                door: &door,
            };
            let changed = Command::ProcessStateChanged { fid: p.fid, state };
            index = self
                .propose_applied(signer, alias, CommandId(id), changed)
                .await?;
        }
        let none = Started { job: 0, index: 0 };
        self.reply_for(alias, (none, index), format!("process is {state}"))
            .await
    }
}

/// The regions a declaration's resources are in, for the audit record
/// (`us-east-1`, or `eu-west-1,us-east-1`); none for an empty one.
fn regions(desired: &canon_model::DesiredState) -> Option<String> {
    let set: std::collections::BTreeSet<String> = desired
        .resources
        .values()
        .map(|r| r.region.to_string())
        .collect();
    (!set.is_empty()).then(|| set.into_iter().collect::<Vec<_>>().join(","))
}
