//! Retention: what each Raft group keeps, so a node's state stays bounded
//! however long it runs. Every sweep (a minute by default) the node looks,
//! in each group it leads, for what is past canond's limits and proposes
//! its removal as commands: the audit chain's oldest records
//! ([`audit`]), processes' old finished jobs and healed drift, folded into
//! counts, and killed processes past their keep ([`history`]). Removal is
//! a command in the log, so every replica keeps the same state whatever
//! its own settings say (the leader's decide).

pub mod audit;
pub mod history;

use std::time::Duration;

use canon_model::Fid;
use canon_raft::{Command, Consistency, NodeError, RaftNode, Request};
use tokio::task::JoinHandle;

pub use audit::AuditRetention;
pub use history::HistoryRetention;

/// How often a node looks for what to remove, unless told otherwise.
pub const SWEEP_EVERY_DEFAULT: Duration = Duration::from_secs(60);
/// Killed processes removed by one sweep of one group at most (the rest
/// the next sweep): a bounded burst of proposals.
const DELETES_PER_SWEEP_MAX: usize = 1_000;

/// Everything a node's retention keeps, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub audit: AuditRetention,
    pub history: HistoryRetention,
    pub sweep_every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            audit: AuditRetention::default(),
            history: HistoryRetention::default(),
            sweep_every: SWEEP_EVERY_DEFAULT,
        }
    }
}

/// A count setting: absent, `default`; 0, no limit.
fn count_setting(setting: Option<u64>, default: Option<u64>) -> Option<u64> {
    match setting {
        None => default,
        Some(0) => None,
        Some(n) => Some(n),
    }
}

/// A setting in days: absent, `default`; 0, no limit.
fn days_setting(setting: Option<u64>, default: Option<Duration>) -> Option<Duration> {
    match setting {
        None => default,
        Some(0) => None,
        Some(d) => Some(days(d)),
    }
}

/// `n` days.
fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

/// `now_ms` less `age`, saturating.
fn cutoff_ms(now_ms: u64, age: Duration) -> u64 {
    now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
}

/// How far past a count limit a group or process may go before it is
/// trimmed back to the limit: a tenth, at least one. So a trim comes once
/// in a while, not one row per sweep.
fn slack(keep: u64) -> u64 {
    (keep / 10).max(1)
}

/// Sweeps the groups this node leads every `sweep_every`, until the node
/// stops.
pub fn spawn_retention(node: RaftNode, retention: Retention) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(retention.sweep_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = sweep(&node, &retention).await {
                if matches!(e, NodeError::Stopped) {
                    return;
                }
                tracing::debug!(error = %e, "retention");
            }
        }
    })
}

/// What one group has past the limits.
struct Due {
    audit_through: Option<u64>,
    history: Option<canon_raft::HistoryLimits>,
    killed: Vec<Fid>,
}

async fn sweep(node: &RaftNode, r: &Retention) -> Result<(), NodeError> {
    for group in node.groups() {
        if !node.membership(group).is_ok_and(|m| m.leads) {
            continue;
        }
        let now = crate::now_ms();
        let due = node
            .read(group, Consistency::Stale, |s| Due {
                audit_through: audit::trim_point(&s.audit, &r.audit, now),
                history: history::limits_due(s, &r.history, now),
                killed: history::killed_due(s, &r.history, now, DELETES_PER_SWEEP_MAX),
            })
            .await?;
        if let Some(through) = due.audit_through {
            node.propose(group, Request::new(now, Command::AuditTrimmed { through }))
                .await?;
            tracing::info!(group, through, "audit records trimmed (retention)");
        }
        if let Some(limits) = due.history {
            node.propose(group, Request::new(now, Command::HistoryTrimmed { limits }))
                .await?;
            tracing::info!(group, %limits, "process history folded (retention)");
        }
        for fid in due.killed {
            node.propose(group, Request::new(now, Command::ProcessDeleted { fid }))
                .await?;
            tracing::info!(group, %fid, "killed process removed (retention)");
        }
    }
    Ok(())
}
