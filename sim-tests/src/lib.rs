//! Deterministic turmoil simulations of whole Canon clusters under network
//! chaos: every fault comes from a seed and every failure replays from it.
//!
//! - [`world`]: builds one simulated world (nodes serving Raft and the
//!   client API, the shared cloud, the client host) and runs it;
//! - [`cluster`]: the names and handles every part shares;
//! - [`workload`]: the client host's SDK workload and the seed's faults
//!   (their kinds: [`fault`]);
//! - [`check`]: the invariants checked afterwards; [`linear`]: the
//!   linearizability checker over the recorded SDK calls; [`fleet`]: the
//!   fleet some processes declare, and its capacity floor watched while
//!   faults are in force;
//! - [`net`]: the API over turmoil TCP (the Raft transport is
//!   `canon_raft::turmoil_net`); [`clock`]: simulated wall time;
//! - [`fingerprint`]: what two runs of one seed are compared by.

pub mod check;
pub mod clock;
pub mod cluster;
pub mod fault;
pub mod fingerprint;
pub mod fleet;
pub mod linear;
pub mod net;
pub mod workload;
pub mod world;

pub use world::{run, Report, SimConfig};
