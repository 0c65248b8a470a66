//! The conductor's loop: shard leadership turns into one actor per process,
//! each ticking observe → plan → execute, fenced by its Raft term.
//!
//! - [`leadership`]: watches each shard's leadership; on gaining it, a
//!   supervisor starts an actor per live process and wakes actors when their
//!   process changes; on losing it, every actor of the shard is cancelled at
//!   once.
//! - [`actor`]: the per-process task; [`reconcile`]: its pure decision;
//!   [`probe`]: the TCP connects of fleets' `Tcp` health checks it decides
//!   from;
//!   `fence`: what stops a deposed leader's actor from
//!   acting; [`tick_error`]: why a tick failed; [`error_policy`]: what
//!   follows each failure.
//! - [`observer`]: one shared, coalescing observation per account and region;
//!   `id_looks`: looks at processes' own ids, coalesced the same way;
//!   `seen_by_id`: what those looks saw, so a new observation announces
//!   the processes whose resources changed since they were last seen;
//!   `led_here`: the processes with an actor on the node, whose resources
//!   alone its observations keep;
//!   [`fairshare`]: processes take turns at each account-region's budget.
//! - [`alerts`]: drift announced to a log line and a webhook.
//! - [`stats`]: counters and tick lag, for metrics and tests.

pub mod actor;
pub mod alerts;
pub mod clock;
pub mod config;
mod create_ledger;
pub mod drift_labels;
pub mod error_policy;
pub mod fairshare;
mod fence;
mod id_looks;
pub mod leadership;
mod led_here;
pub mod observer;
pub mod probe;
pub mod reconcile;
mod seen_by_id;
pub mod stats;
pub mod tick_error;

use std::sync::Arc;

use canon_cloud::Cloud;
use canon_model::{DesiredState, Fid};
use canon_raft::{Composition, RaftNode};

pub use alerts::{Alert, AlertSink, Alerts, LogSink, WebhookSink};
pub use clock::{Clock, SharedClock, SystemClock};
pub use config::{SchedulerConfig, MIN_TICK_INTERVAL};
pub use drift_labels::DriftLabeller;
pub use error_policy::{error_policy, Requeue};
pub use leadership::Scheduler;
pub use observer::SharedObserver;
pub use stats::{LatencyHistogram, SchedulerStats, DRIFT_SOURCES, LATENCY_BUCKETS};
pub use tick_error::TickError;

/// Turns a process's stored composition into its declaration.
pub type Decoder =
    Arc<dyn Fn(&Composition, Fid) -> Result<DesiredState, String> + Send + Sync + 'static>;

/// What every actor of a node shares.
pub(crate) struct Shared {
    pub(crate) node: RaftNode,
    pub(crate) observer: SharedObserver,
    pub(crate) fair: fairshare::FairShare,
    pub(crate) config: SchedulerConfig,
    pub(crate) decoder: Decoder,
    pub(crate) labeller: Option<DriftLabeller>,
    pub(crate) clock: SharedClock,
    pub(crate) alerts: Alerts,
    pub(crate) stats: Arc<SchedulerStats>,
}

/// The parts a scheduler is built from.
pub struct SchedulerParts {
    pub node: RaftNode,
    pub cloud: Arc<dyn Cloud>,
    pub config: SchedulerConfig,
    pub decoder: Decoder,
    pub clock: SharedClock,
    pub alerts: Alerts,
    /// Labels drift with the organisation's validations it breaks; `None`:
    /// drift is recorded unlabelled.
    pub labeller: Option<DriftLabeller>,
}
