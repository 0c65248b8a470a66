//! Canon's hands and eyes on the cloud: the [`Cloud`] trait, [`AwsCloud`]
//! over the real AWS SDK and [`SimCloud`], an in-memory deterministic EC2 with
//! faults. Both observe with batched, tag-filtered, paginated describes and
//! execute `canon_model` requests with idempotency and classified errors.
//!
//! - [`cloud`]: the trait; [`context`]: scope and execution identity;
//!   [`outcome`]: what a request did; [`error`]: classified errors;
//! - [`rules`]: flat rules ↔ EC2 `IpPermission`s; [`idempotency`]: client
//!   tokens; [`ratelimit`] and [`retry`]: staying inside EC2's budget;
//!   [`metrics`]: API-call counters; [`names`]: EC2 action names;
//! - [`sim`]: the simulated cloud; [`aws`]: the AWS adapter.

pub mod aws;
pub mod cloud;
pub mod context;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod names;
pub mod outcome;
pub mod ratelimit;
mod refs;
pub mod retry;
pub mod rules;
pub mod sim;

pub use aws::{AwsCloud, AwsConfig};
pub use cloud::{BoxFuture, Cloud};
pub use context::{ExecContext, Scope};
pub use error::{CloudError, ErrorClass};
pub use metrics::ApiCalls;
pub use outcome::Outcome;
pub use ratelimit::{ApiClass, BucketConfig, RateLimiter, RateLimits};
pub use retry::RetryPolicy;
pub use sim::SimCloud;
