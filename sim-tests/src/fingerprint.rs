//! Fingerprints of a run, for checking that a seed replays exactly: the
//! cluster's Raft state after every simulation step (so that two runs of a
//! seed can be compared step by step, and the first step where they part
//! named), and a hash of anything printable (the SDK calls' history).
//!
//! Hashed with `DefaultHasher::new()`, whose keys are fixed (unlike a
//! `HashMap`'s `RandomState`), so the same state gives the same number in
//! every process.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::cluster::{lock, Handles};

/// The state of the cluster after one simulation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPrint {
    /// Simulated ms.
    pub at_ms: u64,
    /// For every live node and group, the node's Raft state: its role,
    /// term, vote, leader, last log index and last applied index.
    pub raft: u64,
}

/// The cluster's state at simulated time `elapsed`, by `handles`.
pub fn raft_state(elapsed: Duration, handles: &Handles) -> StepPrint {
    let mut h = DefaultHasher::new();
    let nodes: Vec<_> = lock(handles).values().cloned().collect();
    for node in nodes {
        node.id().hash(&mut h);
        for group in node.groups() {
            let Ok(metrics) = node.metrics(group) else {
                continue;
            };
            let m = metrics.borrow();
            group.hash(&mut h);
            format!("{:?}", m.state).hash(&mut h);
            m.current_term.hash(&mut h);
            format!("{:?}", m.vote).hash(&mut h);
            m.current_leader.hash(&mut h);
            m.last_log_index.hash(&mut h);
            m.last_applied.map(|l| l.index).hash(&mut h);
        }
    }
    StepPrint {
        at_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        raft: h.finish(),
    }
}

/// A hash of `value`'s `Debug` text.
pub fn of_debug(value: &impl Debug) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    h.finish()
}

/// The first position where `a` and `b` differ (one ending before the
/// other counts), if they do.
pub fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    match common {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_found() {
        assert_eq!(first_difference::<u64>(&[], &[]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_difference(&[1, 2, 3], &[1, 5, 3]), Some(1));
        assert_eq!(first_difference(&[1, 2], &[1, 2, 3]), Some(2));
    }
}
