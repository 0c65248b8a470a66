//! `canond`: configuration, the gRPC client API, signed-command intake and
//! metrics, wiring raft, scheduler and cloud into one conductor node.
//!
//! - [`server`]: one node — Raft, scheduler, and one tonic server carrying
//!   the peer transport, the client API and health; [`options`]: what it
//!   needs to start and the relations checked before it does;
//!   [`on_runtime`]: the API's calls on the application's runtime while
//!   that server runs on Raft's own.
//! - [`api`]: the client API; dry runs are planned here.
//! - [`views`]: processes, jobs and drift as the API and events show them.
//! - [`cluster`]: the whole cluster's status (asking every member),
//!   creating the cluster and joining a node.
//! - [`removal`]: taking a node out, sweeping its learner entries, and a
//!   removed node noticing it.
//! - [`retention`]: trimming each group's audit chain and folding process
//!   history to what the node's settings keep.
//! - [`events`]: the event stream (jobs, process states, drift).
//! - [`cloud_events`]: CloudTrail's EC2 call events from an SQS queue
//!   poke the processes that own what they name (drift healed before the
//!   tick).
//! - [`overflow`]: the S3 bucket what is too large for an SQS message
//!   goes through (compositions in, replies out).
//! - [`sqs`]: command intake over an SQS queue, polled by the meta
//!   group's leader, through the same door as gRPC Submit.
//! - [`envelope`]: signature, freshness and replay checks on commands;
//!   [`peer_gate`]: who may call the peer transport and the client API, by
//!   TLS certificate.
//! - [`admin_http`]: the admin HTTP port (an axum router: `/metrics`,
//!   `/healthz`); [`metrics`]: the Prometheus registry it serves.
//! - [`keys`]: ed25519 key files; [`malloc`]: glibc's malloc arenas capped
//!   at one a core (canond and a dev cluster).
//! - [`config`]: `canond.toml`, flags and `CANON_*` variables;
//!   [`defaults`]: the default account and the admin user.
//! - [`composition`]: stored compositions decoded into declarations;
//!   [`validations`]: the organisation's validation modules run against
//!   them.
//! - [`rogue`]: the rogue-operator admin service of a simulated cloud.
//! - [`dev`]: a whole cluster in one process for `canon dev`; [`dev_tls`]:
//!   its CAs and certificates.

pub mod accounts;
pub mod admin_http;
pub mod api;
pub mod cloud_events;
pub mod cluster;
pub mod composition;
pub mod config;
pub mod console;
pub mod defaults;
pub mod dev;
pub mod dev_tls;
pub mod drill_link_fault;
pub mod envelope;
pub mod events;
pub mod join_tokens;
pub mod keys;
pub mod logs;
pub mod malloc;
pub mod metrics;
pub mod on_runtime;
pub mod options;
pub mod overflow;
pub mod peer_gate;
pub mod removal;
pub mod retention;
pub mod rogue;
pub mod server;
pub mod sqs;
pub mod stop_signal;
pub mod validations;
pub mod views;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
