//! Linearizable reads that share one leadership confirmation.
//!
//! openraft 0.9 confirms its leadership for every read index it is asked
//! for (`Raft::get_read_log_id`) with a heartbeat round of its own: an
//! AppendEntries to every voter, each bounded by one heartbeat interval.
//! The API reads linearizably for every command it takes (the policy, the
//! process, its job ids), so N commands in flight made 3N rounds; in the
//! scale bench at 20,000 processes on 2 cores those rounds were the larger
//! part of the Raft traffic, and when the machine fell behind they timed
//! out together and were retried together.
//!
//! Here a group runs at most one confirmation at a time. A read that
//! arrives while one is out waits for the next, which every read waiting
//! by then shares. Each read is answered from a confirmation that began
//! after it arrived, so it sees every write acknowledged before it was
//! asked: as linearizable as a round of its own.

use std::sync::{Arc, Mutex};

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::failover::lock;
use super::wire::WireError;
use crate::ids::NodeId;
use crate::types::{LogId, Node, Raft};

/// What a read index is: the log position a read must wait to see
/// applied (None: nothing to wait for), or why there is none.
pub(super) type ReadIndex = Result<Option<LogId>, WireError>;

/// Why openraft could not confirm its leadership for a read.
type LeaderCheckError = RaftError<NodeId, CheckIsLeaderError<NodeId, Node>>;

/// One group's shared leadership confirmations.
pub(super) struct ReadRounds {
    raft: Raft,
    runtime: Handle,
    queue: Arc<Mutex<Queue>>,
}

/// The reads waiting for the next confirmation, and whether a task runs
/// confirmations.
#[derive(Default)]
struct Queue {
    waiting: Vec<oneshot::Sender<ReadIndex>>,
    running: bool,
}

impl ReadRounds {
    /// Confirmations of `raft`'s leadership, run on `runtime`.
    pub(super) fn new(raft: Raft, runtime: Handle) -> ReadRounds {
        ReadRounds {
            raft,
            runtime,
            queue: Arc::default(),
        }
    }

    /// The read index of a read asked now (see the module doc).
    pub(super) async fn read_index(&self) -> ReadIndex {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = lock(&self.queue);
            q.waiting.push(tx);
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let guard = Running::new(self.queue.clone());
            self.runtime
                .spawn(confirm_while_asked(self.raft.clone(), guard));
        }
        rx.await
            .unwrap_or_else(|_| Err(WireError::Fatal("the group stopped".to_string())))
    }
}

/// The queue's task. Dropped before it found the queue empty (a runtime
/// shutting down drops it mid-round), it marks the task gone: the reads
/// waiting are answered by their senders' drop, and the next read starts
/// a new task instead of waiting for one that no longer runs.
struct Running {
    queue: Arc<Mutex<Queue>>,
    /// Set under the queue's lock when the task found it empty and said
    /// so (`running` false): a read may have started another task since,
    /// whose reads this one must leave alone.
    finished: bool,
}

impl Running {
    fn new(queue: Arc<Mutex<Queue>>) -> Running {
        Running {
            queue,
            finished: false,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut q = lock(&self.queue);
        q.running = false;
        q.waiting.clear();
    }
}

/// Confirms leadership once for all reads waiting, then again for those
/// that came meanwhile, until none wait.
async fn confirm_while_asked(raft: Raft, mut running: Running) {
    loop {
        let reads = {
            let mut q = lock(&running.queue);
            if q.waiting.is_empty() {
                q.running = false;
                running.finished = true;
                return;
            }
            std::mem::take(&mut q.waiting)
        };
        let answer = read_index_of(raft.get_read_log_id().await);
        for read in reads {
            let _ = read.send(answer.clone());
        }
    }
}

/// The read index in an openraft answer, or the error the caller routes
/// on (another node leads: go there; no quorum confirmed: retry).
fn read_index_of(answer: Result<(Option<LogId>, Option<LogId>), LeaderCheckError>) -> ReadIndex {
    match answer {
        Ok((read_at, _applied)) => Ok(read_at),
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
            Err(WireError::NotLeader {
                leader: f
                    .leader_id
                    .map(|id| (id, f.leader_node.map(|n| n.addr).unwrap_or_default())),
            })
        }
        // No quorum confirmed the leadership: retry (maybe elsewhere).
        Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
            Err(WireError::Busy(e.to_string()))
        }
        Err(RaftError::Fatal(e)) => Err(WireError::Fatal(e.to_string())),
    }
}
