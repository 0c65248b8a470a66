//! API-call counters per action, shared by every caller of one cloud.
//!
//! Observation cost is a headline property of Canon (it must grow with pages,
//! not processes), so both implementations count every call they make, by
//! EC2 action name, including throttled and failed attempts.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts API calls by action (`DescribeSecurityGroups`, `CreateVpc`, ...).
#[derive(Debug, Default)]
pub struct ApiCalls {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl ApiCalls {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one call of `action`.
    pub fn record(&self, action: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(action.to_string()).or_default() += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Calls of `action` so far.
    pub fn get(&self, action: &str) -> u64 {
        self.snapshot().get(action).copied().unwrap_or(0)
    }

    /// All calls so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Calls whose action starts with `Describe`.
    pub fn describes(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with("Describe"))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
