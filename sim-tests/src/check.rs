//! The invariants, checked after a run with faults healed:
//! - every acknowledged command is present, and every node's state agrees;
//! - no two conductors' mutations of one process interleave (the simulated
//!   cloud's mutation log, with each caller's node and term);
//! - no duplicates: every owned cloud resource is bound, once (so no
//!   fleet instance is doubled or orphaned once its rollout is done);
//! - convergence: Running processes match their declaration, Killed ones
//!   own nothing;
//! - every time written into the log came from the simulated clock (a wall
//!   clock's would make a run depend on when and how fast it ran).
//!
//! A fleet's capacity floor is watched while the faults are in force, by
//! the workload (`crate::fleet::FloorWatch`); what it finds joins these.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use canon_cloud::SimCloud;
use canon_model::*;
use canon_raft::shard::group_of_alias;
use canon_raft::state::ProcessRecord;
use canon_raft::{Consistency, NodeId, RaftNode};

use crate::cluster::{scope, SHARD_COUNT};

/// Every violation found; the simulation ended at `end_ms` (its clock).
pub fn all(
    cloud: &SimCloud,
    handles: &Arc<Mutex<BTreeMap<NodeId, RaftNode>>>,
    created: &[(String, Fid)],
    end_ms: UnixMillis,
) -> Vec<String> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return vec![format!("no runtime for checks: {e}")],
    };
    let mut v = rt.block_on(state(cloud, handles, created));
    // One writer at a time.
    v.extend(cloud.writer_violations());
    v.extend(log_times(handles, end_ms));
    v
}

/// The nodes running now (a poisoned lock still holds a valid map).
fn nodes_of(handles: &Arc<Mutex<BTreeMap<NodeId, RaftNode>>>) -> Vec<RaftNode> {
    handles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

/// Every group whose log holds a command time (its state's clock, the
/// greatest it applied) later than `end_ms`, the simulation's end: a time
/// some node took from another clock than the simulation's.
fn log_times(handles: &Arc<Mutex<BTreeMap<NodeId, RaftNode>>>, end_ms: UnixMillis) -> Vec<String> {
    let nodes = nodes_of(handles);
    let mut v = Vec::new();
    for node in &nodes {
        for group in node.groups() {
            match node.read_applied(group, |s| s.clock) {
                Ok((_, clock)) if clock > end_ms => v.push(format!(
                    "node {} group {group}: a command time from outside the simulation \
                     ({clock} ms since the Unix epoch; the simulation ended at {end_ms})",
                    node.id()
                )),
                Ok(_) => {}
                Err(e) => v.push(format!("node {} group {group}: {e}", node.id())),
            }
        }
    }
    v
}

/// The checks of the cluster's state against the cloud: acknowledged
/// processes kept and agreed on, no duplicates, convergence. Empty once
/// the cluster has settled (the workload polls it to time convergence).
pub async fn state(
    cloud: &SimCloud,
    handles: &Arc<Mutex<BTreeMap<NodeId, RaftNode>>>,
    created: &[(String, Fid)],
) -> Vec<String> {
    let mut v = Vec::new();
    let decode = canon_node::composition::decoder();
    let nodes = nodes_of(handles);

    // Acknowledged and agreed.
    let mut processes: BTreeMap<Fid, ProcessRecord> = BTreeMap::new();
    for (alias, fid) in created {
        let group = group_of_alias(alias, SHARD_COUNT);
        let mut seen: Option<ProcessRecord> = None;
        for node in &nodes {
            match node
                .read(group, Consistency::Stale, |s| s.process(fid).cloned())
                .await
            {
                Ok(Some(p)) => {
                    if let Some(first) = &seen {
                        if first.state != p.state || first.generation != p.generation {
                            v.push(format!(
                                "nodes disagree on {alias}: {} g{} vs {} g{} (node {})",
                                first.state,
                                first.generation,
                                p.state,
                                p.generation,
                                node.id()
                            ));
                        }
                    } else {
                        seen = Some(p);
                    }
                }
                Ok(None) => v.push(format!(
                    "acknowledged {alias} missing on node {}",
                    node.id()
                )),
                Err(e) => v.push(format!("reading {alias} on node {}: {e}", node.id())),
            }
        }
        if let Some(p) = seen {
            processes.insert(*fid, p);
        }
    }

    // No duplicates, and convergence.
    let owned = cloud.all_owned(&scope());
    let mut by_owner: BTreeMap<LogicalId, Vec<&ObservedResource>> = BTreeMap::new();
    for r in &owned {
        if let Some(o) = r.owner() {
            by_owner.entry(o).or_default().push(r);
        }
    }
    for (l, rs) in &by_owner {
        if rs.len() > 1 {
            v.push(format!(
                "duplicate resources for {l}: {:?}",
                rs.iter().map(|r| &r.cloud_id).collect::<Vec<_>>()
            ));
        }
    }
    let observed: ObservedState = owned.iter().cloned().collect();
    for p in processes.values() {
        let mine: Vec<&ObservedResource> = owned
            .iter()
            .filter(|r| r.owner().is_some_and(|o| o.fid == p.fid))
            .collect();
        let bound: BTreeSet<&str> = p.bindings.values().map(|b| b.cloud_id.as_str()).collect();
        match p.state {
            ProcessState::Killed => {
                if !mine.is_empty() {
                    v.push(format!("killed {} still owns {}", p.alias, mine.len()));
                }
            }
            _ if p.jobs.is_empty() => {
                if !mine.is_empty() {
                    v.push(format!("{} never started but owns {}", p.alias, mine.len()));
                }
            }
            ProcessState::Running => {
                for r in &mine {
                    if !bound.contains(r.cloud_id.as_str()) {
                        v.push(format!("{} owns unbound {}", p.alias, r.cloud_id));
                    }
                }
                match decode(&p.composition, p.fid) {
                    Ok(d) => {
                        let bindings: Bindings = p
                            .bindings
                            .iter()
                            .map(|(l, b)| (*l, b.cloud_id.clone()))
                            .collect();
                        let plan = plan(&d, &observed, &bindings);
                        let parked = p
                            .jobs
                            .values()
                            .max_by_key(|j| (j.started, j.id))
                            .is_some_and(|j| j.status == JobStatus::Failed);
                        if !plan.is_empty() && !parked {
                            v.push(format!(
                                "{} has not converged: {:?}",
                                p.alias,
                                plan.requests
                                    .iter()
                                    .map(|r| r.request_type())
                                    .collect::<Vec<_>>()
                            ));
                        }
                    }
                    Err(e) => v.push(format!("{}: bad composition: {e}", p.alias)),
                }
            }
            ProcessState::Killing => v.push(format!(
                "{} is still Killing after the faults healed",
                p.alias
            )),
            ProcessState::Releasing => v.push(format!(
                "{} is still Releasing after the faults healed",
                p.alias
            )),
            ProcessState::Released => {
                if !mine.is_empty() {
                    v.push(format!("released {} still owns {}", p.alias, mine.len()));
                }
            }
            ProcessState::Suspended => {}
        }
    }
    v
}
