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

use std::fs::File;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::time::Instant;

use openraft::storage::LogFlushed;
use tokio::sync::{oneshot, watch};

use super::marks::MarkBook;
use super::DbHandle;
use crate::types::TypeConfig;

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
}

/// The requests of a flusher whose thread has not started yet.
#[derive(Debug)]
pub(crate) struct FlushQueue {
    rx: Receiver<Waiter>,
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
        let rx = self.rx;
        let (running, ended) = watch::channel(());
        std::thread::Builder::new()
            .name("canon-raft-flush".into())
            .spawn(move || {
                run(&db, &marks, data_file.as_deref(), &rx);
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
        (Flusher { tx }, FlushQueue { rx })
    }

    /// Completes `callback` once everything written so far is durable (or
    /// with an error if the flusher has stopped).
    pub fn after_flush(&self, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::SendError(Waiter::Log(cb))) = self.tx.send(Waiter::Log(callback)) {
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
fn run(db: &Weak<DbHandle>, marks: &MarkBook, data_file: Option<&File>, rx: &Receiver<Waiter>) {
    let mut batch = Vec::new();
    let mut last_committed_write = Instant::now();
    loop {
        let first = match rx.recv_timeout(super::marks::WRITE_INTERVAL) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                marks.write_pending();
                write_due_committed(db);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let Some(handle) = db.upgrade() else {
            complete(&mut batch, &Err("database closed".to_string()));
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
        let result = flush(handle, sled_asked, data_file);
        complete(&mut batch, &result);
        if result.is_ok() {
            marks.flushed(pending);
        }
    }
    marks.write_pending();
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

/// One flush: the WAL's dirty segments, and sled if `sled_asked`. The
/// database is held to the end (a store opened next finds the WAL still,
/// its segments not being deleted), and let go of before anyone hears
/// back: a caller that closes it next must find it closed (and its lock
/// free).
fn flush(handle: Arc<DbHandle>, sled_asked: bool, data_file: Option<&File>) -> Result<(), String> {
    if let Err(e) = handle.wal.compact() {
        tracing::warn!(error = %e, "WAL entries not moved forward");
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
    let result = result.and_then(|()| handle.wal.sync().map_err(|e| e.to_string()));
    if result.is_ok() {
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
