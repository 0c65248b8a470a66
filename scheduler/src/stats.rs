//! Counters and tick lag, read by metrics and tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Most recent tick lags kept for percentiles.
const LAG_SAMPLES: usize = 100_000;

/// What the scheduler has done on this node.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    ticks: AtomicU64,
    quiet_ticks: AtomicU64,
    drift_events: AtomicU64,
    requests: AtomicU64,
    actors_started: AtomicU64,
    lags_ms: Mutex<VecDeque<u64>>,
}

impl SchedulerStats {
    pub(crate) fn record_tick(&self, lag: Duration) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        let mut lags = self.lags_ms.lock().unwrap_or_else(|p| p.into_inner());
        if lags.len() >= LAG_SAMPLES {
            lags.pop_front();
        }
        lags.push_back(lag.as_millis() as u64);
    }
    pub(crate) fn quiet_tick(&self) {
        self.quiet_ticks.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn drift(&self, n: usize) {
        self.drift_events.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn executed(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn actor_started(&self) {
        self.actors_started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
    pub fn quiet_ticks(&self) -> u64 {
        self.quiet_ticks.load(Ordering::Relaxed)
    }
    pub fn drift_events(&self) -> u64 {
        self.drift_events.load(Ordering::Relaxed)
    }
    pub fn requests_executed(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn actors_started(&self) -> u64 {
        self.actors_started.load(Ordering::Relaxed)
    }

    /// The `p`-th percentile (0–100) of recent tick lags, if any.
    pub fn lag_percentile(&self, p: f64) -> Option<Duration> {
        let mut lags: Vec<u64> = self
            .lags_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        let rank = ((p / 100.0) * (lags.len() - 1) as f64).round() as usize;
        Some(Duration::from_millis(lags[rank.min(lags.len() - 1)]))
    }

    /// Forgets recorded lags (e.g. after warm-up).
    pub fn clear_lags(&self) {
        self.lags_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
