//! The commands that change a process (run, update, kill, suspend, resume):
//! each proposes its change to the alias's shard, starts the job the
//! conductor then carries out, and answers with the process as it now
//! stands. Intake hands commands here once they are checked.

use canon_model::{Fid, JobKind, ProcessState};
use canon_proto::canon::api::v1 as pb;
use canon_raft::{Command, CommandId};
use tonic::Status;
use uuid::Uuid;

use super::grpc_status::bad;
use super::intake::{composition_of, tick_interval, valid_alias};
use super::Api;
use crate::views::summary;

impl Api {
    /// The answer to a command that started job `job` (0: none).
    async fn reply_for(
        &self,
        alias: &str,
        job: u64,
        message: String,
    ) -> Result<pb::CommandReply, Status> {
        let p = self.process(alias).await?;
        Ok(pb::CommandReply {
            process: p.as_ref().map(|p| summary(p, self.node.shard_count())),
            job,
            plan_json: String::new(),
            message,
        })
    }

    pub(super) async fn run(
        &self,
        id: Uuid,
        dry_run: bool,
        run: pb::Run,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(&run.alias)?;
        let tick = tick_interval(run.tick_interval_ms)?;
        let fid = Fid(run.fid.parse().map_err(|_| bad("fid is not a UUID"))?);
        let composition = composition_of(run.composition)?;
        let account = self.account_of(&run.account);
        let desired = self.desired(&composition, fid)?;
        if dry_run {
            return self.dry_run_new(&run.alias, fid, &account, &desired).await;
        }
        self.propose_applied(
            &run.alias,
            CommandId(id),
            Command::ProcessCreated {
                fid,
                alias: run.alias.clone(),
                account,
                composition,
                tick_interval_ms: tick,
            },
        )
        .await?;
        let job = self.start_job(&run.alias, id, fid, JobKind::Run).await?;
        self.reply_for(&run.alias, job, "process created and running".into())
            .await
    }

    pub(super) async fn update(
        &self,
        id: Uuid,
        dry_run: bool,
        u: pb::Update,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(&u.alias)?;
        let tick = tick_interval(u.tick_interval_ms)?;
        let composition = composition_of(u.composition)?;
        let p = self.live_process(&u.alias).await?;
        let desired = self.desired(&composition, p.fid)?;
        if dry_run {
            return self.dry_run_update(&p, &desired).await;
        }
        self.propose_applied(
            &u.alias,
            CommandId(id),
            Command::ProcessUpdated {
                fid: p.fid,
                composition,
                tick_interval_ms: tick,
            },
        )
        .await?;
        let job = self.start_job(&u.alias, id, p.fid, JobKind::Update).await?;
        self.reply_for(&u.alias, job, "process updated".into())
            .await
    }

    pub(super) async fn kill(
        &self,
        id: Uuid,
        dry_run: bool,
        alias: &str,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(alias)?;
        match self.kill_live(id, dry_run, alias).await {
            // The conductor finished this kill before we could answer (a
            // retry whose first answer was lost, or a fast kill): the
            // outcome, not "not found".
            Err(e) if e.code() == tonic::Code::NotFound && !dry_run => {
                match self.finished_kill(alias, id).await? {
                    Some(reply) => Ok(reply),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn kill_live(
        &self,
        id: Uuid,
        dry_run: bool,
        alias: &str,
    ) -> Result<pb::CommandReply, Status> {
        let p = self.live_process(alias).await?;
        if dry_run {
            return self.dry_run_kill(&p).await;
        }
        if p.state != ProcessState::Killing {
            self.propose_applied(
                alias,
                CommandId(id),
                Command::ProcessStateChanged {
                    fid: p.fid,
                    state: ProcessState::Killing,
                },
            )
            .await?;
        }
        let job = self.start_job(alias, id, p.fid, JobKind::Kill).await?;
        self.reply_for(alias, job, "the conductor is killing the process".into())
            .await
    }

    /// Suspends or resumes `alias`.
    pub(super) async fn set_state(
        &self,
        id: Uuid,
        dry_run: bool,
        alias: &str,
        state: ProcessState,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(alias)?;
        let p = self.live_process(alias).await?;
        if dry_run {
            return Ok(self.dry_run_state(&p, state));
        }
        if p.state != state {
            self.propose_applied(
                alias,
                CommandId(id),
                Command::ProcessStateChanged { fid: p.fid, state },
            )
            .await?;
        }
        self.reply_for(alias, 0, format!("process is {state}"))
            .await
    }
}
