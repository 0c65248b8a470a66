//! A group's snapshots as the state machine needs them: built from a frozen
//! view of the state, kept (newest only), handed to openraft's chunked
//! sender, received chunk by chunk and installed.
//!
//! A node keeps them in files ([`SnapFiles`]); a simulation's in-memory
//! disk keeps them as bytes. Both go through the same streamed encoder and
//! decoder ([`snap_format`]).
//!
//! The frozen view is a clone of the state taken under a short read lock,
//! O(1) whatever the group's size: everything that grows with the group is
//! a persistent collection ([`crate::state::ProcessMap`]), whose clone
//! shares its tree; the state moving on copies the nodes it changes, and
//! a process record applied to afterwards is copied once
//! (`Arc::make_mut`). Encoding, writing, fsyncing and decoding run on
//! blocking threads, never on the async runtime, so neither the group's
//! heartbeats nor other groups wait for them; and at a lower CPU priority,
//! the files flushed to disk step by step ([`snap_io`]), so the runtime's
//! threads and the log's fsyncs do not wait behind them either.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

use super::sm::{SharedState, StoredSnapshot};
use super::snap_files::{SnapFileError, SnapFiles};
use super::snap_format::{self, SnapshotImage};
use crate::ids::GroupId;
use crate::snap_io;
use crate::snap_retire;
use crate::snap_retire::{ReaderMark, Readers};
use crate::snapshot_data::{SnapshotData, Unclaimed};
use crate::state::CanonState;
use crate::types::{SnapshotMeta, StorageError};

/// How long building the last snapshot took, and how big it was (logged,
/// and read by the snapshot bench).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildStats {
    /// Under the state's read lock, cloning the frozen view.
    pub freeze: Duration,
    /// Encoding and writing (and fsyncing) it.
    pub write: Duration,
    pub bytes: u64,
    pub processes: u64,
}

/// A snapshot file just built, open for sending.
struct OpenSnapshot {
    file: std::fs::File,
    path: PathBuf,
    /// The current file's reader mark (none if a newer snapshot won and
    /// this one was unlinked at once).
    reading: Option<ReaderMark>,
    bytes: u64,
}

/// Where a group's snapshot is kept.
#[derive(Debug, Clone)]
pub(crate) enum SnapBackend {
    /// Files in the node's data directory.
    Files(Arc<FileSnaps>),
    /// Memory that outlives the node (simulations).
    Memory(Arc<Mutex<Option<StoredSnapshot>>>),
}

/// A group's snapshot files and the meta of the current one. The lock is
/// held while the current file is compared, replaced or opened, so an
/// older snapshot never replaces a newer one and a reader always gets the
/// file its meta describes.
#[derive(Debug)]
pub(crate) struct FileSnaps {
    files: SnapFiles,
    current: Mutex<Kept>,
}

/// The current snapshot file: its meta and its readers.
#[derive(Debug, Default)]
struct Kept {
    meta: Option<SnapshotMeta>,
    readers: Readers,
}

impl FileSnaps {
    pub(crate) fn new(files: SnapFiles, current: Option<SnapshotMeta>) -> Self {
        FileSnaps {
            files,
            current: Mutex::new(Kept {
                meta: current,
                readers: Readers::default(),
            }),
        }
    }

    fn current(&self) -> MutexGuard<'_, Kept> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `temp` (snapshot `meta`) current unless a newer one is. A
    /// mark for a reader of the new current file, if it won (a loser is
    /// left to the caller).
    fn publish_if_newer(
        &self,
        temp: &Path,
        meta: &SnapshotMeta,
    ) -> Result<Option<ReaderMark>, SnapFileError> {
        let mut current = self.current();
        if current
            .meta
            .as_ref()
            .is_some_and(|c| c.last_log_id > meta.last_log_id)
        {
            return Ok(None);
        }
        let replaced = std::mem::take(&mut current.readers);
        self.files.publish_replacing(temp, replaced)?;
        current.meta = Some(meta.clone());
        Ok(Some(current.readers.mark()))
    }

    /// Encodes `view` as snapshot `meta` and makes it current (unless a
    /// newer one is). Returns the file opened for reading: the current one
    /// (with its reader's mark), or, if a newer snapshot won, the built one
    /// under its temporary name, released once this reader lets go.
    fn build(&self, meta: &SnapshotMeta, view: CanonState) -> Result<OpenSnapshot, SnapFileError> {
        let (temp, bytes) = self.files.write_temp("build", meta, view)?;
        let file = std::fs::File::open(&temp).map_err(|e| SnapFileError {
            path: temp.clone(),
            source: e.into(),
        })?;
        let (path, mark) = match self.publish_if_newer(&temp, meta)? {
            Some(mark) => (self.files.current(), mark),
            None => {
                // A newer snapshot won: this one is read once, then released
                // (see `snap_retire::retire`).
                let readers = snap_retire::Readers::default();
                let mark = readers.mark();
                snap_retire::retire(temp.clone(), readers);
                (temp, mark)
            }
        };
        Ok(OpenSnapshot {
            file,
            path,
            reading: Some(mark),
            bytes,
        })
    }

    /// Decodes the received snapshot in `path` (announced as `meta`),
    /// checks it, and makes it current. The file is removed if it is bad.
    fn install(&self, path: &Path, meta: &SnapshotMeta) -> Result<CanonState, SnapFileError> {
        let checked = self.check_received(path, meta);
        match checked {
            Ok(image) => {
                // Nobody reads it yet: the mark goes at once.
                self.publish_if_newer(path, meta)?;
                Ok(image.state)
            }
            Err(e) => {
                // Best effort: leftovers are removed at the next open anyway.
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    fn check_received(
        &self,
        path: &Path,
        meta: &SnapshotMeta,
    ) -> Result<SnapshotImage, SnapFileError> {
        let file_err = |source| SnapFileError {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|e| file_err(e.into()))?;
        let len = file.metadata().map_err(|e| file_err(e.into()))?.len();
        snap_io::sync_in_steps(&file, len).map_err(|e| file_err(e.into()))?;
        let mut probe = [0u8; 1];
        let first = std::io::Read::read(&mut &file, &mut probe).map_err(|e| file_err(e.into()))?;
        let image = if first == 1 && snap_format::is_old_image(&probe) {
            // A leader of an older release sends a whole-state image.
            let bytes = std::fs::read(path).map_err(|e| file_err(e.into()))?;
            snap_format::decode_image(&bytes, meta).map_err(file_err)?
        } else {
            drop(file);
            let file = std::fs::File::open(path).map_err(|e| file_err(e.into()))?;
            let image = super::snap_files::read_file(path, file)?;
            snap_format::check_meta(&image.meta, meta).map_err(file_err)?;
            image
        };
        if image.state.group != self.files.group() {
            return Err(file_err(snap_format::SnapFormatError::Bad {
                record: 1,
                offset: 0,
                detail: format!(
                    "a snapshot of group {}, not {}",
                    image.state.group,
                    self.files.group()
                ),
            }));
        }
        // The current file is the one installed: its own meta is the
        // announced one, so save the announced meta (same log id).
        Ok(SnapshotImage {
            meta: meta.clone(),
            state: image.state,
        })
    }
}

/// The frozen view of `shared` and the meta of the snapshot it makes
/// (snapshot ids are unique per process by `n`).
fn frozen_view(
    shared: &SharedState,
    group: GroupId,
    n: u64,
) -> (SnapshotMeta, CanonState, Duration) {
    let started = Instant::now();
    let (last_applied, last_membership, view) = {
        let d = shared.read();
        (
            d.last_applied,
            d.last_membership.clone(),
            d.state.snapshot_view(),
        )
    };
    let freeze = started.elapsed();
    let snapshot_id = match &last_applied {
        Some(l) => format!("g{group}-{}-{}-{n}", l.leader_id.term, l.index),
        None => format!("g{group}-none-{n}"),
    };
    let meta = SnapshotMeta {
        last_log_id: last_applied,
        last_membership,
        snapshot_id,
    };
    (meta, view, freeze)
}

fn storage_err(
    meta: Option<&SnapshotMeta>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(meta.map(|m| m.signature())),
        verb,
        AnyError::error(e.to_string()),
    )
    .into()
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        storage_err(
            None,
            ErrorVerb::Write,
            format!("{what} did not finish: {e}"),
        )
    })
}

impl SnapBackend {
    /// Builds a snapshot of `shared` and keeps it (unless a newer one is
    /// kept already). Returns it open for sending.
    pub(crate) async fn build(
        &self,
        shared: SharedState,
        group: GroupId,
        n: u64,
    ) -> Result<(SnapshotMeta, SnapshotData, BuildStats), StorageError> {
        match self {
            SnapBackend::Files(f) => {
                let f = f.clone();
                let built = blocking("building a snapshot", move || {
                    // At the caller's priority: the view is taken under
                    // the state's read lock, which a thread that waits
                    // long for a core must not hold.
                    let (meta, view, freeze) = frozen_view(&shared, group, n);
                    let processes = view.processes.len() as u64;
                    let started = Instant::now();
                    let opened = snap_io::on_low_priority_thread("building a snapshot", || {
                        f.build(&meta, view).map_err(|e| e.to_string())
                    })??;
                    let stats = BuildStats {
                        freeze,
                        write: started.elapsed(),
                        bytes: opened.bytes,
                        processes,
                    };
                    Ok::<_, String>((meta, opened, stats))
                })
                .await?;
                let (meta, opened, stats) =
                    built.map_err(|e| storage_err(None, ErrorVerb::Write, e))?;
                let data = SnapshotData::File {
                    file: tokio::fs::File::from_std(opened.file),
                    path: opened.path,
                    unclaimed: Unclaimed::none(),
                    reading: opened.reading,
                };
                Ok((meta, data, stats))
            }
            SnapBackend::Memory(m) => {
                let (meta, view, freeze) = frozen_view(&shared, group, n);
                let processes = view.processes.len() as u64;
                let started = Instant::now();
                let bytes = snap_format::encode_image(&meta, view)
                    .map_err(|e| storage_err(Some(&meta), ErrorVerb::Write, e))?;
                let stats = BuildStats {
                    freeze,
                    write: started.elapsed(),
                    bytes: bytes.len() as u64,
                    processes,
                };
                keep_in_memory(m, &meta, &bytes);
                Ok((meta, SnapshotData::Memory(Cursor::new(bytes)), stats))
            }
        }
    }

    /// Somewhere to write a snapshot being received.
    pub(crate) async fn begin_receiving(&self) -> Result<SnapshotData, StorageError> {
        match self {
            SnapBackend::Files(f) => {
                let path = f.files.temp("recv");
                let file = tokio::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .await
                    .map_err(|e| {
                        storage_err(
                            None,
                            ErrorVerb::Write,
                            format!("snapshot file {}: {e}", path.display()),
                        )
                    })?;
                // Flushed as the chunks come, so that neither the install's
                // fsync nor the log's wait behind the whole file.
                let unclaimed = match file.try_clone().await {
                    Ok(clone) => {
                        Unclaimed::new(path.clone()).flushed_as_it_grows(clone.into_std().await)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "a received snapshot flushed only at the end");
                        Unclaimed::new(path.clone())
                    }
                };
                Ok(SnapshotData::File {
                    file,
                    path,
                    unclaimed,
                    reading: None,
                })
            }
            SnapBackend::Memory(_) => Ok(SnapshotData::Memory(Cursor::new(Vec::new()))),
        }
    }

    /// Decodes a received snapshot, checks it and keeps it. Returns the
    /// state it holds. A bad snapshot is an error naming its file, and
    /// nothing kept before is replaced.
    pub(crate) async fn install(
        &self,
        meta: &SnapshotMeta,
        data: SnapshotData,
    ) -> Result<CanonState, StorageError> {
        match (self, data) {
            (
                SnapBackend::Files(f),
                SnapshotData::File {
                    file,
                    path,
                    mut unclaimed,
                    ..
                },
            ) => {
                // `install` keeps or removes it.
                unclaimed.claim();
                drop(file);
                let (f, meta2) = (f.clone(), meta.clone());
                blocking("installing a snapshot", move || {
                    snap_io::on_low_priority_thread("installing a snapshot", || {
                        f.install(&path, &meta2).map_err(|e| e.to_string())
                    })?
                })
                .await?
                .map_err(|e| storage_err(Some(meta), ErrorVerb::Read, e))
            }
            (SnapBackend::Files(f), SnapshotData::Memory(bytes)) => {
                let (f, meta2) = (f.clone(), meta.clone());
                blocking("installing a snapshot", move || {
                    let path = f.files.temp("recv");
                    std::fs::write(&path, bytes.into_inner())
                        .and_then(|()| std::fs::File::open(&path)?.sync_all())
                        .map_err(|e| SnapFileError {
                            path: path.clone(),
                            source: e.into(),
                        })?;
                    f.install(&path, &meta2)
                })
                .await?
                .map_err(|e| storage_err(Some(meta), ErrorVerb::Read, e))
            }
            (SnapBackend::Memory(m), data) => {
                let bytes = match data {
                    SnapshotData::Memory(c) => c.into_inner(),
                    SnapshotData::File { path, .. } => tokio::fs::read(&path)
                        .await
                        .map_err(|e| storage_err(Some(meta), ErrorVerb::Read, e))?,
                };
                let image = snap_format::decode_image(&bytes, meta).map_err(|e| {
                    storage_err(
                        Some(meta),
                        ErrorVerb::Read,
                        format!("received snapshot: {e}"),
                    )
                })?;
                keep_in_memory(m, meta, &bytes);
                Ok(image.state)
            }
        }
    }

    /// The kept snapshot, open for sending.
    pub(crate) async fn current(
        &self,
    ) -> Result<Option<(SnapshotMeta, SnapshotData)>, StorageError> {
        match self {
            SnapBackend::Files(f) => {
                let f = f.clone();
                let opened = blocking("opening the snapshot", move || {
                    let current = f.current();
                    let Some(meta) = current.meta.clone() else {
                        return Ok(None);
                    };
                    let path = f.files.current();
                    let mark = current.readers.mark();
                    std::fs::File::open(&path)
                        .map(|file| Some((meta, file, path.clone(), mark)))
                        .map_err(|e| format!("snapshot file {}: {e}", path.display()))
                })
                .await?
                .map_err(|e| storage_err(None, ErrorVerb::Read, e))?;
                Ok(opened.map(|(meta, file, path, mark)| {
                    let data = SnapshotData::File {
                        file: tokio::fs::File::from_std(file),
                        path,
                        unclaimed: Unclaimed::none(),
                        reading: Some(mark),
                    };
                    (meta, data)
                }))
            }
            SnapBackend::Memory(m) => Ok(m
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|(meta, bytes)| (meta, SnapshotData::Memory(Cursor::new(bytes))))),
        }
    }

    /// Lets go of a replaced state: off the async runtime when there is
    /// one to spare (dropping a large state takes a while).
    pub(crate) fn discard(&self, old: CanonState) {
        match self {
            SnapBackend::Files(_) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) =
                        snap_io::on_low_priority_thread("dropping a state", || drop(old))
                    {
                        tracing::warn!(error = %e, "a replaced state");
                    }
                });
            }
            SnapBackend::Memory(_) => drop(old),
        }
    }
}

/// Keeps `bytes` as the in-memory snapshot unless a newer one is kept.
fn keep_in_memory(m: &Mutex<Option<StoredSnapshot>>, meta: &SnapshotMeta, bytes: &[u8]) {
    let mut kept = m.lock().unwrap_or_else(|e| e.into_inner());
    if kept
        .as_ref()
        .is_some_and(|(cur, _)| cur.last_log_id > meta.last_log_id)
    {
        return;
    }
    *kept = Some((meta.clone(), bytes.to_vec()));
}
