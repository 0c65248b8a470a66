//! The client API (`canon.api.v1.Canon`): any node accepts any request.
//! Commands are checked at the door ([`crate::envelope`]), then proposed to
//! the shard that owns the alias (the Raft node forwards to its leader) and
//! answered after commit. Dry runs are planned here, against a fresh
//! observation of the cloud, and change nothing.

use std::sync::Arc;

use canon_cloud::{Cloud, Scope};
use canon_model::{
    plan, plan_kill, Bindings, DesiredState, Fid, JobKind, JobStatus, ObservedState, ProcessState,
    Region,
};
use canon_proto::canon::api::v1 as pb;
use canon_raft::state::ProcessRecord;
use canon_raft::{
    group_of_alias, Command, CommandId, Composition, Consistency, NodeError, RaftNode, Rejection,
    Request, Response,
};
use canon_scheduler::Decoder;
use prost::Message;
use tonic::{Request as TRequest, Response as TResponse, Status};
use uuid::Uuid;

use crate::cluster::PeerDialer;
use crate::envelope::{EnvelopeError, EnvelopeVerifier};
use crate::now_ms;

/// How many times a job start is retried after an id collision.
const JOB_ID_ATTEMPTS: u64 = 8;

/// Everything the API needs from its node.
#[derive(Clone)]
pub struct Api {
    pub node: RaftNode,
    pub cloud: Arc<dyn Cloud>,
    pub verifier: Arc<EnvelopeVerifier>,
    pub decoder: Decoder,
    /// The account of processes whose command names none.
    pub account: String,
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// Reaches other nodes' client API (cluster status asks every member).
    pub peers: PeerDialer,
    /// Replicas per shard when a node joins.
    pub replicas: usize,
    /// Refuse reads (Status, History, Events) without a valid read token;
    /// when false, unsigned reads pass and signed ones are still checked.
    pub signed_reads: bool,
}

impl Api {
    /// The API of `node`, reaching peers over TCP; change [`Api::peers`]
    /// to reach them otherwise (a simulated network).
    pub fn new(
        node: RaftNode,
        cloud: Arc<dyn Cloud>,
        verifier: Arc<EnvelopeVerifier>,
        account: String,
        metrics: Arc<crate::metrics::ApiMetrics>,
    ) -> Api {
        Api {
            node,
            cloud,
            verifier,
            decoder: crate::server::decoder(),
            account,
            metrics,
            peers: crate::cluster::tcp_dialer(),
            replicas: canon_raft::placement::DEFAULT_REPLICAS,
            signed_reads: false,
        }
    }

    /// Checks a read's token (see [`crate::envelope`]).
    fn check_read<T: Message>(&self, request: &TRequest<T>, method: &str) -> Result<(), Status> {
        use crate::envelope::{READ_SIGNATURE, READ_TIMESTAMP, READ_USER};
        let md = request.metadata();
        let text = |key: &str| md.get(key).and_then(|v| v.to_str().ok());
        let Some(user) = text(READ_USER) else {
            if self.signed_reads {
                self.metrics.refused();
                return Err(Status::unauthenticated(
                    "this cluster requires signed reads: use a client with the user's key",
                ));
            }
            return Ok(());
        };
        let timestamp: u64 = text(READ_TIMESTAMP)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid timestamp"))?;
        let signature = text(READ_SIGNATURE)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| Status::unauthenticated("the read token has no valid signature"))?;
        self.verifier
            .verify_read(
                user,
                timestamp,
                method,
                &request.get_ref().encode_to_vec(),
                &signature,
                now_ms(),
            )
            .map_err(|e| {
                self.metrics.refused();
                envelope_status(e)
            })
    }

    /// Checks a command envelope (see [`crate::envelope`]) and decodes
    /// the command inside.
    fn open_envelope(&self, env: pb::SignedEnvelope) -> Result<pb::Command, Status> {
        self.verifier
            .verify(
                &env.user,
                &env.nonce,
                env.timestamp_ms,
                &env.command,
                &env.signature,
                now_ms(),
            )
            .map_err(|e| {
                self.metrics.refused();
                envelope_status(e)
            })?;
        let cmd = pb::Command::decode(env.command.as_slice())
            .map_err(|e| bad(&format!("the command does not decode: {e}")))?;
        tracing::info!(user = %env.user, command_id = %cmd.command_id, dry_run = cmd.dry_run, "command");
        Ok(cmd)
    }

    /// The tonic service.
    pub fn into_server(self) -> pb::canon_server::CanonServer<Api> {
        pb::canon_server::CanonServer::new(self)
    }
}

fn envelope_status(e: EnvelopeError) -> Status {
    match e {
        EnvelopeError::Stale { .. } | EnvelopeError::Replayed | EnvelopeError::BadNonce => {
            Status::failed_precondition(e.to_string())
        }
        _ => Status::unauthenticated(e.to_string()),
    }
}

fn node_status(e: NodeError) -> Status {
    match e {
        NodeError::NoLeader { .. } | NodeError::Stopped => Status::unavailable(e.to_string()),
        NodeError::UnknownGroup(_) => Status::internal(e.to_string()),
        other => Status::unavailable(other.to_string()),
    }
}

fn rejection_status(r: Rejection) -> Status {
    match &r {
        Rejection::AliasTaken { .. } | Rejection::ProcessExists(_) => {
            Status::already_exists(r.to_string())
        }
        Rejection::UnknownProcess(_) => Status::not_found(r.to_string()),
        // The process was killed between the look-up and the commit: it is
        // gone (its alias free) as it would have been had the command come
        // a moment later, so the answer is the same as then.
        Rejection::BadTransition {
            from: ProcessState::Killed,
            ..
        }
        | Rejection::NotLive {
            state: ProcessState::Killed,
            ..
        } => Status::not_found(format!("{r}: it was killed")),
        _ => Status::failed_precondition(r.to_string()),
    }
}

fn not_found(alias: &str) -> Status {
    Status::not_found(format!("no process with alias {alias:?}"))
}

fn bad(what: &str) -> Status {
    Status::invalid_argument(what.to_string())
}

/// The summary row of a process (`canon status`).
pub fn summary(p: &ProcessRecord, shards: u32) -> pb::ProcessSummary {
    let newest = p
        .jobs
        .values()
        .filter(|j| j.kind != JobKind::System || j.status == JobStatus::Failed)
        .max_by_key(|j| (j.started, j.id));
    let last_message = match newest {
        None => String::new(),
        Some(j) => match j.status {
            JobStatus::Succeeded => "SUCCESS".to_string(),
            JobStatus::InProgress => format!("{} IN PROGRESS", j.kind),
            JobStatus::Failed => format!("FAILED: {}", j.message),
        },
    };
    pb::ProcessSummary {
        fid: p.fid.to_string(),
        alias: p.alias.clone(),
        account: p.account.clone(),
        state: p.state.to_string(),
        created_ms: p.created_at,
        updated_ms: p.updated_at,
        last_message,
        source_hash: p.composition.source_hash.clone(),
        group: group_of_alias(&p.alias, shards),
        tick_interval_ms: p.tick_interval_ms.unwrap_or(0),
    }
}

/// A requested tick interval: `0` means none (the node's default, or the
/// process's current one on update); otherwise 1 s to 24 h.
fn tick_interval(ms: u64) -> Result<Option<u64>, Status> {
    match ms {
        0 => Ok(None),
        ms if (canon_model::MIN_TICK_INTERVAL..=canon_model::MAX_TICK_INTERVAL)
            .contains(&std::time::Duration::from_millis(ms)) =>
        {
            Ok(Some(ms))
        }
        ms => Err(bad(&format!(
            "tick interval {ms} ms is out of range: use 1s to 24h"
        ))),
    }
}

fn valid_alias(alias: &str) -> Result<(), Status> {
    let ok = !alias.is_empty()
        && alias.len() <= 128
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(bad(&format!(
            "bad alias {alias:?}: use 1-128 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// A command id derived from the client's, for the second proposal of a
/// command (so a retried command re-proposes the same ids).
fn derived(id: Uuid, what: &str) -> CommandId {
    CommandId(Uuid::new_v5(&id, what.as_bytes()))
}

fn composition_of(c: Option<pb::CompiledComposition>) -> Result<Composition, Status> {
    let c = c.ok_or_else(|| bad("the command carries no composition"))?;
    canon_lang::Compiled::decode(&c.bytes)
        .map_err(|e| bad(&format!("the compiled composition does not decode: {e}")))?;
    Ok(Composition {
        bytes: c.bytes,
        source_hash: c.source_hash,
    })
}

/// The bindings recorded in the log, as the planner wants them.
fn bindings_of(p: &ProcessRecord) -> Bindings {
    canon_scheduler::reconcile::bindings_of(p)
}

impl Api {
    async fn propose(
        &self,
        alias: &str,
        id: CommandId,
        command: Command,
    ) -> Result<Response, Status> {
        let group = group_of_alias(alias, self.node.shard_count());
        let req = Request {
            id,
            at: now_ms(),
            command,
            fence: None,
        };
        self.node.propose(group, req).await.map_err(node_status)
    }

    async fn propose_applied(
        &self,
        alias: &str,
        id: CommandId,
        command: Command,
    ) -> Result<(), Status> {
        match self.propose(alias, id, command).await? {
            Response::Applied => Ok(()),
            Response::Rejected(r) => Err(rejection_status(r)),
        }
    }

    /// Starts a job of `kind`. Its id is the time of the command that
    /// caused it (the process's `updated_at`, set by the first proposal of
    /// this command), bumped on a collision with a job the scheduler started
    /// in the same millisecond: so a retried command (same command id)
    /// proposes the same ids and gets the same job back.
    async fn start_job(
        &self,
        alias: &str,
        cmd: Uuid,
        fid: Fid,
        kind: JobKind,
    ) -> Result<u64, Status> {
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
            match self.propose(alias, id, command).await? {
                Response::Applied => return Ok(job),
                Response::Rejected(Rejection::JobExists { .. }) => continue,
                // The scheduler starts a KILL job for a Killing process that
                // has none; if it got there first, that job is this kill's.
                Response::Rejected(Rejection::JobBusy { busy, .. }) if kind == JobKind::Kill => {
                    let same = self
                        .process(alias)
                        .await?
                        .and_then(|p| p.jobs.get(&busy).map(|j| j.kind == JobKind::Kill));
                    if same == Some(true) {
                        return Ok(busy);
                    }
                    return Err(Status::failed_precondition(format!(
                        "job {busy} of {fid} is still in progress"
                    )));
                }
                Response::Rejected(r) => return Err(rejection_status(r)),
            }
        }
        Err(Status::aborted("could not find a free job id; retry"))
    }

    async fn process(&self, alias: &str) -> Result<Option<ProcessRecord>, Status> {
        let group = group_of_alias(alias, self.node.shard_count());
        self.node
            .read(group, Consistency::Linearizable, |s| {
                s.process_by_alias(alias).cloned()
            })
            .await
            .map_err(node_status)
    }

    async fn live_process(&self, alias: &str) -> Result<ProcessRecord, Status> {
        match self.process(alias).await? {
            Some(p) if p.state.is_live() => Ok(p),
            _ => Err(not_found(alias)),
        }
    }

    fn desired(&self, c: &Composition, fid: Fid) -> Result<DesiredState, Status> {
        (self.decoder)(c, fid).map_err(|e| bad(&format!("composition: {e}")))
    }

    /// Observes every region `desired` declares, in `account`.
    async fn observe(
        &self,
        account: &str,
        desired: &DesiredState,
    ) -> Result<ObservedState, Status> {
        let mut regions: Vec<Region> = desired
            .resources
            .values()
            .map(|r| r.region.clone())
            .collect();
        regions.sort();
        regions.dedup();
        let mut merged = ObservedState::new();
        for region in regions {
            let scope = Scope {
                account: account.to_string(),
                region,
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

    fn account_of(&self, requested: &str) -> String {
        if requested.is_empty() {
            self.account.clone()
        } else {
            requested.to_string()
        }
    }

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

    async fn handle_command(&self, cmd: pb::Command) -> Result<pb::CommandReply, Status> {
        let id: Uuid = cmd
            .command_id
            .parse()
            .map_err(|_| bad("command_id is not a UUID"))?;
        let action = cmd.action.ok_or_else(|| bad("the command has no action"))?;
        self.metrics.call(match (&action, cmd.dry_run) {
            (_, true) => "dry_run",
            (pb::command::Action::Run(_), _) => "run",
            (pb::command::Action::Update(_), _) => "update",
            (pb::command::Action::Kill(_), _) => "kill",
            (pb::command::Action::Suspend(_), _) => "suspend",
            (pb::command::Action::Resume(_), _) => "resume",
            (pb::command::Action::RemoveMember(_), _) => "remove_member",
        });
        match action {
            pb::command::Action::Run(run) => self.run(id, cmd.dry_run, run).await,
            pb::command::Action::Update(u) => self.update(id, cmd.dry_run, u).await,
            pb::command::Action::Kill(k) => self.kill(id, cmd.dry_run, &k.alias).await,
            pb::command::Action::Suspend(s) => {
                self.set_state(id, cmd.dry_run, &s.alias, ProcessState::Suspended)
                    .await
            }
            pb::command::Action::Resume(r) => {
                self.set_state(id, cmd.dry_run, &r.alias, ProcessState::Running)
                    .await
            }
            pb::command::Action::RemoveMember(_) => Err(bad(
                "remove_member is sent with the RemoveMember call, not Submit",
            )),
        }
    }

    async fn run(&self, id: Uuid, dry_run: bool, run: pb::Run) -> Result<pb::CommandReply, Status> {
        valid_alias(&run.alias)?;
        let tick = tick_interval(run.tick_interval_ms)?;
        let fid = Fid(run.fid.parse().map_err(|_| bad("fid is not a UUID"))?);
        let composition = composition_of(run.composition)?;
        let account = self.account_of(&run.account);
        let desired = self.desired(&composition, fid)?;
        if dry_run {
            if let Some(p) = self.process(&run.alias).await? {
                if p.state.is_live() && p.fid != fid {
                    return Err(Status::already_exists(format!(
                        "alias {:?} is taken by live process {}",
                        run.alias, p.fid
                    )));
                }
            }
            let observed = self.observe(&account, &desired).await?;
            let planned = plan(&desired, &observed, &Bindings::new());
            return Ok(pb::CommandReply {
                process: None,
                job: 0,
                plan_json: planned.to_json().to_string(),
                message: format!("{} requests", planned.requests.len()),
            });
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

    async fn update(
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
            let observed = self.observe(&p.account, &desired).await?;
            let planned = plan(&desired, &observed, &bindings_of(&p));
            return Ok(pb::CommandReply {
                process: Some(summary(&p, self.node.shard_count())),
                job: now_ms(),
                plan_json: planned.to_json().to_string(),
                message: format!("{} requests", planned.requests.len()),
            });
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

    async fn kill(&self, id: Uuid, dry_run: bool, alias: &str) -> Result<pb::CommandReply, Status> {
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
            // The stored declaration says which regions the process uses.
            let desired = self.desired(&p.composition, p.fid)?;
            let observed = self.observe(&p.account, &desired).await?;
            let planned = plan_kill(p.fid, &observed, &bindings_of(&p));
            return Ok(pb::CommandReply {
                process: Some(summary(&p, self.node.shard_count())),
                job: 0,
                plan_json: planned.to_json().to_string(),
                message: format!("{} requests", planned.requests.len()),
            });
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

    /// If command `id` (a kill of `alias`) was applied before, the reply it
    /// earned: the newest process of that alias no longer live, and its
    /// newest KILL job.
    async fn finished_kill(
        &self,
        alias: &str,
        id: Uuid,
    ) -> Result<Option<pb::CommandReply>, Status> {
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
                let p = s
                    .processes
                    .values()
                    .filter(|p| p.alias == alias && !p.state.is_live())
                    .max_by_key(|p| p.updated_at)?;
                let job = p
                    .jobs
                    .values()
                    .filter(|j| j.kind == JobKind::Kill)
                    .map(|j| j.id)
                    .max()
                    .unwrap_or(0);
                Some(pb::CommandReply {
                    process: Some(summary(p, shards)),
                    job,
                    plan_json: String::new(),
                    message: "the conductor killed the process".into(),
                })
            })
            .await
            .map_err(node_status)
    }

    async fn set_state(
        &self,
        id: Uuid,
        dry_run: bool,
        alias: &str,
        state: ProcessState,
    ) -> Result<pb::CommandReply, Status> {
        valid_alias(alias)?;
        let p = self.live_process(alias).await?;
        if dry_run {
            return Ok(pb::CommandReply {
                process: Some(summary(&p, self.node.shard_count())),
                job: 0,
                plan_json: "[]".into(),
                message: format!("would change {alias} from {} to {state}", p.state),
            });
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

    async fn handle_status(&self, req: pb::StatusRequest) -> Result<pb::StatusReply, Status> {
        if req.alias.is_empty() {
            let mut all = Vec::new();
            let shards = self.node.shard_count();
            for shard in 0..shards {
                let group = canon_raft::shard::group_of_shard(shard);
                let mut ps = self
                    .node
                    .read(group, Consistency::Linearizable, |s| {
                        s.processes
                            .values()
                            .filter(|p| req.all || p.state.is_live())
                            .map(|p| summary(p, shards))
                            .collect::<Vec<_>>()
                    })
                    .await
                    .map_err(node_status)?;
                all.append(&mut ps);
            }
            all.sort_by(|a, b| (b.created_ms, &b.alias).cmp(&(a.created_ms, &a.alias)));
            return Ok(pb::StatusReply {
                processes: all,
                resources: Vec::new(),
                observe_error: String::new(),
            });
        }
        let p = self
            .process(&req.alias)
            .await?
            .ok_or_else(|| not_found(&req.alias))?;
        let desired = self.desired(&p.composition, p.fid)?;
        let (observed, observe_error) = match self.observe(&p.account, &desired).await {
            Ok(o) => (o, String::new()),
            Err(e) => (ObservedState::new(), e.message().to_string()),
        };
        let mut resources = Vec::new();
        for r in desired.resources.values() {
            let cloud_id = p
                .bindings
                .get(&r.id)
                .map(|b| b.cloud_id.clone())
                .unwrap_or_default();
            let observed_json = observed
                .get(&cloud_id)
                .and_then(|o| serde_json::to_string(o).ok())
                .unwrap_or_default();
            resources.push(pb::ResourceView {
                name: r.name.clone(),
                logical_id: r.id.to_string(),
                kind: r.kind().to_string(),
                region: r.region.as_str().to_string(),
                cloud_id,
                observed_json,
            });
        }
        // Bound resources no longer declared (being deleted).
        for (id, b) in &p.bindings {
            if !desired.resources.contains_key(id) {
                resources.push(pb::ResourceView {
                    name: String::new(),
                    logical_id: id.to_string(),
                    kind: b.kind.to_string(),
                    region: String::new(),
                    cloud_id: b.cloud_id.clone(),
                    observed_json: observed
                        .get(&b.cloud_id)
                        .and_then(|o| serde_json::to_string(o).ok())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(pb::StatusReply {
            processes: vec![summary(&p, self.node.shard_count())],
            resources,
            observe_error,
        })
    }

    async fn handle_history(&self, req: pb::HistoryRequest) -> Result<pb::HistoryReply, Status> {
        let p = self
            .process(&req.alias)
            .await?
            .ok_or_else(|| not_found(&req.alias))?;
        let in_range = |started: u64, updated: u64| {
            (req.start_ms == 0 || updated >= req.start_ms)
                && (req.end_ms == 0 || started <= req.end_ms)
        };
        let mut jobs: Vec<pb::JobView> = p
            .jobs
            .values()
            .filter(|j| in_range(j.started, j.updated))
            .map(|j| pb::JobView {
                id: j.id,
                kind: j.kind.to_string(),
                status: j.status.to_string(),
                started_ms: j.started,
                updated_ms: j.updated,
                ticks: j.ticks,
                message: j.message.clone(),
            })
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse((j.started_ms, j.id)));
        let drift = p
            .drift
            .values()
            .filter(|d| in_range(d.detected_at, d.healed_at.unwrap_or(d.detected_at)))
            .map(crate::events::drift_view)
            .collect();
        Ok(pb::HistoryReply {
            process: Some(summary(&p, self.node.shard_count())),
            jobs,
            drift,
        })
    }
}

#[tonic::async_trait]
impl pb::canon_server::Canon for Api {
    async fn submit(
        &self,
        request: TRequest<pb::SignedEnvelope>,
    ) -> Result<TResponse<pb::CommandReply>, Status> {
        let cmd = self.open_envelope(request.into_inner())?;
        Ok(TResponse::new(self.handle_command(cmd).await?))
    }

    async fn remove_member(
        &self,
        request: TRequest<pb::SignedEnvelope>,
    ) -> Result<TResponse<pb::RemoveMemberReply>, Status> {
        let cmd = self.open_envelope(request.into_inner())?;
        let id: Uuid = cmd
            .command_id
            .parse()
            .map_err(|_| bad("command_id is not a UUID"))?;
        let Some(pb::command::Action::RemoveMember(r)) = cmd.action else {
            return Err(bad("the RemoveMember call carries a remove_member command"));
        };
        self.metrics.call("remove_member");
        if r.node == 0 {
            return Err(bad("node id 0 is reserved"));
        }
        let reply = crate::removal::remove_member(
            &self.node,
            r.node,
            self.replicas,
            derived(id, "member-removed"),
            cmd.dry_run,
        )
        .await?;
        Ok(TResponse::new(reply))
    }

    async fn status(
        &self,
        request: TRequest<pb::StatusRequest>,
    ) -> Result<TResponse<pb::StatusReply>, Status> {
        self.check_read(&request, "Status")?;
        Ok(TResponse::new(
            self.handle_status(request.into_inner()).await?,
        ))
    }

    async fn history(
        &self,
        request: TRequest<pb::HistoryRequest>,
    ) -> Result<TResponse<pb::HistoryReply>, Status> {
        self.check_read(&request, "History")?;
        Ok(TResponse::new(
            self.handle_history(request.into_inner()).await?,
        ))
    }

    type EventsStream = tokio_stream::wrappers::ReceiverStream<Result<pb::Event, Status>>;

    async fn events(
        &self,
        request: TRequest<pb::EventsRequest>,
    ) -> Result<TResponse<Self::EventsStream>, Status> {
        self.metrics.call("events");
        self.check_read(&request, "Events")?;
        let alias = request.into_inner().alias;
        if !alias.is_empty() {
            valid_alias(&alias)?;
        }
        // Subscribed before the answer: a change made after it is an event.
        let sub = crate::events::Subscription::open(self.node.clone(), alias)
            .await
            .map_err(node_status)?;
        let (tx, rx) = tokio::sync::mpsc::channel(crate::events::BUFFER);
        tokio::spawn(sub.run(tx));
        Ok(TResponse::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn cluster_status(
        &self,
        request: TRequest<pb::ClusterStatusRequest>,
    ) -> Result<TResponse<pb::ClusterStatusReply>, Status> {
        self.metrics.call("cluster_status");
        let reply = if request.into_inner().local {
            crate::cluster::local_view(&self.node).await
        } else {
            crate::cluster::whole_view(&self.node, &self.peers).await
        };
        Ok(TResponse::new(reply?))
    }

    async fn join(
        &self,
        request: TRequest<pb::JoinRequest>,
    ) -> Result<TResponse<pb::JoinReply>, Status> {
        self.metrics.call("join");
        let r = request.into_inner();
        tracing::info!(node = r.node, addr = %r.addr, "join asked");
        let shards = crate::cluster::join(&self.node, r.node, &r.addr, self.replicas).await?;
        Ok(TResponse::new(pb::JoinReply {
            message: format!("node {} joined; replicas of shards {shards:?}", r.node),
            shards,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command on a process that was killed after the API looked it up
    /// answers "not found", as it would a moment later; the simulation's
    /// linearizability checker found the race (a resume answered "refused"
    /// for a process already gone).
    #[test]
    fn a_process_killed_meanwhile_reads_as_not_found() {
        let fid = canon_model::Fid::random();
        let gone = [
            Rejection::BadTransition {
                fid,
                from: ProcessState::Killed,
                to: ProcessState::Running,
            },
            Rejection::NotLive {
                fid,
                state: ProcessState::Killed,
            },
        ];
        for r in gone {
            assert_eq!(rejection_status(r).code(), tonic::Code::NotFound);
        }
        let refused = Rejection::BadTransition {
            fid,
            from: ProcessState::Killing,
            to: ProcessState::Suspended,
        };
        assert_eq!(
            rejection_status(refused).code(),
            tonic::Code::FailedPrecondition
        );
    }
}
