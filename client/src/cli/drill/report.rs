//! What a drill found: the samples of each phase summed up (success
//! ratio, p50/p99 latency, the longest stretch without a successful
//! write), the fault's timeline and the verdict of the steady-state
//! hypothesis, as text and as JSON.

use serde::Serialize;

use super::inject::Plan;
use super::probe::{LeaderChange, Sample};

/// The steady state a drill holds the cluster to.
#[derive(Debug, Clone, Serialize)]
pub struct Hypothesis {
    /// Before the fault and after healing.
    pub steady_success_ratio_min: f64,
    /// While the fault is on.
    pub fault_success_ratio_min: f64,
    pub p99_ms_max: u64,
    /// From healing until every member answers and every follower caught up.
    pub converge_ms_max: u64,
    /// From healing until a resource deleted during the fault is back
    /// (with a `[cloud]` in the inventory).
    pub drift_heal_ms_max: u64,
}

/// One phase's load, summed up.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub commands: usize,
    pub succeeded: usize,
    pub success_ratio: f64,
    pub p50_ms: u64,
    pub p99_ms: u64,
}

impl Stats {
    pub fn of(samples: &[&Sample]) -> Stats {
        let mut ok: Vec<u64> = samples
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.latency_ms)
            .collect();
        ok.sort_unstable();
        let pct = |p: f64| -> u64 {
            if ok.is_empty() {
                return 0;
            }
            // Nearest rank: the smallest value with at least p of them at or below it.
            let rank = ((p * ok.len() as f64).ceil() as usize).clamp(1, ok.len());
            ok[rank - 1]
        };
        Stats {
            commands: samples.len(),
            succeeded: ok.len(),
            success_ratio: if samples.is_empty() {
                1.0
            } else {
                ok.len() as f64 / samples.len() as f64
            },
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    }
}

/// The samples taken in `[from_ms, to_ms)`.
pub fn between(samples: &[Sample], from_ms: u64, to_ms: u64) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.at_ms >= from_ms && s.at_ms < to_ms)
        .collect()
}

/// The longest time without a successful command in `[from_ms, to_ms]`
/// (a command counts when it ended: its `at_ms`).
pub fn unavailable_ms_max(samples: &[Sample], from_ms: u64, to_ms: u64) -> u64 {
    let mut last = from_ms;
    let mut worst = 0;
    for s in samples
        .iter()
        .filter(|s| s.ok && s.at_ms >= from_ms && s.at_ms <= to_ms)
    {
        worst = worst.max(s.at_ms - last);
        last = s.at_ms;
    }
    worst.max(to_ms.saturating_sub(last))
}

/// A drill's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: String,
    pub seed: u64,
    pub cluster: String,
    pub version: String,
    pub hypothesis: Hypothesis,
    pub plan: Plan,
    pub baseline: Stats,
    pub during: Stats,
    pub after: Stats,
    /// Milliseconds since the drill began.
    pub injected_at_ms: u64,
    pub healed_at_ms: u64,
    /// The first successful command after the injection.
    pub first_write_after_ms: Option<u64>,
    /// From the injection until each group the targets led had another
    /// leader.
    pub new_leader_after_ms: Option<u64>,
    pub unavailable_ms_max: u64,
    pub converged_after_ms: Option<u64>,
    pub leader_changes: Vec<LeaderChange>,
    /// Commands acknowledged but missing afterwards (must be none).
    pub lost: Vec<String>,
    /// The drift done and healed, and duplicates looked for (with a
    /// `[cloud]` in the inventory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<super::cloud::CloudReport>,
    pub violations: Vec<String>,
    pub passed: bool,
}

impl Report {
    /// The verdict: every way the steady state was broken.
    pub fn judge(&mut self) {
        let h = &self.hypothesis;
        let mut v = Vec::new();
        for (phase, s, min) in [
            (
                "before the fault",
                &self.baseline,
                h.steady_success_ratio_min,
            ),
            ("during the fault", &self.during, h.fault_success_ratio_min),
            ("after healing", &self.after, h.steady_success_ratio_min),
        ] {
            if s.success_ratio < min {
                v.push(format!(
                    "{phase}: {:.0}% of commands succeeded (at least {:.0}% expected)",
                    s.success_ratio * 100.0,
                    min * 100.0
                ));
            }
            if s.p99_ms > h.p99_ms_max {
                v.push(format!(
                    "{phase}: p99 {} ms (at most {} ms)",
                    s.p99_ms, h.p99_ms_max
                ));
            }
        }
        match self.converged_after_ms {
            Some(ms) if ms > h.converge_ms_max => v.push(format!(
                "converged {ms} ms after healing (at most {} ms)",
                h.converge_ms_max
            )),
            None => v.push("the cluster did not converge after healing".into()),
            _ => {}
        }
        if !self.lost.is_empty() {
            v.push(format!(
                "acknowledged commands lost: {}",
                self.lost.join(", ")
            ));
        }
        self.violations.extend(v);
        self.passed = self.violations.is_empty();
    }

    /// The report for a person.
    pub fn text(&self) -> String {
        let mut out = vec![
            format!(
                "drill {} (seed {}) on cluster {}, canon {}",
                self.drill, self.seed, self.cluster, self.version
            ),
            format!("fault {}:", self.plan.fault),
        ];
        for (node, role) in &self.plan.targets {
            out.push(format!("  target node {node} ({role})"));
        }
        out.push(format!(
            "  injected at {} ms, healed at {} ms",
            self.injected_at_ms, self.healed_at_ms
        ));
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        out.push(format!(
            "  new leader after {}",
            opt(self.new_leader_after_ms)
        ));
        out.push(format!(
            "  first write after {}",
            opt(self.first_write_after_ms)
        ));
        out.push(format!(
            "  longest without a write {} ms",
            self.unavailable_ms_max
        ));
        out.push(format!(
            "  converged {} after healing",
            opt(self.converged_after_ms)
        ));
        if let Some(c) = &self.cloud {
            out.push(format!(
                "  cloud: {}'s VPC {} deleted during the fault, back as {} {} after healing; {} duplicated",
                c.process,
                c.deleted.as_deref().unwrap_or("-"),
                c.rebuilt.as_deref().unwrap_or("-"),
                opt(c.rebuilt_after_ms),
                c.duplicated.len()
            ));
            if let Some(f) = &c.fencing {
                out.push(format!(
                    "  cloud mutations by nodes: {}, {} not judged, {} from a deposed term",
                    f.mutations,
                    f.unjudged,
                    f.deposed.len()
                ));
            }
        }
        for (phase, s) in [
            ("before", &self.baseline),
            ("during", &self.during),
            ("after", &self.after),
        ] {
            out.push(format!(
                "  {phase:<6} {:>4} commands, {:>5.1}% ok, p50 {} ms, p99 {} ms",
                s.commands,
                s.success_ratio * 100.0,
                s.p50_ms,
                s.p99_ms
            ));
        }
        // The first poll is where each group started: in the JSON only.
        let first_ms = self.leader_changes.first().map_or(0, |c| c.at_ms);
        for c in self.leader_changes.iter().filter(|c| c.at_ms > first_ms) {
            out.push(format!(
                "  {:>6} ms  group {} leader {} (term {})",
                c.at_ms, c.group, c.leader, c.term
            ));
        }
        if self.passed {
            out.push("PASSED: the steady state held".into());
        } else {
            out.push("FAILED:".into());
            out.extend(self.violations.iter().map(|v| format!("  {v}")));
        }
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, ok: bool, latency_ms: u64) -> Sample {
        Sample {
            at_ms,
            ok,
            latency_ms,
            alias: format!("a{at_ms}"),
            error: None,
        }
    }

    #[test]
    fn stats_count_failures_and_rank_latencies() {
        let s: Vec<Sample> = (1..=100).map(|i| sample(i, i % 10 != 0, i)).collect();
        let refs: Vec<&Sample> = s.iter().collect();
        let st = Stats::of(&refs);
        assert_eq!((st.commands, st.succeeded), (100, 90));
        assert!((st.success_ratio - 0.9).abs() < 1e-9);
        assert_eq!(st.p50_ms, 49, "the 45th of the 90 successes");
        assert_eq!(st.p99_ms, 99);
        assert_eq!(Stats::of(&[]).success_ratio, 1.0);
    }

    #[test]
    fn the_longest_gap_counts_from_the_window_edges() {
        let s = vec![
            sample(100, true, 1),
            sample(900, false, 1),
            sample(1500, true, 1),
        ];
        assert_eq!(unavailable_ms_max(&s, 0, 2000), 1400);
        assert_eq!(unavailable_ms_max(&s, 1600, 2000), 400);
        assert_eq!(between(&s, 100, 1500).len(), 2);
    }
}
