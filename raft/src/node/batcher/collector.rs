//! Which of a group's proposals go into one log entry, and when a batch
//! starts.
//!
//! Every entry costs a replication round, a flush on each replica and
//! openraft's per-entry work (its commit announcement to each follower
//! among it), so the collector aims for few, full entries:
//! - A batch starts at once when none is in flight (a lone writer never
//!   waits). While one is, a new one starts only when [`PIPELINE_MIN`]
//!   proposals are waiting; fewer wait for the batch in flight to finish
//!   and then go together.
//! - When the last batch held several proposals (concurrent writers), the
//!   collector yields once before collecting, so writers answered together
//!   propose together.
//! - When the group has had a few writers lately ([`Writers`]) and fewer
//!   are waiting, a batch that would go alone waits up to [`LINGER_MAX`]
//!   for the others (the writers just answered) to propose again. Without
//!   it, four writers split into two halves that alternate, one entry per
//!   two writes: measured over 16 groups with 4 writers each, 2.05
//!   proposals per entry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Hold, Pending};

/// Most requests in one log entry.
const MAX_BATCH: usize = 512;

/// Rough bound on the size of one log entry.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Batches of one group in flight at once.
pub(super) const MAX_INFLIGHT_BATCHES: usize = 4;

/// Proposals that must be waiting before a batch is started while another
/// is still in flight (fewer wait for it, to share the next entry).
const PIPELINE_MIN: usize = 8;

/// Longest a batch waits for the group's other writers to propose again:
/// what a write can lose to it. Over 16 groups with 4 writers each (3 node
/// processes on 2 cores), 2 ms made more writes per second than 1 or 3 ms
/// (decision 0025).
const LINGER_MAX: Duration = Duration::from_millis(2);

/// Batches [`Writers`] remembers.
const WRITERS_WINDOW: usize = 16;

// A lingering batch waits for fewer than `PIPELINE_MIN` proposals: they
// always fit in one batch.
const _: () = assert!(PIPELINE_MIN <= MAX_BATCH);

/// A group's batches in flight, shared with the tasks that write them.
#[derive(Debug)]
pub(super) struct InFlight {
    batches: AtomicUsize,
    /// The most writers counted when a batch was answered since the
    /// collector last looked: the batch's proposers and those waiting
    /// meanwhile (a writer waits for its answer before it proposes again,
    /// so none is counted twice).
    writers_seen: AtomicUsize,
    /// Told when a batch is answered.
    finished: tokio::sync::Notify,
    /// Whether the collector holds proposals it took from the queue for
    /// its next batch, not yet handed out: at least one more waiting.
    holding: AtomicBool,
    /// The proposals' queue, to count those waiting when a batch is
    /// answered (weak: the batcher ends when every proposer is gone).
    queue: mpsc::WeakSender<Pending>,
}

impl InFlight {
    /// A batch left the collector to be written.
    fn started(&self) {
        self.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// A batch of `proposals` is answered (or failed).
    pub(super) fn answered(&self, proposals: usize) {
        let waiting = self
            .queue
            .upgrade()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
            + usize::from(self.holding.load(Ordering::Acquire));
        self.writers_seen
            .fetch_max(proposals + waiting, Ordering::AcqRel);
        self.batches.fetch_sub(1, Ordering::AcqRel);
        self.finished.notify_one();
    }

    fn batches(&self) -> usize {
        self.batches.load(Ordering::Acquire)
    }
}

/// Collects one group's proposals into batches: see the module's doc.
pub(super) struct Collector {
    rx: mpsc::Receiver<Pending>,
    hold: Arc<Hold>,
    in_flight: Arc<InFlight>,
    writers: Writers,
    /// A proposal that did not fit the last batch: the first of the next.
    carry: Option<Pending>,
    /// Proposals in the last batch.
    last_len: usize,
}

impl Collector {
    pub(super) fn new(
        rx: mpsc::Receiver<Pending>,
        queue: mpsc::WeakSender<Pending>,
        hold: Arc<Hold>,
    ) -> Collector {
        let in_flight = Arc::new(InFlight {
            batches: AtomicUsize::new(0),
            writers_seen: AtomicUsize::new(0),
            finished: tokio::sync::Notify::new(),
            holding: AtomicBool::new(false),
            queue,
        });
        Collector {
            rx,
            hold,
            in_flight,
            writers: Writers::default(),
            carry: None,
            last_len: 0,
        }
    }

    /// What the writer of each batch reports to.
    pub(super) fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }

    /// The next batch to write; `None` once every proposer is gone.
    pub(super) async fn next_batch(&mut self) -> Option<Vec<Pending>> {
        let first = match self.carry.take() {
            Some(p) => p,
            None => self.rx.recv().await?,
        };
        self.in_flight.holding.store(true, Ordering::Release);
        self.hold.wait_released().await;
        self.wait_for_room().await;
        if self.last_len > 1 {
            tokio::task::yield_now().await;
        }
        let mut batch = Collecting::new(first);
        self.take_waiting(&mut batch);
        let seen = self.in_flight.writers_seen.swap(0, Ordering::AcqRel);
        if seen > 0 {
            self.writers.seen(seen);
        }
        self.linger_for_writers(&mut batch).await;
        self.last_len = batch.len();
        self.in_flight.started();
        self.in_flight.holding.store(false, Ordering::Release);
        Some(batch.requests)
    }

    /// Until no batch is in flight, or one more may start beside those
    /// that are and enough proposals wait to fill it.
    async fn wait_for_room(&self) {
        loop {
            let n = self.in_flight.batches();
            if n == 0 || (n < MAX_INFLIGHT_BATCHES && self.rx.len() + 1 >= PIPELINE_MIN) {
                return;
            }
            self.in_flight.finished.notified().await;
        }
    }

    /// Waits (up to [`LINGER_MAX`]) for the group's few other writers to
    /// join a batch that would go alone. Many writers keep several batches
    /// in flight instead ([`PIPELINE_MIN`]), and never wait here.
    async fn linger_for_writers(&mut self, batch: &mut Collecting) {
        let expected = self.writers.expected();
        let few = expected < PIPELINE_MIN;
        let alone = self.in_flight.batches() == 0;
        if !(few && alone && self.carry.is_none() && batch.len() < expected) {
            return;
        }
        if !self
            .linger(batch, expected, Instant::now() + LINGER_MAX)
            .await
        {
            // They did not come: fewer writers than the window says.
            self.writers.forget(batch.len());
        }
    }

    /// Adds the proposals already waiting to `batch`, as many as fit (the
    /// first that does not is carried to the next batch).
    fn take_waiting(&mut self, batch: &mut Collecting) {
        while self.carry.is_none() && batch.len() < MAX_BATCH {
            let Ok(p) = self.rx.try_recv() else { return };
            self.carry = batch.push(p);
        }
    }

    /// Waits until `want` proposals are in `batch`, it is full, or
    /// `deadline`; false if the deadline came first.
    async fn linger(&mut self, batch: &mut Collecting, want: usize, deadline: Instant) -> bool {
        while batch.len() < want && self.carry.is_none() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(p)) => {
                    self.carry = batch.push(p);
                    self.take_waiting(batch);
                }
                // Every proposer is gone: nothing more will come.
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
        true
    }
}

/// A batch being collected, within [`MAX_BATCH`] and [`MAX_BATCH_BYTES`].
struct Collecting {
    requests: Vec<Pending>,
    bytes: usize,
}

impl Collecting {
    fn new(first: Pending) -> Collecting {
        Collecting {
            bytes: first.0.approx_size(),
            requests: vec![first],
        }
    }

    fn len(&self) -> usize {
        self.requests.len()
    }

    /// Adds `p`; gives it back when the batch is full.
    fn push(&mut self, p: Pending) -> Option<Pending> {
        let size = p.0.approx_size();
        if self.requests.len() >= MAX_BATCH || self.bytes + size > MAX_BATCH_BYTES {
            return Some(p);
        }
        self.bytes += size;
        self.requests.push(p);
        None
    }
}

/// How many writers a group has had lately: the most counted when any of
/// the last [`WRITERS_WINDOW`] answered batches was answered.
#[derive(Debug, Default)]
struct Writers {
    recent: [usize; WRITERS_WINDOW],
    next: usize,
}

impl Writers {
    fn expected(&self) -> usize {
        self.recent.iter().copied().max().unwrap_or(0)
    }

    fn seen(&mut self, writers: usize) {
        self.recent[self.next] = writers;
        self.next = (self.next + 1) % WRITERS_WINDOW;
    }

    /// A batch waited for writers who did not come: only `writers` are
    /// left to expect.
    fn forget(&mut self, writers: usize) {
        self.recent = [writers; WRITERS_WINDOW];
    }
}

#[cfg(test)]
mod tests;
