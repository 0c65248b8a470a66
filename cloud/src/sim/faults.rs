//! Faults the simulated cloud can be told to inject.

use std::time::Duration;

pub use super::events::EventFaults;

/// Switchable faults. All probabilities are per API call and drawn from the
/// simulation's seeded RNG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Probability that a call fails with `RequestLimitExceeded`.
    pub throttle_rate: f64,
    /// Probability that a call fails with `InternalError` (a 500).
    pub error_rate: f64,
    /// Added to every call (slept on tokio's clock, outside any lock).
    pub latency: Duration,
    /// A created resource becomes visible to describes only after this long
    /// (by the simulation's clock).
    pub visibility_delay: Duration,
    /// A terminated instance keeps blocking deletes of its subnet and groups
    /// (`DependencyViolation`) this long, as EC2's shutting-down state does.
    pub shutdown_delay: Duration,
    /// A new NAT gateway stays `pending` this long before it is
    /// `available`, and a deleted one `deleting` (still holding its
    /// address, its subnet and its VPC's internet gateway), as EC2's take a
    /// minute or more.
    pub nat_gateway_delay: Duration,
    /// A new instance stays `pending` this long before it runs.
    pub instance_boot_delay: Duration,
    /// A running instance's status checks stay `initializing` this long
    /// after it boots.
    pub status_check_delay: Duration,
    /// No instance answers the conductor's TCP connect (`Cloud::reach`):
    /// a fleet's `Tcp` check never passes, as on EC2 with no listener.
    pub tcp_unreachable: bool,
    /// Instances launched at or after this time (simulation milliseconds)
    /// never answer the conductor's TCP connect, as a broken image whose
    /// service does not listen: replacements fail their `Tcp` check while
    /// the instances already serving still answer.
    pub tcp_unreachable_launched_from: Option<u64>,
    /// How the event feed (`SimCloud::open_event_feed`) delivers its
    /// CloudTrail records: delay, drops, duplicates, reordering.
    pub events: EventFaults,
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Faults::default()
    }
}
