//! Canon's replicated state and the rules that change it.
//!
//! Pure and deterministic: [`CanonState::apply`] depends only on the state,
//! the group it belongs to and the request (which carries its own time), so
//! every replica that applies the same log reaches the same state. Commands
//! that break a rule are answered with a [`Rejection`] and change nothing
//! (except that their id is remembered, so a retry gets the same answer).

use std::collections::{BTreeMap, VecDeque};

use canon_model::{
    DriftEvent, Fid, JobKind, JobRecord, JobStatus, LogicalId, ProcessState, ResourceKind,
    UnixMillis,
};
use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandId, Composition, Rejection, Request, Response};
use crate::shard::{shard_of, shard_of_group, META_GROUP};
use crate::types::{GroupId, NodeId};

/// How many recent command ids are remembered for idempotent replay.
pub const DEDUP_MAX_IDS: usize = 100_000;
/// How long (by command time) a command id is remembered at least, unless
/// more than [`DEDUP_MAX_IDS`] newer ones push it out.
pub const DEDUP_WINDOW_MS: UnixMillis = 60 * 60 * 1000;

/// A cloud resource bound to a declared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub resource: LogicalId,
    pub kind: ResourceKind,
    pub cloud_id: String,
    pub since: UnixMillis,
}

/// One process and everything recorded about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub fid: Fid,
    pub alias: String,
    pub account: String,
    pub state: ProcessState,
    pub composition: Composition,
    /// 1 at creation, +1 per update.
    pub generation: u64,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub jobs: BTreeMap<u64, JobRecord>,
    pub bindings: BTreeMap<LogicalId, Binding>,
    pub drift: BTreeMap<u64, DriftEvent>,
}

impl ProcessRecord {
    /// The RUN/UPDATE/KILL job in progress, if any.
    pub fn busy_job(&self) -> Option<u64> {
        self.jobs
            .values()
            .find(|j| j.kind != JobKind::System && j.status == JobStatus::InProgress)
            .map(|j| j.id)
    }
}

/// A cluster member as the meta group records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    pub addr: String,
    pub since: UnixMillis,
}

/// Cluster-wide state held by the meta group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// Fixed once by `ClusterCreated`.
    pub shard_count: Option<u32>,
    pub members: BTreeMap<NodeId, Member>,
    /// Shard → its replicas.
    pub placement: BTreeMap<u32, Vec<NodeId>>,
}

/// Remembered answers to recent commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Dedup {
    answers: BTreeMap<CommandId, Response>,
    /// Ids in apply order with their command time, oldest first.
    order: VecDeque<(CommandId, UnixMillis)>,
}

impl Dedup {
    fn remember(&mut self, id: CommandId, at: UnixMillis, response: Response) {
        self.answers.insert(id, response);
        self.order.push_back((id, at));
        while let Some((old, old_at)) = self.order.front().copied() {
            let too_many = self.order.len() > DEDUP_MAX_IDS;
            let too_old = old_at.saturating_add(DEDUP_WINDOW_MS) < at;
            if !(too_many || too_old) {
                break;
            }
            self.order.pop_front();
            self.answers.remove(&old);
        }
    }
}

/// The state of one Raft group (meta or shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonState {
    /// The group this state belongs to.
    pub group: GroupId,
    /// Shard count the group was created with (for the alias → shard check).
    pub shard_count: u32,
    pub processes: BTreeMap<Fid, ProcessRecord>,
    /// Alias → the live process that holds it.
    pub aliases: BTreeMap<String, Fid>,
    /// Logical id → owning process, for `BindingCleared` and lookups.
    pub meta: ClusterMeta,
    /// The greatest command time applied so far.
    pub clock: UnixMillis,
    /// Number of commands applied (including rejected ones).
    pub applied: u64,
    dedup: Dedup,
}

impl CanonState {
    /// The empty state of `group` in a cluster of `shard_count` shards.
    pub fn new(group: GroupId, shard_count: u32) -> Self {
        CanonState {
            group,
            shard_count,
            processes: BTreeMap::new(),
            aliases: BTreeMap::new(),
            meta: ClusterMeta::default(),
            clock: 0,
            applied: 0,
            dedup: Dedup::default(),
        }
    }

    /// The live process holding `alias`.
    pub fn process_by_alias(&self, alias: &str) -> Option<&ProcessRecord> {
        self.aliases.get(alias).and_then(|f| self.processes.get(f))
    }

    /// A process by FID.
    pub fn process(&self, fid: &Fid) -> Option<&ProcessRecord> {
        self.processes.get(fid)
    }

    /// The remembered answer to command `id`, if it was applied recently.
    pub fn answer_of(&self, id: &CommandId) -> Option<&Response> {
        self.dedup.answers.get(id)
    }

    /// Applies one request. A request whose id was applied before gets the
    /// first answer again and changes nothing.
    pub fn apply(&mut self, req: &Request) -> Response {
        if let Some(previous) = self.dedup.answers.get(&req.id) {
            return previous.clone();
        }
        let response = match self.apply_command(req.at, &req.command) {
            Ok(()) => Response::Applied,
            Err(r) => Response::Rejected(r),
        };
        self.clock = self.clock.max(req.at);
        self.applied += 1;
        self.dedup.remember(req.id, req.at, response.clone());
        response
    }

    fn apply_command(&mut self, at: UnixMillis, command: &Command) -> Result<(), Rejection> {
        let is_meta_group = self.group == META_GROUP;
        if !matches!(command, Command::Noop) && command.is_meta() != is_meta_group {
            return Err(Rejection::WrongGroup {
                command: command.name().to_string(),
            });
        }
        match command {
            Command::Noop => Ok(()),
            Command::ProcessCreated {
                fid,
                alias,
                account,
                composition,
            } => self.create(at, *fid, alias, account, composition),
            Command::ProcessUpdated { fid, composition } => {
                let p = self.live_mut(fid)?;
                p.composition = composition.clone();
                p.generation += 1;
                p.updated_at = at;
                Ok(())
            }
            Command::ProcessStateChanged { fid, state } => self.change_state(at, *fid, *state),
            Command::ProcessDeleted { fid } => {
                let p = self.get(fid)?;
                if p.state != ProcessState::Killed {
                    return Err(Rejection::NotKilled {
                        fid: *fid,
                        state: p.state,
                    });
                }
                self.processes.remove(fid);
                Ok(())
            }
            Command::JobStarted {
                fid,
                job,
                kind,
                message,
            } => {
                let p = self.live_mut(fid)?;
                if p.jobs.contains_key(job) {
                    return Err(Rejection::JobExists { fid: *fid, job: *job });
                }
                if *kind != JobKind::System {
                    if let Some(busy) = p.busy_job() {
                        return Err(Rejection::JobBusy { fid: *fid, busy });
                    }
                }
                p.jobs.insert(
                    *job,
                    JobRecord {
                        id: *job,
                        fid: *fid,
                        kind: *kind,
                        status: JobStatus::InProgress,
                        started: at,
                        updated: at,
                        ticks: 0,
                        message: message.clone(),
                    },
                );
                Ok(())
            }
            Command::JobProgressed {
                fid,
                job,
                ticks,
                message,
            } => {
                let j = self.open_job(fid, *job)?;
                j.ticks = j.ticks.saturating_add(*ticks);
                if let Some(m) = message {
                    j.message = m.clone();
                }
                j.updated = at;
                Ok(())
            }
            Command::JobFinished {
                fid,
                job,
                status,
                message,
            } => {
                if !status.is_finished() {
                    return Err(Rejection::NotAFinalStatus);
                }
                let j = self.open_job(fid, *job)?;
                j.status = *status;
                j.message = message.clone();
                j.updated = at;
                Ok(())
            }
            Command::BindingSet {
                resource,
                kind,
                cloud_id,
            } => {
                let p = self.live_mut(&resource.fid)?;
                p.bindings.insert(
                    *resource,
                    Binding {
                        resource: *resource,
                        kind: *kind,
                        cloud_id: cloud_id.clone(),
                        since: at,
                    },
                );
                Ok(())
            }
            Command::BindingCleared { resource } => {
                let p = self.get_mut(&resource.fid)?;
                p.bindings
                    .remove(resource)
                    .map(|_| ())
                    .ok_or(Rejection::UnknownBinding(*resource))
            }
            Command::DriftOpened {
                fid,
                drift,
                resource,
                kind,
                cloud_id,
                property,
                declared,
                observed,
            } => {
                let p = self.live_mut(fid)?;
                if p.drift.contains_key(drift) {
                    return Err(Rejection::DriftExists {
                        fid: *fid,
                        drift: *drift,
                    });
                }
                p.drift.insert(
                    *drift,
                    DriftEvent {
                        id: *drift,
                        fid: *fid,
                        resource: *resource,
                        kind: *kind,
                        cloud_id: cloud_id.clone(),
                        property: property.clone(),
                        declared: declared.clone(),
                        observed: observed.clone(),
                        detected_at: at,
                        healed_at: None,
                    },
                );
                Ok(())
            }
            Command::DriftHealed { fid, drift } => {
                let p = self.get_mut(fid)?;
                let d = p.drift.get_mut(drift).ok_or(Rejection::UnknownDrift {
                    fid: *fid,
                    drift: *drift,
                })?;
                if d.healed_at.is_some() {
                    return Err(Rejection::AlreadyHealed {
                        fid: *fid,
                        drift: *drift,
                    });
                }
                d.healed_at = Some(at);
                Ok(())
            }
            Command::ClusterCreated { shard_count } => {
                if let Some(n) = self.meta.shard_count {
                    return Err(Rejection::ShardCountFixed(n));
                }
                if *shard_count == 0 {
                    return Err(Rejection::NoShards);
                }
                self.meta.shard_count = Some(*shard_count);
                Ok(())
            }
            Command::MemberSet { node, addr } => {
                let since = self.meta.members.get(node).map_or(at, |m| m.since);
                self.meta.members.insert(
                    *node,
                    Member {
                        node: *node,
                        addr: addr.clone(),
                        since,
                    },
                );
                Ok(())
            }
            Command::MemberRemoved { node } => self
                .meta
                .members
                .remove(node)
                .map(|_| ())
                .ok_or(Rejection::UnknownMember(*node)),
            Command::ShardPlaced { shard, replicas } => {
                let count = self.meta.shard_count.unwrap_or(self.shard_count);
                if *shard >= count {
                    return Err(Rejection::NoSuchShard {
                        shard: *shard,
                        count,
                    });
                }
                if let Some(n) = replicas.iter().find(|n| !self.meta.members.contains_key(n)) {
                    return Err(Rejection::UnknownMember(*n));
                }
                self.meta.placement.insert(*shard, replicas.clone());
                Ok(())
            }
        }
    }

    fn create(
        &mut self,
        at: UnixMillis,
        fid: Fid,
        alias: &str,
        account: &str,
        composition: &Composition,
    ) -> Result<(), Rejection> {
        if let Some(own) = shard_of_group(self.group) {
            let expected = shard_of(alias, self.shard_count);
            if expected != own {
                return Err(Rejection::WrongShard {
                    alias: alias.to_string(),
                    expected,
                });
            }
        }
        if self.processes.contains_key(&fid) {
            return Err(Rejection::ProcessExists(fid));
        }
        if let Some(by) = self.aliases.get(alias) {
            return Err(Rejection::AliasTaken {
                alias: alias.to_string(),
                by: *by,
            });
        }
        self.aliases.insert(alias.to_string(), fid);
        self.processes.insert(
            fid,
            ProcessRecord {
                fid,
                alias: alias.to_string(),
                account: account.to_string(),
                state: ProcessState::Running,
                composition: composition.clone(),
                generation: 1,
                created_at: at,
                updated_at: at,
                jobs: BTreeMap::new(),
                bindings: BTreeMap::new(),
                drift: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn change_state(&mut self, at: UnixMillis, fid: Fid, to: ProcessState) -> Result<(), Rejection> {
        use ProcessState::*;
        let p = self.get_mut(&fid)?;
        let from = p.state;
        let allowed = matches!(
            (from, to),
            (Running, Suspended)
                | (Suspended, Running)
                | (Running, Killing)
                | (Suspended, Killing)
                | (Killing, Running)
                | (Killing, Killed)
        );
        if !allowed {
            return Err(Rejection::BadTransition { fid, from, to });
        }
        if to == Killed && !p.bindings.is_empty() {
            return Err(Rejection::StillOwns {
                fid,
                bindings: p.bindings.len(),
            });
        }
        p.state = to;
        p.updated_at = at;
        if to == Killed {
            let alias = p.alias.clone();
            if self.aliases.get(&alias) == Some(&fid) {
                self.aliases.remove(&alias);
            }
        }
        Ok(())
    }

    fn get(&self, fid: &Fid) -> Result<&ProcessRecord, Rejection> {
        self.processes.get(fid).ok_or(Rejection::UnknownProcess(*fid))
    }

    fn get_mut(&mut self, fid: &Fid) -> Result<&mut ProcessRecord, Rejection> {
        self.processes
            .get_mut(fid)
            .ok_or(Rejection::UnknownProcess(*fid))
    }

    fn live_mut(&mut self, fid: &Fid) -> Result<&mut ProcessRecord, Rejection> {
        let p = self.get_mut(fid)?;
        if !p.state.is_live() {
            return Err(Rejection::NotLive {
                fid: *fid,
                state: p.state,
            });
        }
        Ok(p)
    }

    fn open_job(&mut self, fid: &Fid, job: u64) -> Result<&mut JobRecord, Rejection> {
        let p = self.get_mut(fid)?;
        let j = p
            .jobs
            .get_mut(&job)
            .ok_or(Rejection::UnknownJob { fid: *fid, job })?;
        if j.status.is_finished() {
            return Err(Rejection::JobFinished { fid: *fid, job });
        }
        Ok(j)
    }
}
