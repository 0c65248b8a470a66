//! Process, job and drift records: the vocabulary the replicated state machine
//! stores and the CLI shows (`canon status`, `canon history`).
//!
//! Plain data only; the rules that change it (alias uniqueness, job
//! transitions) live in the state machine in `canon-raft`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Fid, LogicalId, ResourceKind};

/// The shortest enforcement tick interval a process or node may have.
pub const MIN_TICK_INTERVAL: Duration = Duration::from_secs(1);
/// The longest tick interval a process may ask for.
pub const MAX_TICK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Milliseconds since the Unix epoch. Timestamps are plain numbers so that the
/// state machine stays deterministic: the proposer picks the time, replicas
/// never read a clock.
pub type UnixMillis = u64;

/// The lifecycle of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProcessState {
    /// Enforced: every tick heals drift.
    Running,
    /// Enforcement paused: ticks stop, drift stays.
    Suspended,
    /// Its resources are being deleted.
    Killing,
    /// It owns nothing any more; its alias is free.
    Killed,
    /// Its resources are being let go: each loses the ownership tag, none
    /// is deleted (`canon release`).
    Releasing,
    /// Released: its resources stay in the cloud, no longer Canon's; it
    /// binds nothing, is never enforced again, and its alias is free.
    Released,
}

impl ProcessState {
    /// True while the process holds its alias.
    pub fn is_live(self) -> bool {
        !matches!(self, ProcessState::Killed | ProcessState::Released)
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessState::Running => "Running",
            ProcessState::Suspended => "Suspended",
            ProcessState::Killing => "Killing",
            ProcessState::Killed => "Killed",
            ProcessState::Releasing => "Releasing",
            ProcessState::Released => "Released",
        })
    }
}

/// The kinds of job, as in the demo's `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    Run,
    Update,
    Kill,
    /// Enforcement ticks: one row that accumulates ticks until something changes.
    System,
    /// `canon release`: the ownership tag removed from every resource.
    Release,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::Run => "RUN",
            JobKind::Update => "UPDATE",
            JobKind::Kill => "KILL",
            JobKind::System => "SYSTEM",
            JobKind::Release => "RELEASE",
        })
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    InProgress,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, JobStatus::InProgress)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::InProgress => "IN PROGRESS",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        })
    }
}

/// One row of a process's job history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Unique within the process; also its "Row Id".
    pub id: u64,
    pub fid: Fid,
    pub kind: JobKind,
    pub status: JobStatus,
    pub started: UnixMillis,
    pub updated: UnixMillis,
    /// Ticks (passes) run by this job.
    pub ticks: u64,
    pub message: String,
}

/// A difference between what a process declares and what the cloud has,
/// found while the process was Running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftEvent {
    /// Unique within the process.
    pub id: u64,
    pub fid: Fid,
    pub resource: LogicalId,
    pub kind: ResourceKind,
    /// The cloud id of the drifted resource, when it exists.
    pub cloud_id: Option<String>,
    pub property: String,
    pub declared: Option<String>,
    pub observed: Option<String>,
    pub detected_at: UnixMillis,
    /// When the heal that closed it finished; `None` while open.
    pub healed_at: Option<UnixMillis>,
    /// The organisation's validations the drifted cloud breaks
    /// (`MODULE.validation`; issue #20 §4). Absent in records written
    /// before they were labelled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violates: Vec<String>,
    /// What found it. Absent in records written before events poked
    /// processes: the tick.
    #[serde(default)]
    pub detected_by: DetectedBy,
}

/// What found a drift: the enforcement tick, or a cloud event (an EC2 call
/// CloudTrail reported through the events queue) that made the process
/// look before its tick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedBy {
    #[default]
    Tick,
    /// `at`: when the cloud says the call was made; `by`: who made it
    /// (the caller's ARN CloudTrail names), when known.
    Event {
        at: UnixMillis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl DetectedBy {
    /// `tick` or `event`, as the API and the console name it.
    pub fn name(&self) -> &'static str {
        match self {
            DetectedBy::Tick => "tick",
            DetectedBy::Event { .. } => "event",
        }
    }

    /// Who made the change, if an event that names them found it.
    pub fn changed_by(&self) -> Option<&str> {
        match self {
            DetectedBy::Tick => None,
            DetectedBy::Event { by, .. } => by.as_deref(),
        }
    }

    /// The event's time, if an event found it.
    pub fn event_at(&self) -> Option<UnixMillis> {
        match self {
            DetectedBy::Tick => None,
            DetectedBy::Event { at, .. } => Some(*at),
        }
    }
}

/// Why an instance was replaced (issue #18): what `canon history` and
/// the event stream say of each replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplaceReason {
    /// Past its `maxAge` (or its fleet's staggered rotation time).
    Age,
    /// Its declaration changed a property EC2 cannot change in place
    /// (image, type, user data, key, subnet), or a resource it needs was
    /// replaced.
    Change,
    /// It failed its status checks, or a fleet's new instance did not pass
    /// them within the grace.
    Health,
    /// It was stopped out of band.
    Stopped,
    /// The user asked for it (`canon fleet rotate`).
    Requested,
}

impl fmt::Display for ReplaceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplaceReason::Age => "age",
            ReplaceReason::Change => "change",
            ReplaceReason::Health => "health",
            ReplaceReason::Stopped => "stopped",
            ReplaceReason::Requested => "requested",
        })
    }
}

/// An instance a plan replaces: the declared instance, the cloud instance
/// it replaces, why, and the difference that says so
/// (`imageId: ami-2, was ami-1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedInstance {
    pub resource: LogicalId,
    pub cloud_id: String,
    pub reason: ReplaceReason,
    pub detail: String,
}

/// One row of a process's replacement history: an instance replaced by
/// job `job` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacementRecord {
    /// Unique within the process.
    pub id: u64,
    pub job: u64,
    pub at: UnixMillis,
    #[serde(flatten)]
    pub replaced: ReplacedInstance,
}
