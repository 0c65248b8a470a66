//! Which job a command started, and which command ids its proposals carry.
//! A command proposes more than once (the change, then its job); each
//! proposal's id is derived from the client's command id, so a retried
//! command re-proposes the same ids, gets the same job back, and a kill
//! finished before its answer arrived is still recognised as this one.

use canon_model::{Fid, JobKind};
use canon_proto::canon::api::v1 as pb;
use canon_raft::{group_of_alias, Command, CommandId, Consistency, Rejection, Response};
use tonic::Status;
use uuid::Uuid;

use super::grpc_status::{node_status, not_found, rejection_status};
use super::shard::Signer;
use super::Api;
use crate::views::summary;

/// How many times a job start is retried after an id collision.
const JOB_ID_ATTEMPTS: u64 = 8;

/// A command id derived from the client's, for the second proposal of a
/// command (so a retried command re-proposes the same ids).
pub(super) fn derived(id: Uuid, what: &str) -> CommandId {
    CommandId(Uuid::new_v5(&id, what.as_bytes()))
}

/// A job a command started, and the log index of its start (0: the
/// command did not start it, see [`Api::start_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Started {
    pub job: u64,
    pub index: u64,
}

impl Api {
    /// Starts a job of `kind`. Its id is the time of the command that
    /// caused it (the process's `updated_at`, set by the first proposal of
    /// this command), bumped on a collision with a job the scheduler started
    /// in the same millisecond: so a retried command (same command id)
    /// proposes the same ids and gets the same job back.
    pub(super) async fn start_job(
        &self,
        by: Signer<'_>,
        alias: &str,
        cmd: Uuid,
        fid: Fid,
        kind: JobKind,
    ) -> Result<Started, Status> {
        let base = match self.process(alias).await? {
            Some(p) if p.fid == fid => p.updated_at,
            _ => return Err(not_found(alias)),
        };
        for attempt in 0..JOB_ID_ATTEMPTS {
            let job = base + attempt;
            let id = derived(cmd, &format!("job-{attempt}"));
            let command = Command::JobStarted {
                fid,
                job,
                kind,
                message: String::new(),
            };
            let committed = self.propose(by, alias, id, command).await?;
            match committed.response {
                Response::Applied => {
                    let index = committed.index;
                    return Ok(Started { job, index });
                }
                Response::Rejected(Rejection::JobExists { .. }) => continue,
                // The scheduler starts a KILL (RELEASE) job for a Killing
                // (Releasing) process that has none; if it got there first,
                // that job is this command's.
                Response::Rejected(Rejection::JobBusy { busy, .. })
                    if matches!(kind, JobKind::Kill | JobKind::Release) =>
                {
                    let job = self.busy_job_of(alias, fid, busy, kind).await?;
                    return Ok(Started { job, index: 0 });
                }
                Response::Rejected(r) => return Err(rejection_status(r)),
            }
        }
        Err(Status::aborted("could not find a free job id; retry"))
    }

    /// Job `busy` blocked the start of a `kind` job (a kill's, a
    /// release's): if it is of that kind, it is this command's.
    async fn busy_job_of(
        &self,
        alias: &str,
        fid: Fid,
        busy: u64,
        kind: JobKind,
    ) -> Result<u64, Status> {
        let same = self
            .process(alias)
            .await?
            .and_then(|p| p.jobs.get(&busy).map(|j| j.kind == kind));
        if same == Some(true) {
            return Ok(busy);
        }
        Err(Status::failed_precondition(format!(
            "job {busy} of {fid} is still in progress"
        )))
    }

    /// If command `id` (a kill or a release of `alias`, whose job is of
    /// `kind`) was applied before, the reply it earned: the newest process
    /// of that alias no longer live, and its newest job of that kind.
    pub(super) async fn finished_ending(
        &self,
        alias: &str,
        id: Uuid,
        kind: JobKind,
    ) -> Result<Option<pb::CommandReply>, Status> {
        let message = match kind {
            JobKind::Release => "the conductor released the process; nothing was deleted",
            _ => "the conductor killed the process",
        };
        let group = group_of_alias(alias, self.node.shard_count());
        let ours: Vec<CommandId> = std::iter::once(CommandId(id))
            .chain((0..JOB_ID_ATTEMPTS).map(|a| derived(id, &format!("job-{a}"))))
            .collect();
        let shards = self.node.shard_count();
        let alias = alias.to_string();
        self.node
            .read(group, Consistency::Linearizable, move |s| {
                if !ours.iter().any(|c| s.answer_of(c).is_some()) {
                    return None;
                }
                let log_index = ours.iter().filter_map(|c| s.index_of(c)).max();
                let p = s
                    .processes
                    .values()
                    .filter(|p| p.alias == alias && !p.state.is_live())
                    .max_by_key(|p| p.updated_at)?;
                let job = p
                    .jobs
                    .values()
                    .filter(|j| j.kind == kind)
                    .map(|j| j.id)
                    .max()
                    .unwrap_or(0);
                Some(pb::CommandReply {
                    process: Some(summary(p, shards)),
                    job,
                    plan_json: String::new(),
                    message: message.into(),
                    policy_version: 0,
                    log_index: log_index.unwrap_or(0),
                })
            })
            .await
            .map_err(node_status)
    }
}
