//! Group commit: one thread per database turns many "tell me when this is on
//! disk" requests — from every group's `append`, vote and snapshot writes —
//! into one flush.
//!
//! Every group's `append` hands its openraft callback here; the flusher takes
//! all requests waiting, flushes once and then completes them in arrival
//! order. A flush covers every write made before it started, so an entry is
//! acknowledged only once it is durable.
//!
//! A flush is an `fdatasync` of each WAL segment written since the last
//! one ([`super::wal`]): that is all log entries need. sled (votes, purge
//! points) is flushed too only when a write there asked for durability
//! since the last flush (`sync()`, a vote, a purge point that lets WAL
//! segments go): sled's own flush on Linux ends with `sync_file_range`,
//! which neither flushes the device's write cache nor the file's metadata,
//! so it is followed by an `fdatasync` of sled's data file.
//!
//! A flush costs about the same whether it covers one write or a hundred.
//! The flusher runs on a thread of its own: a flush is blocking I/O, and
//! doing it there saves the hops through thread pools (sled's and Tokio's
//! blocking pool) that an async flush costs each time. Holding flushes back
//! to gather more was measured and did not pay: writers wait on the flush,
//! so a delay only lowers their throughput.
//!
//! # A group writing alone flushes on its own thread
//! Handing a flush to the thread still costs two thread wake-ups on a
//! write's path. When one group alone has been appending for a while and
//! the thread has nothing queued or under way ([`solo`]), the group's
//! `append` makes the flush itself (the WAL's sync, and sled's when a vote
//! asks for it) and completes its callback at once. Every flush, here or on
//! the thread, holds one lock while it runs and while its waiters are
//! completed, so flushes never overlap and completions keep their order.
//! The housekeeping a flush does on the thread (moving the WAL's live
//! entries forward, deleting dead segments) is not done on a caller's
//! thread; the flusher does it when it has been idle for a marks interval
//! after flushes made elsewhere.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::time::Instant;

use openraft::storage::LogFlushed;
use tokio::sync::{oneshot, watch};

use super::marks::MarkBook;
use super::DbHandle;
use crate::ids::GroupId;
use crate::types::TypeConfig;

mod solo;

use solo::Solo;

/// Something waiting for durability.
enum Waiter {
    /// Log entries: the WAL's sync is enough.
    Log(LogFlushed<TypeConfig>),
    /// Everything, sled included.
    Notify(oneshot::Sender<Result<(), String>>),
    /// sled soon, nobody waiting (purge points, so that dead WAL segments
    /// can go).
    Sled,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::Log(_) => "Log",
            Waiter::Notify(_) => "Notify",
            Waiter::Sled => "Sled",
        })
    }
}

/// Handle to a database's flusher thread. The thread ends when every handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct Flusher {
    tx: Sender<Waiter>,
    shared: Arc<Shared>,
}

/// The requests of a flusher whose thread has not started yet.
#[derive(Debug)]
pub(crate) struct FlushQueue {
    rx: Receiver<Waiter>,
    shared: Arc<Shared>,
}

/// What the flusher thread shares with the callers that flush on their own
/// thread (see the module doc).
#[derive(Default)]
struct Shared {
    /// Held by every flush while it runs and while its waiters are
    /// completed.
    flushing: Mutex<()>,
    /// Log waiters handed to the thread and not yet completed by it.
    queued: AtomicUsize,
    /// Which group appends alone, and how fast flushes here have been.
    solo: Mutex<Solo>,
    /// What a flush needs, set when the thread starts.
    target: OnceLock<Target>,
    /// Flushes were made on callers' threads since the thread's last
    /// housekeeping.
    flushed_elsewhere: AtomicBool,
}

/// The database a flush covers.
struct Target {
    db: Weak<DbHandle>,
    marks: Arc<MarkBook>,
    data_file: Option<Arc<File>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `mutex`, whether or not a thread panicked holding it (what it guards
/// stays consistent: a flag, a rule's timestamps, or nothing).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Flushes for `group`'s append on this thread and completes
    /// `callback`, when [`solo`] allows it and the flusher thread has
    /// nothing queued or under way; otherwise gives `callback` back.
    fn flush_here(
        &self,
        group: GroupId,
        callback: LogFlushed<TypeConfig>,
    ) -> Option<LogFlushed<TypeConfig>> {
        let allowed = lock(&self.solo).may_flush_here(group, Instant::now());
        if !allowed || self.queued.load(Ordering::Acquire) > 0 {
            return Some(callback);
        }
        let Some(target) = self.target.get() else {
            return Some(callback);
        };
        let _flushing = match self.flushing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Some(callback),
        };
        let Some(handle) = target.db.upgrade() else {
            // A closed database: the thread answers that.
            return Some(callback);
        };
        let pending = target.marks.take_pending();
        let sled_asked = pending.values().any(|m| m.vote_term > 0);
        let data_file = target.data_file.as_deref();
        let result = flush(handle, sled_asked, data_file, false, &self.solo);
        if result.is_ok() {
            target.marks.note_flushed(pending);
        }
        self.flushed_elsewhere.store(true, Ordering::Release);
        callback.log_io_completed(result.map_err(std::io::Error::other));
        None
    }
}

impl FlushQueue {
    /// Starts the flusher thread of `db`. The thread holds the database
    /// only weakly (and strongly only during a flush), so dropping the last
    /// handle closes the database and frees its lock.
    /// `marks` is the database's book of marks, held by the thread itself
    /// (it holds no database), so that it can write the marks when writes
    /// pause and when it ends.
    /// The answer tells when the thread has ended (its last marks
    /// written): it is closed then.
    pub(crate) fn start(
        self,
        db: Weak<DbHandle>,
        marks: Arc<MarkBook>,
        data_file: Option<Arc<File>>,
    ) -> std::io::Result<watch::Receiver<()>> {
        let (rx, shared) = (self.rx, self.shared);
        let target = Target {
            db,
            marks,
            data_file,
        };
        // Started once: the queue is consumed.
        let _ = shared.target.set(target);
        let (running, ended) = watch::channel(());
        std::thread::Builder::new()
            .name("canon-raft-flush".into())
            .spawn(move || {
                run(&rx, &shared);
                drop(running);
            })?;
        Ok(ended)
    }
}

impl Flusher {
    /// A flusher handle and the queue its thread will serve
    /// ([`FlushQueue::start`]).
    pub(crate) fn new() -> (Self, FlushQueue) {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let shared = Arc::new(Shared::default());
        (
            Flusher {
                tx,
                shared: shared.clone(),
            },
            FlushQueue { rx, shared },
        )
    }

    /// Completes `callback` once everything written so far is durable (or
    /// with an error if the flusher has stopped); the write was group
    /// `group`'s append, which may flush at once on this thread (see the
    /// module doc).
    pub fn after_flush(&self, group: GroupId, callback: LogFlushed<TypeConfig>) {
        let Some(callback) = self.shared.flush_here(group, callback) else {
            return;
        };
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(Waiter::Log(cb))) = self.tx.send(Waiter::Log(callback)) {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            cb.log_io_completed(Err(std::io::Error::other("flusher stopped")));
        }
    }

    /// Has sled flushed soon (its writes so far made durable), nobody
    /// waiting for it.
    pub(crate) fn flush_sled_soon(&self) {
        // A stopped flusher: the purge point is made durable at the next
        // open's checks, nothing is lost.
        let _ = self.tx.send(Waiter::Sled);
    }

    /// Waits until everything written so far is durable.
    pub async fn sync(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Waiter::Notify(tx))
            .map_err(|_| "flusher stopped".to_string())?;
        rx.await.map_err(|_| "flusher stopped".to_string())?
    }
}

/// The flusher thread: gather, flush, complete; until every sender is gone.
/// When no request comes for a marks interval, and when the thread ends,
/// the marks proved by earlier flushes are written (see [`super::marks`]).
/// While it waits for the lock that flushes hold, more requests may come:
/// they join the flush.
fn run(rx: &Receiver<Waiter>, shared: &Shared) {
    // Set by `FlushQueue::start` before the thread began.
    let Some(Target {
        db,
        marks,
        data_file,
    }) = shared.target.get()
    else {
        return;
    };
    let data_file = data_file.as_deref();
    let mut batch = Vec::new();
    let mut last_committed_write = Instant::now();
    loop {
        let first = match rx.recv_timeout(super::marks::WRITE_INTERVAL) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                housekeeping_after_flushes_elsewhere(shared);
                marks.write_pending();
                write_due_committed(db);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        batch.push(first);
        let flushing = lock(&shared.flushing);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let logs = batch.iter().filter(|w| matches!(w, Waiter::Log(_))).count();
        let Some(handle) = db.upgrade() else {
            complete(&mut batch, &Err("database closed".to_string()));
            shared.queued.fetch_sub(logs, Ordering::AcqRel);
            drop(flushing);
            continue;
        };
        let pending = marks.take_pending();
        // A vote's mark may be recorded only once sled holds it durably.
        let sled_asked = batch.iter().any(|w| !matches!(w, Waiter::Log(_)))
            || pending.values().any(|m| m.vote_term > 0);
        if last_committed_write.elapsed() >= super::committed::WRITE_EVERY {
            write_due_committed(db);
            last_committed_write = Instant::now();
        }
        let result = flush(handle, sled_asked, data_file, true, &shared.solo);
        complete(&mut batch, &result);
        shared.queued.fetch_sub(logs, Ordering::AcqRel);
        shared.flushed_elsewhere.store(false, Ordering::Release);
        drop(flushing);
        if result.is_ok() {
            marks.flushed(pending);
        }
    }
    housekeeping_after_flushes_elsewhere(shared);
    marks.write_pending();
}

/// The housekeeping flushes on callers' threads leave out (see the module
/// doc), if any were made since the thread's last flush: a flush of its
/// own, nobody waiting on it.
fn housekeeping_after_flushes_elsewhere(shared: &Shared) {
    if !shared.flushed_elsewhere.load(Ordering::Acquire) {
        return;
    }
    let Some(target) = shared.target.get() else {
        return;
    };
    let Some(handle) = target.db.upgrade() else {
        return;
    };
    let data_file = target.data_file.as_deref();
    let _flushing = lock(&shared.flushing);
    shared.flushed_elsewhere.store(false, Ordering::Release);
    if let Err(error) = flush(handle, false, data_file, true, &shared.solo) {
        tracing::warn!(%error, "the WAL's housekeeping flush failed");
    }
}

/// Writes the committed ids of groups gone quiet (see
/// [`super::committed`]).
fn write_due_committed(db: &Weak<DbHandle>) {
    let Some(handle) = db.upgrade() else {
        return;
    };
    if let Err(error) = handle.committed.write_due(Instant::now(), false) {
        tracing::warn!(%error, "committed ids not written");
    }
}

/// One flush: the WAL's dirty segments, and sled if `sled_asked`; with
/// `housekeeping`, the WAL's live entries moved forward first and its dead
/// segments deleted after. How long the WAL's sync took goes to `solo`:
/// it is the disk's speed that decides where the next flushes are made.
/// The database is held to the end (a store
/// opened next finds the WAL still, its segments not being deleted), and
/// let go of before anyone hears back: a caller that closes it next must
/// find it closed (and its lock free).
fn flush(
    handle: Arc<DbHandle>,
    sled_asked: bool,
    data_file: Option<&File>,
    housekeeping: bool,
    solo: &Mutex<Solo>,
) -> Result<(), String> {
    if housekeeping {
        if let Err(e) = handle.wal.compact() {
            tracing::warn!(error = %e, "WAL entries not moved forward");
        }
    }
    let purges = if sled_asked {
        handle.wal.take_noted_purges()
    } else {
        Vec::new()
    };
    let sled = || -> Result<(), String> {
        handle.db.flush().map_err(|e| e.to_string())?;
        match data_file {
            Some(file) => file.sync_data().map_err(|e| format!("fdatasync: {e}")),
            None => Ok(()),
        }
    };
    let result = if sled_asked { sled() } else { Ok(()) };
    if result.is_err() {
        handle.wal.purges_failed(&purges);
    }
    let result = result.and_then(|()| {
        let started = Instant::now();
        let synced = handle.wal.sync().map_err(|e| e.to_string());
        lock(solo).flushed(started.elapsed(), Instant::now());
        synced
    });
    if result.is_ok() && housekeeping {
        if let Err(e) = handle.wal.delete_dead() {
            // Only space: the segments go at a later flush.
            tracing::warn!(error = %e, "dead WAL segments not all deleted");
        }
    }
    result
}

fn complete(batch: &mut Vec<Waiter>, result: &Result<(), String>) {
    for waiter in batch.drain(..) {
        match waiter {
            Waiter::Log(cb) => {
                cb.log_io_completed(result.clone().map_err(std::io::Error::other));
            }
            Waiter::Notify(tx) => {
                // The waiter may have gone away; nothing to do then.
                let _ = tx.send(result.clone());
            }
            Waiter::Sled => {}
        }
    }
}
