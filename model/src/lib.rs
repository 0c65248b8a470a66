//! Canon's resource model: what a composition declares, what the cloud has,
//! and the planner that turns the difference into an ordered list of requests.
//!
//! Pure Rust — no I/O, no async, no SDK types — so that `lang` can produce it,
//! `cloud` can fill it, `scheduler` can act on it, and the planner can be
//! property-tested against a reference interpreter.

pub mod id;
pub mod kind;
pub mod process;

pub use id::{Fid, IdError, LogicalId, OWNERSHIP_TAG};
pub use kind::{Mutability, ResourceKind};
pub use process::{DriftEvent, JobKind, JobRecord, JobStatus, ProcessState, UnixMillis};
