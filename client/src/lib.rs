//! The Rust SDK for Canon's gRPC API and the `canon` command-line tool.
//!
//! - [`Client`]: connect to any node of a cluster, with failover across
//!   endpoints and safe retries (a command keeps its command id across
//!   retries, so it applies once).
//! - [`sign`]: the signed command envelope (ed25519).
//! - [`sqs`]: commands over SQS (the intake queue, the signed reply).
//! - [`config`]: where the CLI finds a cluster and its key (`client.toml`).
//! - [`key_file`]: making a user's secret key file.
//! - [`policy`]: the trust policy's calls (policy, users, accounts,
//!   can-i).
//! - [`validations`]: the organisation's validation modules (add,
//!   remove, list, report).
//! - [`audit`]: the audit log's reads (chain heads, records paged).
//! - [`job_status`]: a job's status from the API, in the model's words.

pub mod audit;
pub mod config;
pub mod job_status;
pub mod key_file;
pub mod policy;
pub mod sdk;
pub mod sign;
pub mod sqs;
pub mod validations;

pub use canon_proto::canon::api::v1 as pb;
pub use sdk::{Client, ClientError, ProcessOptions};
pub use sign::Signer;
