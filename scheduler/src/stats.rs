//! Counters, tick lag and drift latencies, read by metrics and tests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use canon_model::{DetectedBy, UnixMillis};

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
    /// Processes named by new observations as changed since last seen.
    observed_changes: AtomicU64,
    /// Actors woken by such a naming, and of them those that ticked.
    observed_wakes: AtomicU64,
    observed_ticks: AtomicU64,
    /// The resources the newest observation kept (of the processes led
    /// here) and those it refused (led elsewhere).
    observation_kept: AtomicU64,
    observation_refused: AtomicU64,
    /// How long the newest whole-scope observation took, its comparison
    /// with what was seen before included (ms).
    observation_took_ms: AtomicU64,
    lags_ms: Mutex<VecDeque<u64>>,
    /// Found − the change's time, by source (tick, event); a tick does not
    /// know when the change was made, so only events fill it.
    detection: [Latency; 2],
    /// Healed − found, by source.
    heal: [Latency; 2],
}

/// The upper bounds (seconds) of the latency histograms' buckets; a last
/// one, +Inf, holds the rest.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The sources a drift is found by, as the histograms label them.
pub const DRIFT_SOURCES: [&str; 2] = ["tick", "event"];

/// One latency histogram: counts per bucket, sum and count.
#[derive(Debug, Default)]
struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ms: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    fn observe(&self, ms: u64) {
        let secs = ms as f64 / 1000.0;
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> LatencyHistogram {
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        LatencyHistogram {
            sum_secs: self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            count: self.count.load(Ordering::Relaxed),
            buckets: bounds
                .zip(&self.buckets)
                .map(|(b, n)| (b, n.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// A latency histogram as read: each bucket's upper bound (seconds) and
/// its own count (not cumulative), the sum in seconds and the count.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    pub sum_secs: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

/// The histogram slot of a drift found by `by`.
fn source(by: &DetectedBy) -> usize {
    match by {
        DetectedBy::Tick => 0,
        DetectedBy::Event { .. } => 1,
    }
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
    /// A drift found at `found` by `by`: an event's drift adds found − the
    /// event's time to the detection histogram.
    pub(crate) fn drift_found(&self, by: &DetectedBy, found: UnixMillis) {
        if let Some(at) = by.event_at() {
            self.detection[source(by)].observe(found.saturating_sub(at));
        }
    }

    /// A drift found at `found` by `by` healed at `healed`.
    pub(crate) fn drift_healed(&self, by: &DetectedBy, found: UnixMillis, healed: UnixMillis) {
        self.heal[source(by)].observe(healed.saturating_sub(found));
    }

    /// The detection latency histogram of drift found by `source` (`tick`
    /// or `event`, [`DRIFT_SOURCES`]).
    pub fn detection_latency(&self, source: &str) -> Option<LatencyHistogram> {
        let i = DRIFT_SOURCES.iter().position(|s| *s == source)?;
        Some(self.detection[i].read())
    }

    /// The heal latency histogram of drift found by `source`.
    pub fn heal_latency(&self, source: &str) -> Option<LatencyHistogram> {
        let i = DRIFT_SOURCES.iter().position(|s| *s == source)?;
        Some(self.heal[i].read())
    }

    pub(crate) fn executed(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn actor_started(&self) {
        self.actors_started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observed_changes(&self, n: usize) {
        self.observed_changes
            .fetch_add(n.try_into().unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    pub(crate) fn observed_wake(&self) {
        self.observed_wakes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn observed_tick(&self) {
        self.observed_ticks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observation_made(&self, kept: usize, refused: usize, took: Duration) {
        let count = |n: usize| n.try_into().unwrap_or(u64::MAX);
        self.observation_kept.store(count(kept), Ordering::Relaxed);
        self.observation_refused
            .store(count(refused), Ordering::Relaxed);
        let took_ms = took.as_millis().try_into().unwrap_or(u64::MAX);
        self.observation_took_ms.store(took_ms, Ordering::Relaxed);
    }

    /// How long the newest whole-scope observation took (its comparison
    /// with what was seen before included).
    pub fn last_observation_took(&self) -> Duration {
        Duration::from_millis(self.observation_took_ms.load(Ordering::Relaxed))
    }

    /// (resources the newest whole-scope observation kept, because a
    /// process led here owns or binds them; resources it refused).
    pub fn last_observation(&self) -> (u64, u64) {
        (
            self.observation_kept.load(Ordering::Relaxed),
            self.observation_refused.load(Ordering::Relaxed),
        )
    }

    /// (processes new observations named as changed, actors woken for
    /// it, actors that ticked for it).
    pub fn observed_news(&self) -> (u64, u64, u64) {
        (
            self.observed_changes.load(Ordering::Relaxed),
            self.observed_wakes.load(Ordering::Relaxed),
            self.observed_ticks.load(Ordering::Relaxed),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_source_and_bucket() {
        let s = SchedulerStats::default();
        let event = DetectedBy::Event {
            at: 1_000,
            by: None,
        };
        s.drift_found(&event, 1_400);
        s.drift_found(&DetectedBy::Tick, 9_000);
        s.drift_healed(&event, 1_400, 2_100);
        s.drift_healed(&DetectedBy::Tick, 9_000, 9_000 + 2_000_000);
        let found = s.detection_latency("event").unwrap();
        assert_eq!((found.count, found.sum_secs), (1, 0.4));
        assert_eq!(found.buckets[2], (0.5, 1), "{found:?}");
        assert_eq!(s.detection_latency("tick").unwrap().count, 0);
        let healed = s.heal_latency("event").unwrap();
        assert_eq!((healed.count, healed.buckets[3]), (1, (1.0, 1)));
        let slow = s.heal_latency("tick").unwrap();
        assert_eq!(slow.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(s.heal_latency("cron"), None);
    }
}
