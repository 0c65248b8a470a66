//! Group commit: one task per database turns many "tell me when this is on
//! disk" requests into one fsync.
//!
//! Every group's `append` hands its openraft callback here; the flusher takes
//! all requests waiting, flushes the database once and then completes them in
//! arrival order. A flush covers every write made before it started, so an
//! entry is acknowledged only once it is durable.
//!
//! sled's own flush on Linux ends with `sync_file_range`, which neither
//! flushes the device's write cache nor the file's metadata: enough for a
//! process crash, not for power loss. So each flush is followed by an
//! `fdatasync` of sled's data file.

use std::fs::File;
use std::sync::{Arc, Weak};

use openraft::storage::LogFlushed;
use tokio::sync::{mpsc, oneshot};

use super::DbHandle;
use crate::types::TypeConfig;

/// Something waiting for durability.
enum Waiter {
    Log(LogFlushed<TypeConfig>),
    Notify(oneshot::Sender<Result<(), String>>),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::Log(_) => "Log",
            Waiter::Notify(_) => "Notify",
        })
    }
}

/// Handle to a database's flusher task. The task ends when every handle is
/// dropped.
#[derive(Debug, Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl Flusher {
    /// Starts the flusher of `db` on the current Tokio runtime. The task
    /// holds the database only weakly, so dropping the last handle closes
    /// the database (and frees its lock) at once.
    pub(crate) fn start(db: Weak<DbHandle>, data_file: Option<Arc<File>>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let Some(handle) = db.upgrade() else {
                    complete(&mut batch, &Err("database closed".to_string()));
                    continue;
                };
                let pending = handle.marks.take_pending();
                let sled_db = handle.db.clone();
                drop(handle);
                let mut result = sled_db
                    .flush_async()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                drop(sled_db);
                if let (Ok(()), Some(file)) = (&result, &data_file) {
                    let file = file.clone();
                    result = match tokio::task::spawn_blocking(move || file.sync_data()).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(format!("fdatasync: {e}")),
                        Err(e) => Err(format!("fdatasync task: {e}")),
                    };
                }
                complete(&mut batch, &result);
                if result.is_ok() {
                    if let Some(handle) = db.upgrade() {
                        handle.marks.flushed(pending);
                    }
                }
            }
        });
        Flusher { tx }
    }

    /// Completes `callback` once everything written so far is durable (or
    /// with an error if the flusher has stopped).
    pub fn after_flush(&self, callback: LogFlushed<TypeConfig>) {
        if let Err(mpsc::error::SendError(Waiter::Log(cb))) = self.tx.send(Waiter::Log(callback)) {
            cb.log_io_completed(Err(std::io::Error::other("flusher stopped")));
        }
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
        }
    }
}
