//! The node's Prometheus metrics, in a `prometheus-client` registry: API
//! calls per action and refused envelopes (counted as they happen), and at
//! each scrape the scheduler's counts (enforcement ticks, quiet ticks,
//! drift events, cloud requests, actors started, tick lag, the drift
//! detection and heal latency histograms by source) and, per Raft
//! group, this node's view of term, log, commits and whether it leads. The
//! admin HTTP port ([`crate::admin_http`]) serves the page.

use std::sync::Arc;

use canon_raft::RaftNode;
use canon_scheduler::{LatencyHistogram, SchedulerStats, DRIFT_SOURCES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the page (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One label, `action="run"`.
type ActionLabel = [(&'static str, &'static str); 1];

/// Counts of API calls by action, of envelopes refused at the door, and of
/// the SQS intake's messages.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    calls: Family<ActionLabel, Counter>,
    refused: Counter,
    root_uses: Counter,
    forbidden: Counter,
    refusals_dropped: Counter,
    queue_messages: Family<ActionLabel, Counter>,
    queue_dead_letters: Counter,
    queue_replies_failed: Counter,
}

impl ApiMetrics {
    /// One call of `action` (run, update, kill, status, ...).
    pub fn call(&self, action: &'static str) {
        self.calls.get_or_create(&[("action", action)]).inc();
    }

    /// One envelope refused at the door.
    pub fn refused(&self) {
        self.refused.inc();
    }

    /// One command or read signed with the cluster's root key (an alert:
    /// day-to-day work should be done by users of the policy).
    pub fn root_used(&self) {
        self.root_uses.inc();
    }

    /// One request refused by the policy.
    pub fn forbidden(&self) {
        self.forbidden.inc();
    }

    /// One refusal at the door left unrecorded in the audit chain (rate
    /// limit, or the meta group did not take it).
    pub fn refusal_dropped(&self) {
        self.refusals_dropped.inc();
    }

    /// One intake message handled: `done` (replied and deleted), `again`
    /// (left for another delivery) or `malformed` (deleted).
    pub fn queue_message(&self, outcome: &'static str) {
        self.queue_messages
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    /// One intake message failed on the delivery that sends it to the
    /// dead-letter queue (an alert).
    pub fn queue_dead_letter(&self) {
        self.queue_dead_letters.inc();
    }

    /// One reply that could not be posted to its reply queue.
    pub fn queue_reply_failed(&self) {
        self.queue_replies_failed.inc();
    }

    /// Adds these counters to `registry` (they keep counting there).
    pub fn register(&self, registry: &mut Registry) {
        // prometheus-client adds `_total` to counters and `.` to help.
        registry.register("canon_api_calls", "API calls by action", self.calls.clone());
        registry.register(
            "canon_api_refused",
            "Commands refused at the door (signature, freshness, replay)",
            self.refused.clone(),
        );
        registry.register(
            "canon_root_key_uses",
            "Commands and reads signed with the cluster's root key (alert on any)",
            self.root_uses.clone(),
        );
        registry.register(
            "canon_api_forbidden",
            "Requests the trust policy refused",
            self.forbidden.clone(),
        );
        registry.register(
            "canon_audit_refusals_dropped",
            "Refusals at the door not recorded in the audit log (rate limit)",
            self.refusals_dropped.clone(),
        );
        registry.register(
            "canon_sqs_messages",
            "SQS intake messages by outcome (done, again, malformed)",
            self.queue_messages.clone(),
        );
        registry.register(
            "canon_sqs_dead_letters",
            "SQS intake messages that failed on their last delivery and go to the dead-letter queue (alert on any)",
            self.queue_dead_letters.clone(),
        );
        registry.register(
            "canon_sqs_replies_failed",
            "Replies that could not be posted to their reply queue",
            self.queue_replies_failed.clone(),
        );
    }
}

/// The node's registry: the API's counters, and the scheduler's and Raft's
/// state read at each scrape.
pub fn registry(node: RaftNode, sched: Arc<SchedulerStats>, api: &ApiMetrics) -> Registry {
    let mut registry = Registry::default();
    api.register(&mut registry);
    registry.register_collector(Box::new(SchedulerCollector(sched)));
    registry.register_collector(Box::new(RaftCollector(node)));
    registry
}

/// The metrics page of `registry`.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut page = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut page, registry)?;
    Ok(page)
}

/// The resources in the node's newest whole-scope observation: kept (of
/// the processes it leads) and refused (led elsewhere).
fn encode_observation(
    s: &SchedulerStats,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let (kept, refused) = s.last_observation();
    let mut family = encoder.encode_descriptor(
        "canon_observation_resources",
        "Resources in the newest whole-scope observation: kept (of the processes this node leads) and refused (led elsewhere).",
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (what, n) in [("kept", kept), ("refused", refused)] {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        ConstGauge::new(n).encode(family.encode_family(&[("resources", what)])?)?;
    }
    Ok(())
}

/// The scheduler's counts and tick lag, read at each scrape.
#[derive(Debug)]
struct SchedulerCollector(Arc<SchedulerStats>);

impl Collector for SchedulerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        for (name, help, value) in [
            (
                "canon_ticks",
                "Enforcement passes run by this node's actors.",
                s.ticks(),
            ),
            (
                "canon_quiet_ticks",
                "Passes that found nothing to do.",
                s.quiet_ticks(),
            ),
            (
                "canon_drift_events",
                "Drift events recorded.",
                s.drift_events(),
            ),
            (
                "canon_cloud_requests",
                "Cloud mutations executed.",
                s.requests_executed(),
            ),
            (
                "canon_actors_started",
                "Process actors started.",
                s.actors_started(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        encode_observation(s, &mut encoder)?;
        let lag = |q: f64| s.lag_percentile(q).map_or(f64::NAN, |d| d.as_secs_f64());
        let quantiles = [("0.5", lag(0.5)), ("0.99", lag(0.99))];
        let mut family = encoder.encode_descriptor(
            "canon_tick_lag_seconds",
            "How late ticks start, by quantile.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (quantile, seconds) in quantiles {
            let labels = [("quantile", quantile)];
            ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
        }
        encode_latencies(s, &mut encoder)
    }
}

/// The drift detection and heal latency histograms, by source.
fn encode_latencies(
    s: &SchedulerStats,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    type Read = fn(&SchedulerStats, &str) -> Option<LatencyHistogram>;
    let histograms: [(&str, &str, Read); 2] = [
        (
            "canon_drift_detection_seconds",
            "From a change (an event's time) to its drift being found, by source; a tick knows no change time.",
            SchedulerStats::detection_latency,
        ),
        (
            "canon_drift_heal_seconds",
            "From a drift being found to its heal, by source.",
            SchedulerStats::heal_latency,
        ),
    ];
    for (name, help, read) in histograms {
        let mut family = encoder.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        for source in DRIFT_SOURCES {
            let Some(h) = read(s, source) else { continue };
            let labels = [("source", source)];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum_secs, h.count, &h.buckets, None)?;
        }
    }
    Ok(())
}

/// Each Raft group as this node sees it, read at each scrape.
struct RaftCollector(RaftNode);

impl std::fmt::Debug for RaftCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RaftCollector").field(&self.0.id()).finish()
    }
}

/// One gauge per group: `(group, value)`.
type PerGroup = Vec<(u64, i64)>;

impl RaftCollector {
    /// Term, leadership, last log index and applied index of each group.
    fn read(&self) -> [(&'static str, &'static str, PerGroup); 4] {
        let node = &self.0;
        let (mut term, mut leader, mut last, mut applied) = (vec![], vec![], vec![], vec![]);
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for g in node.groups() {
            let Ok(m) = node.metrics(g) else { continue };
            let m = m.borrow();
            term.push((g, gauge(m.current_term)));
            leader.push((g, i64::from(m.current_leader == Some(node.id()))));
            last.push((g, gauge(m.last_log_index.unwrap_or(0))));
            applied.push((g, gauge(m.last_applied.map_or(0, |x| x.index))));
        }
        [
            ("canon_raft_term", "Current term per group.", term),
            (
                "canon_raft_is_leader",
                "1 if this node leads the group.",
                leader,
            ),
            (
                "canon_raft_last_log_index",
                "Last log index per group.",
                last,
            ),
            (
                "canon_raft_applied_index",
                "Applied (committed) index per group.",
                applied,
            ),
        ]
    }
}

impl Collector for RaftCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, values) in self.read() {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (group, value) in values {
                let labels = [("group", group.to_string())];
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_counters_keep_their_names_on_the_page() {
        let api = ApiMetrics::default();
        let mut registry = Registry::default();
        api.register(&mut registry);
        registry.register_collector(Box::new(SchedulerCollector(Arc::default())));
        api.call("run");
        api.call("run");
        api.refused();
        let page = render(&registry).unwrap();
        for line in [
            "canon_api_calls_total{action=\"run\"} 2",
            "canon_api_refused_total 1",
            "# HELP canon_api_calls_total API calls by action.",
            "# TYPE canon_ticks_total counter",
            "canon_ticks_total 0",
            "canon_cloud_requests_total 0",
            "# TYPE canon_tick_lag_seconds gauge",
            "canon_tick_lag_seconds{quantile=\"0.99\"} NaN",
            "# TYPE canon_observation_resources gauge",
            "canon_observation_resources{resources=\"refused\"} 0",
            "# TYPE canon_drift_heal_seconds histogram",
            "canon_drift_heal_seconds_count{source=\"event\"} 0",
            "canon_drift_detection_seconds_bucket{source=\"tick\",le=\"+Inf\"} 0",
        ] {
            assert!(page.lines().any(|l| l == line), "{line:?} in\n{page}");
        }
    }
}
