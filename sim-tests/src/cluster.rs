//! What every part of a simulation names: the hosts, the account and
//! region, the shard count, the nodes' handles (and who leads a group by
//! them), the changes the workload asks of the driver loop, and the
//! progress log. The world, the workload
//! and the checks all depend on this module, and it on none of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canon_cloud::Scope;
use canon_raft::{Leadership, NodeId, RaftNode};
use canon_scheduler::SchedulerStats;

/// The simulated cluster's id (the audience its client signs for).
pub const CLUSTER_ID: &str = "sim";

/// The one account and region the simulated processes live in.
pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-west-2";
/// Process shards per cluster (besides the meta group).
pub const SHARD_COUNT: u32 = 4;

/// The network's usual latency bound (latency spikes raise it for a while).
pub const MAX_LATENCY: Duration = Duration::from_millis(5);

/// Changes to the simulation that only its driver loop can make.
#[derive(Debug, Clone)]
pub enum Control {
    /// Crash and restart a host.
    Bounce(String),
    /// Randomly drop links at this rate (0 stops).
    FailRate(f64),
    /// The network's maximum message latency.
    MaxLatency(Duration),
}

/// The account and region as the cloud's scope.
pub fn scope() -> Scope {
    Scope::new(ACCOUNT, REGION)
}

/// The turmoil host name of node `i` (0-based): `n1`, `n2`, …
pub fn host_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// Every live node's handle, by id (a restarted host replaces its entry).
pub type Handles = Arc<Mutex<BTreeMap<NodeId, RaftNode>>>;

/// Every live node's scheduler statistics, by id (a restarted host
/// replaces its entry).
pub type SchedulerStatsByNode = Arc<Mutex<BTreeMap<NodeId, Arc<SchedulerStats>>>>;

/// The leadership of `group` as seen by the node that counts itself its
/// leader in the highest term, if any does.
pub fn leading(handles: &Handles, group: u64) -> Option<Leadership> {
    let nodes: Vec<RaftNode> = lock(handles).values().cloned().collect();
    nodes
        .iter()
        .filter_map(|n| n.leadership(group).ok().map(|l| *l.borrow()))
        .filter(|l| l.is_me)
        .max_by_key(|l| l.term)
}

/// Locks `m`, carrying on past a poisoned lock (the data is still whole:
/// every writer here only inserts or pushes).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Progress lines for people watching a slow seed (`SIM_VERBOSE=1`).
pub fn progress(what: &str) {
    if std::env::var_os("SIM_VERBOSE").is_some() {
        eprintln!(
            "sim {:>8.3}s: {what}",
            turmoil::sim_elapsed().unwrap_or_default().as_secs_f64()
        );
    }
}

/// Each node's last applied index in one group.
type Applied = Vec<(NodeId, Option<u64>)>;

/// Groups whose nodes have not all applied the same log index.
pub fn lagging_groups(handles: &Handles) -> Vec<(u64, Applied)> {
    let nodes: Vec<RaftNode> = lock(handles).values().cloned().collect();
    let Some(first) = nodes.first() else {
        return vec![];
    };
    let mut out = Vec::new();
    for g in first.groups() {
        let applied: Applied = nodes
            .iter()
            .map(|n| {
                let index = n
                    .metrics(g)
                    .ok()
                    .and_then(|m| m.borrow().last_applied.map(|l| l.index));
                (n.id(), index)
            })
            .collect();
        if applied.windows(2).any(|w| w[0].1 != w[1].1) {
            out.push((g, applied));
        }
    }
    out
}
