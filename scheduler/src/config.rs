//! Scheduler settings, with the defaults a production node wants.

use std::time::Duration;

/// How the conductor loop runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This node's id (recorded with every cloud mutation).
    pub node_id: u64,
    /// Time between enforcement ticks of a process (at least 1 s).
    pub tick_interval: Duration,
    /// Each interval is scaled by a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// Quiet ticks are written to the log at most this often.
    pub flush_every: Duration,
    /// Retry backoff: first delay and cap.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long after a fenced write the actor may keep mutating before it
    /// must commit a fresh one. Keep it under the Raft election timeout: no
    /// new leader can be elected sooner than that after the fence committed.
    pub fence_lease: Duration,
    /// Mutations in flight at once per account and region, shared fairly
    /// (first come, first served, one request per process at a time).
    pub mutations_per_scope: usize,
    /// Seed for jitter and backoff (simulations set it; replays match).
    pub seed: u64,
    /// Test-only sabotage, compiled in only with the `break-fencing`
    /// feature: the actor skips its leader/term checks, writes unfenced and
    /// carries on when a write is refused, so a deposed leader keeps
    /// mutating. It exists to prove that the simulation checker can fail;
    /// the actor's fence (`fence.rs`) is the one place that reads it.
    #[cfg(feature = "break-fencing")]
    pub break_fencing: bool,
}

/// The shortest tick interval allowed.
pub use canon_model::MIN_TICK_INTERVAL;

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            node_id: 0,
            tick_interval: Duration::from_secs(10),
            jitter: 0.1,
            flush_every: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            fence_lease: Duration::from_millis(200),
            mutations_per_scope: 8,
            seed: 0,
            #[cfg(feature = "break-fencing")]
            break_fencing: false,
        }
    }
}

impl SchedulerConfig {
    /// The same settings with the tick interval clamped to the minimum.
    pub fn validated(mut self) -> Self {
        if self.tick_interval < MIN_TICK_INTERVAL {
            tracing::warn!(
                requested = ?self.tick_interval,
                "tick interval below the minimum; using 1s"
            );
            self.tick_interval = MIN_TICK_INTERVAL;
        }
        self.jitter = self.jitter.clamp(0.0, 0.9);
        self
    }
}
