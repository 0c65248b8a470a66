//! Batching of a group's proposals: the leader writes proposals that
//! arrive together as one log entry. Fed by [`super::inbound`] (a
//! proposal made here or forwarded by a peer); held by
//! [`super::balancing`] while leadership is handed over. Which proposals
//! go together is [`collector`]'s decision; this module writes each batch
//! and answers its proposers.

mod collector;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::wire::WireError;
use crate::command::{Batch, Committed, Request};
use collector::{Collector, InFlight};
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

/// Proposals waiting for a batch, per group, before proposers wait.
const BATCH_QUEUE: usize = 10_000;

/// A proposal waiting for its batch to be applied.
pub(super) type Pending = (Request, oneshot::Sender<Result<Committed, WireError>>);

/// Starts a group's batcher on the node's Raft `runtime`: proposals that
/// arrive together are written as one log entry ([`Collector`] decides
/// which), each batch in a task of its own, up to
/// [`collector::MAX_INFLIGHT_BATCHES`] at once.
pub(super) fn spawn_batcher(
    raft: Raft,
    hold: Arc<Hold>,
    runtime: &tokio::runtime::Handle,
) -> mpsc::Sender<Pending> {
    let (tx, rx) = mpsc::channel::<Pending>(BATCH_QUEUE);
    let mut collector = Collector::new(rx, tx.downgrade(), hold);
    runtime.spawn(async move {
        while let Some(batch) = collector.next_batch().await {
            write(&raft, collector.in_flight(), batch);
        }
    });
    tx
}

/// Writes `batch` as one entry, in a task on the batcher's runtime (the
/// node's Raft runtime), and answers its proposers.
fn write(raft: &Raft, in_flight: &Arc<InFlight>, batch: Vec<Pending>) {
    let n = batch.len();
    let raft = raft.clone();
    let in_flight = in_flight.clone();
    tokio::spawn(async move {
        let (reqs, waiters): (Vec<Request>, Vec<_>) = batch.into_iter().unzip();
        let written = tokio::select! {
            w = raft.client_write(Batch::from(reqs)) => Some(w),
            () = removed_from_voters(&raft) => None,
        };
        let answers = match written {
            Some(w) => answer_write(w, n),
            // Never to be answered: see `removed_from_voters`.
            None => vec![Err(WireError::NotLeader { leader: None }); n],
        };
        in_flight.answered(n);
        for (w, a) in waiters.into_iter().zip(answers) {
            // The proposer may have given up; nothing to tell then.
            let _ = w.send(a);
        }
    });
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
