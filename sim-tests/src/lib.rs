//! Deterministic turmoil simulations of whole Canon clusters under network
//! chaos: every fault comes from a seed and every failure replays from it.
//!
//! - [`world`]: builds one simulated world (nodes, cloud, client workload,
//!   faults) and runs it; [`check`]: the invariants checked afterwards;
//! - [`clock`]: simulated wall time; the network is
//!   `canon_raft::turmoil_net` (gRPC over turmoil TCP).

pub mod check;
pub mod clock;
pub mod world;

pub use world::{run, Report, SimConfig};
