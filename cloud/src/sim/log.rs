//! The simulated cloud's log of every mutation with the caller's identity,
//! so simulations can check that at most one conductor mutated a process at
//! a time and that a deposed leader's late mutations are caught.

use canon_model::{Fid, LogicalId};
use serde::{Deserialize, Serialize};

use crate::Scope;

/// Who made a mutation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Caller {
    /// A conductor node acting as leader in `term` for job `job_id`.
    Conductor {
        node_id: u64,
        term: u64,
        job_id: String,
    },
    /// Someone outside Canon (the rogue-operator API).
    Rogue,
}

/// One mutation of the simulated cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// Position in the log, from 0.
    pub seq: u64,
    pub at_ms: u64,
    pub caller: Caller,
    pub scope: Scope,
    /// The request type (`aws.ec2.authorize_security_group_ingress`).
    pub action: String,
    /// The logical resource the request served (conductor calls only).
    pub target: Option<LogicalId>,
    /// The cloud resource touched.
    pub resource: Option<String>,
}

impl Mutation {
    /// The process the mutation was made for, if a conductor made it.
    pub fn fid(&self) -> Option<Fid> {
        self.target.map(|t| t.fid)
    }
}

/// Checks a log for interleaved writers: for each process, conductor
/// mutations must come from one (node, term) at a time with terms never going
/// back. Returns one line per violation.
pub fn writer_violations(log: &[Mutation]) -> Vec<String> {
    use std::collections::HashMap;
    let mut last: HashMap<Fid, (u64, u64, u64)> = HashMap::new();
    let mut out = Vec::new();
    for m in log {
        let (Caller::Conductor { node_id, term, .. }, Some(fid)) = (&m.caller, m.fid()) else {
            continue;
        };
        if let Some(&(prev_node, prev_term, prev_seq)) = last.get(&fid) {
            if *term < prev_term {
                out.push(format!(
                    "process {fid}: mutation #{} by node {node_id} in term {term} after #{prev_seq} by node {prev_node} in term {prev_term}",
                    m.seq
                ));
                continue;
            }
            if *term == prev_term && *node_id != prev_node {
                out.push(format!(
                    "process {fid}: nodes {prev_node} and {node_id} both mutated in term {term} (#{prev_seq}, #{})",
                    m.seq
                ));
                continue;
            }
        }
        last.insert(fid, (*node_id, *term, m.seq));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(seq: u64, node: u64, term: u64, target: LogicalId) -> Mutation {
        Mutation {
            seq,
            at_ms: seq,
            caller: Caller::Conductor {
                node_id: node,
                term,
                job_id: "j".into(),
            },
            scope: Scope::new("1", "us-west-2"),
            action: "aws.ec2.create_vpc".into(),
            target: Some(target),
            resource: None,
        }
    }

    #[test]
    fn detects_late_and_concurrent_writers() {
        let a = LogicalId::new(Fid::random(), "x");
        let b = LogicalId::new(Fid::random(), "x");
        let ok = vec![m(0, 1, 1, a), m(1, 1, 1, a), m(2, 2, 2, a), m(3, 1, 1, b)];
        assert!(writer_violations(&ok).is_empty());
        let late = vec![m(0, 1, 1, a), m(1, 2, 2, a), m(2, 1, 1, a)];
        assert_eq!(writer_violations(&late).len(), 1);
        let split = vec![m(0, 1, 3, a), m(1, 2, 3, a)];
        assert_eq!(writer_violations(&split).len(), 1);
    }
}
