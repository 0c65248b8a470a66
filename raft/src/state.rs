//! Canon's replicated state and the rules that change it.
//!
//! Pure and deterministic: [`CanonState::apply`] depends only on the state,
//! the group it belongs to and the request (which carries its own time), so
//! every replica that applies the same log reaches the same state. Commands
//! that break a rule are answered with a [`Rejection`] and change nothing
//! (except that their id is remembered, so a retry gets the same answer).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use canon_model::{
    DesiredState, DriftEvent, Fid, JobKind, JobRecord, JobStatus, LogicalId, ProcessProperties,
    ProcessState, Region, ReplacementRecord, ResourceKind, RolloutFailure, RotationRequest,
    UnixMillis,
};
use serde::{Deserialize, Serialize};

use crate::audit::AuditChain;
use crate::command::{
    Command, CommandId, Committed, Composition, EntryAt, Rejection, Request, Response,
};
use crate::ids::{GroupId, NodeId};
use crate::policy::{Principal, VersionedPolicy};
use crate::shard::META_GROUP;

mod audit;
mod bound;
mod by_alias;
mod cluster;
mod dedup;
mod jobs;
mod join_tokens;
mod passes;
mod policy;
mod process;
mod records;
mod retention;
mod validations;

pub use bound::BindingIndex;
pub use by_alias::{AliasCursor, AliasIndex};
use dedup::Dedup;
pub use passes::OpenPass;
use records::OpenedDrift;
pub use retention::FoldedHistory;
pub use validations::StoredValidation;

/// How many recent command ids are remembered for idempotent replay once
/// they are older than [`ENVELOPE_TTL_MAX_MS`] (younger ones always are).
pub const DEDUP_MAX_IDS: usize = 100_000;
/// How long (by command time) a command id is remembered at least, unless
/// more than [`DEDUP_MAX_IDS`] newer ones push it out.
pub const DEDUP_WINDOW_MS: UnixMillis = 60 * 60 * 1000;
/// The longest life a signed envelope may have (its expiry minus its
/// signing time), plus the clock skew a node allows either side. A replay
/// of a live envelope must meet its command id here, so ids are remembered
/// at least this long whatever the count.
pub const ENVELOPE_TTL_MAX_MS: UnixMillis = 10 * 60 * 1000;
pub const ENVELOPE_SKEW_MAX_MS: UnixMillis = 5 * 60 * 1000;
// A command id outlives every envelope that can carry it.
const _: () = assert!(DEDUP_WINDOW_MS >= ENVELOPE_TTL_MAX_MS + 2 * ENVELOPE_SKEW_MAX_MS);

/// A cloud resource bound to a declared one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub resource: LogicalId,
    pub kind: ResourceKind,
    pub cloud_id: String,
    pub since: UnixMillis,
    /// The region it lives in (unknown for bindings older logs made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
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
    /// Time between enforcement ticks; `None`: the node's default.
    #[serde(default)]
    pub tick_interval_ms: Option<u64>,
    /// Jobs and drift events retention folded into counts. Absent in
    /// snapshots written before retention existed: nothing folded.
    #[serde(default)]
    pub folded: FoldedHistory,
    /// Enforcement and lock (`canon property`). Absent in records written
    /// before properties existed: enforced, unlocked.
    #[serde(default)]
    pub properties: ProcessProperties,
    /// A cloud event named one of its resources and nobody has looked
    /// since: the earliest such event's time (`DriftSuspected`). Absent in
    /// records written before events poked processes: none.
    #[serde(default)]
    pub suspected: Option<UnixMillis>,
    /// Who made the call of that earliest event, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspected_by: Option<String>,
    /// Rotations requested (`canon fleet rotate`) and not done yet, which
    /// the planner reads beside the observation. Absent in records written
    /// before they existed: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<RotationRequest>,
    /// The instances replaced, by id, each with its reason (issue #18).
    /// Folded with the job that replaced them. Absent in records written
    /// before they existed: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replacements: BTreeMap<u64, ReplacementRecord>,
    /// Fleet members whose replacements failed in a row (backoff, and
    /// parking at `PARK_AFTER`); cleared by an update, a rotation request,
    /// or the member's next good replacement. Absent in records written
    /// before they existed: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rollout_failures: BTreeMap<LogicalId, RolloutFailure>,
    /// What `canon run --import` adopts: declaration → existing cloud id.
    /// The RUN job tags each as the process's until the planner has bound
    /// it (`canon_model::import::adoption_requests`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub imports: BTreeMap<LogicalId, String>,
    /// How many passes that may call the cloud were opened on the process
    /// (see [`ProcessRecord::count_pass`]), each counted when its intent
    /// was committed, before the pass's first call: an actor that opened
    /// every one of them itself knows every create ever sent for the
    /// process, and which answers it lost, so the creates it never sent
    /// need no look-up by ownership tag (issue #19). Not folded by
    /// retention. `None` in a record read from a snapshot written before
    /// the count existed: the passes before it are unknown, and every
    /// actor looks its creates up as before.
    #[serde(default)]
    pub passes: Option<u64>,
    /// The latest pass's planned calls no `CloudCalled` answered yet
    /// ([`OpenPass`]); `None` between passes, and in records written
    /// before passes named their calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_pass: Option<OpenPass>,
}

impl ProcessRecord {
    /// Counts the pass whose intent is a `JobProgressed` of `ticks`,
    /// `message` and `opens_pass`: one the actor marks as opening a pass,
    /// and any progress that may have been a pass's intent in entries
    /// written before the mark existed (a pass's intent always counted a
    /// tick and said what it was doing; over-counting only costs a
    /// look-up).
    pub(crate) fn count_pass(&mut self, ticks: u64, message: Option<&str>, opens_pass: bool) {
        if opens_pass || (ticks >= 1 && message.is_some()) {
            if let Some(n) = self.passes.as_mut() {
                *n = n.saturating_add(1);
            }
        }
    }

    /// The RUN/UPDATE/KILL job in progress, if any.
    pub fn busy_job(&self) -> Option<u64> {
        self.jobs
            .values()
            .find(|j| j.kind != JobKind::System && j.status == JobStatus::InProgress)
            .map(|j| j.id)
    }

    /// Where to look for everything the process owns: the regions its
    /// declaration `desired` names, and those it still has bindings in (a
    /// declaration that left a region leaves what it held there to delete
    /// or release, not to forget).
    pub fn regions(&self, desired: &DesiredState) -> BTreeSet<Region> {
        let declared = desired.resources.values().map(|r| r.region.clone());
        let bound = self.bindings.values().filter_map(|b| b.region.clone());
        declared.chain(bound).collect()
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
    /// The trust policy (version 0, empty: none yet, root keys only).
    /// Absent in snapshots written before it existed.
    #[serde(default)]
    pub policy: VersionedPolicy,
    /// Join tokens by the SHA-256 of their secret, until they expire.
    /// Absent in snapshots written before they existed.
    #[serde(default)]
    pub join_tokens: BTreeMap<String, JoinToken>,
    /// The organisation's validation modules by name (`canon validation
    /// add`). Absent in snapshots written before they existed.
    #[serde(default)]
    pub validations: BTreeMap<String, StoredValidation>,
}

/// A one-time join token as the meta group records it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// Issued at this command time.
    pub issued_at: UnixMillis,
    /// Void after this command time.
    pub expires_at: UnixMillis,
    /// The only node id it admits, if it was made for one.
    pub node: Option<NodeId>,
    /// The node that spent it.
    pub redeemed_by: Option<NodeId>,
}

/// A group's processes by FID: a persistent map (`imbl`), so that a
/// snapshot's frozen view of it is a clone of its root, O(1), and the
/// state moving on copies only the tree nodes it changes, once; each
/// record behind its own `Arc`, so that such a node copy copies pointers,
/// and a record changed while a view holds it is copied once
/// (`Arc::make_mut`). Serialised as a map, byte for byte as the
/// `BTreeMap` of earlier releases was.
pub type ProcessMap = imbl::OrdMap<Fid, Arc<ProcessRecord>>;

/// The state of one Raft group (meta or shard).
///
/// Everything a snapshot holds that grows with the group (processes,
/// aliases, command ids, the audit chain, the bench's values) is a
/// persistent collection, so [`CanonState::snapshot_view`] costs
/// O(1) under the state's read lock whatever the group's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonState {
    /// The group this state belongs to.
    pub group: GroupId,
    /// Shard count the group was created with (for the alias → shard check).
    pub shard_count: u32,
    /// See [`ProcessMap`].
    pub processes: ProcessMap,
    /// Alias → the live process that holds it.
    pub aliases: imbl::OrdMap<String, Fid>,
    /// Cluster-wide state (meta group only).
    pub meta: ClusterMeta,
    /// The greatest command time applied so far.
    pub clock: UnixMillis,
    /// Number of commands applied (including rejected ones).
    pub applied: u64,
    dedup: Dedup,
    /// The group's audit records (see [`crate::audit`]). Absent in
    /// snapshots written before it existed: an empty chain.
    #[serde(default)]
    pub audit: AuditChain,
    /// The raft benchmark's values by key (`Command::BenchPut`); empty in
    /// every cluster that never ran the benchmark, and then not written
    /// into snapshots.
    #[serde(default, skip_serializing_if = "imbl::OrdMap::is_empty")]
    pub bench_values: imbl::OrdMap<u64, serde_bytes::ByteBuf>,
    /// Cloud id → the resources bound to it, derived from the bindings
    /// (rebuilt by [`CanonState::decode`]).
    #[serde(skip)]
    bound: BindingIndex,
    /// (alias, FID) of every process, for paged reads in alias order
    /// (rebuilt by [`CanonState::decode`]).
    #[serde(skip)]
    by_alias: AliasIndex,
}

impl CanonState {
    /// The empty state of `group` in a cluster of `shard_count` shards.
    pub fn new(group: GroupId, shard_count: u32) -> Self {
        CanonState {
            group,
            shard_count,
            processes: ProcessMap::new(),
            aliases: imbl::OrdMap::new(),
            meta: ClusterMeta::default(),
            clock: 0,
            applied: 0,
            dedup: Dedup::default(),
            audit: AuditChain::default(),
            bench_values: imbl::OrdMap::new(),
            bound: BindingIndex::default(),
            by_alias: AliasIndex::default(),
        }
    }

    /// The live process holding `alias`.
    pub fn process_by_alias(&self, alias: &str) -> Option<&ProcessRecord> {
        self.aliases
            .get(alias)
            .and_then(|f| self.processes.get(f))
            .map(|p| &**p)
    }

    /// The newest process of `alias` that is no longer live (killed or
    /// released, kept until retention releases its records), for the reads
    /// that ask after one (`canon history web` after `canon kill web`). A
    /// scan of the group's processes: only asked when no live process has
    /// the alias.
    pub fn newest_gone_by_alias(&self, alias: &str) -> Option<&ProcessRecord> {
        self.processes
            .values()
            .filter(|p| p.alias == alias && !p.state.is_live())
            .max_by_key(|p| (p.updated_at, p.created_at, p.fid))
            .map(|p| &**p)
    }

    /// A process by FID.
    pub fn process(&self, fid: &Fid) -> Option<&ProcessRecord> {
        self.processes.get(fid).map(|p| &**p)
    }

    /// The remembered answer to command `id`, if it was applied recently.
    pub fn answer_of(&self, id: &CommandId) -> Option<Response> {
        self.dedup.answer(id).map(|c| c.response)
    }

    /// The log index command `id` was applied at, if it was applied
    /// recently in a log entry.
    pub fn index_of(&self, id: &CommandId) -> Option<u64> {
        self.dedup.index_of(id)
    }

    /// Applies one request (outside a log: no fence check). A request whose
    /// id was applied before gets the first answer again and changes nothing.
    pub fn apply(&mut self, req: &Request) -> Response {
        self.apply_at(req, None).response
    }

    /// Applies one request found in the log entry `entry` (none: outside a
    /// log, no fence check): its answer, and the index its command id was
    /// first applied at. A request whose id was applied before gets the
    /// first answer and index again and changes nothing.
    pub fn apply_at(&mut self, req: &Request, entry: Option<EntryAt>) -> Committed {
        if let Some(previous) = self.dedup.answer(&req.id) {
            return previous;
        }
        let term = entry.map(|e| e.term);
        let fenced = match (req.fence, term) {
            (Some(fence), Some(term)) if fence != term => Err(Rejection::Fenced { fence, term }),
            _ => Ok(()),
        };
        let audit = self.audit_before(req);
        let applied = fenced
            .and_then(|()| self.apply_command(req.at, req.principal.as_deref(), &req.command));
        let response = match applied {
            Ok(()) => Response::Applied,
            Err(r) => Response::Rejected(r),
        };
        if let Some(pending) = audit {
            self.audit_after(pending, req, &response);
        }
        self.clock = self.clock.max(req.at);
        self.applied += 1;
        let committed = Committed {
            response,
            index: entry.map_or(0, |e| e.index),
        };
        self.dedup.remember(req.id, req.at, &committed);
        committed
    }

    /// Checks that `command` belongs to this group, then hands it to the
    /// rule of its family: processes ([`process`]), jobs ([`jobs`]),
    /// bindings and drift ([`records`]), the cluster ([`cluster`]), the
    /// trust policy ([`policy`], which authorises `principal`).
    fn apply_command(
        &mut self,
        at: UnixMillis,
        principal: Option<&Principal>,
        command: &Command,
    ) -> Result<(), Rejection> {
        let is_meta_group = self.group == META_GROUP;
        if !command.is_any_group() && command.is_meta() != is_meta_group {
            return Err(Rejection::WrongGroup {
                command: command.name().to_string(),
            });
        }
        match command {
            Command::Noop => Ok(()),
            Command::BenchPut { key, value } => {
                self.bench_values
                    .insert(*key, serde_bytes::ByteBuf::from(value.clone()));
                Ok(())
            }
            Command::ProcessCreated {
                fid,
                alias,
                account,
                composition,
                tick_interval_ms,
                imports,
            } => self
                .create_process(at, *fid, alias, account, composition, *tick_interval_ms)
                .map(|()| self.record_imports(*fid, imports)),
            Command::ProcessUpdated {
                fid,
                composition,
                tick_interval_ms,
            } => self.update_process(at, *fid, composition, *tick_interval_ms),
            Command::ProcessStateChanged { fid, state } => self.change_state(at, *fid, *state),
            Command::ProcessDeleted { fid } => self.delete_process(*fid),
            Command::JobStarted {
                fid,
                job,
                kind,
                message,
            } => self.start_job(at, *fid, *job, *kind, message),
            Command::JobProgressed {
                fid,
                job,
                ticks,
                message,
                opens_pass,
                planned,
            } => self
                .progress_job(at, *fid, *job, *ticks, message.as_deref(), *opens_pass)
                .map(|()| self.open_pass(*fid, *job, planned)),
            Command::JobFinished {
                fid,
                job,
                status,
                message,
            } => self.finish_job(at, *fid, *job, *status, message),
            Command::BindingSet {
                resource,
                kind,
                cloud_id,
                region,
                ..
            } => self.set_binding(at, *resource, *kind, cloud_id, region.as_ref()),
            Command::BindingCleared { resource } => self.clear_binding(*resource),
            Command::DriftOpened {
                fid,
                drift,
                resource,
                kind,
                cloud_id,
                property,
                declared,
                observed,
                violates,
                detected_by,
            } => self.open_drift(
                at,
                OpenedDrift {
                    fid: *fid,
                    drift: *drift,
                    resource: *resource,
                    kind: *kind,
                    cloud_id,
                    property,
                    declared,
                    observed,
                    violates,
                    detected_by: detected_by.clone(),
                },
            ),
            Command::DriftHealed { fid, drift } => self.heal_drift(at, *fid, *drift),
            Command::DriftSuspected { fid, event_at, by } => {
                self.suspect_drift(*fid, *event_at, by.as_deref())
            }
            Command::SuspicionCleared { fid } => self.clear_suspicion(*fid),
            Command::ClusterCreated { shard_count } => self.create_cluster(*shard_count),
            Command::MemberSet { node, addr } => self.set_member(at, *node, addr),
            Command::MemberRemoved { node } => self.remove_member(*node),
            Command::ShardPlaced { shard, replicas } => self.place_shard(*shard, replicas),
            Command::PolicyChanged { change } => self.change_policy(principal, change),
            Command::JoinTokenIssued {
                hash,
                expires_at,
                node,
            } => self.issue_join_token(at, hash, *expires_at, *node),
            Command::JoinTokenRedeemed { hash, node } => self.redeem_join_token(at, hash, *node),
            Command::CloudCalled { .. } | Command::PassInterrupted { .. } => {
                self.apply_to_pass(command)
            }
            // Audit only: the record is the whole effect.
            Command::AuditRefused { .. } => Ok(()),
            Command::AuditTrimmed { through } => self.trim_audit(*through),
            Command::HistoryTrimmed { limits } => {
                self.trim_history(limits);
                Ok(())
            }
            Command::ProcessPropertySet { fid, property } => self.set_property(at, *fid, *property),
            Command::ValidationSet { name, file, text } => {
                self.set_validation(at, principal, name, file, text);
                Ok(())
            }
            Command::ValidationRemoved { name } => self.remove_validation(name),
            Command::RotationRequested { fid, scope } => {
                self.request_rotation(at, *fid, scope.clone())
            }
            Command::RotationDone { fid, through } => self.finish_rotation(*fid, *through),
            Command::InstanceReplaced { fid, job, replaced } => {
                self.record_replacement(at, *fid, *job, replaced)
            }
            Command::RolloutFailed {
                fid,
                resource,
                cloud_id,
                name,
            } => self.fail_rollout(at, *fid, *resource, cloud_id, name),
            Command::RolloutRecovered { fid, resource } => {
                self.get_mut(fid)?.rollout_failures.remove(resource);
                Ok(())
            }
        }
    }

    fn get(&self, fid: &Fid) -> Result<&ProcessRecord, Rejection> {
        self.processes
            .get(fid)
            .map(|p| &**p)
            .ok_or(Rejection::UnknownProcess(*fid))
    }

    fn get_mut(&mut self, fid: &Fid) -> Result<&mut ProcessRecord, Rejection> {
        self.processes
            .get_mut(fid)
            .map(Arc::make_mut)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::{group_of_alias, group_of_shard, shard_of};
    use canon_model::DetectedBy;

    const SHARDS: u32 = 4;

    fn comp(tag: &str) -> Composition {
        Composition {
            bytes: tag.as_bytes().to_vec(),
            source_hash: format!("hash-{tag}"),
        }
    }

    pub(super) fn shard_state_for(alias: &str) -> CanonState {
        CanonState::new(group_of_alias(alias, SHARDS), SHARDS)
    }

    fn req(at: UnixMillis, command: Command) -> Request {
        Request::new(at, command)
    }

    pub(super) fn create(fid: Fid, alias: &str) -> Command {
        Command::ProcessCreated {
            imports: Default::default(),
            fid,
            alias: alias.into(),
            account: "acct".into(),
            composition: comp("v1"),
            tick_interval_ms: None,
        }
    }

    /// Job `job` of `fid` starts.
    pub(super) fn started(fid: Fid, job: u64, kind: JobKind) -> Command {
        Command::JobStarted {
            fid,
            job,
            kind,
            message: "go".into(),
        }
    }

    /// Job `job` of `fid` ends with `status`.
    pub(super) fn finished(fid: Fid, job: u64, status: JobStatus) -> Command {
        Command::JobFinished {
            fid,
            job,
            status,
            message: String::new(),
        }
    }

    /// Drift `drift` found on a security group of `fid` by a tick.
    pub(super) fn opened(fid: Fid, drift: u64) -> Command {
        opened_by(fid, drift, DetectedBy::Tick)
    }

    /// Drift `drift` found on a security group of `fid` by `detected_by`.
    fn opened_by(fid: Fid, drift: u64, detected_by: DetectedBy) -> Command {
        Command::DriftOpened {
            fid,
            drift,
            resource: LogicalId::new(fid, "sg"),
            kind: ResourceKind::SecurityGroup,
            cloud_id: Some("sg-1".into()),
            property: "ingress".into(),
            declared: Some("[]".into()),
            observed: Some("[22]".into()),
            violates: vec!["org.no-admin-ports".into()],
            detected_by,
        }
    }

    pub(super) fn set_state(fid: Fid, state: ProcessState) -> Command {
        Command::ProcessStateChanged { fid, state }
    }

    fn rejected(r: Response) -> Rejection {
        match r {
            Response::Rejected(why) => why,
            Response::Applied => panic!("expected a rejection"),
        }
    }

    #[test]
    fn alias_is_unique_among_live_processes() {
        let mut s = shard_state_for("dev-sam");
        let a = Fid::random();
        let b = Fid::random();
        assert!(s.apply(&req(1, create(a, "dev-sam"))).is_applied());
        assert_eq!(
            rejected(s.apply(&req(2, create(b, "dev-sam")))),
            Rejection::AliasTaken {
                alias: "dev-sam".into(),
                by: a
            }
        );
        // Suspended still holds the alias; Killing too.
        assert!(s
            .apply(&req(3, set_state(a, ProcessState::Suspended)))
            .is_applied());
        assert!(!s.apply(&req(4, create(b, "dev-sam"))).is_applied());
        assert!(s
            .apply(&req(5, set_state(a, ProcessState::Killing)))
            .is_applied());
        assert!(!s.apply(&req(6, create(b, "dev-sam"))).is_applied());
        // Killed frees it.
        assert!(s
            .apply(&req(7, set_state(a, ProcessState::Killed)))
            .is_applied());
        assert!(s.process_by_alias("dev-sam").is_none());
        assert!(s.apply(&req(8, create(b, "dev-sam"))).is_applied());
        assert_eq!(s.process_by_alias("dev-sam").map(|p| p.fid), Some(b));
        // The killed record is still there for history, until deleted.
        assert_eq!(s.process(&a).map(|p| p.state), Some(ProcessState::Killed));
        // A FID cannot be reused.
        assert_eq!(
            rejected(s.apply(&req(9, create(a, "other-dev-sam")))),
            // The other alias might live in another shard; either rejection
            // is a refusal, but in this shard the FID check comes second.
            match shard_of("other-dev-sam", SHARDS) == shard_of("dev-sam", SHARDS) {
                true => Rejection::ProcessExists(a),
                false => Rejection::WrongShard {
                    alias: "other-dev-sam".into(),
                    expected: shard_of("other-dev-sam", SHARDS)
                },
            }
        );
    }

    #[test]
    fn processes_must_be_created_in_their_own_shard() {
        let own = shard_of("dev-sam", SHARDS);
        let other = (own + 1) % SHARDS;
        let mut s = CanonState::new(group_of_shard(other), SHARDS);
        assert_eq!(
            rejected(s.apply(&req(1, create(Fid::random(), "dev-sam")))),
            Rejection::WrongShard {
                alias: "dev-sam".into(),
                expected: own
            }
        );
        let mut meta = CanonState::new(META_GROUP, SHARDS);
        assert!(matches!(
            rejected(meta.apply(&req(1, create(Fid::random(), "dev-sam")))),
            Rejection::WrongGroup { .. }
        ));
        let mut shard = shard_state_for("x");
        assert!(matches!(
            rejected(shard.apply(&req(1, Command::ClusterCreated { shard_count: 4 }))),
            Rejection::WrongGroup { .. }
        ));
    }

    #[test]
    fn lifecycle_transitions_follow_the_rules() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        assert!(s.apply(&req(1, create(f, "p"))).is_applied());
        // Running → Killed directly is not allowed.
        assert_eq!(
            rejected(s.apply(&req(2, set_state(f, ProcessState::Killed)))),
            Rejection::BadTransition {
                fid: f,
                from: ProcessState::Running,
                to: ProcessState::Killed
            }
        );
        // Cannot kill while resources are bound.
        let lid = LogicalId::new(f, "vpc");
        assert!(s
            .apply(&req(
                3,
                Command::BindingSet {
                    resource: lid,
                    kind: ResourceKind::Vpc,
                    cloud_id: "vpc-1".into(),
                    region: None,
                    adopted: false,
                }
            ))
            .is_applied());
        assert!(s
            .apply(&req(4, set_state(f, ProcessState::Killing)))
            .is_applied());
        assert_eq!(
            rejected(s.apply(&req(5, set_state(f, ProcessState::Killed)))),
            Rejection::StillOwns {
                fid: f,
                bindings: 1
            }
        );
        assert!(s
            .apply(&req(6, Command::BindingCleared { resource: lid }))
            .is_applied());
        assert_eq!(
            rejected(s.apply(&req(7, Command::BindingCleared { resource: lid }))),
            Rejection::UnknownBinding(lid)
        );
        // Delete only once Killed.
        assert!(matches!(
            rejected(s.apply(&req(8, Command::ProcessDeleted { fid: f }))),
            Rejection::NotKilled { .. }
        ));
        assert!(s
            .apply(&req(9, set_state(f, ProcessState::Killed)))
            .is_applied());
        // Killed is terminal and refuses updates.
        assert!(!s
            .apply(&req(10, set_state(f, ProcessState::Running)))
            .is_applied());
        assert!(matches!(
            rejected(s.apply(&req(
                11,
                Command::ProcessUpdated {
                    fid: f,
                    composition: comp("v2"),
                    tick_interval_ms: None,
                }
            ))),
            Rejection::NotLive { .. }
        ));
        assert!(s
            .apply(&req(12, Command::ProcessDeleted { fid: f }))
            .is_applied());
        assert!(s.process(&f).is_none());
    }

    #[test]
    fn updates_bump_the_generation() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        let upd = Command::ProcessUpdated {
            fid: f,
            composition: comp("v2"),
            tick_interval_ms: None,
        };
        assert!(s.apply(&req(2, upd)).is_applied());
        let p = s.process(&f).unwrap();
        assert_eq!(p.generation, 2);
        assert_eq!(p.composition, comp("v2"));
        assert_eq!(p.updated_at, 2);
        assert_eq!(p.created_at, 1);
    }

    #[test]
    fn tick_interval_is_set_at_creation_and_kept_unless_an_update_gives_one() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        let created = Command::ProcessCreated {
            imports: Default::default(),
            fid: f,
            alias: "p".into(),
            account: "acct".into(),
            composition: comp("v1"),
            tick_interval_ms: Some(5_000),
        };
        assert!(s.apply(&req(1, created)).is_applied());
        assert_eq!(s.process(&f).unwrap().tick_interval_ms, Some(5_000));
        let update = |tick| Command::ProcessUpdated {
            fid: f,
            composition: comp("v2"),
            tick_interval_ms: tick,
        };
        assert!(s.apply(&req(2, update(None))).is_applied());
        assert_eq!(s.process(&f).unwrap().tick_interval_ms, Some(5_000));
        assert!(s.apply(&req(3, update(Some(2_000)))).is_applied());
        assert_eq!(s.process(&f).unwrap().tick_interval_ms, Some(2_000));
    }

    #[test]
    fn commands_written_before_tick_intervals_existed_still_decode() {
        // The shape of the two commands in logs written by older releases.
        #[derive(Serialize)]
        enum OldCommand {
            ProcessCreated {
                fid: Fid,
                alias: String,
                account: String,
                composition: Composition,
            },
            ProcessUpdated {
                fid: Fid,
                composition: Composition,
            },
        }
        let f = Fid::random();
        let old = crate::codec::encode(&OldCommand::ProcessCreated {
            fid: f,
            alias: "p".into(),
            account: "acct".into(),
            composition: comp("v1"),
        })
        .unwrap();
        let new: Command = crate::codec::decode(&old).unwrap();
        assert_eq!(
            new,
            Command::ProcessCreated {
                imports: Default::default(),
                fid: f,
                alias: "p".into(),
                account: "acct".into(),
                composition: comp("v1"),
                tick_interval_ms: None,
            }
        );
        let old = crate::codec::encode(&OldCommand::ProcessUpdated {
            fid: f,
            composition: comp("v2"),
        })
        .unwrap();
        let new: Command = crate::codec::decode(&old).unwrap();
        assert!(matches!(
            new,
            Command::ProcessUpdated {
                tick_interval_ms: None,
                ..
            }
        ));
    }

    /// The count of passes an actor compares with its own: pass intents
    /// and the progress an older release wrote as one count, ticks and
    /// waits do not, and a record from before the count knows none.
    #[test]
    fn a_process_counts_the_passes_opened_on_it() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        assert!(s.apply(&req(2, started(f, 1, JobKind::Run))).is_applied());
        assert_eq!(s.process(&f).unwrap().passes, Some(0));
        let progress = |ticks, message: Option<&str>, opens_pass| Command::JobProgressed {
            fid: f,
            job: 1,
            ticks,
            message: message.map(str::to_string),
            opens_pass,
            planned: Vec::new(),
        };
        let passes = |s: &CanonState| s.process(&f).unwrap().passes;
        assert!(s
            .apply(&req(3, progress(1, Some("creating"), true)))
            .is_applied());
        assert_eq!(passes(&s), Some(1));
        // Quiet ticks, a wait, a lease refresh: no pass.
        for (at, c) in [
            (4, progress(5, None, false)),
            (5, progress(0, Some("waiting for nat"), false)),
            (6, progress(0, None, false)),
        ] {
            assert!(s.apply(&req(at, c)).is_applied());
        }
        assert_eq!(passes(&s), Some(1));
        // A pass's intent as an older release wrote it.
        assert!(s
            .apply(&req(7, progress(1, Some("creating"), false)))
            .is_applied());
        assert_eq!(passes(&s), Some(2));
        // The mark is left out of an entry without it, and read back.
        let unmarked = crate::codec::encode(&progress(1, None, false)).unwrap();
        let marked = crate::codec::encode(&progress(1, None, true)).unwrap();
        assert!(unmarked.len() < marked.len());
        assert_eq!(
            crate::codec::decode::<Command>(&marked).unwrap(),
            progress(1, None, true)
        );
        // A record from a snapshot written before the count: unknown, and
        // it stays unknown.
        let mut old = s.process(&f).unwrap().clone();
        old.passes = None;
        let mut value = serde_json::to_value(&old).unwrap();
        value.as_object_mut().unwrap().remove("passes");
        let mut old: ProcessRecord = serde_json::from_value(value).unwrap();
        assert_eq!(old.passes, None);
        old.count_pass(1, Some("creating"), true);
        assert_eq!(old.passes, None);
    }

    #[test]
    fn job_state_transitions() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        let start = |job, kind| started(f, job, kind);
        assert!(s.apply(&req(2, start(1, JobKind::Run))).is_applied());
        assert_eq!(
            rejected(s.apply(&req(3, start(1, JobKind::Run)))),
            Rejection::JobExists { fid: f, job: 1 }
        );
        // A second RUN/UPDATE/KILL must wait; SYSTEM may run beside it.
        assert_eq!(
            rejected(s.apply(&req(3, start(2, JobKind::Update)))),
            Rejection::JobBusy { fid: f, busy: 1 }
        );
        assert!(s.apply(&req(3, start(3, JobKind::System))).is_applied());
        let progress = |job, ticks| Command::JobProgressed {
            fid: f,
            job,
            ticks,
            message: None,
            opens_pass: false,
            planned: Vec::new(),
        };
        assert!(s.apply(&req(4, progress(3, 5))).is_applied());
        assert!(s.apply(&req(5, progress(3, 2))).is_applied());
        assert_eq!(s.process(&f).unwrap().jobs[&3].ticks, 7);
        assert_eq!(
            rejected(s.apply(&req(
                6,
                Command::JobFinished {
                    fid: f,
                    job: 1,
                    status: JobStatus::InProgress,
                    message: String::new()
                }
            ))),
            Rejection::NotAFinalStatus
        );
        let finish = |job, status| Command::JobFinished {
            fid: f,
            job,
            status,
            message: "done".into(),
        };
        assert!(s
            .apply(&req(7, finish(1, JobStatus::Succeeded)))
            .is_applied());
        let j = &s.process(&f).unwrap().jobs[&1];
        assert_eq!(
            (j.status, j.started, j.updated),
            (JobStatus::Succeeded, 2, 7)
        );
        assert_eq!(
            rejected(s.apply(&req(8, finish(1, JobStatus::Failed)))),
            Rejection::JobFinished { fid: f, job: 1 }
        );
        assert_eq!(
            rejected(s.apply(&req(8, progress(1, 1)))),
            Rejection::JobFinished { fid: f, job: 1 }
        );
        assert_eq!(
            rejected(s.apply(&req(8, progress(9, 1)))),
            Rejection::UnknownJob { fid: f, job: 9 }
        );
        // Now the UPDATE can start.
        assert!(s.apply(&req(9, start(2, JobKind::Update))).is_applied());
    }

    #[test]
    fn drift_opens_and_heals_once() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        let open = opened(f, 1);
        assert!(s.apply(&req(2, open.clone())).is_applied());
        assert!(matches!(
            rejected(s.apply(&req(3, open))),
            Rejection::DriftExists { .. }
        ));
        let heal = Command::DriftHealed { fid: f, drift: 1 };
        assert!(s.apply(&req(4, heal.clone())).is_applied());
        assert_eq!(s.process(&f).unwrap().drift[&1].healed_at, Some(4));
        assert_eq!(s.process(&f).unwrap().drift[&1].detected_at, 2);
        assert!(matches!(
            rejected(s.apply(&req(5, heal))),
            Rejection::AlreadyHealed { .. }
        ));
    }

    #[test]
    fn an_event_suspicion_keeps_its_earliest_time_until_a_look_settles_it() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        let suspect = |at| Command::DriftSuspected {
            fid: f,
            event_at: at,
            by: Some(format!("arn:aws:iam::1:user/u{at}")),
        };
        assert!(s.apply(&req(2, suspect(1_500))).is_applied());
        assert!(s.apply(&req(3, suspect(1_200))).is_applied());
        assert!(s.apply(&req(4, suspect(1_900))).is_applied());
        assert_eq!(s.process(&f).unwrap().suspected, Some(1_200));
        assert_eq!(
            s.process(&f).unwrap().suspected_by.as_deref(),
            Some("arn:aws:iam::1:user/u1200"),
            "the earliest event's caller"
        );
        // A tick's drift leaves it; the event's look settles it.
        assert!(s.apply(&req(5, opened(f, 1))).is_applied());
        assert_eq!(s.process(&f).unwrap().suspected, Some(1_200));
        let by_event = opened_by(
            f,
            2,
            DetectedBy::Event {
                at: 1_200,
                by: Some("arn:aws:iam::1:user/u1200".into()),
            },
        );
        assert!(s.apply(&req(6, by_event)).is_applied());
        let p = s.process(&f).unwrap();
        assert_eq!(p.suspected, None);
        assert_eq!(p.drift[&2].detected_by.event_at(), Some(1_200));
        assert_eq!(
            p.drift[&2].detected_by.changed_by(),
            Some("arn:aws:iam::1:user/u1200")
        );
        assert_eq!(p.suspected_by, None);
        assert_eq!(p.drift[&1].detected_by, DetectedBy::Tick);
        // A look that finds nothing clears it too.
        assert!(s.apply(&req(7, suspect(3_000))).is_applied());
        assert!(s
            .apply(&req(8, Command::SuspicionCleared { fid: f }))
            .is_applied());
        assert_eq!(s.process(&f).unwrap().suspected, None);
        // A process that is killed is not poked.
        for (at, state) in [(9, ProcessState::Killing), (10, ProcessState::Killed)] {
            assert!(s.apply(&req(at, set_state(f, state))).is_applied());
        }
        assert!(!s.apply(&req(11, suspect(4_000))).is_applied());
    }

    #[test]
    fn replaying_a_command_id_applies_it_once() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        s.apply(&req(1, create(f, "p")));
        s.apply(&req(
            2,
            Command::JobStarted {
                fid: f,
                job: 1,
                kind: JobKind::System,
                message: String::new(),
            },
        ));
        let tick = req(
            3,
            Command::JobProgressed {
                fid: f,
                job: 1,
                ticks: 1,
                message: None,
                opens_pass: false,
                planned: Vec::new(),
            },
        );
        assert!(s.apply(&tick).is_applied());
        assert!(s.apply(&tick).is_applied());
        assert!(s.apply(&tick).is_applied());
        assert_eq!(s.process(&f).unwrap().jobs[&1].ticks, 1);
        // A rejected command is answered the same way again, even if the
        // state would now accept it.
        let g = Fid::random();
        let early = req(
            4,
            Command::ProcessUpdated {
                fid: g,
                composition: comp("x"),
                tick_interval_ms: None,
            },
        );
        assert_eq!(rejected(s.apply(&early)), Rejection::UnknownProcess(g));
        assert_eq!(rejected(s.apply(&early)), Rejection::UnknownProcess(g));
        assert_eq!(
            s.answer_of(&early.id),
            Some(Response::Rejected(Rejection::UnknownProcess(g)))
        );
        // A command id applied again in a later entry is answered with the
        // first entry's index.
        let logged = req(5, Command::Noop);
        let first = s.apply_at(&logged, Some(EntryAt { term: 2, index: 17 }));
        let again = s.apply_at(&logged, Some(EntryAt { term: 3, index: 40 }));
        assert_eq!(first.index, 17);
        assert_eq!(again, first);
        assert_eq!(s.index_of(&logged.id), Some(17));
    }

    #[test]
    fn fenced_commands_apply_only_in_their_term() {
        let mut s = shard_state_for("p");
        let f = Fid::random();
        let mk = |term| Request::fenced(term, 1, create(f, "p"));
        let at = |index| Some(EntryAt { term: 4, index });
        assert_eq!(
            rejected(s.apply_at(&mk(3), at(1)).response),
            Rejection::Fenced { fence: 3, term: 4 }
        );
        assert!(s.process(&f).is_none());
        assert!(s.apply_at(&mk(4), at(2)).response.is_applied());
    }

    #[test]
    fn dedup_memory_is_bounded_by_time() {
        let mut s = shard_state_for("p");
        let first = req(0, Command::Noop);
        s.apply(&first);
        assert!(s.answer_of(&first.id).is_some());
        s.apply(&req(DEDUP_WINDOW_MS + 1, Command::Noop));
        assert!(s.answer_of(&first.id).is_none());
        assert_eq!(s.applied, 2);
        assert_eq!(s.clock, DEDUP_WINDOW_MS + 1);
    }

    #[test]
    fn a_burst_never_pushes_out_ids_a_live_envelope_may_carry() {
        let mut s = shard_state_for("p");
        let first = req(0, Command::Noop);
        s.apply(&first);
        for _ in 0..DEDUP_MAX_IDS + 10 {
            s.apply(&req(1, Command::Noop));
        }
        // Over the count, but within any envelope's life: still answered.
        let live_until = ENVELOPE_TTL_MAX_MS + 2 * ENVELOPE_SKEW_MAX_MS;
        s.apply(&req(live_until, Command::Noop));
        assert!(s.answer_of(&first.id).is_some());
        // Once no envelope can carry it, the count pushes it out.
        s.apply(&req(live_until + 2, Command::Noop));
        assert!(s.answer_of(&first.id).is_none());
        assert!(s.dedup.len() <= DEDUP_MAX_IDS + 1);
    }

    #[test]
    fn same_log_same_state() {
        let f = Fid::random();
        let log = [
            req(1, create(f, "p")),
            req(2, set_state(f, ProcessState::Suspended)),
            req(3, set_state(f, ProcessState::Killed)),
            req(4, set_state(f, ProcessState::Running)),
        ];
        let mut a = shard_state_for("p");
        let mut b = shard_state_for("p");
        let ra: Vec<_> = log.iter().map(|r| a.apply(r)).collect();
        let rb: Vec<_> = log.iter().map(|r| b.apply(r)).collect();
        assert_eq!(ra, rb);
        assert_eq!(a, b);
        // And the state survives encoding (snapshots), its derived
        // indexes rebuilt as a snapshot's are.
        let bytes = crate::codec::encode(&a).unwrap();
        assert_eq!(CanonState::decode(&bytes).unwrap(), a);
    }

    #[test]
    fn meta_group_rules() {
        let mut m = CanonState::new(META_GROUP, SHARDS);
        assert_eq!(
            rejected(m.apply(&req(1, Command::ClusterCreated { shard_count: 0 }))),
            Rejection::NoShards
        );
        assert!(m
            .apply(&req(1, Command::ClusterCreated { shard_count: 4 }))
            .is_applied());
        assert_eq!(
            rejected(m.apply(&req(2, Command::ClusterCreated { shard_count: 8 }))),
            Rejection::ShardCountFixed(4)
        );
        for n in 1..=3 {
            let set = Command::MemberSet {
                node: n,
                addr: format!("127.0.0.1:{n}"),
            };
            assert!(m.apply(&req(2, set)).is_applied());
        }
        let moved = Command::MemberSet {
            node: 1,
            addr: "10.0.0.1:1".into(),
        };
        assert!(m.apply(&req(5, moved)).is_applied());
        assert_eq!(m.meta.members[&1].since, 2);
        assert_eq!(m.meta.members[&1].addr, "10.0.0.1:1");
        let place = |shard, replicas: Vec<NodeId>| Command::ShardPlaced { shard, replicas };
        assert!(m.apply(&req(6, place(0, vec![1, 2, 3]))).is_applied());
        assert_eq!(
            rejected(m.apply(&req(6, place(4, vec![1])))),
            Rejection::NoSuchShard { shard: 4, count: 4 }
        );
        assert_eq!(
            rejected(m.apply(&req(6, place(1, vec![1, 9])))),
            Rejection::UnknownMember(9)
        );
        assert!(m
            .apply(&req(7, Command::MemberRemoved { node: 3 }))
            .is_applied());
        assert_eq!(
            rejected(m.apply(&req(7, Command::MemberRemoved { node: 3 }))),
            Rejection::UnknownMember(3)
        );
        assert_eq!(m.meta.placement[&0], vec![1, 2, 3]);
    }

    #[test]
    fn a_bench_put_stores_its_value_in_any_group_and_survives_a_snapshot() {
        let mut s = CanonState::new(group_of_shard(1), SHARDS);
        let put = |at, value: &[u8]| {
            req(
                at,
                Command::BenchPut {
                    key: 7,
                    value: value.to_vec(),
                },
            )
        };
        assert!(s.apply(&put(1, b"first")).is_applied());
        assert!(s.apply(&put(2, b"second")).is_applied());
        assert_eq!(s.bench_values.len(), 1);
        assert_eq!(s.bench_values[&7].as_slice(), b"second");
        let image: CanonState = crate::codec::decode(&crate::codec::encode(&s).unwrap()).unwrap();
        assert_eq!(image.bench_values, s.bench_values);
        // The meta group takes it too (a bench may write any group), and a
        // state that never saw one writes no table into its snapshots.
        let mut meta = CanonState::new(META_GROUP, SHARDS);
        let empty = crate::codec::encode(&meta).unwrap();
        assert!(meta.apply(&put(3, b"x")).is_applied());
        assert!(crate::codec::encode(&meta).unwrap().len() > empty.len());
        assert!(!String::from_utf8_lossy(&empty).contains("bench_values"));
    }
}
