//! Batching of a group's proposals: the leader writes proposals that
//! arrive together as one log entry. Fed by [`super::inbound`] (a
//! proposal made here or forwarded by a peer); held by
//! [`super::balancing`] while leadership is handed over.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::wire::WireError;
use crate::command::{Batch, Committed, Request};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{RaftMetrics, ServerState};

use crate::ids::NodeId;
use crate::types::{Node, Raft, TypeConfig};

/// A switch that holds a group's new batches (proposals queue meanwhile).
#[derive(Debug, Default)]
pub(super) struct Hold {
    on: AtomicBool,
    released: tokio::sync::Notify,
}

impl Hold {
    pub(super) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Release);
        if !on {
            self.released.notify_waiters();
        }
    }

    async fn wait_released(&self) {
        loop {
            let released = self.released.notified();
            if !self.on.load(Ordering::Acquire) {
                return;
            }
            released.await;
        }
    }
}

/// Most requests in one log entry.
const MAX_BATCH: usize = 512;

/// Rough bound on the size of one log entry.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Batches of one group in flight at once.
const MAX_INFLIGHT_BATCHES: usize = 4;

/// Proposals that must be waiting before a batch is started while another
/// is still in flight (fewer wait for it, to share the next entry).
const PIPELINE_MIN: usize = 8;

/// Proposals waiting for a batch, per group, before proposers wait.
const BATCH_QUEUE: usize = 10_000;

/// A proposal waiting for its batch to be applied.
pub(super) type Pending = (Request, oneshot::Sender<Result<Committed, WireError>>);

/// Starts a group's batcher on the node's Raft `runtime`: proposals that arrive while earlier batches
/// are in flight are written as one log entry.
///
/// Every entry costs a replication round and a flush on each replica, so
/// the batcher aims for few, full entries: a batch starts at once when
/// none is in flight (a lone writer never waits), but while one is, a new
/// one starts only when [`PIPELINE_MIN`] proposals are waiting; fewer wait
/// for the batch in flight to finish and then go together. When the last
/// batch held several proposals (concurrent writers), the batcher yields
/// once before collecting, so writers answered together propose together.
pub(super) fn spawn_batcher(
    raft: Raft,
    hold: Arc<Hold>,
    runtime: &tokio::runtime::Handle,
) -> mpsc::Sender<Pending> {
    let (tx, mut rx) = mpsc::channel::<Pending>(BATCH_QUEUE);
    runtime.spawn(async move {
        let inflight = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(tokio::sync::Notify::new());
        let mut carry: Option<Pending> = None;
        let mut last_len = 0usize;
        loop {
            let first = match carry.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            hold.wait_released().await;
            loop {
                let n = inflight.load(Ordering::Acquire);
                if n == 0 || (n < MAX_INFLIGHT_BATCHES && rx.len() + 1 >= PIPELINE_MIN) {
                    break;
                }
                finished.notified().await;
            }
            if last_len > 1 {
                tokio::task::yield_now().await;
            }
            let mut size = first.0.approx_size();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                let Ok(p) = rx.try_recv() else { break };
                let s = p.0.approx_size();
                if size + s > MAX_BATCH_BYTES {
                    carry = Some(p);
                    break;
                }
                size += s;
                batch.push(p);
            }
            last_len = batch.len();
            inflight.fetch_add(1, Ordering::AcqRel);
            let raft = raft.clone();
            let inflight = inflight.clone();
            let finished = finished.clone();
            // On the batcher's own runtime, the node's Raft runtime.
            tokio::spawn(async move {
                let (reqs, waiters): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
                let n = reqs.len();
                let written = tokio::select! {
                    w = raft.client_write(Batch::from(reqs)) => Some(w),
                    () = removed_from_voters(&raft) => None,
                };
                let answers = match written {
                    Some(w) => answer_write(w, n),
                    // Never to be answered: see `removed_from_voters`.
                    None => vec![Err(WireError::NotLeader { leader: None }); n],
                };
                inflight.fetch_sub(1, Ordering::AcqRel);
                finished.notify_one();
                for (w, a) in waiters.into_iter().zip(answers) {
                    // The proposer may have given up; nothing to tell then.
                    let _ = w.send(a);
                }
            });
        }
    });
    tx
}

/// What a batch's write answers each of its `n` requests.
fn answer_write(
    written: Result<
        openraft::raft::ClientWriteResponse<TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, Node>>,
    >,
    n: usize,
) -> Vec<Result<Committed, WireError>> {
    match written {
        Ok(resp) if resp.data.len() == n => resp.data.into_iter().map(Ok).collect(),
        Ok(resp) => {
            let e = WireError::Fatal(format!("{} answers for {n} requests", resp.data.len()));
            vec![Err(e); n]
        }
        Err(e) => vec![Err(WireError::of_write(e)); n],
    }
}

/// Whether `id` is a voter of the membership `m` shows.
pub(super) fn is_voter(m: &RaftMetrics<NodeId, Node>, id: NodeId) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id)
}

/// Resolves once this replica is neither leader nor a voter of its group.
/// openraft answers a write when its entry is applied here, or tells it to
/// go to the leader when a new leader overwrites it. A leader that removed
/// itself steps down and is sent nothing more: a write it accepted last
/// would wait forever, and hold a pipeline slot of this batcher with it.
async fn removed_from_voters(raft: &Raft) {
    let mut metrics = raft.metrics();
    loop {
        {
            let m = metrics.borrow_and_update();
            if m.state != ServerState::Leader && !is_voter(&m, m.id) {
                return;
            }
        }
        if metrics.changed().await.is_err() {
            // The raft stopped: its writes answer with an error of their own.
            std::future::pending::<()>().await;
        }
    }
}
