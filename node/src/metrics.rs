//! Prometheus metrics on a separate admin port (`GET /metrics`): API calls
//! per action, enforcement ticks, drift events, cloud requests, tick lag,
//! and per Raft group this node's view of term, log, commits and whether it
//! leads. A deliberately tiny HTTP/1.1 responder: one request per
//! connection, nothing else served.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_raft::RaftNode;
use canon_scheduler::SchedulerStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;

/// Counts of API calls by action.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    calls: Mutex<BTreeMap<&'static str, u64>>,
    refused: AtomicU64,
}

impl ApiMetrics {
    /// One call of `action` (run, update, kill, status, ...).
    pub fn call(&self, action: &'static str) {
        // A poisoned lock still holds valid counts.
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        *calls.entry(action).or_insert(0) += 1;
    }

    /// One envelope refused at the door.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// The metrics page.
pub fn render(node: &RaftNode, sched: &SchedulerStats, api: &ApiMetrics) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, lines: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let calls = api.calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
    metric(
        "canon_api_calls_total",
        "API calls by action.",
        "counter",
        calls
            .iter()
            .map(|(a, n)| (format!("{{action=\"{a}\"}}"), n.to_string()))
            .collect(),
    );
    metric(
        "canon_api_refused_total",
        "Commands refused at the door (signature, freshness, replay).",
        "counter",
        vec![(
            String::new(),
            api.refused.load(Ordering::Relaxed).to_string(),
        )],
    );
    for (name, help, v) in [
        (
            "canon_ticks_total",
            "Enforcement passes run by this node's actors.",
            sched.ticks(),
        ),
        (
            "canon_quiet_ticks_total",
            "Passes that found nothing to do.",
            sched.quiet_ticks(),
        ),
        (
            "canon_drift_events_total",
            "Drift events recorded.",
            sched.drift_events(),
        ),
        (
            "canon_cloud_requests_total",
            "Cloud mutations executed.",
            sched.requests_executed(),
        ),
        (
            "canon_actors_started_total",
            "Process actors started.",
            sched.actors_started(),
        ),
    ] {
        metric(name, help, "counter", vec![(String::new(), v.to_string())]);
    }
    let lag = |p: f64| {
        sched
            .lag_percentile(p)
            .map(|d| d.as_secs_f64().to_string())
            .unwrap_or_else(|| "NaN".into())
    };
    metric(
        "canon_tick_lag_seconds",
        "How late ticks start, by quantile.",
        "gauge",
        vec![
            ("{quantile=\"0.5\"}".into(), lag(0.5)),
            ("{quantile=\"0.99\"}".into(), lag(0.99)),
        ],
    );
    let mut term = Vec::new();
    let mut leader = Vec::new();
    let mut last = Vec::new();
    let mut applied = Vec::new();
    for g in node.groups() {
        let Ok(m) = node.metrics(g) else { continue };
        let m = m.borrow();
        let l = format!("{{group=\"{g}\"}}");
        term.push((l.clone(), m.current_term.to_string()));
        leader.push((
            l.clone(),
            u8::from(m.current_leader == Some(node.id())).to_string(),
        ));
        last.push((l.clone(), m.last_log_index.unwrap_or(0).to_string()));
        applied.push((l, m.last_applied.map(|x| x.index).unwrap_or(0).to_string()));
    }
    metric("canon_raft_term", "Current term per group.", "gauge", term);
    metric(
        "canon_raft_is_leader",
        "1 if this node leads the group.",
        "gauge",
        leader,
    );
    metric(
        "canon_raft_last_log_index",
        "Last log index per group.",
        "gauge",
        last,
    );
    metric(
        "canon_raft_applied_index",
        "Applied (committed) index per group.",
        "gauge",
        applied,
    );
    out
}

/// Serves `/metrics` on `listener` until the node stops.
pub fn serve(
    listener: TcpListener,
    node: RaftNode,
    sched: Arc<SchedulerStats>,
    api: Arc<ApiMetrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let (node, sched, api) = (node.clone(), sched.clone(), api.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if path == "/metrics" {
                    ("200 OK", render(&node, &sched, &api))
                } else {
                    (
                        "404 Not Found",
                        "only /metrics is served here\n".to_string(),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                // The scraper may have gone; nothing to do about it.
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    })
}
