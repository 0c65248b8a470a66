//! `canond`: configuration, the gRPC client API, signed-command intake and
//! metrics, wiring raft, scheduler and cloud into one conductor node.
//!
//! - [`server`]: one node — Raft, scheduler, and one tonic server carrying
//!   the peer transport, the client API and health.
//! - [`api`]: the client API; dry runs are planned here.
//! - [`cluster`]: the whole cluster's status (asking every member),
//!   creating the cluster and joining a node.
//! - [`removal`]: taking a node out, sweeping its learner entries, and a
//!   removed node noticing it.
//! - [`events`]: the event stream (jobs, process states, drift).
//! - [`envelope`]: signature, freshness and replay checks on commands.
//! - [`metrics`]: Prometheus `/metrics` on a separate admin port.
//! - [`keys`]: ed25519 key files.
//! - [`config`]: `canond.toml`, flags and `CANON_*` variables.
//! - [`dev`]: a whole cluster in one process for `canon dev`, and the
//!   rogue-operator admin service of its simulated cloud.

pub mod api;
pub mod cluster;
pub mod config;
pub mod dev;
pub mod envelope;
pub mod events;
pub mod keys;
pub mod metrics;
pub mod removal;
pub mod server;
pub mod stop_signal;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
