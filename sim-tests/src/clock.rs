//! Time inside a simulation: turmoil's elapsed simulated time from a fixed
//! epoch, the same on every host, so timestamps in the log and the cloud's
//! delays replay exactly from a seed.

use canon_model::UnixMillis;

/// 2026-01-01T00:00:00Z.
pub const EPOCH_MS: UnixMillis = 1_767_225_600_000;

/// Milliseconds since the epoch by the simulation's clock (the epoch itself
/// outside a simulation).
pub fn sim_now_ms() -> UnixMillis {
    let elapsed = turmoil::sim_elapsed().unwrap_or_default();
    EPOCH_MS.saturating_add(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// The simulation's clock, for the scheduler and the simulated cloud.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimClock;

impl canon_scheduler::Clock for SimClock {
    fn now_ms(&self) -> UnixMillis {
        sim_now_ms()
    }
}

impl canon_cloud::sim::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        sim_now_ms()
    }
}
