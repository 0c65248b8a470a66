//! The commands of Canon's replicated log and their responses.
//!
//! # Versioning
//! Commands are stored in the log (and so read back by every later release)
//! through [`crate::codec`], which is self-describing: enum variants and
//! fields are identified by name. The compatibility rules are therefore:
//! - add variants and fields, never rename or remove them;
//! - a new field must be `Option` or carry `#[serde(default)]`;
//! - a newer node must apply an old command exactly as the old node did.
//!
//! Log entries are written by [`crate::entry_codec`], which lays out
//! [`Request`] (and `Noop` and `BenchPut`) itself and every other command
//! as the codec's CBOR, so these rules hold for commands; a field added to
//! `Request`, `Principal` or `DoorContext` also needs a flag bit there.
//!
//! A golden test below decodes a command written in the first format.
//!
//! # Determinism
//! Every input to the state machine is in the command: the proposer picks the
//! time (`at`) and the id; replicas never read a clock or a random source.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use canon_model::{
    DetectedBy, Fid, JobKind, JobStatus, LogicalId, ProcessProperty, ProcessState, Region,
    ReplacedInstance, ResourceKind, RotationScope, UnixMillis,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::DoorContext;
use crate::ids::NodeId;
use crate::policy_command::{PolicyChange, Principal};
use canon_trust::audit::Channel;

/// Identifies a command so that a retried proposal applies once: the state
/// machine remembers recent ids and answers a repeat with the first answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub Uuid);

impl CommandId {
    /// A fresh random id (for proposers; never called while applying).
    pub fn random() -> Self {
        CommandId(Uuid::new_v4())
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// One entry of the replicated log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// For idempotent replay.
    pub id: CommandId,
    /// When the proposer issued it; the state machine's only clock.
    pub at: UnixMillis,
    pub command: Command,
    /// If set, the command applies only if its log entry was written by the
    /// leader of this term: a fence for work started under one leadership
    /// (a node that lost and regained leadership has a new term).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
    /// Who sent it, when a user's signed command caused it (the API's
    /// proposals); none for the conductor's own writes. The meta group
    /// authorises policy changes against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Behind a pointer: most requests have none, and every request is
    /// moved around. Shared (`Arc`): a follower decoding a batch gives
    /// every request of the same user one principal
    /// ([`crate::entry_codec`]) instead of allocating it per request.
    pub principal: Option<Arc<Principal>>,
    /// What the node's door knew of a user's command (action, decision,
    /// request hash), for its audit record; none for the conductor's own
    /// writes. Boxed for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub door: Option<Box<DoorContext>>,
}

impl Request {
    /// A request with a fresh id.
    pub fn new(at: UnixMillis, command: Command) -> Self {
        Request {
            id: CommandId::random(),
            at,
            command,
            fence: None,
            principal: None,
            door: None,
        }
    }

    /// This request, sent by `principal`.
    pub fn by(self, principal: Principal) -> Self {
        Request {
            principal: Some(Arc::new(principal)),
            ..self
        }
    }

    /// This request, with what the door knew of it.
    pub fn with_door(self, door: DoorContext) -> Self {
        Request {
            door: Some(Box::new(door)),
            ..self
        }
    }

    /// A rough size in bytes, for bounding batches.
    pub fn approx_size(&self) -> usize {
        const BASE: usize = 128;
        BASE + match &self.command {
            Command::ProcessCreated {
                alias,
                account,
                composition,
                imports,
                ..
            } => {
                alias.len()
                    + account.len()
                    + composition.bytes.len()
                    + composition.source_hash.len()
                    + imports.values().map(|c| 64 + c.len()).sum::<usize>()
            }
            Command::ProcessUpdated { composition, .. } => {
                composition.bytes.len() + composition.source_hash.len()
            }
            Command::JobStarted { message, .. } | Command::JobFinished { message, .. } => {
                message.len()
            }
            Command::JobProgressed {
                message, planned, ..
            } => {
                message.as_ref().map_or(0, String::len)
                    + planned.iter().map(PlannedCall::approx_size).sum::<usize>()
            }
            Command::BenchPut { value, .. } => value.len(),
            Command::BindingSet { cloud_id, .. } => cloud_id.len(),
            Command::DriftOpened {
                property,
                declared,
                observed,
                violates,
                ..
            } => {
                property.len()
                    + declared.as_ref().map_or(0, String::len)
                    + observed.as_ref().map_or(0, String::len)
                    + violates.iter().map(String::len).sum::<usize>()
            }
            Command::ShardPlaced { replicas, .. } => replicas.len() * 8,
            Command::MemberSet { addr, .. } => addr.len(),
            Command::ValidationSet { name, file, text } => name.len() + file.len() + text.len(),
            Command::PolicyChanged {
                change: PolicyChange::Put { document, .. },
            } => document.to_toml().len(),
            Command::CloudCalled {
                request,
                cloud_id,
                region,
                outcome,
                aws_request_ids,
                ..
            } => {
                request.len()
                    + cloud_id.as_ref().map_or(0, String::len)
                    + region.len()
                    + outcome.len()
                    + aws_request_ids.iter().map(String::len).sum::<usize>()
            }
            Command::AuditRefused { refusal } => refusal.approx_size(),
            _ => 0,
        }
    }

    /// A request with a fresh id, fenced to leadership term `term`.
    pub fn fenced(term: u64, at: UnixMillis, command: Command) -> Self {
        Request {
            fence: Some(term),
            ..Request::new(at, command)
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.at, self.command.name())
    }
}

/// The payload of one log entry: requests proposed together (concurrent
/// proposals are batched so that one log write and one round of
/// replication carry many of them). Applied in order; each gets its own
/// response. Shared, so that the log's copies of an entry (kept decoded,
/// handed to replication and to the state machine) cost a pointer.
///
/// It also keeps its requests' compact encoding once made
/// ([`crate::entry_codec`]): the leader encodes an entry once, for its own
/// log write, and sends those same bytes to every follower, which writes
/// what it received to its log without encoding it again.
///
/// Through serde (the CBOR of the first format, JSON) it is the list of its
/// requests, exactly as the `Batch(Vec<Request>)` it was before it was
/// shared.
#[derive(Clone)]
pub struct Batch(Arc<BatchInner>);

struct BatchInner {
    requests: Box<[Request]>,
    /// The compact encoding of `requests`, set once by the entry codec.
    encoded: OnceLock<Box<[u8]>>,
}

impl Batch {
    /// The requests, in proposal (and apply) order.
    pub fn requests(&self) -> &[Request] {
        &self.0.requests
    }

    /// A batch whose compact encoding is already known (decoded from it).
    pub(crate) fn with_encoding(requests: Vec<Request>, encoded: Box<[u8]>) -> Self {
        Batch(Arc::new(BatchInner {
            requests: requests.into_boxed_slice(),
            encoded: OnceLock::from(encoded),
        }))
    }

    /// Where the entry codec keeps this batch's compact encoding.
    pub(crate) fn encoding_cell(&self) -> &OnceLock<Box<[u8]>> {
        &self.0.encoded
    }
}

impl From<Vec<Request>> for Batch {
    fn from(requests: Vec<Request>) -> Self {
        Batch(Arc::new(BatchInner {
            requests: requests.into_boxed_slice(),
            encoded: OnceLock::new(),
        }))
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.requests() == other.requests()
    }
}

impl Eq for Batch {}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Batch").field(&self.requests()).finish()
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.requests().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Request>::deserialize(deserializer).map(Batch::from)
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch of {}", self.requests().len())
    }
}

/// A compiled composition as the language crate serialises it, plus the hash
/// of its source. Opaque here.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Composition {
    /// A CBOR byte string (half the size of the integer array a plain
    /// `Vec<u8>` makes, and one copy to decode: a composition can be
    /// hundreds of KiB, and an entry must replicate within a heartbeat).
    /// Entries written as the array still decode.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    pub source_hash: String,
}

impl fmt::Debug for Composition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composition")
            .field("bytes", &self.bytes.len())
            .field("source_hash", &self.source_hash)
            .finish()
    }
}

/// A change to replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Does nothing (leadership checks, benchmarks).
    Noop,
    /// Stores `value` under `key` in the group's bench table
    /// ([`crate::CanonState::bench_values`]), replacing what was there: the
    /// raft benchmark's write, so that it costs what storing a user's value
    /// costs, like an etcd `Put` (issue #19's like-for-like comparison).
    /// Peers and tools holding the peer transport propose it; the API's
    /// door never builds it from a user's command.
    BenchPut {
        key: u64,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },

    // ---- shard groups: processes ----
    /// A new process; claims `alias`, which must not name a live process.
    ProcessCreated {
        fid: Fid,
        alias: String,
        account: String,
        composition: Composition,
        /// Time between enforcement ticks; `None`: the node's default.
        /// (Absent in logs written before it existed.)
        #[serde(default)]
        tick_interval_ms: Option<u64>,
        /// `canon run --import`: the existing cloud resource each
        /// declaration adopts (`canon_model::import`), which the RUN job
        /// tags as the process's before it plans. Empty for a plain run
        /// (and in logs written before import existed).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        imports: BTreeMap<LogicalId, String>,
    },
    /// A live process gets a new compiled composition (and, when given, a
    /// new tick interval; `None` keeps the current one).
    ProcessUpdated {
        fid: Fid,
        composition: Composition,
        #[serde(default)]
        tick_interval_ms: Option<u64>,
    },
    /// Lifecycle: Running ⇄ Suspended, either → Killing, Killing → Killed
    /// (only once it owns no bindings), Killing → Running (kill abandoned).
    ProcessStateChanged { fid: Fid, state: ProcessState },
    /// Forget a Killed process and its history.
    ProcessDeleted { fid: Fid },
    /// A job starts. At most one RUN/UPDATE/KILL job is in progress per
    /// process; SYSTEM jobs may run beside it.
    JobStarted {
        fid: Fid,
        job: u64,
        kind: JobKind,
        message: String,
    },
    /// An in-progress job ran `ticks` more passes; `message` replaces the
    /// job's message when given.
    JobProgressed {
        fid: Fid,
        job: u64,
        ticks: u64,
        message: Option<String>,
        /// This is the intent of a pass about to call the cloud: it counts
        /// in the process's [`passes`](crate::state::ProcessRecord::passes),
        /// from which an actor tells whether every pass that may have sent
        /// a create was its own. Absent (false) in entries written before it
        /// existed, and in progress that calls nothing (ticks, a lease
        /// refresh, a wait).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        opens_pass: bool,
        /// The cloud calls the pass it opens will make, in order: the
        /// pass's intent names each mutation before it is sent, and is
        /// audited (`conductor.pass-planned`). Empty in entries written
        /// before it existed, and in progress that opens no pass.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        planned: Vec<PlannedCall>,
    },
    /// An in-progress job ends.
    JobFinished {
        fid: Fid,
        job: u64,
        status: JobStatus,
        message: String,
    },
    /// A declared resource is bound to a cloud resource (replaces a previous
    /// binding of the same logical id).
    BindingSet {
        resource: LogicalId,
        kind: ResourceKind,
        cloud_id: String,
        /// Where it lives: the actor keeps looking there after the
        /// declaration leaves the region, so what is held there is deleted
        /// (or released) and not forgotten. Absent in older logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<Region>,
        /// The resource was found by its ownership tag, not in the answer
        /// of a create this binding follows (an adoption, decision 0005):
        /// audited (`conductor.adopt`). False in older logs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        adopted: bool,
    },
    /// A logical resource no longer has a cloud resource.
    BindingCleared { resource: LogicalId },
    /// Drift found on a Running process.
    DriftOpened {
        fid: Fid,
        drift: u64,
        resource: LogicalId,
        kind: ResourceKind,
        cloud_id: Option<String>,
        property: String,
        declared: Option<String>,
        observed: Option<String>,
        /// The organisation's validations the drift breaks
        /// (`MODULE.validation`). Absent in logs written before drift
        /// was labelled.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        violates: Vec<String>,
        /// What found it (absent in logs written before events poked
        /// processes: the tick).
        #[serde(default)]
        detected_by: DetectedBy,
    },
    /// The heal of a drift event finished (at the request's time).
    DriftHealed { fid: Fid, drift: u64 },
    /// A cloud event (a CloudTrail call seen on the events queue, made at
    /// `event_at`) named a resource of this process: its leader's actor
    /// looks at once, outside its tick.
    DriftSuspected {
        fid: Fid,
        event_at: UnixMillis,
        /// Who made the call (the caller's ARN), when the event says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The look a `DriftSuspected` asked for found nothing (twice: EC2
    /// reads lag): the suspicion is dropped.
    SuspicionCleared { fid: Fid },

    // ---- meta group: cluster ----
    /// Fixes the shard count; once only.
    ClusterCreated { shard_count: u32 },
    /// A member joins or changes address.
    MemberSet { node: NodeId, addr: String },
    /// A member leaves.
    MemberRemoved { node: NodeId },
    /// The replicas of a shard.
    ShardPlaced { shard: u32, replicas: Vec<NodeId> },
    /// The trust policy changes; authorised against the policy in force at
    /// this log index for the request's principal (see [`crate::policy`]).
    PolicyChanged { change: PolicyChange },
    /// A one-time join token was issued (`canon cluster join-token`,
    /// authorised at the door by `cluster.join`): only its SHA-256 is in
    /// the log. It admits one node (`node`, or any id) until `expires_at`.
    JoinTokenIssued {
        hash: String,
        expires_at: UnixMillis,
        #[serde(default)]
        node: Option<NodeId>,
    },
    /// Node `node` presented the token with SHA-256 `hash` to join a
    /// cluster that runs without TLS: spends it (see
    /// [`crate::state::CanonState`]'s join token rules).
    JoinTokenRedeemed { hash: String, node: NodeId },

    // ---- audit only: these change nothing but the group's audit chain ----
    /// The conductor made a cloud request on its own (a job's or a heal's):
    /// shard groups. Proposed by the process actor after the call.
    CloudCalled {
        fid: Fid,
        job: u64,
        /// The request type (`CreateVpc`).
        request: String,
        resource: LogicalId,
        /// The cloud id it created or acted on, when known.
        #[serde(default)]
        cloud_id: Option<String>,
        region: String,
        /// `ok`, `already done`, or the cloud's error.
        outcome: String,
        /// The cloud's request ids, where the adapter reports them.
        #[serde(default)]
        aws_request_ids: Vec<String>,
    },
    /// A pass whose intent named calls that have no `CloudCalled` record
    /// ended without them: its actor was cut off (a crash, a lost
    /// leadership, a failed call) between a call and the commit of its
    /// answer. Proposed by the next tick of the process (of this actor or
    /// a new one) that finds the pass open, or by the actor that stops it
    /// on a failed call; the record lists the calls that may have been made
    /// unrecorded (`conductor.pass-interrupted`).
    PassInterrupted {
        fid: Fid,
        job: u64,
        /// Of the calls left unanswered, the last `unsent` were never sent:
        /// the actor that ran the pass stopped before them (it knows; a
        /// later tick does not: 0, all may have been made).
        #[serde(default, skip_serializing_if = "is_zero")]
        unsent: u64,
    },
    /// The node's door refused a command before proposing anything
    /// (forged, stale, unauthorised): meta group.
    AuditRefused { refusal: Box<DoorRefusal> },
    /// Retention: the group's audit records up to and including `through`
    /// are dropped, the last one kept as the chain's anchor. Any group.
    AuditTrimmed { through: u64 },
    /// Retention: every process of the group folds its finished jobs and
    /// healed drift events past `limits` into counts. Any group.
    HistoryTrimmed { limits: HistoryLimits },

    // ---- shard groups: processes (continued) ----
    /// A live process's property changes (`canon property`): enforcement
    /// (heal drift, or only detect it) or its lock (refuse update and
    /// kill).
    ProcessPropertySet { fid: Fid, property: ProcessProperty },
    // ---- meta group: organisation policy (issue #20 §4) ----
    /// A validation module is stored under `name` (replacing one of that
    /// name): its text and the file name its diagnostics show. Authorised
    /// at the door (`validation.add`), which also checked it compiles.
    ValidationSet {
        name: String,
        file: String,
        text: String,
    },
    /// The validation module `name` is dropped (`validation.remove`).
    ValidationRemoved { name: String },

    // ---- shard groups: processes (continued; issue #18) ----
    /// A rotation is requested (`canon fleet rotate`): every instance of
    /// the process in `scope` launched before this request's time is to
    /// be replaced (the request's `at` is the time, so every replica
    /// agrees). Running or Suspended processes only.
    RotationRequested { fid: Fid, scope: RotationScope },
    /// The process's rotation requests made at or before `through` are
    /// done (the actor found no instance they cover still bound).
    RotationDone { fid: Fid, through: UnixMillis },
    /// Job `job` replaces an instance (launching its successor), for the
    /// reason it names: a row of the replacement history. Recorded once
    /// per replaced cloud instance (a pass that retries the launch records
    /// nothing more).
    InstanceReplaced {
        fid: Fid,
        job: u64,
        replaced: ReplacedInstance,
    },
    /// A fleet member's new instance `cloud_id` failed its checks and was
    /// terminated, the old one kept: one more failure in a row for
    /// `resource` (the same instance counts once). Backs its next
    /// replacement off, and parks its fleet at `PARK_AFTER`.
    RolloutFailed {
        fid: Fid,
        resource: LogicalId,
        cloud_id: String,
        /// The member's path in the composition, for people.
        #[serde(default)]
        name: String,
    },
    /// A member with failures got a replacement that is ready: they are
    /// forgotten.
    RolloutRecovered { fid: Fid, resource: LogicalId },
}

/// The limits one [`Command::HistoryTrimmed`] applies to every process of
/// its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLimits {
    /// Finished jobs each process keeps, newest first (none: all).
    pub keep_jobs: Option<u64>,
    /// Healed drift events whose heal is older than this command time are
    /// folded (none: all are kept).
    pub drift_healed_before: Option<UnixMillis>,
}

impl fmt::Display for HistoryLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.keep_jobs {
            Some(n) => write!(f, "jobs past the newest {n} folded")?,
            None => f.write_str("jobs kept")?,
        }
        match self.drift_healed_before {
            Some(t) => write!(f, "; drift healed before {t} folded"),
            None => f.write_str("; drift kept"),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One cloud call a pass plans, as its intent names it
/// ([`Command::JobProgressed`]'s `planned`): what the pass's `CloudCalled`
/// for it will say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCall {
    /// The request type (`aws.ec2.create_vpc`).
    pub request: String,
    /// The declared resource it serves.
    pub resource: LogicalId,
    pub region: String,
}

impl PlannedCall {
    fn approx_size(&self) -> usize {
        self.request.len() + 32 + self.region.len()
    }

    /// Whether `CloudCalled` of `request` on `resource` answers it.
    pub fn answered_by(&self, request: &str, resource: &LogicalId) -> bool {
        self.request == request && self.resource == *resource
    }
}

impl fmt::Display for PlannedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.request, self.resource, self.region)
    }
}

/// A command the door refused, as [`Command::AuditRefused`] records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorRefusal {
    /// The user the envelope names (unverified when the signature failed).
    pub user: String,
    /// The key whose signature verified, if one did.
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub root: bool,
    pub channel: Channel,
    /// The action the command asked for, when it decoded that far.
    pub action: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    /// Why it was refused.
    pub reason: String,
    #[serde(default)]
    pub policy_version: Option<u64>,
    #[serde(default)]
    pub request_hash: Option<String>,
    /// Refusals this node did not record (rate limit) since its last
    /// recorded one.
    #[serde(default)]
    pub dropped: u64,
    /// SHA-256 of the client's TLS certificate, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
}

impl DoorRefusal {
    fn approx_size(&self) -> usize {
        self.user.len()
            + self.key_id.as_ref().map_or(0, String::len)
            + self.action.len()
            + self.account.as_ref().map_or(0, String::len)
            + self.alias.as_ref().map_or(0, String::len)
            + self.reason.len()
            + self.request_hash.as_ref().map_or(0, String::len)
            + self.cert_fingerprint.as_ref().map_or(0, String::len)
    }
}

impl Command {
    /// The variant's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Noop => "Noop",
            Command::BenchPut { .. } => "BenchPut",
            Command::ProcessCreated { .. } => "ProcessCreated",
            Command::ProcessUpdated { .. } => "ProcessUpdated",
            Command::ProcessStateChanged { .. } => "ProcessStateChanged",
            Command::ProcessDeleted { .. } => "ProcessDeleted",
            Command::JobStarted { .. } => "JobStarted",
            Command::JobProgressed { .. } => "JobProgressed",
            Command::JobFinished { .. } => "JobFinished",
            Command::BindingSet { .. } => "BindingSet",
            Command::BindingCleared { .. } => "BindingCleared",
            Command::DriftOpened { .. } => "DriftOpened",
            Command::DriftHealed { .. } => "DriftHealed",
            Command::DriftSuspected { .. } => "DriftSuspected",
            Command::SuspicionCleared { .. } => "SuspicionCleared",
            Command::ClusterCreated { .. } => "ClusterCreated",
            Command::MemberSet { .. } => "MemberSet",
            Command::MemberRemoved { .. } => "MemberRemoved",
            Command::ShardPlaced { .. } => "ShardPlaced",
            Command::PolicyChanged { .. } => "PolicyChanged",
            Command::JoinTokenIssued { .. } => "JoinTokenIssued",
            Command::JoinTokenRedeemed { .. } => "JoinTokenRedeemed",
            Command::CloudCalled { .. } => "CloudCalled",
            Command::PassInterrupted { .. } => "PassInterrupted",
            Command::AuditRefused { .. } => "AuditRefused",
            Command::AuditTrimmed { .. } => "AuditTrimmed",
            Command::HistoryTrimmed { .. } => "HistoryTrimmed",
            Command::ProcessPropertySet { .. } => "ProcessPropertySet",
            Command::ValidationSet { .. } => "ValidationSet",
            Command::ValidationRemoved { .. } => "ValidationRemoved",
            Command::RotationRequested { .. } => "RotationRequested",
            Command::RotationDone { .. } => "RotationDone",
            Command::InstanceReplaced { .. } => "InstanceReplaced",
            Command::RolloutFailed { .. } => "RolloutFailed",
            Command::RolloutRecovered { .. } => "RolloutRecovered",
        }
    }

    /// The process a command changes, if any (audit-only commands change
    /// none).
    pub fn fid(&self) -> Option<Fid> {
        match self {
            Command::ProcessCreated { fid, .. }
            | Command::ProcessUpdated { fid, .. }
            | Command::ProcessStateChanged { fid, .. }
            | Command::ProcessDeleted { fid }
            | Command::JobStarted { fid, .. }
            | Command::JobProgressed { fid, .. }
            | Command::JobFinished { fid, .. }
            | Command::DriftOpened { fid, .. }
            | Command::DriftHealed { fid, .. }
            | Command::DriftSuspected { fid, .. }
            | Command::SuspicionCleared { fid }
            | Command::ProcessPropertySet { fid, .. }
            | Command::RotationRequested { fid, .. }
            | Command::RotationDone { fid, .. }
            | Command::InstanceReplaced { fid, .. }
            | Command::RolloutFailed { fid, .. }
            | Command::RolloutRecovered { fid, .. }
            | Command::PassInterrupted { fid, .. } => Some(*fid),
            Command::BindingSet { resource, .. } | Command::BindingCleared { resource } => {
                Some(resource.fid)
            }
            Command::Noop
            | Command::BenchPut { .. }
            | Command::ClusterCreated { .. }
            | Command::MemberSet { .. }
            | Command::MemberRemoved { .. }
            | Command::ShardPlaced { .. }
            | Command::PolicyChanged { .. }
            | Command::JoinTokenIssued { .. }
            | Command::JoinTokenRedeemed { .. }
            | Command::CloudCalled { .. }
            | Command::AuditRefused { .. }
            | Command::AuditTrimmed { .. }
            | Command::HistoryTrimmed { .. }
            | Command::ValidationSet { .. }
            | Command::ValidationRemoved { .. } => None,
        }
    }

    /// True for commands that change nothing but the audit chain.
    pub fn is_audit_only(&self) -> bool {
        matches!(
            self,
            Command::CloudCalled { .. }
                | Command::AuditRefused { .. }
                | Command::AuditTrimmed { .. }
        )
    }

    /// True for commands that any group accepts.
    pub fn is_any_group(&self) -> bool {
        matches!(
            self,
            Command::Noop
                | Command::BenchPut { .. }
                | Command::AuditTrimmed { .. }
                | Command::HistoryTrimmed { .. }
        )
    }

    /// True for commands of the meta group.
    pub fn is_meta(&self) -> bool {
        matches!(
            self,
            Command::ClusterCreated { .. }
                | Command::MemberSet { .. }
                | Command::MemberRemoved { .. }
                | Command::ShardPlaced { .. }
                | Command::PolicyChanged { .. }
                | Command::JoinTokenIssued { .. }
                | Command::JoinTokenRedeemed { .. }
                | Command::AuditRefused { .. }
                | Command::ValidationSet { .. }
                | Command::ValidationRemoved { .. }
        )
    }
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command changed state (or was a no-op by design).
    Applied,
    /// The command broke a rule; state is unchanged. Deterministic: every
    /// replica rejects it the same way.
    Rejected(Rejection),
}

impl Response {
    /// True if applied.
    pub fn is_applied(&self) -> bool {
        matches!(self, Response::Applied)
    }
}

/// A request's answer and the log index of the entry that first applied
/// its command id: this entry's, or, for a command id applied before (a
/// retry, a redelivered message), the first one's, with the first answer.
/// The index counts in the group the request went to; 0 when it is not
/// known (applied outside a log, or remembered from a snapshot written
/// before indexes were kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub response: Response,
    pub index: u64,
}

/// Where a log entry is: its leader's term and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryAt {
    pub term: u64,
    pub index: u64,
}

/// Why a command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("alias {alias:?} is taken by live process {by}")]
    AliasTaken { alias: String, by: Fid },
    #[error("alias {alias:?} belongs to shard {expected}, not this group")]
    WrongShard { alias: String, expected: u32 },
    #[error("{command} is not a command of this group")]
    WrongGroup { command: String },
    #[error("process {0} already exists")]
    ProcessExists(Fid),
    #[error("no process {0}")]
    UnknownProcess(Fid),
    #[error("process {fid} is {state}")]
    NotLive { fid: Fid, state: ProcessState },
    #[error("process {fid} cannot go from {from} to {to}")]
    BadTransition {
        fid: Fid,
        from: ProcessState,
        to: ProcessState,
    },
    #[error("process {fid} still owns {bindings} bound resources")]
    StillOwns { fid: Fid, bindings: usize },
    #[error("process {fid} is {state}; only a Killed or Released process can be deleted")]
    NotKilled { fid: Fid, state: ProcessState },
    #[error("job {job} of {fid} already exists")]
    JobExists { fid: Fid, job: u64 },
    #[error("job {busy} of {fid} is still in progress")]
    JobBusy { fid: Fid, busy: u64 },
    #[error("no job {job} of {fid}")]
    UnknownJob { fid: Fid, job: u64 },
    #[error("no open pass of job {job} of {fid}")]
    NoOpenPass { fid: Fid, job: u64 },
    #[error("job {job} of {fid} has finished")]
    JobFinished { fid: Fid, job: u64 },
    #[error("a job cannot finish as IN PROGRESS")]
    NotAFinalStatus,
    #[error("drift {drift} of {fid} already exists")]
    DriftExists { fid: Fid, drift: u64 },
    #[error("no drift {drift} of {fid}")]
    UnknownDrift { fid: Fid, drift: u64 },
    #[error("drift {drift} of {fid} is already healed")]
    AlreadyHealed { fid: Fid, drift: u64 },
    #[error("no binding for {0}")]
    UnknownBinding(LogicalId),
    #[error("the cluster already has {0} shards")]
    ShardCountFixed(u32),
    #[error("shard count must be at least 1")]
    NoShards,
    #[error("no member {0}")]
    UnknownMember(NodeId),
    #[error("shard {shard} is out of range (cluster has {count})")]
    NoSuchShard { shard: u32, count: u32 },
    #[error("fenced to term {fence} but written in term {term}")]
    Fenced { fence: u64, term: u64 },
    /// The principal may not do this; nothing changed.
    #[error("refused: user {user} may not {action} on {target}: {reason}")]
    Refused {
        user: String,
        action: String,
        target: String,
        /// The missing permission, or the deny rule that decided.
        reason: String,
    },
    /// A policy change would give someone more than its author holds.
    #[error("refused: {0}")]
    Escalation(String),
    /// A policy change written against another version.
    #[error("the policy is at version {actual}, not {expected}: read it again and reapply")]
    PolicyVersion { expected: u64, actual: u64 },
    /// The policy document the change would make is not valid.
    #[error("invalid policy: {0}")]
    PolicyInvalid(String),
    /// A join token that does not admit this node: unknown, expired, spent
    /// or made for another node.
    #[error("join refused: {0}")]
    JoinToken(String),
    /// The process is locked (`canon property ALIAS lock on`): it refuses
    /// update and kill until it is unlocked.
    #[error("process {alias} is locked: it refuses {refused} until unlocked with `canon property {alias} lock off`")]
    Locked { alias: String, refused: String },
    /// `ValidationRemoved` of a name no module is stored under.
    #[error("no validation module named {0:?}")]
    UnknownValidation(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command as the first release writes it (JSON, for readability; the
    /// log's CBOR is name-based in the same way). Later releases must still
    /// read it.
    const V1_JOB_STARTED: &str = r#"{
        "id": "6a1c5e0b-3f7d-4c1e-9b2a-c0ffee15ca70",
        "at": 1700000000000,
        "command": {"JobStarted": {
            "fid": "03ac9846-a3ad-4378-ab0e-3ad578dee1b7",
            "job": 7, "kind": "Run", "message": "run"}}
    }"#;

    #[test]
    fn first_format_still_decodes() {
        let r: Request = serde_json::from_str(V1_JOB_STARTED).unwrap();
        assert_eq!(r.at, 1_700_000_000_000);
        match r.command {
            Command::JobStarted { job, kind, .. } => {
                assert_eq!(job, 7);
                assert_eq!(kind, JobKind::Run);
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn requests_round_trip_through_the_codec() {
        let r = Request::new(
            5,
            Command::ProcessCreated {
                imports: Default::default(),
                fid: Fid::random(),
                alias: "dev-sam".into(),
                account: "123456789012".into(),
                composition: Composition {
                    bytes: vec![0, 1, 2, 255],
                    source_hash: "abc".into(),
                },
                tick_interval_ms: None,
            },
        );
        let bytes = crate::codec::encode(&r).unwrap();
        assert_eq!(crate::codec::decode::<Request>(&bytes).unwrap(), r);
        assert_eq!(r.command.name(), "ProcessCreated");
        assert!(!r.command.is_meta());
    }

    #[test]
    fn a_composition_is_a_byte_string_and_the_older_array_still_decodes() {
        #[derive(Serialize)]
        #[serde(rename = "Composition")]
        struct AsArray {
            bytes: Vec<u8>,
            source_hash: String,
        }
        let bytes: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let old = crate::codec::encode(&AsArray {
            bytes: bytes.clone(),
            source_hash: "h".into(),
        })
        .unwrap();
        let now = Composition {
            bytes,
            source_hash: "h".into(),
        };
        assert_eq!(crate::codec::decode::<Composition>(&old).unwrap(), now);
        let new = crate::codec::encode(&now).unwrap();
        assert_eq!(crate::codec::decode::<Composition>(&new).unwrap(), now);
        // 10,000 bytes, each ≥ 24 of them two bytes as an array element.
        assert!(
            new.len() < 10_100 && old.len() > 19_000,
            "{} vs {}",
            new.len(),
            old.len()
        );
    }

    #[test]
    fn a_shared_batch_is_encoded_as_the_list_it_always_was() {
        #[derive(Serialize)]
        #[serde(rename = "Batch")]
        struct Listed(Vec<Request>);
        let reqs = vec![
            Request::new(1, Command::Noop),
            Request::new(2, Command::Noop),
        ];
        let old = crate::codec::encode(&Listed(reqs.clone())).unwrap();
        let batch = Batch::from(reqs);
        assert_eq!(crate::codec::encode(&batch).unwrap(), old);
        assert_eq!(crate::codec::decode::<Batch>(&old).unwrap(), batch);
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.starts_with("[{"), "{json}");
    }
}
