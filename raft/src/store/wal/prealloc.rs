//! The next segment, zero-filled on a thread of its own before it is
//! needed: filling 64 MiB takes a quarter of a second or more, which no
//! append should wait for.
//!
//! The thread makes a spare only when asked (the current segment is half
//! full), so an idle node holds one segment, not two; and it hands the
//! spare over through a rendezvous channel, so at most one exists. It runs
//! at a lower priority and writes paced (`segment::Fill::Paced`): it is
//! never what an append waits for.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use super::segment;

/// A zero-filled file ready to become a segment.
pub(crate) struct Spare {
    pub path: PathBuf,
    pub file: File,
}

/// The appender's end of the spare-making thread.
#[derive(Debug)]
pub(crate) struct Prealloc {
    want: SyncSender<()>,
    /// Behind a lock only to be shared (taken under the WAL's lock anyway).
    ready: Mutex<Receiver<Spare>>,
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spare({})", self.path.display())
    }
}

impl Prealloc {
    /// Starts the thread making spares of `bytes` in `dir`; it ends when
    /// this is dropped.
    pub(crate) fn start(dir: &Path, bytes: u64) -> std::io::Result<Self> {
        let (want, wanted) = mpsc::sync_channel::<()>(1);
        let (give, ready) = mpsc::sync_channel::<Spare>(0);
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("canon-raft-wal-prealloc".into())
            .spawn(move || run(&dir, bytes, &wanted, &give))?;
        Ok(Prealloc {
            want,
            ready: Mutex::new(ready),
        })
    }

    /// Asks for a spare (once is enough; more asks are ignored).
    pub(crate) fn ask(&self) {
        let _ = self.want.try_send(());
    }

    /// The spare, if the thread has one ready.
    pub(crate) fn take(&self) -> Option<Spare> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        // Empty (not ready) or disconnected (the thread failed): none.
        ready.try_recv().ok()
    }
}

fn run(dir: &Path, bytes: u64, wanted: &Receiver<()>, give: &SyncSender<Spare>) {
    if let Err(e) = crate::snap_io::lower_this_threads_priority() {
        tracing::debug!(error = %e, "WAL segments preallocated at normal priority");
    }
    while wanted.recv().is_ok() {
        let path = dir.join(segment::spare_name());
        let file = match segment::zero_filled(&path, bytes, segment::Fill::Paced) {
            Ok(f) => f,
            Err(e) => {
                // The appender makes its segment itself then.
                tracing::warn!(path = %path.display(), error = %e, "cannot preallocate a WAL segment");
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        if let Err(mpsc::SendError(spare)) = give.send(Spare { path, file }) {
            // The log is closed (else the next open removes it).
            let _ = std::fs::remove_file(&spare.path);
            return;
        }
    }
}
